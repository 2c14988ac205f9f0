"""core/finite_size.py: the peak estimator on a hand-made exact parabola, on i.i.d. samples
of the exact L = 4 Boltzmann distribution (known peak by enumeration, error bars checked
against the spread over seeds), and the tracking verdict on hand-made cases."""

import numpy as np
import pytest

from rgflow.core.errors import UsageError
from rgflow.core.exact import enumerate_ising, state_histogram
from rgflow.core.finite_size import (
    fit_parabola_peak,
    pseudo_critical_temperature,
    tracking_verdict,
)

GRID = np.round(np.arange(2.20, 2.701, 0.05), 10)
WIDE = np.round(np.arange(1.9, 3.01, 0.1), 10)


def _exact_peak(L, observable):
    T = np.linspace(2.0, 3.2, 120_001)
    values = enumerate_ising(L, T)[observable]
    return T[np.argmax(values)]


def _exact_samples(L, T, n, rng):
    """n independent (energy per spin, magnetisation per spin) from the exact distribution."""
    eb, m, count = state_histogram(L)
    logw = np.log(count) - eb / T
    p = np.exp(logw - logw.max())
    pick = rng.choice(eb.size, size=n, p=p / p.sum())
    return eb[pick] / (L * L), m[pick] / (L * L)


def test_exact_parabola_is_recovered_with_zero_error():
    """Series alternating ±a_k have variance a_k² in every bin: C_k = N a_k² / T_k² is put
    exactly on the parabola 1 - (T - 2.31)², whose vertex the estimator must return."""
    N = 16
    target = 1.0 - (GRID - 2.31) ** 2
    a = np.sqrt(target * GRID ** 2 / N)
    energies = [np.tile([x, -x], 200) for x in a]
    mags = [np.zeros(400) for _ in a]
    est = pseudo_critical_temperature(GRID, energies, mags, N, n_bins=10, window=5)
    assert est.temperature == pytest.approx(2.31, abs=1e-9)
    assert est.height == pytest.approx(1.0, abs=1e-9)
    assert est.error == pytest.approx(0.0, abs=1e-9)
    assert est.window == (2.2, 2.4)  # the 5 points around the largest value, 2.30
    np.testing.assert_allclose(est.values, target, rtol=1e-12)


def _fit_on_exact_curve(L, observable, grid, window=5):
    exact = enumerate_ising(L, grid)[observable]
    top = int(np.argmax(exact))
    half = window // 2
    return fit_parabola_peak(grid[top - half:top + half + 1], exact[top - half:top + half + 1])[0]


def test_parabola_bias_on_exact_curve_is_small():
    """The method's bias alone: the exact L = 4 curve on a 0.1 grid, 5-point window."""
    assert abs(_fit_on_exact_curve(4, "specific_heat", WIDE) - _exact_peak(4, "specific_heat")) \
        < 0.01


@pytest.mark.parametrize("observable,grid", [
    ("specific_heat", WIDE),
    ("susceptibility", np.round(np.arange(2.3, 3.31, 0.1), 10)),
])
def test_recovers_the_exact_L4_peak_with_honest_error_bars(observable, grid):
    """i.i.d. samples of the exact distribution, 30 seeds: the estimates scatter around the
    vertex of the parabola through the exact curve (the exact peak plus the fit's bias,
    < 0.03 here), and the jackknife error matches their scatter."""
    exact = _exact_peak(4, observable)
    target = _fit_on_exact_curve(4, observable, grid)
    assert abs(target - exact) < 0.03
    estimates, errors = [], []
    for seed in range(30):
        rng = np.random.default_rng(seed)
        samples = [_exact_samples(4, T, 20000, rng) for T in grid]
        est = pseudo_critical_temperature(grid, [s[0] for s in samples],
                                          [s[1] for s in samples], 16, observable=observable)
        estimates.append(est.temperature)
        errors.append(est.error)
    estimates, errors = np.array(estimates), np.array(errors)
    scatter = estimates.std(ddof=1)
    assert abs(estimates.mean() - target) < 4 * scatter / np.sqrt(30)
    # the scatter's own relative uncertainty with 30 seeds is ~13%: [0.6, 1.6] is ~4 sigma
    assert 0.6 < errors.mean() / scatter < 1.6
    assert abs(estimates[0] - exact) < 4 * errors[0] + abs(target - exact)


