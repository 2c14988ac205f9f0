"""Figure helpers: matplotlib's object API on the Agg canvas (no global backend state, no
display needed), and the ensemble drawing every figure shares: each seed's curve faint, the
mean over seeds bold with its error bar (core/SCIENCE.md §8)."""

import io
import warnings

import numpy as np

from ..npzio import atomic_write_bytes

DPI = 100
COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b")


def new_figure(w, h):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(w, h), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def save_png(fig, path) -> None:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    atomic_write_bytes(path, buf.getvalue())


def ensemble_mean(values, errors) -> tuple[np.ndarray, np.ndarray]:
    """Mean over seeds (axis 0) and its error: the standard error over seeds for two or
    more seeds, the single run's own error for one. Where a seed has no value (NaN) the mean
    is NaN too: a mean over some of the seeds would pass for the ensemble."""
    v = np.asarray(values, dtype=float)
    e = np.asarray(errors, dtype=float)
    if v.shape[0] == 1:
        return v[0], e[0]
    n = np.sum(np.isfinite(v), axis=0)
    with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns: no value there
        mean = np.nanmean(v, axis=0)
        sem = np.nanstd(v, axis=0, ddof=1) / np.sqrt(n)
    full = n == v.shape[0]
    return np.where(full, mean, np.nan), np.where(full, sem, np.nan)


def ensemble_line(ax, x, values, errors, colour, label, marker="o"):
    """Per-seed curves faint (with their own error bars), the mean bold with its error."""
    v = np.asarray(values, dtype=float)
    if v.shape[0] > 1:
        for k in range(v.shape[0]):
            ax.plot(x, v[k], color=colour, lw=0.8, alpha=0.3)
    mean, err = ensemble_mean(values, errors)
    ax.errorbar(x, mean, yerr=err, color=colour, lw=2, marker=marker, ms=4, capsize=2,
                label=label)


def ensemble_legend_note(n_seeds: int) -> str:
    if n_seeds > 1:
        return f"bold: mean of {n_seeds} seeds ± standard error; faint: each seed"
    return "one seed: error bars are that run's own errors"


def reference_band(ax, value, error, colour="0.3", label=None):
    """A horizontal reference value ± error (e.g. the Monte Carlo reading at Tc)."""
    if value is None or not np.isfinite(value):
        return
    e = error if error is not None and np.isfinite(error) else 0.0
    ax.axhspan(value - e, value + e, color=colour, alpha=0.18, lw=0)
    ax.axhline(value, color=colour, ls="--", lw=1, label=label)


def seed_values(m: dict) -> list:
    """The per-seed values of an ensemble number ({"seeds": [...]}), or its one value."""
    seeds = m.get("seeds") if isinstance(m, dict) else None
    if seeds:
        return [s.get("value") if isinstance(s, dict) else s for s in seeds]
    return [m.get("value") if isinstance(m, dict) else None]


def point_with_seeds(ax, x, m: dict, colour, label, marker="o"):
    """An ensemble number at x: each seed a faint point, the value bold with its error."""
    vals = [v for v in seed_values(m) if v is not None]
    if len(vals) > 1:
        ax.plot([x] * len(vals), vals, ls="none", marker=marker, ms=4, color=colour, alpha=0.35)
    if m.get("value") is not None:
        ax.errorbar([x], [m["value"]], yerr=[m.get("error") or 0.0], color=colour,
                    marker=marker, ms=7, capsize=4, lw=2, label=label)


def series_with_seeds(ax, x, ms: list, colour, label, marker="o"):
    """A curve of ensemble numbers ms (one per x): each seed's curve faint, the values bold
    with their errors; a bound (a reading at the end of a thermometer's range) is drawn as
    an open marker without an error bar."""
    per_seed = [seed_values(m) for m in ms]
    n_seeds = max(len(s) for s in per_seed)
    if n_seeds > 1:
        for k in range(n_seeds):
            ax.plot(x, [s[k] if k < len(s) and s[k] is not None else np.nan
                        for s in per_seed], color=colour, lw=0.8, alpha=0.3)
    val = np.array([np.nan if m.get("value") is None else m["value"] for m in ms])
    err = np.array([np.nan if m.get("error") is None else m["error"] for m in ms])
    bound = np.array(["bound" in m for m in ms])
    shown = np.where(bound, np.nan, val)
    ax.errorbar(x, shown, yerr=np.where(bound, np.nan, err), color=colour, lw=2,
                marker=marker, ms=4, capsize=2, label=label)
    if bound.any():
        ax.plot(np.asarray(x)[bound], val[bound], ls="none", marker=marker, ms=6, mfc="none",
                color=colour)
