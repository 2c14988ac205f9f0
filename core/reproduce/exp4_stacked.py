"""Experiment 4: stacked RBMs next to the RG levels. Layer k is trained on sampled hidden
units of layer k-1; its propagated <v h> maps are compared with the 2^k x 2^k block
average's (paper preset only)."""

import numpy as np

from .costs import COST_VH_MAC
from .exp1_maps import add_vh, level_results, report_level
from .figures import new_figure, save_png

KEY = "4_stacked"
FIGURE = ("exp4_stacked.png", "stacked RBM maps vs RG levels, own-block fraction per level")


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


def has_figure(p) -> bool:
    return p.stack_L is not None


def results(p, stages, outputs) -> dict:
    if p.stack_L is None:
        return {"skipped": f"the {p.name} preset does not run stacked RBMs"}
    meta = outputs[f"vh-stack-L{p.stack_L}"].meta
    return {"settings": {"L": p.stack_L, "levels": p.stack_levels,
                         "rbm_input": "layer k is trained on sampled ±1 hidden units of "
                                      "layer k-1; maps use hidden means propagated up"},
            "levels": [level_results(level) for level in meta["levels"]]}


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


def figure(p, results, stages, outputs, path):
    a = outputs[f"vh-stack-L{p.stack_L}"].arrays
    K = p.stack_levels
    fig = new_figure(3.2 * K + 4, 6.5)
    for k in range(1, K + 1):
        for row, side in enumerate(("rg", "rbm")):
            m = a[f"{side}_vh_level{k}"]
            unit = m.shape[0] // 2
            ax = fig.add_subplot(2, K + 1, row * (K + 1) + k)
            vmax = float(np.abs(m[unit]).max()) or 1.0
            ax.imshow(m[unit], cmap="RdBu_r", vmin=-vmax, vmax=vmax)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(f"{side.upper()} level {k}, unit {unit}", fontsize=8)
    ax = fig.add_subplot(1, K + 1, K + 1)
    lv = results["experiments"]["4_stacked"]["levels"]
    x = np.arange(1, K + 1)
    for side in ("rg", "rbm"):
        v = [np.nan if r[side]["own_block_fraction"]["value"] is None
             else r[side]["own_block_fraction"]["value"] for r in lv]
        e = [np.nan if r[side]["own_block_fraction"]["error"] is None
             else r[side]["own_block_fraction"]["error"] for r in lv]
        ax.errorbar(x, v, yerr=e, marker="o", label=side.upper())
    ax.set_xlabel("level")
    ax.set_ylabel("own-block fraction")
    ax.legend()
    fig.suptitle("Experiment 4: stacked RBMs vs RG levels")
    fig.subplots_adjust(left=0.04, right=0.97, bottom=0.1, top=0.88, wspace=0.3)
    save_png(fig, path)
