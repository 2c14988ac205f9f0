"""Experiment 3: the RBM flow on L = flow_L. RBMs trained on mixed, Tc-only, high-T and low-T
data are iterated v -> h -> v' from Monte Carlo starts and random spins; every step is read by
both thermometers and by power-law fits of G_sigma and G_eps."""

import math

import numpy as np

from ..exact import TC
from .claims import flow_silence
from .costs import COST_MEASURE, COST_MEASURE_CONFIG
from .ensemble import combined_z, stack_seeds
from .figures import new_figure, save_png
from .kinds import FLOW_SCALARS, flow_measure, load_rbm_arrays, load_thermometers
from .markdown import md_table, pm, zs
from .presets import TRAIN_SETS, Preset, train_set_indices
from .stage import StageContext, stages_of_kind
from .verdicts import (
    agreement,
    as_number,
    bound_of,
    common_endpoint,
    compare,
    exact_value,
    meas,
    toward,
)

DELTA_SIGMA_EXACT = 0.125  # exact 2D Ising scaling dimensions
DELTA_EPSILON_EXACT = 1.0
FLOW_STARTS = ("low", "high", "random")
KEY = "3_rbm_flow"


def _run_flow(ctx: StageContext):
    """An RBM's flow v -> h -> v' from low-T, high-T and random starts, measured at every
    step."""
    from ..rbm import rbm_flow, spins_to_visible, uniforms
    from ..rng import new_states

    s = ctx.settings
    rbm = load_rbm_arrays(ctx.inputs[s["rbm"]].arrays, s["units"])
    th = ctx.inputs[s["thermometer"]].arrays
    mlp, obs = load_thermometers(th)
    mc_T, mc_m = th["ref_temperatures"], th["ref_m_mean"]
    starts = ctx.inputs[s["starts"]].arrays["spins"]  # (2, n, L, L): low, high
    n, L = s["chains"], starts.shape[-1]
    state = new_states(s["seed"])
    v0s = [spins_to_visible(starts[0][:n], rbm.units, rbm.dtype),
           spins_to_visible(starts[1][:n], rbm.units, rbm.dtype)]
    u = uniforms(state, (n, L * L))
    v0s.append(np.where(u < 0.5, -1.0, 1.0).astype(rbm.dtype))
    n_steps = s["steps"]
    n_t = mlp.temperatures.size
    shape = (len(FLOW_STARTS), n_steps + 1)
    out = {k: np.full(shape, np.nan) for k in FLOW_SCALARS}
    out["hist_mlp"] = np.zeros(shape + (n_t,), np.int64)
    out["hist_obs"] = np.zeros(shape + (n_t,), np.int64)
    out["T_obs_bound"] = np.zeros(shape, np.int8)
    obs_details = []
    for i, v0 in enumerate(v0s):
        ctx.check_stop()
        flow = rbm_flow(rbm, v0, n_steps, state)
        rows = []
        for step in range(n_steps + 1):
            ctx.check_stop()
            x = np.where(flow[step] > 0, 1, -1).astype(np.int8).reshape(n, L, L)
            m = flow_measure(x, mlp, obs, mc_T, mc_m, s["jackknife_blocks"], s["r_min"])
            for k in FLOW_SCALARS:
                out[k][i, step] = m[k]
            out["hist_mlp"][i, step] = m["hist_mlp"]
            out["hist_obs"][i, step] = m["hist_obs"]
            out["T_obs_bound"][i, step] = m["T_obs_bound"]
            for g in ("G_sigma", "G_sigma_err", "G_epsilon", "G_epsilon_err"):
                if g not in out:
                    out[g] = np.full(shape + (m[g].size,), np.nan)
                out[g][i, step] = m[g]
            out["r_sigma"], out["r_epsilon"] = m["r_sigma"], m["r_epsilon"]
            rows.append({k: m["obs"][k] for k in ("energy_range", "abs_m_range",
                                                  "disagreement_sigma")})
            ctx.progress(i * (n_steps + 1) + step + 1, len(v0s) * (n_steps + 1))
        obs_details.append(rows)
    return out, {"observable_ranges": obs_details}


