"""Experiment 4: stacked RBMs next to the RG levels. Layer k is trained on sampled hidden
units of layer k-1; its propagated <v h> maps are compared with the 2^k x 2^k block
average's (paper preset only)."""

import numpy as np

from .costs import COST_VH_MAC
from .exp1_maps import add_vh, level_measurements, level_results, report_level
from .figures import new_figure, save_png

KEY = "4_stacked"


def add_stages(b) -> None:
    p = b.p
    if p.stack_L is None:
        return
    L = p.stack_L
    d = b.mc("tc", L, [p.corr_T], p.corr_samples, f"Monte Carlo at T={p.corr_T:.4f}, L={L}")
    n_v = L * L
    layers = [b.rbm(f"rbm-L{L}-h{n_v // 4}", d, n_v, n_v // 4, p.rbm_steps, None,
                    f"RBM {n_v} -> {n_v // 4} on T={p.corr_T:.4f}")]
    data = d
    for k in range(2, p.stack_levels + 1):
        n_in = n_v // 4 ** (k - 1)
        name = f"hidden-L{L}-l{k - 1}"
        hid = b.add(name, "hidden", f"hidden samples of layer {k - 1}",
                    {"rbm": layers[-1], "data": data, "units": p.rbm_units,
                     "seed": b.seed(name)},
                    (layers[-1], data), p.corr_samples * n_in * 4 * COST_VH_MAC + 0.5)
        layers.append(b.rbm(f"rbm-stack-L{L}-l{k}", hid, n_in, n_in // 4, p.rbm_steps, None,
                            f"stacked RBM layer {k}: {n_in} -> {n_in // 4}"))
        data = hid
    add_vh(b, f"vh-stack-L{L}", d, layers, L, p.corr_samples,
           f"<v h> of {p.stack_levels} RG levels vs stacked RBMs, L={L}")


def measure(p, view) -> dict:
    """Seed k's locality numbers per level of the stack."""
    if p.stack_L is None:
        return {"skipped": f"the {p.name} preset does not run stacked RBMs"}
    meta = view[f"vh-stack-L{p.stack_L}"].meta
    return {"settings": {"L": p.stack_L, "levels": p.stack_levels,
                         "rbm_input": "layer k is trained on sampled ±1 hidden units of "
                                      "layer k-1; maps use hidden means propagated up"},
            "levels": [level_measurements(level) for level in meta["levels"]]}


def results(p, measured: dict) -> dict:
    if "skipped" in measured:
        return measured
    return dict(measured) | {"levels": [level_results(m) for m in measured["levels"]]}


def report_section(p, e4: dict, results: dict) -> list:
    lines = ["## Experiment 4: stacked RBMs next to the RG levels", ""]
    if "skipped" in e4:
        return lines + [f"Skipped: {e4['skipped']}.", ""]
    s = e4["settings"]
    lines += [f"L = {s['L']}, {s['levels']} levels; {s['rbm_input']}. Level k of RG is the "
              f"2^k × 2^k block average; locality is measured with b = 2^k.", ""]
    for r in e4["levels"]:
        st = r["settings"]
        lines += report_level(
            r, f"Level {st['level']}: {st['L'] ** 2} → {st['n_hidden']} (b = {st['b']})")
    return lines


def figures(p) -> list:
    """(file name, caption, draw) of this experiment's figures (none without stacked RBMs)."""
    if p.stack_L is None:
        return []
    return [("stacked.png",
             f"Stacked RBMs next to the RG levels (L = {p.stack_L}): one hidden unit's "
             "⟨v h⟩ map per level for RG (top) and the RBM stack (bottom), each map on its own "
             "symmetric colour scale (one seed), and the own-block fraction per level (right; "
             "dashed: a uniform map).", _figure)]


def _figure(p, results, views, path):
    from .figures import point_with_seeds

    outputs = views[0]  # one seed's maps
    a = outputs[f"vh-stack-L{p.stack_L}"].arrays
    K = p.stack_levels
    fig = new_figure(3.0 * K + 4.5, 6.0)
    gs = fig.add_gridspec(2, K + 1, width_ratios=[1] * K + [1.6])
    for k in range(1, K + 1):
        for row, side in enumerate(("rg", "rbm")):
            m = a[f"{side}_vh_level{k}"]
            unit = m.shape[0] // 2
            ax = fig.add_subplot(gs[row, k - 1])
            vmax = float(np.abs(m[unit]).max()) or 1.0
            im = ax.imshow(m[unit], cmap="RdBu_r", vmin=-vmax, vmax=vmax,
                           interpolation="nearest")
            fig.colorbar(im, ax=ax, shrink=0.7, label="⟨v_i h_a⟩")
            ax.set_title(f"{side.upper()} level {k}, unit {unit}", fontsize=9)
            ax.set_xlabel("site column c", fontsize=8)
            ax.set_ylabel("site row r", fontsize=8)
    ax = fig.add_subplot(gs[:, K])
    lv = results["experiments"][KEY]["levels"]
    for i, side in enumerate(("rg", "rbm")):
        for j, r in enumerate(lv):
            point_with_seeds(ax, j + 1 + (i - 0.5) * 0.1, r[side]["own_block_fraction"],
                             ("#1f77b4", "#d62728")[i], side.upper() if j == 0 else None)
    ax.hlines([r["settings"]["uniform_own_block_fraction"] for r in lv],
              [k + 0.7 for k in range(K)], [k + 1.3 for k in range(K)], color="0.4",
              ls="--", lw=1, label="uniform map")
    ax.set_yscale("log")
    ax.set_xticks(range(1, K + 1))
    ax.set_xlabel("level k (block size 2^k)")
    ax.set_ylabel("share of Σ|⟨v h⟩| on the unit's block (dimensionless)")
    ax.legend(fontsize=8)
    fig.suptitle("Experiment 4: stacked RBMs vs RG levels")
    save_png(fig, path)
