"""Experiment 1: <v h> maps of RG (block averages) and of a trained RBM at T = corr_T, and
their locality numbers with jackknife errors. The "vh" stage kind serves experiment 4 too."""

import math

import numpy as np

from ..correlators import jackknife_blocks, jackknife_error
from .costs import COST_VH_MAC
from .figures import new_figure, save_png
from .kinds import load_rbm_arrays
from .markdown import md_table, pm, verdict_words, zs
from .presets import Preset
from .stage import StageContext
from .verdicts import compare, exact_value, meas

KEY = "1_correlators"
FIGURE = ("exp1_correlators.png", "⟨v h⟩ maps (RG top, RBM middle) and radial profiles")


def add_vh(b, name, data, rbms, L, n, title) -> str:
    """A "vh" stage: RG levels vs the RBM stack `rbms` on the configurations `data`."""
    p = b.p
    cost = sum(3 * n * L * L * (L * L // 4 ** k) * COST_VH_MAC
               for k in range(1, len(rbms) + 1)) * 2 + 2.0 * len(rbms)
    return b.add(name, "vh", title, {"data": data, "rbms": list(rbms), "units": p.rbm_units,
                                     "jackknife_blocks": p.jackknife_blocks},
                 (data, *rbms), cost)


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
    v = ctx.inputs[s["data"]].arrays["spins"][0]
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
        for side, h_of in (("rg", h_rg), ("rbm", h_rbm)):
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


def level_results(level: dict) -> dict:
    """RG vs RBM locality numbers of one level of a vh stage."""
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

    rg = {
        "own_block_fraction": get("rg", "rg_own_block_fraction", "spread_rg_own_block_fraction"),
        "peak_to_far": get("rg", "rg_peak_to_far", "spread_rg_peak_to_far"),
        "best_block_unique_fraction": get("rg", "best_block_unique_fraction"),
        "blocks_claimed_fraction": get("rg", "blocks_claimed_fraction"),
    }
    rbm = {
        "own_block_fraction": get("rbm", "best_own_block_fraction",
                                  "spread_best_own_block_fraction"),
        "peak_to_far": get("rbm", "best_peak_to_far", "spread_best_peak_to_far"),
        "best_block_unique_fraction": get("rbm", "best_block_unique_fraction"),
        "blocks_claimed_fraction": get("rbm", "blocks_claimed_fraction"),
    }
    uniform = b * b / (L * L)
    return {
        "settings": {"L": L, "b": b, "n_hidden": n_units, "n_configs": level["n_configs"],
                     "level": level["level"], "uniform_own_block_fraction": uniform,
                     "rg_convention": "RG unit a vs its own block a",
                     "rbm_convention": "RBM unit vs the block holding most of its |map| "
                                       "(RBM hidden units have no assigned block)"},
        "rg": rg,
        "rbm": rbm,
        "comparison": {k: compare(rbm[k], rg[k]) for k in rg},
        "rbm_vs_uniform_own_block_fraction": compare(rbm["own_block_fraction"],
                                                     exact_value(uniform)),
    }


def results(p, stages, outputs) -> dict:
    out = {}
    for L in p.corr_sizes:
        st = f"vh-L{L}"
        level = outputs[st].meta["levels"][0]
        r = level_results(level)
        r["settings"].update({"T": p.corr_T, "rbm_steps": p.rbm_steps,
                              "rbm_stage": outputs[st].meta["settings"]["rbms"][0]})
        out[f"L{L}"] = r
    return out


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
                     "256 configurations, no error bar): " + ", ".join(
                         f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                         for k, v in diag.items() if v is not None) + ".")
    return lines + [""]


def figure(p, results, stages, outputs, path):
    L = p.corr_sizes[0]
    a = outputs[f"vh-L{L}"].arrays
    maps = {"RG": a["rg_vh_level1"], "RBM": a["rbm_vh_level1"]}
    n_h = maps["RG"].shape[0]
    units = np.linspace(0, n_h - 1, 6).round().astype(int)
    fig = new_figure(13, 7)
    gs = fig.add_gridspec(3, 6, height_ratios=[1, 1, 1.2])
    for row, (name, m) in enumerate(maps.items()):
        vmax = float(np.abs(m).max()) or 1.0
        for j, u in enumerate(units):
            ax = fig.add_subplot(gs[row, j])
            im = ax.imshow(m[u], cmap="RdBu_r", vmin=-vmax, vmax=vmax)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(f"{name} unit {u}", fontsize=8)
        fig.colorbar(im, ax=ax, fraction=0.046)
    ax = fig.add_subplot(gs[2, :])
    level = outputs[f"vh-L{L}"].meta["levels"][0]
    for side, key, lab in (("rg", "rg_block", "RG, own block"),
                           ("rbm", "best_block", "RBM, best block")):
        summ = level[side]["summary"]
        prof = summ[key]["radial_profile"]
        r = np.array(summ["radial_r"])
        err = np.array([np.nan if e is None else e for e in prof["sem"]])
        ax.errorbar(r, prof["mean"], yerr=err, marker="o", ms=3, label=lab)
    ax.set_xlabel("periodic distance from the block centre")
    ax.set_ylabel("mean |⟨v h⟩|")
    ax.legend()
    fig.suptitle(f"Experiment 1: ⟨v_i h_a⟩ maps, {L * L} → {n_h}, T = {p.corr_T:.4f}")
    fig.subplots_adjust(left=0.05, right=0.97, bottom=0.08, top=0.9, hspace=0.3)
    save_png(fig, path)


def correlator_arrays(p: Preset, outputs) -> dict:
    """correlators.npz: the <v h> maps of experiment 1 (and of experiment 4's levels)."""
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
             "sites (RG: block a; RBM: the block holding most of the unit's |map|). Errors: "
             f"jackknife over {p.jackknife_blocks} configuration blocks combined with the "
             "spread over units / "
             "√n_units. The RBM's training seed is one draw: its variation is not in the "
             "error bar.", ""]
    for r in section.values():
        s = r["settings"]
        lines += report_level(
            r, f"{s['L'] ** 2} → {s['n_hidden']} at T = {s['T']:.4f} ({s['n_configs']} "
               f"configurations, {s['rbm_steps']} RBM updates)",
            results["diagnostics"]["rbm_training"])
    return lines