def _mc_m_at(th_arrays, T: dict) -> dict:
    """Monte Carlo <|m|>(T) at a measured temperature, error from the curve and from T."""
    if T["value"] is None:
        return meas(None, None)
    t, m, me = th_arrays["ref_temperatures"], th_arrays["ref_m_mean"], th_arrays["ref_m_err"]
    v = float(np.interp(T["value"], t, m))
    slope = float(np.interp(T["value"], 0.5 * (t[1:] + t[:-1]), np.diff(m) / np.diff(t)))
    return meas(v, math.hypot(float(np.interp(T["value"], t, me)), slope * (T["error"] or 0)))


def measure(p, view) -> dict:
    """Seed k's measured numbers: the Monte Carlo reference readings and, per RBM and start,
    the readings at steps 0, 1, N/2 and N."""
    ref = view["mcref-flow"].arrays
    th = view[f"thermometer-L{p.flow_L}"].arrays

    def r(prefix, k):
        bound = bound_of(ref[f"{prefix}_T_obs_bound"]) if k == "T_obs" else None
        return meas(ref[f"{prefix}_{k}"], ref[f"{prefix}_{k}_err"], bound)

    reference = {}
    for name, T in (("tc", TC), *zip(("low", "high"), p.flow_start_T, strict=True)):
        reference[name] = {
            "settings": {"T": T, "n_configs": view["mcref-flow"].meta[name]["n"]},
            "T_obs": r(name, "T_obs"), "T_mlp": r(name, "T_mlp"), "abs_m": r(name, "abs_m"),
            "delta_sigma": r(name, "delta_sigma"), "delta_epsilon": r(name, "delta_epsilon"),
        }
    rbms = {}
    N = p.flow_steps
    for st in stages_of_kind(view.stages, "flow"):
        a = view[st.name].arrays
        label = st.base.removeprefix("flow-")
        starts = {}
        for i, start in enumerate(FLOW_STARTS):
            def m(k, step, i=i, a=a):
                bound = bound_of(a["T_obs_bound"][i, step]) if k == "T_obs" else None
                return meas(a[k][i, step], a[f"{k}_err"][i, step], bound)

            z = view[st.name].meta["observable_ranges"][i][N]["disagreement_sigma"]
            starts[start] = {
                "settings": {"start": start, "T_start": (p.flow_start_T[i] if i < 2
                                                         else "random spins"),
                             "chi2_dof_sigma_final": as_number(a["chi2_sigma"][i, N]),
                             "chi2_dof_epsilon_final": as_number(a["chi2_epsilon"][i, N])},
                "T_obs": {"step0": m("T_obs", 0), "step1": m("T_obs", 1),
                          "mid": m("T_obs", max(1, N // 2)), "final": m("T_obs", N)},
                "T_mlp": {"step0": m("T_mlp", 0), "step1": m("T_mlp", 1),
                          "final": m("T_mlp", N)},
                "abs_m_final": m("abs_m", N),
                "delta_sigma_final": m("delta_sigma", N),
                "delta_epsilon_final": m("delta_epsilon", N),
                "mc_abs_m_at_T_mlp_final": _mc_m_at(th, m("T_mlp", N)),
                # z of the observable thermometer's E/N reading against its <|m|> one (a
                # z-score: unit error by construction)
                "obs_energy_vs_abs_m_z_final": meas(z, 1.0 if z is not None else None),
            }
        rbm_base = view.base_of(st.settings["rbm"])
        rbms[label] = {
            "settings": {"train_set": rbm_base, "description":
                         TRAIN_SETS[label.split("-h")[0]], "n_hidden": int(label.split("-h")[1]),
                         "rbm_stage": rbm_base},
            "starts": starts,
        }
    return {"settings": {"L": p.flow_L, "steps": N, "chains": p.flow_chains,
                         "fit_window": f"{p.fit_r_min:g} <= r < L/2",
                         "starts": list(FLOW_STARTS)},
            "mc_reference": reference, "rbms": rbms}


def results(p, measured: dict) -> dict:
    """The measured numbers (ensembles over seeds) with the verdicts drawn from them."""
    out = dict(measured)
    ref_tc = measured["mc_reference"]["tc"]
    out["rbms"] = {}
    for label, rb in measured["rbms"].items():
        starts = {}
        for start, s in rb["starts"].items():
            T_obs, T_mlp = s["T_obs"], s["T_mlp"]
            starts[start] = dict(s) | {
                "obs_final_vs_mc_tc": compare(T_obs["final"], ref_tc["T_obs"]),
                "mlp_final_vs_mc_tc": compare(T_mlp["final"], ref_tc["T_mlp"]),
                "obs_toward_tc": toward(T_obs["step0"], T_obs["final"], ref_tc["T_obs"]),
                "mlp_toward_tc": toward(T_mlp["step0"], T_mlp["final"], ref_tc["T_mlp"]),
                "obs_toward_tc_after_step1": toward(T_obs["step1"], T_obs["final"],
                                                    ref_tc["T_obs"]),
                "obs_stationary": compare(T_obs["final"], T_obs["mid"]),
                "obs_energy_vs_abs_m_final": agreement(
                    combined_z(s["obs_energy_vs_abs_m_z_final"])),
                "abs_m_vs_mc_at_T_mlp": compare(s["abs_m_final"], s["mc_abs_m_at_T_mlp_final"]),
                "delta_sigma_vs_mc_tc": compare(s["delta_sigma_final"], ref_tc["delta_sigma"]),
                "delta_epsilon_vs_mc_tc": compare(s["delta_epsilon_final"],
                                                  ref_tc["delta_epsilon"]),
                "delta_sigma_vs_exact": compare(s["delta_sigma_final"],
                                                exact_value(DELTA_SIGMA_EXACT)),
                "delta_epsilon_vs_exact": compare(s["delta_epsilon_final"],
                                                  exact_value(DELTA_EPSILON_EXACT)),
            }
        out["rbms"][label] = dict(rb) | {
            "starts": starts,
            "common_endpoint_obs": common_endpoint([starts[s]["T_obs"]["final"]
                                                    for s in FLOW_STARTS]),
            "common_endpoint_mlp": common_endpoint([starts[s]["T_mlp"]["final"]
                                                    for s in FLOW_STARTS]),
        }
    return out


def report_section(p, e3: dict, results: dict) -> list:
    s = e3["settings"]
    lines = ["## Experiment 3: the RBM flow", "",
             f"L = {s['L']}; {s['chains']} chains per start; v⁰ from Monte Carlo at low T, "
             f"high T, or random spins; then {s['steps']} steps h ~ P(h|v), v ~ P(v|h). "
             f"Power-law fits over {s['fit_window']} (paper convention, G_σ not connected); "
             "errors are standard errors over training seeds (with one seed, Δ errors are "
             "jackknife errors over configuration blocks). Per-step histograms, "
             "G_σ(r), G_ε(r) are in flow.npz.", "",
             "Reference: the same instruments on Monte Carlo configurations (same L):", ""]
    rows = []
    names = {"tc": "at Tc", "low": "low start", "high": "high start"}
    for name, r in e3["mc_reference"].items():
        rows.append([names.get(name, name), f"{r['settings']['T']:.4f}", pm(r["T_obs"]),
                     pm(r["T_mlp"]), pm(r["abs_m"]), pm(r["delta_sigma"]),
                     pm(r["delta_epsilon"])])
    lines += md_table(["Monte Carlo", "T", "T (observables)", "T (classifier)", "⟨|m|⟩",
                        "Δσ", "Δε"], rows)
    lines.append(f"Exact 2D Ising: Δσ = {DELTA_SIGMA_EXACT}, Δε = {DELTA_EPSILON_EXACT} "
                 "(finite L and a short fit window shift the fitted values, hence the Monte "
                 "Carlo reference at Tc).")
    lines.append("")
    silent = {key: flow_silence(results, key) for key in ("T_obs", "T_mlp")}
    for key, name in (("T_obs", "observable-matching"), ("T_mlp", "classifier")):
        if silent[key]:
            lines += [f"**The {name} thermometer is silent** (its readings are shown, but no "
                      "verdict is drawn from them): " + "; ".join(silent[key]) + ".", ""]
    for rb in e3["rbms"].values():
        lines.append(f"### RBM {s['L'] ** 2} → {rb['settings']['n_hidden']} trained on "
                     f"{rb['settings']['description']}")
        lines.append("")
        rows = []
        for start, st in rb["starts"].items():
            rows.append([start, pm(st["T_obs"]["step0"]), pm(st["T_obs"]["step1"]),
                         pm(st["T_obs"]["final"]), pm(st["T_mlp"]["step1"]),
                         pm(st["T_mlp"]["final"]), pm(st["abs_m_final"]),
                         pm(st["delta_sigma_final"]), pm(st["delta_epsilon_final"])])
        lines += md_table(["start", "T (observables) n = 0", "n = 1", f"n = {s['steps']}",
                           "T (classifier) n = 1", f"n = {s['steps']}", "⟨|m|⟩ at the end",
                           "Δσ at the end", "Δε at the end"], rows)
        lines.append("As measured:")
        for start, st in rb["starts"].items():
            tw = st["obs_toward_tc"]
            c = st["obs_final_vs_mc_tc"]
            cm = st["mlp_final_vs_mc_tc"]
            t1 = st["obs_toward_tc_after_step1"]
            obs = (f"observable T from v⁰ to step {s['steps']}: **{tw['verdict']}** (distance "
                   f"to the Monte Carlo Tc reading {pm(tw.get('distance_start'))} → "
                   f"{pm(tw.get('distance_final'))}); from step 1 on: {t1['verdict']}; final "
                   f"T vs the Tc reading: {c['verdict']} (z = {zs(c)})")
            mlp = (f"classifier: {st['mlp_toward_tc']['verdict']}, final vs its Tc reading "
                   f"{cm['verdict']} (z = {zs(cm)})")
            said = [x for x, key in ((obs, "T_obs"), (mlp, "T_mlp")) if not silent[key]]
            if said:
                lines.append(f"- from {start}: " + "; ".join(said) + ".")
        for key, name, reading in (("common_endpoint_obs", "observable", "T_obs"),
                                   ("common_endpoint_mlp", "classifier", "T_mlp")):
            ce = rb[key]
            if silent[reading]:
                continue
            if ce["verdict"] == "undetermined":
                lines.append(f"- endpoints ({name} T): undetermined.")
            else:
                lines.append(f"- endpoints ({name} T) of the three starts: **{ce['verdict']}** "
                             f"(largest pairwise |z| = {ce['max_pairwise_z']:.1f}; weighted "
                             f"mean {pm(ce['weighted_mean'])}).")
        for start, st in rb["starts"].items():
            if silent["T_obs"]:
                break
            sta, ag = st["obs_stationary"], st["obs_energy_vs_abs_m_final"]
            lines.append(f"- from {start}: observable T at step {s['steps']} vs step "
                         f"{max(1, s['steps'] // 2)}: {sta['verdict']} (z = {zs(sta)}); at "
                         f"the last step T from E/N vs T from ⟨|m|⟩: {ag['verdict']} "
                         f"(z = {zs(ag)}).")
        for start, st in rb["starts"].items():
            ds, de = st["delta_sigma_vs_mc_tc"], st["delta_epsilon_vs_mc_tc"]
            dm = st["abs_m_vs_mc_at_T_mlp"]
            m_vs_mc = ("" if silent["T_mlp"] else f"; ⟨|m|⟩ vs Monte Carlo ⟨|m|⟩ at the "
                       f"classifier's T: {dm['verdict']} (z = {zs(dm)})")
            lines.append(f"- from {start}, final step: Δσ vs Monte Carlo at Tc {ds['verdict']} "
                         f"(z = {zs(ds)}), Δε vs Monte Carlo at Tc {de['verdict']} "
                         f"(z = {zs(de)}){m_vs_mc}.")
        lines.append("")
    return lines


def figures(p) -> list:
    """(file name, caption, draw) of this experiment's figures."""
    return [
        ("rbm_flow_temperature.png",
         f"The RBM flow on L = {p.flow_L}: the temperature of the configurations vⁿ against "
         "the flow step n, for each RBM training set (columns), from Monte Carlo at low T, "
         "at high T and from random spins (colours), read by observable matching (top) and "
         "the classifier (bottom). Grey band: the same thermometer's reading of Monte Carlo "
         "configurations at Tc (± error); dotted: Tc. Open markers: readings at the end of "
         "the thermometer's range (bounds).", _figure_temperature),
        ("rbm_flow_scaling.png",
         f"Scaling dimensions along the RBM flow (L = {p.flow_L}, power-law fits over "
         f"{p.fit_r_min:g} ≤ r < L/2): Δσ (top) and Δε (bottom) of the configurations vⁿ "
         "against the flow step, per training set and start. Grey band: the same fit on "
         "Monte Carlo configurations at Tc (± error); dotted: the exact 2D Ising values "
         "1/8 and 1. A missing point is a step where the fit is undefined for some seed (e.g. "
         "no positive G(r) in an ordered state).", _figure_scaling),
    ]


def _flow_names(views) -> dict:
    """{training-set label ("mixed-h81"): the flow's stage name} in plan order."""
    return {st.base.removeprefix("flow-"): st.base
            for st in stages_of_kind(views[0].stages, "flow")}


TRAIN_SET_TITLES = {"mixed": "the whole grid", "tc": "T = Tc only", "high": "T > Tc only",
                    "low": "T < Tc only"}


def _start_labels(p) -> list:
    return [f"start: Monte Carlo at T = {p.flow_start_T[0]:g}",
            f"start: Monte Carlo at T = {p.flow_start_T[1]:g}", "start: random spins"]


def _flow_panel(ax, views, name, key, steps, labels):
    """One training set's flows: each start's mean over seeds bold, each seed faint."""
    from .figures import COLOURS, ensemble_line

    for i, _start in enumerate(FLOW_STARTS):
        vals = np.array([v[name].arrays[key][i] for v in views], dtype=float)
        errs = np.array([v[name].arrays[f"{key}_err"][i] for v in views], dtype=float)
        if key == "T_obs":
            bound = np.array([v[name].arrays["T_obs_bound"][i] != 0 for v in views])
            clipped = np.where(bound, vals, np.nan)
            vals, errs = np.where(bound, np.nan, vals), np.where(bound, np.nan, errs)
            for k, row in enumerate(clipped):
                ax.plot(steps, row, ls="none", marker="o", ms=5, mfc="none", color=COLOURS[i],
                        label="range end (a bound)" if (i, k) == (2, 0) else None)
        ensemble_line(ax, steps, vals, errs, COLOURS[i], labels[i], marker=".")


def _flow_figure(p, results, views, path, rows, title):
    from matplotlib.ticker import MaxNLocator

    from .figures import ensemble_legend_note, reference_band

    groups = _flow_names(views)
    steps = np.arange(p.flow_steps + 1)
    ref = results["experiments"][KEY]["mc_reference"]["tc"]
    fig = new_figure(3.4 * len(groups) + 1.0, 3.2 * len(rows) + 0.6)
    axes = fig.subplots(len(rows), len(groups), squeeze=False, sharex=True)
    for c, (label, name) in enumerate(groups.items()):
        for r, (key, ylabel, exact) in enumerate(rows):
            ax = axes[r, c]
            _flow_panel(ax, views, name, key, steps, _start_labels(p))
            m = ref[key]
            reference_band(ax, m.get("value"), m.get("error"),
                           label="same reading of Monte Carlo at Tc")
            ax.axhline(exact[0], color="k", ls=":", lw=1, label=exact[1])
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            if r == 0:
                train, hidden = label.split("-h")
                ax.set_title(f"RBM {p.flow_L ** 2} → {hidden} trained on "
                             f"{TRAIN_SET_TITLES.get(train, train)}", fontsize=9)
            if r == len(rows) - 1:
                ax.set_xlabel("flow step n")
            if c == 0 and key in ("T_obs", "T_mlp") and flow_silence(results, key):
                ax.set_ylabel(ylabel + "\nSILENT: fails its calibration gates", color="#b00")
            elif c == 0:
                ax.set_ylabel(ylabel)
            if r == 0 and c == 0:
                ax.legend(fontsize=7)
    n_seeds = len(views)
    fig.suptitle(f"{title}, L = {p.flow_L} ({ensemble_legend_note(n_seeds)})", fontsize=11)
    save_png(fig, path)


def _figure_temperature(p, results, views, path):
    _flow_figure(p, results, views, path,
                 [("T_obs", "T by observable matching (J/k_B)", (TC, f"Tc = {TC:.3f}")),
                  ("T_mlp", "T by the classifier (J/k_B)", (TC, f"Tc = {TC:.3f}"))],
                 "Experiment 3: temperature along the RBM flow")


def _figure_scaling(p, results, views, path):
    _flow_figure(p, results, views, path,
                 [("delta_sigma", "Δσ from G_σ(r) ∝ r^(−2Δσ)",
                   (DELTA_SIGMA_EXACT, "exact 2D Ising: 1/8")),
                  ("delta_epsilon", "Δε from G_ε(r) ∝ r^(−2Δε)",
                   (DELTA_EPSILON_EXACT, "exact 2D Ising: 1"))],
                 "Experiment 3: scaling dimensions along the RBM flow")


SHARED_FLOW_ARRAYS = ("rbm_labels", "start_labels", "steps", "temperatures", "r_sigma",
                      "r_epsilon", "mc_T")


def flow_arrays(p: Preset, views) -> dict:
    """flow.npz: every flow's per-step readings, the Monte Carlo curves and Tc reference;
    seed-dependent arrays have a leading seed axis."""
    return stack_seeds([_flow_arrays(p, v) for v in views], SHARED_FLOW_ARRAYS)


def _flow_arrays(p: Preset, outputs) -> dict:
    flows = stages_of_kind(outputs.stages, "flow")
    keys = FLOW_SCALARS + ("hist_mlp", "hist_obs", "G_sigma", "G_sigma_err", "G_epsilon",
                           "G_epsilon_err")
    out = {k: np.stack([outputs[st.name].arrays[k] for st in flows]) for k in keys}
    first = outputs[flows[0].name].arrays
    th = outputs[f"thermometer-L{p.flow_L}"].arrays
    ref = outputs["mcref-flow"].arrays
    out.update({
        "rbm_labels": np.array([st.base.removeprefix("flow-") for st in flows]),
        "start_labels": np.array(FLOW_STARTS),
        "steps": np.arange(p.flow_steps + 1),
        "temperatures": th["ref_temperatures"],
        "r_sigma": first["r_sigma"], "r_epsilon": first["r_epsilon"],
        "mc_T": th["ref_temperatures"], "mc_abs_m": th["ref_m_mean"],
        "mc_abs_m_err": th["ref_m_err"], "mc_energy": th["ref_e_mean"],
        "mc_energy_err": th["ref_e_err"],
    })
    for k in ("T_obs", "T_obs_err", "T_mlp", "T_mlp_err", "delta_sigma", "delta_sigma_err",
              "delta_epsilon", "delta_epsilon_err", "G_sigma", "G_epsilon", "abs_m"):
        out[f"mc_tc_{k}"] = ref[f"tc_{k}"]
    return out


def add_stages(b) -> None:
    p = b.p
    Lf = p.flow_L
    grid_f = b.mc("grid", Lf, p.grid, p.flow_grid_samples,
                  f"Monte Carlo on the {len(p.grid)}-temperature grid, L={Lf}")
    tc_f = b.mc("flowtc", Lf, [TC], p.flow_tc_samples, f"Monte Carlo at Tc, L={Lf}")
    th_f = b.thermometer(Lf)
    fstarts = b.mc("flowstart", Lf, p.flow_start_T, p.flow_chains,
                   f"Monte Carlo flow starts (T={p.flow_start_T[0]:g}, {p.flow_start_T[1]:g}), "
                   f"L={Lf}")
    flow_cost = 3 * (p.flow_steps + 1) * (COST_MEASURE + COST_MEASURE_CONFIG * p.flow_chains
                                          * (Lf * Lf / 100))
    b.add("mcref-flow", "mc_reference", f"thermometer and fit readings of Monte Carlo, L={Lf}",
          {"thermometer": th_f, "tc": tc_f, "starts": fstarts,
           "chains": min(p.flow_chains, p.flow_tc_samples),
           "jackknife_blocks": p.jackknife_blocks, "r_min": p.fit_r_min},
          (th_f, tc_f, fstarts), flow_cost / (p.flow_steps + 1))
    for nh in p.flow_hidden:
        for ts in p.flow_train_sets:
            idx = train_set_indices(p, ts)
            data = tc_f if idx is None else grid_f
            r = b.rbm(f"rbm-flow-{ts}-h{nh}", data, Lf * Lf, nh, p.flow_rbm_steps, idx,
                      f"RBM {Lf * Lf} -> {nh} on {ts} data")
            name = f"flow-{ts}-h{nh}"
            b.add(name, "flow", f"RBM flow {Lf * Lf} -> {nh} ({ts})",
                  {"rbm": r, "thermometer": th_f, "starts": fstarts, "chains": p.flow_chains,
                   "steps": p.flow_steps, "jackknife_blocks": p.jackknife_blocks,
                   "r_min": p.fit_r_min, "units": p.rbm_units, "seed": b.seed(name)},
                  (r, th_f, fstarts), flow_cost)
