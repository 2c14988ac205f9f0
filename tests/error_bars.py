"""Checking a reported error bar against the scatter of repeated independent runs.

R independent repeats give estimates x_k with reported errors e_k. If the error bar is right,
the sample standard deviation s of the x_k estimates the same number as the mean reported
error e_bar. Neither is exact:
  * s has standard error sqrt(mu4 - s^4) / (2 s sqrt(R)) (delta method on the sample variance,
    whose variance is (mu4 - sigma^4) / R; mu4 the central fourth moment, measured here, so
    heavy-tailed estimates get a wider tolerance; for Gaussian x it is s / sqrt(2 R));
  * e_bar has standard error std(e) / sqrt(R).
The check is |s - e_bar| < N_SIGMA * sqrt(se(s)^2 + se(e_bar)^2). With R = 200 Gaussian
estimates se(s) is 5% of s, so the tolerance is about 20%: an error bar off by a factor
sqrt(2) or more fails. `resolution` asserts that this holds for the data at hand.
"""

import math

import numpy as np

N_SIGMA = 4.0
# The largest relative tolerance accepted: a factor-sqrt(2) mistake (41%) must stand out.
MAX_RELATIVE_TOLERANCE = 0.25


def scatter_vs_error(estimates, errors):
    """(s, e_bar, tolerance) for the comparison described in the module docstring."""
    x = np.asarray(estimates, dtype=np.float64)
    e = np.asarray(errors, dtype=np.float64)
    assert x.ndim == 1 and x.shape == e.shape and x.size >= 50
    assert np.isfinite(x).all() and np.isfinite(e).all()
    r = x.size
    s = float(x.std(ddof=1))
    mu4 = float(np.mean((x - x.mean()) ** 4))
    se_s = math.sqrt(max(mu4 - s**4, 0.0)) / (2.0 * s * math.sqrt(r))
    se_e = float(e.std(ddof=1)) / math.sqrt(r)
    return s, float(e.mean()), N_SIGMA * math.hypot(se_s, se_e)


def assert_error_matches_scatter(estimates, errors, truth=None, label=""):
    """The mean reported error equals the observed scatter within N_SIGMA of their combined
    sampling error, the comparison resolves MAX_RELATIVE_TOLERANCE, and (if `truth` is given)
    the mean estimate is within N_SIGMA standard errors of it."""
    s, e_bar, tol = scatter_vs_error(estimates, errors)
    assert abs(s - e_bar) < tol, f"{label}: scatter {s:.4g}, mean error {e_bar:.4g} +- {tol:.2g}"
    assert tol < MAX_RELATIVE_TOLERANCE * s, f"{label}: too few repeats to resolve the error bar"
    if truth is not None:
        x = np.asarray(estimates, dtype=np.float64)
        sem = s / math.sqrt(x.size)
        assert abs(x.mean() - truth) < N_SIGMA * sem, \
            f"{label}: mean {x.mean():.6g} vs truth {truth:.6g} (sem {sem:.2g})"
    return s, e_bar
