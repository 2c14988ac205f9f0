"""View 2: the RBM on the current configuration: input, hidden units, reconstructions and
the weights of the selected hidden unit."""

import numpy as np

from ..widgets.heatmap import HeatMap
from ..widgets.lattice import LatticeView
from .common import info_pane, one_scale, unit_side

TITLE = "RBM"
PANES = ("rbm-v", "rbm-hidden", "rbm-recon", "rbm-recon-sample", "rbm-weights", "rbm-info")
METRIC_LABELS = {"reconstruction_error": "recon. error", "pll": "pseudo-LL",
                 "free_energy_gap": "free-energy gap", "exact_ll": "exact LL",
                 "exact_ll_heldout": "exact LL held out"}


def compose():
    yield LatticeView(title="input v", id="rbm-v", spin_legend=True)
    yield HeatMap(title="hidden ⟨h⟩", id="rbm-hidden")
    yield HeatMap(title="reconstruction ⟨v'⟩", id="rbm-recon")
    yield LatticeView(title="reconstruction sample v'", id="rbm-recon-sample",
                      spin_legend=True)
    yield HeatMap(title="weights of unit", id="rbm-weights")
    yield info_pane("rbm-info", "RBM and training")


def draw(app, f, extras: dict, slow: bool = True) -> None:
    L = f.L
    app.w("rbm-v").set_spins(f.rbm["v"])
    if not slow:
        return
    hidden = f.rbm["hidden"]
    side = unit_side(len(hidden))
    image = hidden.reshape(side, side) if side else hidden[None, :]
    unit = extras["unit"]
    hidden_map = app.w("rbm-hidden")
    hidden_map.border_title = f"hidden ⟨h⟩ {image.shape[0]}×{image.shape[1]}"
    hidden_map.set_data(image, -1.0, 1.0)
    app.w("rbm-recon").set_data(f.rbm["reconstruction"], -1.0, 1.0)
    sample = f.rbm["reconstruction_sample"]
    app.w("rbm-recon-sample").set_spins(
        np.where(sample > (0 if sample.min() < 0 else 0.5), 1, -1))
    one_scale(L, [app.w("rbm-v"), app.w("rbm-recon-sample")],
              [(app.w("rbm-recon"), L), (app.w("rbm-weights"), L)])
    weights = app.w("rbm-weights")
    row, col = divmod(unit, side) if side else (0, unit)
    title = f"weights of hidden unit {unit} (row {row}, col {col})"
    field = extras.get("field")
    if field is None:
        weights.set_data(extras["weights"])
    else:  # outside the receptive field there are no weights: drawn in the no-data colour
        title += f", receptive field R={extras['receptive_field']} (outlined; grey: no weight)"
        weights.set_data(np.where(field, extras["weights"], np.nan))
    weights.set_outline(field)
    weights.border_title = title
    m = f.metrics
    lines = [f"RBM: {L * L} visible → {len(hidden)} hidden",
             f"train step {f.train_step}  ({'on' if f.training else 'off'}, t)",
             f"data {f.dataset_count} stored, {f.heldout_count} held out",
             f"unit {unit}: ⟨h⟩ = {hidden[unit]:+.3f}",
             "(select: arrows / hjkl)",
             f"|W_unit| max {np.abs(extras['weights']).max():.3g}"]
    if extras.get("field") is not None:
        lines.append(f"receptive field R={extras['receptive_field']}: "
                     f"{int(extras['field'].sum())} of {L * L} sites")
    for key, label in METRIC_LABELS.items():
        if key in m:
            lines.append(f"{label}: {m[key]:.5g}")
    app.set_text("rbm-info", "\n".join(lines))


def export(app, f, extras: dict) -> dict:
    arrays = {f"rbm_{k}": v for k, v in f.rbm.items()}
    arrays["unit_weights"] = extras["weights"]
    return arrays
