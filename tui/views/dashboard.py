"""View 1: the lattice, the selected RG level, the RBM's reconstruction and E/N, |m|."""

from textual.widgets import ContentSwitcher

from ..widgets.heatmap import HeatMap
from ..widgets.lattice import LatticeView
from ..widgets.plot import PlotView
from .common import one_scale, plot_thermo, rg_level

TITLE = "Lattice · RG · RBM"
PANES = ("lattice", "rg-pane", "dash-recon", "dash-plot")


def compose():
    yield LatticeView(title="spins", id="lattice", spin_legend=True)
    with ContentSwitcher(initial="rg-map", id="rg-pane"):
        yield HeatMap(title="RG level", id="rg-map")
        yield LatticeView(title="RG level", id="rg-spins", spin_legend=True)
    yield HeatMap(title="RBM reconstruction ⟨v'⟩", id="dash-recon")
    yield PlotView(title="E/N and |m| (· Onsager)", id="dash-plot", background=True)


def draw(app, f, extras: dict, slow: bool = True) -> None:
    app.w("lattice").set_spins(f.spins)
    if slow:
        draw_rg(app, f)
        app.w("dash-recon").set_data(f.rbm["reconstruction"], -1.0, 1.0)
        _, level = rg_level(app, f)
        maps = [(app.w("dash-recon"), f.L)]
        if level is not None:
            maps.append((app.w(app.w("rg-pane").current), level.shape[0]))
        one_scale(f.L, [app.w("lattice")], maps)
    plot_thermo(app.w("dash-plot"), f, ("energy", "abs_m"))


def draw_preview(app, f) -> None:
    """The lattice a new session starts from (core/frame.py), at the scale the full frame
    will use; the other panes fill in with the session's first frame."""
    app.w("lattice").set_spins(f.spins)
    rg_widget = app.w(app.w("rg-pane").current)
    one_scale(f.L, [app.w("lattice")], [(app.w("dash-recon"), f.L), (rg_widget, f.L)])


def draw_rg(app, f) -> None:
    index, level = rg_level(app, f)
    pane = app.w("rg-pane")
    if level is None:
        return
    title = (f"RG {f.rg_rule} level {index + 1}/{len(f.rg_levels)} "
             f"({level.shape[0]}×{level.shape[1]})  [ ]")
    if f.rg_rule == "average":
        pane.current = "rg-map"
        widget = app.w("rg-map")
        widget.set_data(level, vmin=-1.0, vmax=1.0)
    else:
        pane.current = "rg-spins"
        widget = app.w("rg-spins")
        widget.set_spins(level)
    widget.border_title = title


def export(app, f, extras: dict) -> dict:
    arrays = {f"rg_level{i + 1}": lv for i, lv in enumerate(f.rg_levels)}
    arrays["reconstruction"] = f.rbm["reconstruction"]
    arrays.update(energy=f.histories["energy"], abs_m=f.histories["abs_m"])
    return arrays
