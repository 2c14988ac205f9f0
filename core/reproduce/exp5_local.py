"""Experiment 5: locally connected ("short-sighted") RBMs beside global RBMs and RG. At
T = corr_T on L = local_L, RBMs with receptive fields R in local_fields and the global RBM
are trained on the same configurations; their <v h> maps' locality numbers, next to RG's,
are ensembles over the preset's training seeds. Also: an RBM with a local field trained on
the whole temperature grid, flowed on L = local_flow_L and read like experiment 3."""

import math

import numpy as np

from ..exact import TC
from .costs import COST_MEASURE, COST_MEASURE_CONFIG
from .exp1_maps import add_vh
from .figures import COLOURS, ensemble_legend_note, new_figure, point_with_seeds, save_png
from .markdown import md_table, pm, zs
from .verdicts import bound_of, compare, exact_value, meas

KEY = "5_local"
QUANTITIES = {"own_block_fraction": "own-block fraction of Σ|⟨v h⟩|",
              "peak_to_far": "peak-to-far contrast",
              "own_block_mean": "⟨v h⟩ on the own block",
              "far_mean": "⟨v h⟩ far away (d ≥ L/4)"}
FLOW_FINALS = ("T_obs", "T_mlp", "delta_sigma", "delta_epsilon")


def models(p) -> list:
    """(label, receptive field) of each RBM compared: the local ones, then the global one."""
    return [(f"R={R}", R) for R in p.local_fields] + [("global", None)]


def _tag(R) -> str:
    return "global" if R is None else f"R{R}"


def mcref_name(p, L) -> str:
    return "mcref-flow" if L == p.flow_L else f"mcref-flow-L{L}"


def add_flow_inputs(b, L):
    """The Monte Carlo data, thermometers and reference readings an RBM flow at size L
    reads (shared with experiment 3 at L = flow_L): (grid, thermometer, starts, mcref)."""
    p = b.p
    grid = b.mc("grid", L, p.grid, p.flow_grid_samples if L == p.flow_L else p.thermo_samples,
                f"Monte Carlo on the {len(p.grid)}-temperature grid, L={L}")
    th = b.thermometer(L)
    starts = b.mc("flowstart", L, p.flow_start_T, p.flow_chains,
                  f"Monte Carlo flow starts (T={p.flow_start_T[0]:g}, {p.flow_start_T[1]:g}), "
                  f"L={L}")
    tc = b.mc("flowtc", L, [TC], p.flow_tc_samples, f"Monte Carlo at Tc, L={L}")
    ref = b.add(mcref_name(p, L), "mc_reference",
                f"thermometer and fit readings of Monte Carlo, L={L}",
                {"thermometer": th, "tc": tc, "starts": starts,
                 "chains": min(p.flow_chains, p.flow_tc_samples),
                 "jackknife_blocks": p.jackknife_blocks, "r_min": p.fit_r_min},
                (th, tc, starts), 3.0 * L * L / 100)
    return grid, th, starts, ref


def add_flow(b, name, rbm, th, starts, chains, L) -> str:
    p = b.p
    return b.add(name, "flow_other", f"RBM flow at L={L} ({name})",
                 {"rbm": rbm, "thermometer": th, "starts": starts, "chains": chains,
                  "steps": p.flow_steps, "jackknife_blocks": p.jackknife_blocks,
                  "r_min": p.fit_r_min, "units": p.rbm_units, "seed": b.seed(name)},
                 (rbm, th, starts),
                 3 * (p.flow_steps + 1) * (COST_MEASURE + COST_MEASURE_CONFIG * chains * L * L
                                           / 100))


def add_stages(b) -> None:
    """Seed k's stages (the plan builder names them per seed)."""
    p = b.p
    L, n_v = p.local_L, p.local_L ** 2
    data = b.mc("tc", L, [p.corr_T], p.corr_samples, f"Monte Carlo at T={p.corr_T:.4f}, L={L}")
    for label, R in models(p):
        r = b.rbm(f"rbm-local-{_tag(R)}-L{L}", data, n_v, n_v // 4, p.local_steps, None,
                  f"RBM {n_v} -> {n_v // 4} ({label}) on T={p.corr_T:.4f}", R)
        with_rg = R is None  # RG's maps once per dataset: in the global RBM's stage
        add_vh(b, f"vh-local-{_tag(R)}-L{L}", data, [r], L, p.corr_samples,
               f"<v h> maps {'RG vs ' if with_rg else ''}RBM ({label}), L={L}",
               with_rg=with_rg, max_configs=p.local_vh_configs)
    Lf, R = p.local_flow_L, p.local_flow_R
    grid, th, starts, _ = add_flow_inputs(b, Lf)
    r = b.rbm(f"rbm-localflow-R{R}-L{Lf}", grid, Lf * Lf, Lf * Lf // 4, p.flow_rbm_steps,
              list(range(len(p.grid))),
              f"RBM {Lf * Lf} -> {Lf * Lf // 4} (R={R}) on the whole grid", R)
    add_flow(b, f"flowlocal-R{R}-L{Lf}", r, th, starts, p.fss_flow_chains, Lf)


