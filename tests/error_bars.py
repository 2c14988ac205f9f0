"""Checking a reported error bar against the scatter of repeated independent runs.

R independent repeats give estimates x_k with reported errors e_k. If the error bar is right,
the sample standard deviation s of the x_k estimates the same number as the root mean square
reported error e_rms = sqrt(mean(e_k^2)) (jackknife and binning errors are square roots of
unbiased variance estimates, so their plain mean is biased low by ~1/(4 (bins - 1)), e.g.
3% for 10 jackknife blocks; their mean square is not). Neither is exact:
  * s has standard error sqrt(mu4 - s^4) / (2 s sqrt(R)) (delta method on the sample variance,
    whose variance is (mu4 - sigma^4) / R; mu4 the central fourth moment, measured here, so
    heavy-tailed estimates get a wider tolerance; for Gaussian x it is s / sqrt(2 R));
  * e_rms has standard error std(e^2) / (2 e_rms sqrt(R)) (delta method again).
The check is |s - e_rms| < N_SIGMA * sqrt(se(s)^2 + se(e_rms)^2). With R = 200 Gaussian
estimates se(s) is 5% of s, so the tolerance is about 20%: an error bar off by a factor
sqrt(2) or more fails. `resolution` asserts that this holds for the data at hand.
"""

import math

import numpy as np

N_SIGMA = 4.0
# The largest relative tolerance accepted: a factor-sqrt(2) mistake (41%) must stand out.
MAX_RELATIVE_TOLERANCE = 0.25


def scatter_vs_error(estimates, errors):
    """(s, e_rms, tolerance) for the comparison described in the module docstring."""
    x = np.asarray(estimates, dtype=np.float64)
    e = np.asarray(errors, dtype=np.float64)
    assert x.ndim == 1 and x.shape == e.shape and x.size >= 50
    assert np.isfinite(x).all() and np.isfinite(e).all()
    r = x.size
    s = float(x.std(ddof=1))
    mu4 = float(np.mean((x - x.mean()) ** 4))
    se_s = math.sqrt(max(mu4 - s**4, 0.0)) / (2.0 * s * math.sqrt(r))
    e_rms = math.sqrt(float(np.mean(e * e)))
    se_e = float((e * e).std(ddof=1)) / (2.0 * e_rms * math.sqrt(r))
    return s, e_rms, N_SIGMA * math.hypot(se_s, se_e)


def assert_error_matches_scatter(estimates, errors, truth=None, label=""):
    """The root mean square reported error equals the observed scatter within N_SIGMA of their
    combined sampling error, the comparison resolves MAX_RELATIVE_TOLERANCE, and (if `truth`
    is given) the mean estimate is within N_SIGMA standard errors of it."""
    s, e_rms, tol = scatter_vs_error(estimates, errors)
    assert abs(s - e_rms) < tol, \
        f"{label}: scatter {s:.4g}, rms error {e_rms:.4g}, tolerance {tol:.2g}"
    assert tol < MAX_RELATIVE_TOLERANCE * s, f"{label}: too few repeats to resolve the error bar"
    if truth is not None:
        x = np.asarray(estimates, dtype=np.float64)
        sem = s / math.sqrt(x.size)
        assert abs(x.mean() - truth) < N_SIGMA * sem, \
            f"{label}: mean {x.mean():.6g} vs truth {truth:.6g} (sem {sem:.2g})"
    return s, e_rms
