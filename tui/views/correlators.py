"""View 3: ⟨v h⟩ correlator maps of RG block spins and of RBM hidden units, and how local
they are."""

import numpy as np

from ..widgets.heatmap import HeatMap, HeatMapGrid
from .common import fmt, info_pane

TITLE = "⟨v h⟩ correlators"
PANES = ("corr-rg", "corr-rbm", "corr-info", "corr-grid")
GRID_PAGE = 16  # units in the grid of small maps


def compose():
    yield HeatMap(title="RG ⟨v h_a⟩", id="corr-rg")
    yield HeatMap(title="RBM ⟨v h_a⟩", id="corr-rbm")
    yield info_pane("corr-info", "locality", "Collecting data…")
    yield HeatMapGrid(title="RBM ⟨v h⟩ of nearby units", id="corr-grid")


def draw(app, f, extras: dict, slow: bool = True) -> None:
    c = app.analysis.get("corr")
    if c is None:
        app.set_text("corr-info", f"Collecting data… {f.dataset_count} configurations "
                     "stored (the maps need at least 10; recomputed every few seconds "
                     "while shown)")
        return
    connected = app.connected
    rg_maps, rbm_maps = (c["rg_c"], c["rbm_c"]) if connected else (c["rg"], c["rbm"])
    kind = "connected" if connected else "not connected"
    n_rbm = rbm_maps.shape[0]
    unit = min(extras["unit"], n_rbm - 1)
    rg_unit = min(unit, rg_maps.shape[0] - 1)
    lim = float(max(np.abs(rg_maps[rg_unit]).max(), np.abs(rbm_maps[unit]).max(), 1e-9))
    rg_map = app.w("corr-rg")
    rg_map.border_title = f"RG ⟨v h_{rg_unit}⟩ {kind} (c)"
    rg_map.set_data(rg_maps[rg_unit], -lim, lim)
    rbm_map = app.w("corr-rbm")
    rbm_map.border_title = f"RBM ⟨v h_{unit}⟩ {kind} (c)"
    rbm_map.set_data(rbm_maps[unit], -lim, lim)
    start = (unit // GRID_PAGE) * GRID_PAGE
    grid = app.w("corr-grid")
    grid.border_title = (f"RBM ⟨v h⟩ {kind}, units {start}–"
                         f"{min(start + GRID_PAGE, n_rbm) - 1}")
    grid.set_maps(rbm_maps[start:start + GRID_PAGE], per_map=True)
    app.set_text("corr-info", "\n".join(info_lines(c, unit, rg_unit, connected)))


def info_lines(c: dict, unit: int, rg_unit: int, connected: bool) -> list[str]:
    """The locality numbers of the unit shown, and the means over units for both kinds."""
    p = "c_" if connected else ""
    # one fact a line: the info pane is about 36 columns wide in the wide layout
    shown = (["connected ⟨v h⟩ − ⟨v⟩⟨h⟩", "c: show not connected"] if connected
             else ["⟨v h⟩ not connected", "(near Tc ~m² everywhere)", "c: show connected"])
    lines = [*shown,
             f"{c['n']} configurations",
             f"RBM train step {c['train_step']}",
             f"unit {unit}  (b={c['b']})",
             f"uniform map: {c['uniform_own_block_fraction']:.4f}"]
    if "locality_error" in c:
        return [*lines, f"locality: {c['locality_error']}"]
    lines += [
        f"{'':<10}{'RG':>9}{'RBM':>9}",
        f"{'own-block':<10}{fmt(c[p + 'rg_own'][rg_unit]):>9}{fmt(c[p + 'rbm_own'][unit]):>9}",
        f"{'peak/far':<10}{fmt(c[p + 'rg_ptf'][rg_unit]):>9}{fmt(c[p + 'rbm_ptf'][unit]):>9}",
        f"RBM unit {unit}: best block {int(c[p + 'rbm_block'][unit])}",
        f"blocks claimed: {c[p + 'rbm_blocks_claimed']}/{c[p + 'n_blocks']}",
        "over units      not conn.  connected",
    ]
    for label, key, stat in (("own-block RG", "rg_own", "mean"),
                             ("own-block RBM", "rbm_own", "mean"),
                             ("peak/far RG", "rg_ptf", "median"),
                             ("peak/far RBM", "rbm_ptf", "median")):
        lines.append(f"{label:<14}{fmt(c[key + '_stats'][stat]):>10}"
                     f"{fmt(c['c_' + key + '_stats'][stat]):>11}")
    return lines


def export(app, f, extras: dict) -> dict:
    c = app.analysis.get("corr")
    if c is None:
        return {}
    return {k: np.asarray(v) for k, v in c.items() if isinstance(v, np.ndarray)}