# ---- results --------------------------------------------------------------------------------
def _level_numbers(level: dict, side: str, convention: str) -> dict:
    """One side's locality numbers ("rg_": the unit's assigned block a; "best_": the block
    holding most of its |map|), errors as experiment 1's (jackknife ⊕ spread / √units)."""
    nums, errs = level[side]["numbers"], level[side]["jackknife_errors"]
    n_units = level["n_hidden"]
    out = {}
    for q in QUANTITIES:
        key = f"{convention}{q}"
        v, jk, sp = nums.get(key), errs.get(key), nums.get(f"spread_{key}")
        if v is None or jk is None:
            out[q] = meas(None, None)
            continue
        out[q] = meas(v, math.hypot(jk, (sp or 0.0) / math.sqrt(n_units)))
    return out


def flow_finals(p, a) -> dict:
    """Per start: the last flow step's readings (T_obs, T_mlp, Δσ, Δε) of one flow stage."""
    from .exp3_rbm_flow import FLOW_STARTS

    N = p.flow_steps
    return {start: {k: meas(a[k][i, N], a[f"{k}_err"][i, N],
                            bound_of(a["T_obs_bound"][i, N]) if k == "T_obs" else None)
                    for k in FLOW_FINALS}
            for i, start in enumerate(FLOW_STARTS)}


def measure(p, view) -> dict:
    """Seed k's numbers: RG's and each model's locality numbers, the local flow's last step."""
    L = p.local_L
    rg = _level_numbers(view[f"vh-local-global-L{L}"].meta["levels"][0], "rg", "rg_")
    per_model = {}
    for label, R in models(p):
        level = view[f"vh-local-{_tag(R)}-L{L}"].meta["levels"][0]
        per_model[label] = {
            "settings": {"receptive_field": R,
                         "weights_per_unit": L * L if R is None else min(2 + 2 * R, L) ** 2,
                         "rbm_stage": f"rbm-local-{_tag(R)}-L{L}",
                         "convention": "global: the block holding most of the unit's |map|; "
                                       "local: the unit's own block a"},
            **_level_numbers(level, "rbm", "rg_" if R is not None else "best_"),
            "best_block_own_fraction": _level_numbers(level, "rbm", "best_")[
                "own_block_fraction"],
        }
    Lf, R = p.local_flow_L, p.local_flow_R
    ref = view[mcref_name(p, Lf)].arrays
    flow = {"mc_tc": {k: meas(ref[f"tc_{k}"], ref[f"tc_{k}_err"]) for k in FLOW_FINALS},
            "starts": flow_finals(p, view[f"flowlocal-R{R}-L{Lf}"].arrays)}
    return {"rg": rg, "models": per_model, "flow": flow}


