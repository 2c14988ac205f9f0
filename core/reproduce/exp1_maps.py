"""Experiment 1: <v h> maps of RG (block averages) and of a trained RBM at T = corr_T, and
their locality numbers with jackknife errors. The "vh" stage kind serves experiment 4 too."""

import math

import numpy as np

from ..correlators import jackknife_blocks, jackknife_error
from .costs import COST_VH_MAC
from .ensemble import stack_seeds
from .figures import new_figure, save_png
from .kinds import load_rbm_arrays
from .markdown import md_table, pm, verdict_words, zs
from .presets import Preset
from .stage import StageContext
from .verdicts import compare, exact_value, meas

KEY = "1_correlators"


def add_vh(b, name, data, rbms, L, n, title, with_rg=True, max_configs=None) -> str:
    """A "vh" stage: RG levels vs the RBM stack `rbms` on the configurations `data`
    (with_rg=False: the RBM side only, when another stage has RG's maps of the same data;
    max_configs: only the first so many configurations)."""
    p = b.p
    cost = sum(3 * n * L * L * (L * L // 4 ** k) * COST_VH_MAC
               for k in range(1, len(rbms) + 1)) * (2 if with_rg else 1) + 2.0 * len(rbms)
    settings = {"data": data, "rbms": list(rbms), "units": p.rbm_units,
                "jackknife_blocks": p.jackknife_blocks}
    if not with_rg:  # absent otherwise: existing stages keep their keys
        settings["with_rg"] = False
    if max_configs is not None:
        settings["max_configs"] = int(max_configs)
        n = min(n, max_configs)
    return b.add(name, "vh", title, settings, (data, *rbms), cost)


def add_stages(b) -> None:
    p = b.p
    for L in p.corr_sizes:
        d = b.mc("tc", L, [p.corr_T], p.corr_samples, f"Monte Carlo at T={p.corr_T:.4f}, L={L}")
        n_v = L * L
        r = b.rbm(f"rbm-L{L}-h{n_v // 4}", d, n_v, n_v // 4, p.rbm_steps, None,
                  f"RBM {n_v} -> {n_v // 4} on T={p.corr_T:.4f}")
        add_vh(b, f"vh-L{L}", d, [r], L, p.corr_samples, f"<v h> maps RG vs RBM, L={L}")


def _locality_numbers(maps, b: int) -> dict:
    """Scalar locality numbers of a map set: means over units (finite values) and the spread
    (standard deviation over units) of the own-block fractions."""
    from ..correlators import locality

    loc = locality(maps, b)
    n_blocks = (maps.shape[1] // b) ** 2

    def finite(x):
        x = np.asarray(x, dtype=float)
        return x[np.isfinite(x)]

    def mean(x):
        x = finite(x)
        return float(x.mean()) if x.size else float("nan")

    def spread(x):
        x = finite(x)
        return float(x.std(ddof=1)) if x.size > 1 else 0.0

    out = {
        "best_own_block_mean": mean(loc["best_own_block_mean"]),
        "best_far_mean": mean(loc["best_far_mean"]),
        "spread_best_own_block_mean": spread(loc["best_own_block_mean"]),
        "spread_best_far_mean": spread(loc["best_far_mean"]),
        "best_own_block_fraction": mean(loc["best_own_block_fraction"]),
        "best_peak_to_far": mean(loc["best_peak_to_far"]),
        "best_block_unique_fraction": float(loc["best_block_unique"].mean()),
        "blocks_claimed_fraction": float(np.unique(loc["best_block"]).size / n_blocks),
        "spread_best_own_block_fraction": spread(loc["best_own_block_fraction"]),
        "spread_best_peak_to_far": spread(loc["best_peak_to_far"]),
    }
    if "rg_own_block_fraction" in loc:
        out["rg_own_block_fraction"] = mean(loc["rg_own_block_fraction"])
        out["rg_peak_to_far"] = mean(loc["rg_peak_to_far"])
        out["spread_rg_own_block_fraction"] = spread(loc["rg_own_block_fraction"])
        out["spread_rg_peak_to_far"] = spread(loc["rg_peak_to_far"])
        for key in ("own_block_mean", "far_mean"):
            out[f"rg_{key}"] = mean(loc[f"rg_{key}"])
            out[f"spread_rg_{key}"] = spread(loc[f"rg_{key}"])
    return out


def _vh_with_jackknife(v, h_of, n_blocks: int, ctx, label, step0, steps_total):
    """<v h> maps (n_hidden, L, L) of configurations v (n, L, L) with hidden values h_of(chunk)
    and the leave-one-block-out maps, yielded one at a time (bounded memory)."""
    from ..correlators import vh_correlator

    n, L, _ = v.shape
    blocks = jackknife_blocks(n, n_blocks)
    sums = []
    for i, blk in enumerate(blocks):
        ctx.check_stop()
        sums.append(vh_correlator(v[blk], h_of(v[blk])) * len(blk))
        ctx.progress(step0 + i + 1, steps_total)
    total = np.sum(sums, axis=0)
    full = total / n
    loo = ((total - s) / (n - len(blk)) for s, blk in zip(sums, blocks, strict=True))
    return full, loo


def _run_vh(ctx: StageContext):
    """<v h> maps of RG (block averages, iterated) and of an RBM stack (hidden means,
    propagated) for levels 1..K, with locality numbers and their jackknife errors."""
    from ..correlators import locality_summary
    from ..rbm import hidden_mean, spins_to_visible
    from ..rg import block_average

    s = ctx.settings
    v = ctx.inputs[s["data"]].arrays["spins"][0][:s.get("max_configs")]
    n, L, _ = v.shape
    rbms = [load_rbm_arrays(ctx.inputs[name].arrays, s["units"]) for name in s["rbms"]]
    levels = len(rbms)
    nb = s["jackknife_blocks"]
    total_steps = 2 * nb * levels
    arrays, meta = {}, {"levels": []}
    for k in range(1, levels + 1):
        b = 2 ** k

        def h_rg(x, k=k):
            h = x.astype(np.float32)
            for _ in range(k):
                h = block_average(h, 2)
            return h.reshape(h.shape[0], -1)

        def h_rbm(x, k=k):
            h = spins_to_visible(x, rbms[0].units, rbms[0].dtype)
            for r in rbms[:k]:
                h = hidden_mean(r, h)
            return h

        level = {"level": k, "b": b, "L": L, "n_hidden": (L // b) ** 2, "n_configs": n}
        sides = (("rg", h_rg), ("rbm", h_rbm)) if s.get("with_rg", True) else (("rbm", h_rbm),)
        for side, h_of in sides:
            step0 = (2 * (k - 1) + (side == "rbm")) * nb
            full, loo = _vh_with_jackknife(v, h_of, nb, ctx, side, step0, total_steps)
            numbers = _locality_numbers(full, b)
            jk = [_locality_numbers(m, b) for m in loo]
            errors = {key: float(jackknife_error([j[key] for j in jk]))
                      for key in numbers if "spread" not in key}
            level[side] = {"numbers": numbers, "jackknife_errors": errors,
                           "summary": locality_summary(full, b)}
            arrays[f"{side}_vh_level{k}"] = full
        meta["levels"].append(level)
    return arrays, meta


def level_measurements(level: dict) -> dict:
    """RG and RBM locality numbers of one level of a vh stage (one seed)."""
    n_units = level["n_hidden"]
    b, L = level["b"], level["L"]

    def get(side, key, spread_key=None):
        nums, errs = level[side]["numbers"], level[side]["jackknife_errors"]
        v, jk = nums.get(key), errs.get(key)
        sp = nums.get(spread_key) if spread_key else None
        if v is None or jk is None:
            return meas(None, None)
        err = math.hypot(jk, sp / math.sqrt(n_units)) if sp is not None else jk
        return meas(v, err, jackknife_error=jk, spread_over_units=sp)

    return {
        "settings": {"L": L, "b": b, "n_hidden": n_units, "n_configs": level["n_configs"],
                     "level": level["level"], "uniform_own_block_fraction": b * b / (L * L),
                     "rg_convention": "RG unit a vs its own block a",
                     "rbm_convention": "RBM unit vs the block holding most of its |map| "
                                       "(RBM hidden units have no assigned block)"},
        "rg": {
            "own_block_fraction": get("rg", "rg_own_block_fraction",
                                      "spread_rg_own_block_fraction"),
            "peak_to_far": get("rg", "rg_peak_to_far", "spread_rg_peak_to_far"),
            "best_block_unique_fraction": get("rg", "best_block_unique_fraction"),
            "blocks_claimed_fraction": get("rg", "blocks_claimed_fraction"),
            "own_block_mean": get("rg", "rg_own_block_mean", "spread_rg_own_block_mean"),
            "far_mean": get("rg", "rg_far_mean", "spread_rg_far_mean"),
        },
        "rbm": {
            "own_block_fraction": get("rbm", "best_own_block_fraction",
                                      "spread_best_own_block_fraction"),
            "peak_to_far": get("rbm", "best_peak_to_far", "spread_best_peak_to_far"),
            "best_block_unique_fraction": get("rbm", "best_block_unique_fraction"),
            "blocks_claimed_fraction": get("rbm", "blocks_claimed_fraction"),
            "own_block_mean": get("rbm", "best_own_block_mean", "spread_best_own_block_mean"),
            "far_mean": get("rbm", "best_far_mean", "spread_best_far_mean"),
        },
    }


def level_results(m: dict) -> dict:
    """A level's measured numbers (ensembles over seeds) with the RBM-vs-RG verdicts."""
    rg, rbm = m["rg"], m["rbm"]
    uniform = m["settings"]["uniform_own_block_fraction"]
    return dict(m) | {
        "comparison": {k: compare(rbm[k], rg[k]) for k in rg},
        "rbm_vs_uniform_own_block_fraction": compare(rbm["own_block_fraction"],
                                                     exact_value(uniform)),
    }


def measure(p, view) -> dict:
    """Seed k's locality numbers, per lattice size."""
    out = {}
    for L in p.corr_sizes:
        meta = view[f"vh-L{L}"].meta
        m = level_measurements(meta["levels"][0])
        m["settings"].update({"T": p.corr_T, "rbm_steps": p.rbm_steps,
                              "rbm_stage": view.base_of(meta["settings"]["rbms"][0])})
        out[f"L{L}"] = m
    return out


def results(p, measured: dict) -> dict:
    return {key: level_results(m) for key, m in measured.items()}


def report_level(r: dict, title: str, diagnostics: dict | None = None) -> list:
    """Markdown of one level's RG vs RBM locality numbers and verdicts."""
    s = r["settings"]
    rows = []
    names = {"own_block_fraction": "own-block fraction of |⟨v h⟩|",
             "peak_to_far": "peak-to-far contrast",
             "best_block_unique_fraction": "units whose best block is unique",
             "blocks_claimed_fraction": "fraction of blocks claimed by some unit"}
    for k, label in names.items():
        c = r["comparison"][k]
        rows.append([label, pm(r["rg"][k]), pm(r["rbm"][k]), pm(c["difference"]), zs(c),
                     c["verdict"]])
    lines = [f"### {title}", ""]
    lines += md_table(["quantity", "RG (block average)", "RBM (E[h|v])", "RBM − RG", "z",
                        "verdict"], rows)
    own = r["comparison"]["own_block_fraction"]
    uni = r["rbm_vs_uniform_own_block_fraction"]
    b = s["b"]
    lines.append("As measured:")
    lines.append("- " + verdict_words(
        own,
        f"The RBM's units concentrate MORE of their |⟨v h⟩| on one {b}×{b} block than RG's "
        f"units do on their own block",
        f"The RBM's units concentrate LESS of their |⟨v h⟩| on one {b}×{b} block than RG's "
        f"units do on their own block",
        f"RBM and RG put the same share of |⟨v h⟩| on one {b}×{b} block, within errors")
        + f": {pm(r['rbm']['own_block_fraction'])} vs {pm(r['rg']['own_block_fraction'])} "
        f"(z = {zs(own)}).")
    lines.append("- " + verdict_words(
        uni, "The RBM maps are more local than a uniform map",
        "The RBM maps are less concentrated than a uniform map",
        "The RBM maps are no more local than a uniform map, within errors")
        + f" (uniform: {s['uniform_own_block_fraction']:.4g}; z = {zs(uni)}).")
    pf = r["comparison"]["peak_to_far"]
    lines.append("- Peak-to-far contrast: " + verdict_words(
        pf, "higher for the RBM than for RG", "lower for the RBM than for RG",
        "RBM and RG agree within errors") + f" (z = {zs(pf)}).")
    lines.append(f"- {pm(r['rbm']['best_block_unique_fraction'])} of the RBM's "
                 f"{s['n_hidden']} units have a best block that no other unit shares, and "
                 f"{pm(r['rbm']['blocks_claimed_fraction'])} of the blocks are some unit's "
                 "best block (RG: 1 and 1 by construction).")
    diag = (diagnostics or {}).get(r["settings"].get("rbm_stage"))
    if diag:
        lines.append("- Training diagnostics at the last monitoring point (one evaluation on "
                     "256 configurations, no error bar; one value per seed): " + ", ".join(
                         f"{k} " + " / ".join(f"{v:.4g}" if isinstance(v, float) else str(v)
                                              for v in values)
                         for k, values in diag.items()) + ".")
    return lines + [""]


def figures(p) -> list:
    """(file name, caption, draw) of this experiment's figures."""
    L = p.corr_sizes[0]
    return [
        ("vh_maps.png",
         f"⟨v_i h_a⟩ maps at T = {p.corr_T:.4f}, L = {L} ({L * L} → {L * L // 4}): RG (block "
         "average, top) beside the trained RBM (E[h|v], bottom) for the same four hidden "
         "units, on one shared diverging colour scale; the box marks the unit's own 2×2 block "
         "(RG) or the block holding most of its |map| (RBM). One seed's maps.", _figure_maps),
        ("locality.png",
         "Locality numbers, RG against the RBM: the share of Σ|⟨v h⟩| on the unit's block, "
         "the peak-to-far contrast, and the signed ⟨v h⟩ on the own block and far away "
         "(d ≥ L/4), with the radial profile of |⟨v h⟩|. Dashed lines: a uniform map.",
         _figure_locality),
    ]


def _block_box(ax, a: int, L: int, b: int, colour="#ffbf00"):
    from matplotlib.patches import Rectangle

    K, J = divmod(int(a), L // b)
    ax.add_patch(Rectangle((J * b - 0.5, K * b - 0.5), b, b, fill=False, lw=1.2, ec=colour))


def _figure_maps(p, results, views, path):
    from ..correlators import locality

    outputs = views[0]  # one seed's maps
    L = p.corr_sizes[0]
    a = outputs[f"vh-L{L}"].arrays
    maps = {"RG": a["rg_vh_level1"], "RBM": a["rbm_vh_level1"]}
    n_h = maps["RG"].shape[0]
    m = L // 2
    units = [m * (m // 4) + m // 4, m * (m // 4) + 3 * m // 4, m * (3 * m // 4) + m // 4,
             m * (3 * m // 4) + 3 * m // 4]
    units = [u for u in units if u < n_h] or [0]
    vmax = max(float(np.abs(x[units]).max()) for x in maps.values()) or 1.0
    fig = new_figure(2.3 * len(units) + 1.2, 5.2)
    axes = fig.subplots(2, len(units), squeeze=False)
    for row, (name, mp) in enumerate(maps.items()):
        best = locality(mp[units], 2)["best_block"]
        for j, u in enumerate(units):
            ax = axes[row, j]
            im = ax.imshow(mp[u], cmap="RdBu_r", vmin=-vmax, vmax=vmax,
                           interpolation="nearest")
            _block_box(ax, u if name == "RG" else best[j], L, 2)
            ax.set_title(f"{name}, hidden unit {u}", fontsize=9)
            ax.set_xticks([0, L // 2, L - 1])
            ax.set_yticks([0, L // 2, L - 1])
            if row == 1:
                ax.set_xlabel("site column c")
            if j == 0:
                ax.set_ylabel("site row r")
    cb = fig.colorbar(im, ax=axes, shrink=0.85)
    cb.set_label("⟨v_i h_a⟩ (not connected)")
    fig.suptitle(f"⟨v h⟩ maps, RG (top) vs RBM (bottom), L = {L}, T = {p.corr_T:.4f}; "
                 "box: own / best block")
    save_png(fig, path)


def _figure_locality(p, results, views, path):
    from .figures import ensemble_line, point_with_seeds

    L = p.corr_sizes[0]
    r = results["experiments"][KEY][f"L{L}"]
    uniform = r["settings"]["uniform_own_block_fraction"]
    fig = new_figure(16, 3.8)
    axes = fig.subplots(1, 5)
    colours = {"rg": "#1f77b4", "rbm": "#d62728"}
    panels = (("own_block_fraction", "share of Σ|⟨v h⟩| on the block", uniform),
              ("peak_to_far", "peak-to-far contrast of |⟨v h⟩|", 1.0),
              ("own_block_mean", "⟨v h⟩ on the block (map sum > 0)", None),
              ("far_mean", "⟨v h⟩ over d ≥ L/4 (map sum > 0)", None))
    for ax, (key, ylabel, ref) in zip(axes[:4], panels, strict=True):
        for x, side in enumerate(("rg", "rbm")):
            point_with_seeds(ax, x, r[side][key], colours[side], side.upper())
        if ref is not None:
            ax.axhline(ref, color="0.4", ls="--", lw=1, label="uniform map")
        ax.set_xticks([0, 1])
        ax.set_xticklabels(["RG", "RBM"])
        ax.set_xlim(-0.6, 1.6)
        ax.set_ylabel(ylabel + " (dimensionless)", fontsize=9)
        ax.legend(fontsize=7)
    ax = axes[4]
    for side, key, label in (("rg", "rg_block", "RG, own block"),
                             ("rbm", "best_block", "RBM, best block")):
        summs = [v[f"vh-L{L}"].meta["levels"][0][side]["summary"] for v in views]
        profs = [s[key]["radial_profile"] for s in summs]
        ensemble_line(ax, summs[0]["radial_r"], [pr["mean"] for pr in profs],
                      [[np.nan if e is None else e for e in pr["sem"]] for pr in profs],
                      colours[side], label, marker=".")
    ax.axvline(L / 4, color="0.4", ls=":", lw=1, label="far region starts")
    ax.set_xlabel("distance d from the block centre (sites)", fontsize=9)
    ax.set_ylabel("|⟨v h⟩| averaged over units", fontsize=9)
    ax.legend(fontsize=7)
    fig.suptitle(f"Locality of the ⟨v h⟩ maps, L = {L} (mean over units; bold: value ± error, "
                 "faint: each seed)")
    save_png(fig, path)


def correlator_arrays(p: Preset, views) -> dict:
    """correlators.npz: the <v h> maps of experiment 1 (and of experiment 4's levels), each
    with a leading seed axis."""
    return stack_seeds([_correlator_arrays(p, v) for v in views], ())


def _correlator_arrays(p: Preset, outputs) -> dict:
    out = {}
    for i, L in enumerate(p.corr_sizes):
        a = outputs[f"vh-L{L}"].arrays
        if i == 0:
            out["rg_vh"], out["rbm_vh"] = a["rg_vh_level1"], a["rbm_vh_level1"]
        out[f"rg_vh_L{L}"], out[f"rbm_vh_L{L}"] = a["rg_vh_level1"], a["rbm_vh_level1"]
    if p.stack_L is not None:
        a = outputs[f"vh-stack-L{p.stack_L}"].arrays
        for k in range(1, p.stack_levels + 1):
            out[f"rg_vh_stack_level{k}"] = a[f"rg_vh_level{k}"]
            out[f"rbm_vh_stack_level{k}"] = a[f"rbm_vh_level{k}"]
    return out


def report_section(p, section: dict, results: dict) -> list:
    lines = ["## Experiment 1: ⟨v h⟩ maps, RG vs RBM", "",
             "RG: h = block average of v (hidden unit a ↔ block a). RBM: h = E[h|v] = "
             "tanh(b + vW). Own-block fraction: share of Σ|⟨v_i h_a⟩| on the block's own "
             "sites (RG: block a; RBM: the block holding most of the unit's |map|). "
             "Own-block and far-field means: the map averaged over the block and over sites "
             "at distance ≥ L/4, each map oriented to a positive sum (core/SCIENCE.md §4). "
             "Errors: the standard error over training seeds (with one seed, each run's "
             f"jackknife over {p.jackknife_blocks} configuration blocks combined with the "
             "spread over units / √n_units).", ""]
    for r in section.values():
        s = r["settings"]
        lines += report_level(
            r, f"{s['L'] ** 2} → {s['n_hidden']} at T = {s['T']:.4f} ({s['n_configs']} "
               f"configurations, {s['rbm_steps']} RBM updates)",
            results["diagnostics"]["rbm_training"])
    return lines
