"""Experiment 5: locally connected ("short-sighted") RBMs beside global RBMs and RG. At
T = corr_T on L = local_L, RBMs with receptive fields R in local_fields and the global RBM
are each trained with local_seeds seeds on the same configurations; their <v h> maps' locality
numbers are ensembles over seeds, next to RG's. Also: an RBM with a local field trained on
the whole temperature grid, flowed on L = local_flow_L and read like experiment 3."""

import math

import numpy as np

from ..exact import TC
from .costs import COST_MEASURE, COST_MEASURE_CONFIG
from .exp1_maps import add_vh
from .figures import COLOURS, ensemble_legend_note, new_figure, point_with_seeds, save_png
from .markdown import md_table, pm, zs
from .verdicts import compare, exact_value, meas

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
    name = "mcref-flow" if L == p.flow_L else f"mcref-flow-L{L}"
    ref = b.add(name, "mc_reference", f"thermometer and fit readings of Monte Carlo, L={L}",
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
    p = b.p
    L, n_v = p.local_L, p.local_L ** 2
    data = b.mc("tc", L, [p.corr_T], p.corr_samples, f"Monte Carlo at T={p.corr_T:.4f}, L={L}")
    for k in range(p.local_seeds):
        for label, R in models(p):
            r = b.rbm(f"rbm-local-{_tag(R)}-L{L}-s{k}", data, n_v, n_v // 4, p.local_steps, None,
                      f"RBM {n_v} -> {n_v // 4} ({label}) on T={p.corr_T:.4f}, seed {k}", R)
            first = k == 0 and R is None  # RG's maps once: the data are the same for all
            add_vh(b, f"vh-local-{_tag(R)}-L{L}-s{k}", data, [r], L, p.corr_samples,
                   f"<v h> maps {'RG vs ' if first else ''}RBM ({label}), L={L}, seed {k}",
                   with_rg=first, max_configs=p.local_vh_configs)
    Lf, R = p.local_flow_L, p.local_flow_R
    grid, th, starts, _ = add_flow_inputs(b, Lf)
    for k in range(p.local_seeds):
        r = b.rbm(f"rbm-localflow-R{R}-L{Lf}-s{k}", grid, Lf * Lf, Lf * Lf // 4,
                  p.flow_rbm_steps, list(range(len(p.grid))),
                  f"RBM {Lf * Lf} -> {Lf * Lf // 4} (R={R}) on the whole grid, seed {k}", R)
        add_flow(b, f"flowlocal-R{R}-L{Lf}-s{k}", r, th, starts, p.fss_flow_chains, Lf)


# ---- results --------------------------------------------------------------------------------
def ensemble(ms: list) -> dict:
    """An ensemble number from per-seed numbers: their mean with the standard error over
    seeds (two or more seeds with values), or the one run's own error; the seeds kept."""
    vals = [m for m in ms if m.get("value") is not None]
    seeds = [{"value": m.get("value"), "error": m.get("error")} for m in ms]
    bounds = {m.get("bound") for m in vals}
    if not vals or len(bounds) > 1:  # no value, or bounds and values mixed: undetermined
        return meas(None, None, seeds=seeds)
    bound = bounds.pop()  # a mean of lower (upper) bounds is a lower (upper) bound
    if len(vals) == 1:
        return meas(vals[0]["value"], vals[0]["error"], bound, seeds=seeds, n_seeds=1)
    v = np.array([m["value"] for m in vals])
    return meas(float(v.mean()), float(v.std(ddof=1) / math.sqrt(v.size)), bound,
                seeds=seeds, n_seeds=len(vals))


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


def _diagnostics(p, outputs, name) -> dict:
    last = outputs[name].meta["history"][-1] if outputs[name].meta["history"] else {}
    return {"reconstruction_error": last.get("reconstruction_error"), "pll": last.get("pll"),
            "free_energy_gap": last.get("free_energy_gap"),
            "samples_per_s": outputs[name].meta.get("samples_per_s")}


def _flow_finals(p, a) -> dict:
    """Per start: the last flow step's readings (T_obs, T_mlp, Δσ, Δε) of one flow stage."""
    from .exp3_rbm_flow import FLOW_STARTS
    from .verdicts import bound_of

    N = p.flow_steps
    out = {}
    for i, start in enumerate(FLOW_STARTS):
        out[start] = {k: meas(a[k][i, N], a[f"{k}_err"][i, N],
                              bound_of(a["T_obs_bound"][i, N]) if k == "T_obs" else None)
                      for k in FLOW_FINALS}
    return out


def results(p, stages, outputs) -> dict:
    from .exp3_rbm_flow import FLOW_STARTS

    L = p.local_L
    per_model = {}
    rg = _level_numbers(outputs[f"vh-local-global-L{L}-s0"].meta["levels"][0], "rg", "rg_")
    for label, R in models(p):
        seeds = []
        for k in range(p.local_seeds):
            level = outputs[f"vh-local-{_tag(R)}-L{L}-s{k}"].meta["levels"][0]
            assigned = _level_numbers(level, "rbm", "rg_" if R is not None else "best_")
            best = _level_numbers(level, "rbm", "best_")
            seeds.append({"assigned": assigned, "best": best,
                          "diagnostics": _diagnostics(p, outputs,
                                                      f"rbm-local-{_tag(R)}-L{L}-s{k}")})
        per_model[label] = {
            "settings": {"receptive_field": R, "weights_per_unit": (
                L * L if R is None else min(2 + 2 * R, L) ** 2),
                "convention": "global: the block holding most of the unit's |map|; local: "
                              "the unit's own block a",
                # monitoring values, one evaluation each: no error bars
                "diagnostics": {key: _mean_of([s["diagnostics"][key] for s in seeds])
                                for key in seeds[0]["diagnostics"]}},
            **{q: ensemble([s["assigned"][q] for s in seeds]) for q in QUANTITIES},
            "best_block_own_fraction": ensemble([s["best"]["own_block_fraction"]
                                                 for s in seeds]),
        }
    glob = per_model["global"]
    uniform = 4 / (L * L)
    for m in per_model.values():
        m["vs_rg"] = {q: compare(m[q], rg[q]) for q in ("own_block_fraction", "peak_to_far")}
        m["vs_global"] = {q: compare(m[q], glob[q]) for q in ("own_block_fraction",
                                                               "peak_to_far")}
        m["peak_to_far_vs_1"] = compare(m["peak_to_far"], exact_value(1.0))
    flow = _flow_results(p, outputs, FLOW_STARTS)
    n_configs = min(p.corr_samples, p.local_vh_configs or p.corr_samples)
    return {"settings": {"L": L, "T": p.corr_T, "n_configs": n_configs,
                         "rbm_steps": p.local_steps, "seeds": p.local_seeds,
                         "uniform_own_block_fraction": uniform},
            "rg": rg, "models": per_model, "flow": flow}


def _mean_of(values):
    vals = [v for v in values if isinstance(v, int | float) and math.isfinite(v)]
    return float(np.mean(vals)) if vals else None


def _flow_results(p, outputs, starts) -> dict:
    Lf, R = p.local_flow_L, p.local_flow_R
    ref_name = "mcref-flow" if Lf == p.flow_L else f"mcref-flow-L{Lf}"
    ref = outputs[ref_name].arrays
    reference = {k: meas(ref[f"tc_{k}"], ref[f"tc_{k}_err"]) for k in FLOW_FINALS}
    per_seed = [_flow_finals(p, outputs[f"flowlocal-R{R}-L{Lf}-s{k}"].arrays)
                for k in range(p.local_seeds)]
    out = {}
    for start in starts:
        finals = {k: ensemble([s[start][k] for s in per_seed]) for k in FLOW_FINALS}
        out[start] = {**finals, "vs_mc_tc": {k: compare(finals[k], reference[k])
                                             for k in FLOW_FINALS}}
    return {"settings": {"L": Lf, "receptive_field": R, "steps": p.flow_steps,
                         "chains": p.fss_flow_chains, "seeds": p.local_seeds,
                         "rbm_steps": p.flow_rbm_steps, "n_hidden": Lf * Lf // 4},
            "mc_tc": reference, "starts": out}


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
    lines += md_table(["model", "reconstruction error", "pseudo-log-likelihood",
                       "free-energy gap", "samples/s"],
                      [[label, *(_fmt(m["settings"]["diagnostics"][k]) for k in (
                          "reconstruction_error", "pll", "free_energy_gap", "samples_per_s"))]
                       for label, m in e5["models"].items()])
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
         "local RBMs, the global RBM), the same two hidden units in every column, seed 0; "
         "shared diverging colour scale; the box marks the unit's block (RG and local RBMs) "
         "or the block holding most of its |map| (global RBM); the dashed outline is the "
         "receptive field.", _figure_maps),
        ("local_locality.png",
         "Locality numbers per model: bold, the ensemble over seeds ± standard error; "
         "faint, each seed; dashed, RG's value.", _figure_locality),
    ]


def _figure_maps(p, results, stages, outputs, path):
    from matplotlib.patches import Rectangle

    from ..correlators import locality

    L = p.local_L
    first = outputs[f"vh-local-global-L{L}-s0"].arrays
    columns = [("RG", None, first["rg_vh_level1"])]
    columns += [(f"RBM {label}", R, outputs[f"vh-local-{_tag(R)}-L{L}-s0"].arrays[
        "rbm_vh_level1"]) for label, R in models(p)]
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


def _figure_locality(p, results, stages, outputs, path):
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
                 f"({ensemble_legend_note(p.local_seeds)})")
    save_png(fig, path)