def results(p, measured: dict) -> dict:
    """The ensembles of `measure` with the comparisons drawn from them."""
    L = p.local_L
    per_model, rg = measured["models"], measured["rg"]
    glob = per_model["global"]
    for m in per_model.values():
        m["vs_rg"] = {q: compare(m[q], rg[q]) for q in ("own_block_fraction", "peak_to_far")}
        m["vs_global"] = {q: compare(m[q], glob[q]) for q in ("own_block_fraction",
                                                               "peak_to_far")}
        m["peak_to_far_vs_1"] = compare(m["peak_to_far"], exact_value(1.0))
    flow = measured["flow"]
    for r in flow["starts"].values():
        r["vs_mc_tc"] = {k: compare(r[k], flow["mc_tc"][k]) for k in FLOW_FINALS}
    flow["settings"] = {"L": p.local_flow_L, "receptive_field": p.local_flow_R,
                        "steps": p.flow_steps, "chains": p.fss_flow_chains, "seeds": p.seeds,
                        "rbm_steps": p.flow_rbm_steps, "n_hidden": p.local_flow_L ** 2 // 4}
    n_configs = min(p.corr_samples, p.local_vh_configs or p.corr_samples)
    return {"settings": {"L": L, "T": p.corr_T, "n_configs": n_configs,
                         "rbm_steps": p.local_steps, "seeds": p.seeds,
                         "uniform_own_block_fraction": 4 / (L * L)},
            "rg": rg, "models": per_model, "flow": flow}


def _diagnostics(results: dict, stage: str) -> dict:
    """An RBM stage's last monitoring values, mean over seeds (no error bars)."""
    diag = results.get("diagnostics", {}).get("rbm_training", {}).get(stage, {})
    return {k: _mean_of(diag.get(k, [])) for k in ("reconstruction_error", "pll",
                                                   "free_energy_gap")}


def _mean_of(values):
    vals = [v for v in values if isinstance(v, int | float) and math.isfinite(v)]
    return float(np.mean(vals)) if vals else None


# ---- report ---------------------------------------------------------------------------------
def report_section(p, e5: dict, results: dict) -> list:
    s = e5["settings"]
    n_v = s["L"] ** 2
    lines = ["## Experiment 5: locally connected RBMs beside global RBMs and RG", "",
             f"{n_v} → {n_v // 4} at T = {s['T']:.4f}, {s['n_configs']} configurations, "
             f"{s['rbm_steps']} updates per RBM. A local RBM's hidden unit a sees only the "
             "sites within periodic Chebyshev distance R of its 2×2 block a (rgflow.core."
             "rbm_local); its numbers are measured on that block. The global RBM's units have "
             "no block: they are measured on the block holding most of their |map| (as in "
             f"experiment 1). Every RBM number is an ensemble over {s['seeds']} training "
             "seed(s) (mean ± standard error over seeds; one seed: that run's own error). "
             f"A uniform map puts {s['uniform_own_block_fraction']:.4g} of its weight on a "
             "block.", ""]
    rows = [["RG (block average)", "—", *(pm(e5["rg"][q]) for q in QUANTITIES), "—"]]
    for label, m in e5["models"].items():
        rows.append([f"RBM {label}", m["settings"]["weights_per_unit"],
                     *(pm(m[q]) for q in QUANTITIES),
                     f"{m['vs_rg']['own_block_fraction']['verdict']} "
                     f"({zs(m['vs_rg']['own_block_fraction'])})"])
    lines += md_table(["model", "weights per unit", *QUANTITIES.values(),
                       "own-block fraction vs RG"], rows)
    lines.append("As measured:")
    for label, m in e5["models"].items():
        if label == "global":
            continue
        c = m["vs_global"]["own_block_fraction"]
        lines.append(f"- {label}: own-block fraction {pm(m['own_block_fraction'])} against "
                     f"the global RBM's {pm(e5['models']['global']['own_block_fraction'])} "
                     f"({c['verdict']}, z = {zs(c)}); peak-to-far contrast "
                     f"{pm(m['peak_to_far'])} ({m['peak_to_far_vs_1']['verdict']} than 1, "
                     f"z = {zs(m['peak_to_far_vs_1'])}).")
    lines += ["", "Training diagnostics (last monitoring point, mean over seeds; one "
              "evaluation on 256 configurations each, no error bar):", ""]
    diags = {label: _diagnostics(results, m["settings"]["rbm_stage"])
             for label, m in e5["models"].items()}
    lines += md_table(["model", "reconstruction error", "pseudo-log-likelihood",
                       "free-energy gap"],
                      [[label, *(_fmt(d[k]) for k in ("reconstruction_error", "pll",
                                                       "free_energy_gap"))]
                       for label, d in diags.items()])
    f = e5["flow"]
    fs = f["settings"]
    lines += [f"### Flow of a local RBM trained on the whole grid (L = {fs['L']}, R = "
              f"{fs['receptive_field']}, {fs['L'] ** 2} → {fs['n_hidden']})", "",
              f"{fs['rbm_steps']} updates per seed, {fs['seeds']} seed(s); {fs['chains']} "
              f"chains per start, {fs['steps']} flow steps; read as in experiment 3. Last "
              "step against Monte Carlo at Tc (same L, same instruments):", ""]
    rows = [["Monte Carlo at Tc", *(pm(f["mc_tc"][k]) for k in FLOW_FINALS), "—"]]
    for start, r in f["starts"].items():
        c = r["vs_mc_tc"]["T_obs"]
        rows.append([f"flow from {start}", *(pm(r[k]) for k in FLOW_FINALS),
                     f"{c['verdict']} ({zs(c)})"])
    lines += md_table(["", "T (observables)", "T (classifier)", "Δσ", "Δε",
                       "T (observables) vs Monte Carlo at Tc"], rows)
    return lines


def _fmt(x):
    return "—" if x is None else f"{x:.4g}"


# ---- figures --------------------------------------------------------------------------------
def figures(p) -> list:
    return [
        ("local_vh_maps.png",
         f"⟨v_i h_a⟩ maps at T = {p.corr_T:.4f}, L = {p.local_L}: one column per model (RG, "
         "local RBMs, the global RBM), the same two hidden units in every column, one seed; "
         "shared diverging colour scale; the box marks the unit's block (RG and local RBMs) "
         "or the block holding most of its |map| (global RBM); the dashed outline is the "
         "receptive field.", _figure_maps),
        ("local_locality.png",
         "Locality numbers per model: bold, the ensemble over seeds ± standard error; "
         "faint, each seed; dashed, RG's value.", _figure_locality),
    ]


def _figure_maps(p, results, views, path):
    from matplotlib.patches import Rectangle

    from ..correlators import locality

    L = p.local_L
    view = views[0]  # one seed's maps
    first = view[f"vh-local-global-L{L}"].arrays
    columns = [("RG", None, first["rg_vh_level1"])]
    columns += [(f"RBM {label}", R, view[f"vh-local-{_tag(R)}-L{L}"].arrays["rbm_vh_level1"])
                for label, R in models(p)]
    half = L // 2
    units = [half * (half // 4) + half // 4, half * (3 * half // 4) + 3 * half // 4]
    vmax = max(float(np.abs(m[units]).max()) for _, _, m in columns) or 1.0
    fig = new_figure(2.4 * len(columns) + 1, 2.4 * len(units) + 0.8)
    axes = fig.subplots(len(units), len(columns), squeeze=False)
    for j, (name, R, maps) in enumerate(columns):
        best = locality(maps[units], 2)["best_block"]
        for i, u in enumerate(units):
            ax = axes[i, j]
            im = ax.imshow(maps[u], cmap="RdBu_r", vmin=-vmax, vmax=vmax,
                           interpolation="nearest")
            block = best[i] if name == "RBM global" else u
            K, J = divmod(int(block), half)
            ax.add_patch(Rectangle((2 * J - 0.5, 2 * K - 0.5), 2, 2, fill=False, lw=2,
                                   ec="#ffbf00"))
            if R is not None:  # the field (drawn unwrapped; it wraps at the edges)
                ax.add_patch(Rectangle((2 * J - R - 0.5, 2 * K - R - 0.5), 2 + 2 * R,
                                       2 + 2 * R, fill=False, lw=1, ls="--", ec="0.2"))
            ax.set_title(f"{name}, unit {u}", fontsize=9)
            ax.set_xticks([0, L - 1])
            ax.set_yticks([0, L - 1])
    cb = fig.colorbar(im, ax=axes, shrink=0.85)
    cb.set_label("⟨v_i h_a⟩ (not connected)")
    fig.suptitle(f"⟨v h⟩ maps, L = {L}, T = {p.corr_T:.4f}: RG, local RBMs, global RBM")
    save_png(fig, path)


def _figure_locality(p, results, views, path):
    e5 = results["experiments"][KEY]
    labels = list(e5["models"])
    fig = new_figure(4 * len(QUANTITIES), 3.8)
    axes = fig.subplots(1, len(QUANTITIES))
    for ax, (q, title) in zip(axes, QUANTITIES.items(), strict=True):
        for x, label in enumerate(labels):
            point_with_seeds(ax, x, e5["models"][label][q], COLOURS[x % len(COLOURS)], label)
        rg = e5["rg"][q]
        if rg.get("value") is not None:
            ax.axhline(rg["value"], color="0.3", ls="--", lw=1, label="RG")
        ax.set_xticks(range(len(labels)))
        ax.set_xticklabels(labels)
        ax.set_ylabel(title + " (dimensionless)", fontsize=9)
        ax.legend(fontsize=7)
    fig.suptitle(f"Locality of ⟨v h⟩ maps by receptive field, L = {p.local_L} "
                 f"({ensemble_legend_note(p.seeds)})")
    save_png(fig, path)
