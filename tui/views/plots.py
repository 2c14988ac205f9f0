"""View 4: E/N, |m|, G(r), the training metrics and the RBM flow's ⟨|m|⟩ and temperature."""

import numpy as np

from rgflow.core.exact import TC

from ..status import sampling_text
from ..widgets.plot import PlotView
from .common import plot_thermo

TITLE = "Plots"
NO_FLOW = "no flow yet: f in view 5 runs one step"
PANES = ("plot-energy", "plot-m", "plot-gr", "plot-train", "plot-flow-m", "plot-flow-t")


def compose():
    yield PlotView(title="E/N (· Onsager)", id="plot-energy", background=True)
    yield PlotView(title="|m| (· Onsager)", id="plot-m", background=True)
    yield PlotView(title="G(r)", id="plot-gr", background=True)
    yield PlotView(title="training", id="plot-train", background=True)
    yield PlotView(title="flow ⟨|m|⟩ per step", id="plot-flow-m", background=True)
    yield PlotView(title="flow temperature", id="plot-flow-t", background=True)


def draw(app, f, extras: dict, slow: bool = True) -> None:
    for pane, name in (("plot-energy", "energy"), ("plot-m", "abs_m")):
        plot_thermo(app.w(pane), f, (name,))
    if slow:  # the session's own live measurement (also on the status line when it fits)
        app.w("plot-energy").border_subtitle = sampling_text(f)
    gr = app.w("plot-gr")
    result = app.analysis.get("gr")
    log = app.gr_log
    gr.set_scale(xscale="log" if log else "linear", yscale="log" if log else "linear")
    gr.border_title = "G(r) log-log (g: linear)" if log else "G(r) (g: log-log)"
    if gr.display and result is not None:
        gr.set_series("data", *result["data"])
        if "rg" in result:
            gr.set_series(f"RG {result['rg_size']}² (coarse r)", *result["rg"])
        gr.set_series("RBM recon.", *result["rbm"])
        if log:  # the critical power law G ~ r^(-1/4) as a guide through the data at r = 1
            r, g = (np.asarray(a, float) for a in result["data"])
            ok = (r > 0) & (g > 0)
            if ok.any():
                r0 = r[ok][0]
                gr.set_reference("r^(-1/4)", (r[ok], g[ok][0] * (r[ok] / r0) ** -0.25))
        else:
            gr.remove("r^(-1/4)")
        gr.set_labels(xlabel="r (sites)", ylabel="G(r)", title=f"{result['n']} configs",
                      xticks="integer")
    draw_training(app.w("plot-train"), f, extras)
    plot_flow_m(app.w("plot-flow-m"), f)
    plot_flow_t(app.w("plot-flow-t"), f, extras)


def draw_training(train: PlotView, f, extras: dict) -> None:
    """Reconstruction error and pseudo-LL/N (both of order one) on the left axis, the
    free-energy gap (up to hundreds) on its own right axis."""
    if not train.display:
        return
    steps = f.histories["train_step"]
    recon = f.histories["recon_error"]
    n = min(len(steps), len(recon))
    train.set_series("recon. error", steps[-n:], recon[-n:])
    every = extras["monitor_every"]
    for name, label, side in (("pll", "pseudo-LL / N", "left"), ("fe_gap", "F gap", "right")):
        y = f.histories[name]
        if len(y):
            x = f.train_step - every * (np.arange(len(y))[::-1])
            train.set_series(label, x, y, yside=side)
    # short axis labels: plotext drops the x label where they would overlap (narrow panes)
    train.set_labels(xlabel="training step", ylabel="err, LL/N",
                     ylabel_right="F gap" if len(f.histories["fe_gap"]) else "",
                     xticks="integer")


def plot_flow_m(plot: PlotView, f) -> None:
    if not plot.display:
        return
    y = f.histories["flow_abs_m"]
    plot.set_labels(title="" if f.flow_v is not None else NO_FLOW)
    if f.flow_v is not None and len(y):
        y = y[-(f.flow_step + 1):]
        plot.set_series("flow ⟨|m|⟩", np.arange(len(y)) + f.flow_step - len(y) + 1.0, y)
        m = f.histories["abs_m"]
        if len(m):
            plot.set_reference("data ⟨|m|⟩", float(np.mean(m[-500:])))
        plot.set_labels(xlabel="flow step", ylabel="⟨|m|⟩", xticks="integer")


def plot_flow_t(plot: PlotView, f, extras: dict) -> None:
    if not plot.display:
        return
    history = extras["flow_history"]
    plot.set_labels(title="" if history else NO_FLOW)
    if history:
        x, y = zip(*history, strict=True)
        plot.set_series("flow T (Onsager E)", np.array(x, float), np.array(y, float))
        plot.set_reference(f"T = {f.T:.3f}", f.T)
        plot.set_reference("Tc", TC)
        plot.set_labels(xlabel="flow step", ylabel="T", xticks="integer")


def export(app, f, extras: dict) -> dict:
    arrays = {f"history_{k}": v for k, v in f.histories.items()}
    for name, pair in app.analysis.get("gr", {}).items():
        if isinstance(pair, tuple):
            arrays[f"G_{name}_r"], arrays[f"G_{name}"] = pair
    return arrays