def test_bad_input_and_unbracketed_peaks():
    rng = np.random.default_rng(0)
    samples = [_exact_samples(4, T, 400, rng) for T in GRID]
    e, m = [s[0] for s in samples], [s[1] for s in samples]
    with pytest.raises(UsageError, match="edge of the grid"):  # C still rises at 2.35
        pseudo_critical_temperature(GRID[:4], e[:4], m[:4], 16, window=3)
    with pytest.raises(UsageError, match="ascending"):
        pseudo_critical_temperature(GRID[::-1], e, m, 16)
    with pytest.raises(UsageError, match="observable"):
        pseudo_critical_temperature(GRID, e, m, 16, observable="binder")
    with pytest.raises(UsageError, match="window"):
        pseudo_critical_temperature(GRID, e, m, 16, window=2)
    with pytest.raises(UsageError, match="at least n_bins"):
        pseudo_critical_temperature(GRID, [x[:5] for x in e], [x[:5] for x in m], 16)
    assert np.isnan(fit_parabola_peak([1.0, 2.0, 3.0], [1.0, 0.0, 1.0])[0])  # a minimum


def test_a_vertex_outside_the_window_is_the_windows_end():
    """y = -(t - 10)²/100 through t = 1 … 5: the parabola fits exactly and its vertex is at
    t = 10, far outside the points; its maximum over them is at t = 5, y = -0.25. So one flat
    jackknife replica can move the estimate by at most the window's width."""
    t = np.arange(1.0, 6.0)
    assert fit_parabola_peak(t, -(t - 10.0) ** 2 / 100) == pytest.approx((5.0, -0.25))
    assert fit_parabola_peak(t, -(t + 4.0) ** 2 / 100) == pytest.approx((1.0, -0.25))
    assert fit_parabola_peak(t, -(t - 2.5) ** 2) == pytest.approx((2.5, 0.0))  # inside


@pytest.mark.parametrize("t_star,t_pc,expected", [
    ([2.40, 2.33, 2.30], [2.40, 2.33, 2.30], "T_pc"),   # on T_pc, far from Tc
    ([2.27, 2.269, 2.27], [2.40, 2.33, 2.30], "Tc"),    # on Tc, far from T_pc
    ([2.27, 2.27, 2.27], [2.272, 2.27, 2.268], "both"),  # T_pc ≈ Tc within errors
    ([2.10, 2.05, 2.00], [2.40, 2.33, 2.30], "neither"),
])
def test_tracking_verdict_hand_made(t_star, t_pc, expected):
    err = [0.01, 0.01, 0.01]
    result = tracking_verdict(t_star, err, t_pc, err, 2.269185)
    assert result["verdict"] == expected
    assert result["dof"] == 3 and result["chi2_95"] == pytest.approx(7.815)


def test_tracking_verdict_threshold_and_bad_input():
    # one size, one sigma each: chi2 = d² / (2 σ²) crosses 3.841 at d = 2.772 σ
    assert tracking_verdict([2.0], [0.1], [2.27], [0.1], 1.0)["verdict"] == "T_pc"
    assert tracking_verdict([2.0], [0.1], [2.28], [0.1], 1.0)["verdict"] == "neither"
    with pytest.raises(UsageError):
        tracking_verdict([2.0], [0.0], [2.0], [0.1], 2.0)
    with pytest.raises(UsageError):
        tracking_verdict([2.0, 2.1], [0.1], [2.0], [0.1], 2.0)
