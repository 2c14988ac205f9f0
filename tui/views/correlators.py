"""View 3: ⟨v h⟩ correlator maps of RG block spins and of RBM hidden units, and how local
they are."""

import numpy as np
from textual.widgets import Static

from ..widgets.heatmap import HeatMap, HeatMapGrid
from .common import fmt

TITLE = "⟨v h⟩ correlators"
PANES = ("corr-rg", "corr-rbm", "corr-info", "corr-grid")
GRID_PAGE = 16  # units in the grid of small maps


def compose():
    yield HeatMap(title="RG ⟨v h_a⟩", id="corr-rg")
    yield HeatMap(title="RBM ⟨v h_a⟩", id="corr-rbm")
    yield Static("Collecting data…", id="corr-info", classes="info", markup=False)
    yield HeatMapGrid(title="RBM ⟨v h⟩ of nearby units", id="corr-grid")


def draw(app, f, extras: dict, slow: bool = True) -> None:
    c = app.analysis.get("corr")
    if c is None:
        app.set_text("corr-info", f"Collecting data… {f.dataset_count} configurations "
                     "stored (the maps need at least 10; recomputed every few seconds "
                     "while shown)")
        return
    n_rbm = c["rbm"].shape[0]
    unit = min(extras["unit"], n_rbm - 1)
    rg_unit = min(unit, c["rg"].shape[0] - 1)
    lim = float(max(np.abs(c["rg"][rg_unit]).max(), np.abs(c["rbm"][unit]).max(), 1e-9))
    rg_map = app.w("corr-rg")
    rg_map.border_title = f"RG ⟨v h_{rg_unit}⟩ (block average)"
    rg_map.set_data(c["rg"][rg_unit], -lim, lim)
    rbm_map = app.w("corr-rbm")
    rbm_map.border_title = f"RBM ⟨v h_{unit}⟩"
    rbm_map.set_data(c["rbm"][unit], -lim, lim)
    start = (unit // GRID_PAGE) * GRID_PAGE
    grid = app.w("corr-grid")
    grid.border_title = f"RBM ⟨v h⟩ units {start}–{min(start + GRID_PAGE, n_rbm) - 1}"
    grid.set_maps(c["rbm"][start:start + GRID_PAGE], per_map=True)
    lines = [f"{c['n']} configurations, RBM train step {c['train_step']}",
             f"unit {unit}  (b={c['b']}, uniform map: {c['uniform_own_block_fraction']:.4f})"]
    if "rg_own" in c:
        lines += [
            "",
            f"{'':<10}{'RG':>10}{'RBM':>10}",
            f"{'own-block':<10}{fmt(c['rg_own'][rg_unit]):>10}{fmt(c['rbm_own'][unit]):>10}",
            f"{'peak/far':<10}{fmt(c['rg_ptf'][rg_unit]):>10}{fmt(c['rbm_ptf'][unit]):>10}",
            "mean over units",
            f"{'own-block':<10}{fmt(c['rg_own_stats']['mean']):>10}"
            f"{fmt(c['rbm_own_stats']['mean']):>10}",
            f"{'peak/far':<10}{fmt(c['rg_ptf_stats']['median']):>10}"
            f"{fmt(c['rbm_ptf_stats']['median']):>10}  (median)",
            "",
            f"RBM unit {unit}: best block {int(c['rbm_block'][unit])}",
            f"RBM: {c['rbm_blocks_claimed']}/{c['n_blocks']} blocks claimed, "
            f"{100 * c['rbm_unique']:.0f}% units unique",
        ]
    elif "locality_error" in c:
        lines.append(f"locality: {c['locality_error']}")
    app.set_text("corr-info", "\n".join(lines))


def export(app, f, extras: dict) -> dict:
    c = app.analysis.get("corr")
    if c is None:
        return {}
    return {k: np.asarray(v) for k, v in c.items() if isinstance(v, np.ndarray)}
