"""Finite-size pseudo-critical temperature: where the specific heat (or the susceptibility)
of an L×L lattice peaks, from Monte Carlo series on a temperature grid, with an error bar;
and the test of whether a sequence of temperatures T*(L) tracks it, or Tc, or neither.

Estimator. At every grid temperature the observable comes from the energy (magnetisation)
series, cut into n_bins equal consecutive bins. A parabola is least-squares fitted to the
`window` grid points around the largest value; its maximum over the window (the vertex, or
the window's end when the vertex falls outside) is the peak temperature, its value there the
peak height. The error is the jackknife over bins: replica k leaves out
bin k at every temperature (the runs are independent, so removing one bin from each is a
valid leave-one-out of the joint data) and refits; error = sqrt((n-1)/n Σ (θ_k - θ̄)²).
The parabola's own bias (the curve is not a parabola) shrinks with the window's width;
a peak at the edge of the grid is not bracketed and gives no estimate.
"""

import math
from dataclasses import dataclass

import numpy as np

from .errors import UsageError

OBSERVABLES = ("specific_heat", "susceptibility")
# 95% quantiles of the chi-square distribution with 1..10 degrees of freedom
CHI2_95 = (3.841, 5.991, 7.815, 9.488, 11.070, 12.592, 14.067, 15.507, 16.919, 18.307)


@dataclass(frozen=True)
class PeakEstimate:
    observable: str
    temperature: float       # peak temperature T_pc(L)
    error: float             # its jackknife error (NaN if a replica had no maximum)
    height: float            # the observable at the peak
    height_error: float
    window: tuple            # (lowest, highest) grid temperature of the fit
    n_bins: int
    temperatures: np.ndarray  # the grid
    values: np.ndarray        # the observable on the grid (all samples)
    errors: np.ndarray        # its jackknife error on the grid

    def to_dict(self) -> dict:
        return {"observable": self.observable, "temperature": self.temperature,
                "error": self.error, "height": self.height, "height_error": self.height_error,
                "window": list(self.window), "n_bins": self.n_bins,
                "temperatures": self.temperatures.tolist(), "values": self.values.tolist(),
                "errors": self.errors.tolist()}


# observable -> (series it is the variance of, power of T): C = N var(e) / T², χ = N var(|m|) / T
_FLUCTUATION = {"specific_heat": ("energy", 2), "susceptibility": ("abs_magnetisation", 1)}


def _moments(x, n_bins):
    """(full-sample [mean, mean of squares], leave-one-bin-out versions (2, n_bins)), from
    the last n_bins * (len // n_bins) samples, shifted by the mean against cancellation."""
    b = x.size // n_bins
    x = x[x.size - n_bins * b:]
    x = x - x.mean()
    bins = np.stack([x.reshape(n_bins, b).mean(axis=1),
                     (x * x).reshape(n_bins, b).mean(axis=1)])
    full = bins.mean(axis=1)
    loo = (bins.sum(axis=1, keepdims=True) - bins) / (n_bins - 1)
    return full, loo


def fit_parabola_peak(temperatures, values) -> tuple[float, float]:
    """(temperature, value) of the maximum, over the points' range, of the least-squares
    parabola through them: its vertex, or the range's end nearer the vertex when the vertex
    lies outside (a nearly flat jackknife replica can put it anywhere, and one such replica
    would otherwise dominate the error). NaNs when the parabola opens upward."""
    t = np.asarray(temperatures, dtype=np.float64)
    y = np.asarray(values, dtype=np.float64)
    centre, scale = t.mean(), max(np.ptp(t), 1e-300)
    x = (t - centre) / scale
    c2, c1, c0 = np.polyfit(x, y, 2)
    if not c2 < 0:
        return math.nan, math.nan
    xv = min(max(-c1 / (2 * c2), x.min()), x.max())
    return float(centre + scale * xv), float(c0 + c1 * xv + c2 * xv * xv)


