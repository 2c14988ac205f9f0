"""View 5: the RBM flow v → h → v: three of its chains, their temperature and its
histogram."""

import numpy as np

from rgflow.core.exact import TC

from ..widgets.lattice import LatticeView
from ..widgets.plot import PlotView
from .common import info_pane

TITLE = "RBM flow"
PANES = ("flow-0", "flow-1", "flow-2", "flow-info", "flow-hist")
SHOWN_CHAINS = 3


def compose():
    for i in range(SHOWN_CHAINS):
        yield LatticeView(title=f"flow chain {i + 1}", id=f"flow-{i}", spin_legend=True)
    yield info_pane("flow-info", "flow")
    yield PlotView(title="flow T per chain", id="flow-hist", background=True)


def draw(app, f, extras: dict, slow: bool = True) -> None:
    chains = f.flow_v
    for i in range(SHOWN_CHAINS):
        if chains is not None and i < len(chains):
            app.w(f"flow-{i}").set_spins(chains[i])
    reading = extras["flow"]
    m = f.histories["flow_abs_m"]
    if chains is None or reading is None:
        text = ("Press f for one RBM flow step v → h → v, starting from stored data "
                "(palette: reset the flow from data or from random spins).")
    else:
        err = reading["T_err"]
        err_text = f" ± {err:.3f}" if np.isfinite(err) else ""
        frozen = f.flow_rbm_step
        model = ("RBM frozen at train step " + str(frozen) if frozen is not None
                 else "RBM: frozen at the next step")
        text = (f"flow step {f.flow_step}, {len(chains)} chains\n"
                "(f: one more step)\n"
                f"{model}\n"
                f"⟨|m|⟩ = {m[-1]:.4f}\n"
                f"T from E/N (Onsager): {reading['T']:.3f}{err_text}\n"
                f"{classifier_text(app, f, extras.get('classifier'))}\n"
                f"lattice T = {f.T:.4f}, Tc = {TC:.4f}")
    app.set_text("flow-info", text)
    hist = app.w("flow-hist")
    if hist.display and reading is not None:
        from rgflow.core.live_analysis import histogram

        x, y = histogram(reading["per_chain"])
        if len(x):
            hist.set_series("chains", x, y)
            top = float(y.max())
            hist.set_reference("T", (np.array([f.T, f.T]), np.array([0.0, top])))
            hist.set_reference("Tc", (np.array([TC, TC]), np.array([0.0, top])))
            hist.set_labels(xlabel="T per chain (from E/N)", ylabel="chains", yticks="integer")


def classifier_text(app, f, reading: dict | None) -> str:
    """Short lines: the info pane is narrow in the wide layout."""
    cal = app.classifier
    if app.calibrating:
        return "T (classifier): calibrating…"
    if cal is None:
        return "T (classifier): not calibrated\n  palette: Calibrate classifier…"
    if cal["L"] != f.L:
        return f"T (classifier): fitted for L={cal['L']}\n  palette: calibrate again"
    if reading is None:
        return "T (classifier): –"
    err = reading["T_err"]
    err_text = f" ± {err:.3f}" if np.isfinite(err) else ""
    return (f"T (classifier): {reading['T']:.3f}{err_text}\n"
            f"  held-out accuracy {cal['heldout_accuracy']:.2f}")


def export(app, f, extras: dict) -> dict:
    if f.flow_v is None:
        return {}
    arrays = {"flow_spins": f.flow_v, "flow_abs_m": f.histories["flow_abs_m"]}
    if extras["flow"] is not None:
        arrays["flow_T_per_chain"] = extras["flow"]["per_chain"]
    return arrays
