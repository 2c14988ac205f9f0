"""Drawing helpers shared by several views."""

import numpy as np
from textual.widgets import Static

from ..widgets.plot import PlotView


def info_pane(pane_id: str, title: str, text: str = "") -> Static:
    """A pane of plain text lines, titled on its top border like every pane."""
    pane = Static(text, id=pane_id, classes="info", markup=False)
    pane.border_title = title
    return pane


def rg_level(app, f) -> tuple[int, np.ndarray | None]:
    """The RG level selected with [ and ] (index, array), clamped to the frame's levels."""
    if not f.rg_levels:
        return 0, None
    index = min(app.rg_level_index, len(f.rg_levels) - 1)
    return index, f.rg_levels[index]


def unit_side(n: int) -> int:
    """The side of the square grid of n hidden units (0 if n is not a square)."""
    side = int(round(np.sqrt(n)))
    return side if side * side == n else 0


def plot_thermo(plot: PlotView, f, names: tuple[str, ...]) -> None:
    """E/N and/or |m| over the recent sweeps, with Onsager's values as references."""
    if not plot.display:
        return
    from rgflow.core.exact import onsager_energy_per_spin, onsager_magnetisation

    labels = {"energy": "E/N", "abs_m": "|m|"}
    for name in names:
        y = f.histories[name]
        plot.set_series(labels[name], np.arange(len(y)) - len(y) + 1.0, y)
    if "energy" in names:
        plot.set_reference("Onsager E/N", float(onsager_energy_per_spin(f.T)))
    if "abs_m" in names:
        plot.set_reference("Onsager |m|", float(onsager_magnetisation(f.T)))
    # x is negative inside (now = 0, on the right); the ticks read as positive "ago"
    plot.set_labels(xlabel="steps ago", ylabel=" and ".join(labels[n] for n in names),
                    xticks="ago")


def fmt(v) -> str:
    if isinstance(v, float | np.floating):
        return "∞" if np.isinf(v) else f"{v:.4g}"
    return str(v)


def one_scale(L: int, lattices: list, maps: list[tuple]) -> float:
    """Draw L x L lattices (LatticeView) and maps ((HeatMap or LatticeView, its side)) at
    one scale: the largest whole zoom at which the lattice fits in every pane, else the
    lattice's own mode (braille, downsampled) with the maps matched to it. Every map then
    spans the same width as the lattice, centred in its pane. Returns columns per site."""
    panes = [*lattices, *(widget for widget, _ in maps)]
    fits = [min(w.size.width // L, (2 * w.size.height) // L) for w in panes if w.display]
    zoom = max(1, min(fits, default=1))
    for lattice in lattices:
        lattice.zoom = zoom
    # lattices on another page (small terminals) have no size: they do not set the scale
    per_site = min((lattice.columns_per_site for lattice in lattices if lattice.display),
                   default=float(zoom))
    for widget, side in maps:
        per_cell = per_site * L / side
        if hasattr(widget, "zoom"):  # a lattice of block spins
            widget.zoom = max(1, int(round(per_cell)))
        else:
            widget.scale = per_cell
    return per_site