def pseudo_critical_temperature(temperatures, energies, magnetisations, N: int,
                                observable: str = "specific_heat", n_bins: int = 20,
                                window: int = 5) -> PeakEstimate:
    """The peak of `observable` over the grid `temperatures` (ascending), from per-sample
    energy per spin energies[k] and magnetisation per spin magnetisations[k] at each grid
    temperature (1-D series, time-ordered; at least n_bins samples each). See the module
    docstring for the method; UsageError for bad input or a peak at the grid's edge."""
    if observable not in OBSERVABLES:
        raise UsageError(f"observable must be one of {', '.join(OBSERVABLES)}, "
                         f"got {observable!r}")
    T = np.asarray(temperatures, dtype=np.float64)
    if T.ndim != 1 or T.size < 3 or not np.all(np.isfinite(T)) or not np.all(T > 0) \
            or not np.all(np.diff(T) > 0):
        raise UsageError("temperatures must be at least 3 positive values, ascending")
    if len(energies) != T.size or len(magnetisations) != T.size:
        raise UsageError("one energy and one magnetisation series per temperature")
    if isinstance(n_bins, bool) or not isinstance(n_bins, int) or n_bins < 2:
        raise UsageError(f"n_bins must be a whole number >= 2, got {n_bins!r}")
    if isinstance(window, bool) or not isinstance(window, int) or not 3 <= window <= T.size:
        raise UsageError(f"window must be a whole number from 3 to {T.size}, got {window!r}")
    full = np.empty(T.size)
    loo = np.empty((T.size, n_bins))
    for k, (e, m) in enumerate(zip(energies, magnetisations, strict=True)):
        e = np.asarray(e, dtype=np.float64).ravel()
        m = np.abs(np.asarray(m, dtype=np.float64).ravel())
        if e.size != m.size or e.size < n_bins or not (np.all(np.isfinite(e))
                                                        and np.all(np.isfinite(m))):
            raise UsageError(f"temperature {T[k]:g}: need two equal finite series of at "
                             f"least n_bins = {n_bins} samples")
        series, power = _FLUCTUATION[observable]
        f, lo = _moments(e if series == "energy" else m, n_bins)
        full[k] = N * (f[1] - f[0] ** 2) / T[k] ** power
        loo[k] = N * (lo[1] - lo[0] ** 2) / T[k] ** power
    top = int(np.argmax(full))
    if top == 0 or top == T.size - 1:
        raise UsageError(f"the {observable.replace('_', ' ')} peaks at the edge of the grid "
                         f"(T = {T[top]:g}); widen the grid")
    start = min(max(top - window // 2, 0), T.size - window)
    sel = slice(start, start + window)
    t_peak, height = fit_parabola_peak(T[sel], full[sel])
    replicas = np.array([fit_parabola_peak(T[sel], loo[sel, k]) for k in range(n_bins)])
    factor = (n_bins - 1) / n_bins

    def spread(x):
        return math.sqrt(factor * float(np.sum((x - x.mean()) ** 2)))

    grid_err = np.sqrt(factor * np.sum((loo - loo.mean(axis=1, keepdims=True)) ** 2, axis=1))
    return PeakEstimate(observable, t_peak, spread(replicas[:, 0]), height,
                        spread(replicas[:, 1]), (float(T[sel][0]), float(T[sel][-1])),
                        n_bins, T, full, grid_err)


def tracking_verdict(t_star, t_star_err, t_pc, t_pc_err, tc: float) -> dict:
    """Does the sequence T*(L) ± err track the pseudo-critical T_pc(L) ± err, or Tc?

    Criterion: chi² = Σ_L (T* - T_ref)² / (σ*² + σ_ref²) against its 95% quantile with one
    degree of freedom per L. "T_pc" if consistent with T_pc only, "Tc" if with Tc only,
    "both" (the data cannot tell them apart) or "neither"."""
    ts, es = np.asarray(t_star, float), np.asarray(t_star_err, float)
    tp, ep = np.asarray(t_pc, float), np.asarray(t_pc_err, float)
    n = ts.size
    if n < 1 or not (ts.shape == es.shape == tp.shape == ep.shape) or n > len(CHI2_95):
        raise UsageError(f"need 1 to {len(CHI2_95)} sizes with a value and an error each")
    if not (np.all(np.isfinite(ts)) and np.all(np.isfinite(tp)) and np.all(es > 0)
            and np.all(ep >= 0)):
        raise UsageError("values must be finite and errors positive")
    chi2_pc = float(np.sum((ts - tp) ** 2 / (es ** 2 + ep ** 2)))
    chi2_c = float(np.sum((ts - tc) ** 2 / es ** 2))
    limit = CHI2_95[n - 1]
    pc_ok, c_ok = chi2_pc <= limit, chi2_c <= limit
    verdict = {(True, False): "T_pc", (False, True): "Tc", (True, True): "both",
               (False, False): "neither"}[(pc_ok, c_ok)]
    return {"verdict": verdict, "chi2_pc": chi2_pc, "chi2_tc": chi2_c, "dof": n,
            "chi2_95": limit}
