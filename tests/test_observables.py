"""Observables and error analysis against slow references and known statistics.

Configurations here are random or synthetic (nothing depends on the Monte Carlo kernels).
Statistical checks use fixed seeds and tolerances derived from the estimator's own error.
"""

import math

import numpy as np
import pytest
from error_bars import assert_error_matches_scatter, scatter_vs_error
from hypothesis import given, settings
from hypothesis import strategies as st

from rgflow.core import observables as ob
from rgflow.core.errors import UsageError

PM1 = np.array([-1, 1], dtype=np.int8)


def random_spins(rng, *shape):
    return rng.choice(PM1, size=shape)


def block_like(rng, *shape):
    """Float configurations with the values of 2x2 block averages."""
    return rng.choice(np.array([-1.0, -0.5, 0.0, 0.5, 1.0]), size=shape)


def ar1(rng, phi, n, sigma_eta=1.0):
    """Stationary AR(1): x_t = phi x_{t-1} + eta_t, rho(t) = phi^t."""
    eta = rng.normal(scale=sigma_eta, size=n)
    x = np.empty(n)
    x[0] = eta[0] / math.sqrt(1 - phi * phi)
    for t in range(1, n):
        x[t] = phi * x[t - 1] + eta[t]
    return x


def ar1_tau(phi):
    return (1 + phi) / (2 * (1 - phi))


def ar1_error_of_mean(phi, n, sigma_eta=1.0):
    """Exact standard deviation of the mean of n stationary AR(1) samples."""
    t = np.arange(1, n)
    var = sigma_eta**2 / (1 - phi * phi)
    return math.sqrt(var / n * (1 + 2 * np.sum((1 - t / n) * phi**t)))


# ---------------------------------------------------------------------------------------------
# Energy and magnetisation


def brute_energy(s, h=0.0):
    ly, lx = s.shape
    e = 0.0
    for i in range(ly):
        for j in range(lx):
            e -= float(s[i, j]) * (float(s[(i + 1) % ly, j]) + float(s[i, (j + 1) % lx]))
            e -= h * float(s[i, j])
    return e


def test_energy_and_magnetisation_against_loops():
    rng = np.random.default_rng(1)
    for shape in [(6, 6), (4, 6), (8, 8)]:
        batch = random_spins(rng, 5, *shape)
        e = ob.energy_per_spin(batch, h=0.3)
        m = ob.magnetisation(batch)
        n = shape[0] * shape[1]
        for k, s in enumerate(batch):
            assert e[k] == pytest.approx(brute_energy(s, 0.3) / n, abs=1e-14)
            assert m[k] == pytest.approx(s.astype(float).sum() / n, abs=1e-15)
            assert ob.energy_per_spin(s) == pytest.approx(brute_energy(s) / n, abs=1e-14)
            et, mt = ob.energy_and_magnetisation(s)
            assert (et, mt) == (int(brute_energy(s)), int(s.astype(int).sum()))
        et, mt = ob.energy_and_magnetisation_batch(batch)
        assert et.dtype == np.int64 and mt.dtype == np.int64
        np.testing.assert_array_equal(et, [brute_energy(s) for s in batch])
        np.testing.assert_allclose(et / n, ob.energy_per_spin(batch), atol=1e-15)
    floats = block_like(rng, 3, 6, 6)
    np.testing.assert_allclose(
        ob.energy_per_spin(floats), [brute_energy(s) / 36 for s in floats], atol=1e-14
    )
    assert isinstance(ob.energy_per_spin(floats[0]), float)
    assert isinstance(ob.magnetisation(floats[0]), float)


def test_ground_states():
    up = np.ones((8, 8), dtype=np.int8)
    assert ob.energy_per_spin(up) == -2.0
    assert ob.energy_and_magnetisation(-up) == (-128, -64)
    checker = np.indices((8, 8)).sum(axis=0) % 2 * 2 - 1
    assert ob.energy_per_spin(checker.astype(np.int8)) == 2.0


def test_chunked_path_matches(monkeypatch):
    rng = np.random.default_rng(2)
    batch = random_spins(rng, 7, 6, 6)
    e_one = ob.energy_per_spin(batch)
    r_one, g_one = ob.correlation_paper(batch)
    monkeypatch.setattr(ob, "CHUNK_ELEMENTS", 80)  # two configurations per chunk
    np.testing.assert_allclose(ob.energy_per_spin(batch), e_one, atol=1e-15)
    r_two, g_two = ob.correlation_paper(batch)
    np.testing.assert_array_equal(r_two, r_one)
    np.testing.assert_allclose(g_two, g_one, atol=1e-13)


@pytest.mark.parametrize(
    "bad",
    [np.zeros(5), np.zeros((2, 2, 2, 2)), np.ones((3, 3), dtype=bool), np.zeros((0, 4, 4))],
)
def test_bad_configurations_rejected(bad):
    with pytest.raises(UsageError):
        ob.energy_per_spin(bad)


def test_nan_configurations_rejected():
    c = np.zeros((2, 4, 4))
    c[1, 2, 3] = np.nan
    with pytest.raises(UsageError):
        ob.correlation_periodic(c)


# ---------------------------------------------------------------------------------------------
# Autocorrelation, tau_int, binning and jackknife


def test_autocorrelation_against_direct_sum():
    rng = np.random.default_rng(3)
    x = ar1(rng, 0.6, 300)
    d = x - x.mean()
    n = x.size
    direct = np.array([np.dot(d[: n - t], d[t:]) / (n - t) for t in range(n)])
    np.testing.assert_allclose(ob.autocorrelation(x), direct / direct[0], atol=1e-12)


@pytest.mark.parametrize(("phi", "seed"), [(0.0, 10), (0.5, 11), (0.9, 12)])
def test_tau_int_on_ar1(phi, seed):
    rng = np.random.default_rng(seed)
    n = 100_000
    x = ar1(rng, phi, n)
    tau, w, err = ob.tau_int(x)
    true = ar1_tau(phi)
    assert err == pytest.approx(tau * math.sqrt(2 * (2 * w + 1) / n))
    assert abs(tau - true) < 4 * err, (tau, true, err)
    # The window is the smallest W with W >= 5 tau(W).
    taus = 0.5 + np.cumsum(ob.autocorrelation(x)[1:])
    assert w >= 5 * taus[w - 1]
    assert all(v < 5 * taus[v - 1] for v in range(1, w))


def test_tau_int_window_factor_and_edge_cases():
    rng = np.random.default_rng(4)
    x = ar1(rng, 0.8, 20_000)
    _, w5, _ = ob.tau_int(x, c=5.0)
    _, w10, _ = ob.tau_int(x, c=10.0)
    assert w10 > w5
    assert ob.tau_int(np.full(50, 3.0)) == (0.5, 0, 0.0)
    with pytest.raises(UsageError):
        ob.tau_int([1.0])
    with pytest.raises(UsageError):
        ob.tau_int(np.ones((3, 3)))
    with pytest.raises(UsageError):
        ob.tau_int(x, c=0.0)


def test_binning_error_iid():
    rng = np.random.default_rng(5)
    n, sigma = 20_000, 2.0
    x = rng.normal(scale=sigma, size=n)
    n_bins = ob.auto_bins(n, ob.tau_int(x)[0])
    assert n_bins == ob.MAX_AUTO_BINS
    err = ob.binning_error(x)
    true = sigma / math.sqrt(n)
    assert abs(err - true) < 4 * true / math.sqrt(2 * (n_bins - 1))


def test_binning_error_ar1_accounts_for_autocorrelation():
    rng = np.random.default_rng(6)
    phi, n = 0.9, 200_000
    x = ar1(rng, phi, n)
    err = ob.binning_error(x)
    true = ar1_error_of_mean(phi, n)
    n_bins = ob.auto_bins(n, ob.tau_int(x)[0])
    assert abs(err - true) < 4 * true / math.sqrt(2 * (n_bins - 1))
    # The naive error would be wrong by sqrt(2 tau) ~ 4.4.
    assert np.std(x) / math.sqrt(n) < 0.3 * err


def test_jackknife_linear_equals_binning():
    rng = np.random.default_rng(7)
    x = rng.normal(size=1000)
    est, err = ob.jackknife(lambda a: a, x, n_bins=40)
    assert est == pytest.approx(x.mean(), abs=1e-15)
    assert err == pytest.approx(ob.binning_error(x, n_bins=40), rel=1e-12)


def test_jackknife_nonlinear_iid_variance():
    rng = np.random.default_rng(8)
    n = 40_000
    x = rng.normal(size=n)
    est, err = ob.jackknife(lambda a, a2: a2 - a * a, x, x * x, n_bins=100)
    assert est == pytest.approx(np.var(x), rel=1e-12)
    true = math.sqrt(2.0 / n)  # sd of the sample variance of N(0, 1) data
    assert abs(err - true) < 4 * true / math.sqrt(2 * 99)


def test_jackknife_uses_all_samples_for_the_estimate():
    x = np.arange(103, dtype=float)
    est, _ = ob.jackknife(lambda a: a, x, n_bins=10)
    assert est == pytest.approx(51.0)


def test_jackknife_rejects_bad_input():
    with pytest.raises(UsageError):
        ob.jackknife(lambda a, b: a + b, np.ones(10), np.ones(11))
    with pytest.raises(UsageError):
        ob.jackknife(lambda a: a, np.ones(10), n_bins=1)
    with pytest.raises(UsageError):
        ob.jackknife(lambda a: a, np.ones(10), n_bins=11)
    with pytest.raises(UsageError):
        ob.jackknife(lambda a: a)


def independent_jackknife(func, series, n_bins):
    """Reference jackknife: delete each bin explicitly and recompute from the raw samples."""
    n = len(series[0])
    b = n // n_bins
    start = n - n_bins * b
    thetas = []
    for k in range(n_bins):
        keep = np.ones(n - start, dtype=bool)
        keep[k * b : (k + 1) * b] = False
        thetas.append(func(*[s[start:][keep] for s in series]))
    thetas = np.array(thetas)
    return math.sqrt((n_bins - 1) / n_bins * np.sum((thetas - thetas.mean()) ** 2))


def test_thermo_from_series_matches_numpy_formulas():
    rng = np.random.default_rng(9)
    n, T, N = 5003, 2.3, 256
    e = rng.normal(-1.5, 0.05, size=n)
    m = rng.uniform(-1, 1, size=n)
    out = ob.thermo_from_series(e, m, T, N)
    a = np.abs(m)
    expected = {
        "energy_per_spin": (np.mean(e), lambda e_, m_: np.mean(e_)),
        "magnetisation": (np.mean(m), lambda e_, m_: np.mean(m_)),
        "abs_magnetisation": (np.mean(a), lambda e_, m_: np.mean(np.abs(m_))),
        "m2": (np.mean(m * m), lambda e_, m_: np.mean(m_ * m_)),
        "specific_heat": (N * np.var(e) / T**2, lambda e_, m_: N * np.var(e_) / T**2),
        "susceptibility": (N * np.var(a) / T, lambda e_, m_: N * np.var(np.abs(m_)) / T),
        "susceptibility_m2": (N * np.mean(m * m) / T, lambda e_, m_: N * np.mean(m_ * m_) / T),
        "binder": (
            1 - np.mean(m**4) / (3 * np.mean(m**2) ** 2),
            lambda e_, m_: 1 - np.mean(m_**4) / (3 * np.mean(m_**2) ** 2),
        ),
    }
    nb = out["n_bins"]
    assert out["n_samples"] == n and out["bin_size"] == n // nb
    for key, (value, func) in expected.items():
        got = out[key]
        assert isinstance(got, ob.Estimate)
        assert got.mean == pytest.approx(value, rel=1e-12), key
        assert got.error == pytest.approx(independent_jackknife(func, (e, m), nb), rel=1e-9), key
    assert out["reliable"]
    # iid data: the usual formulas for the error bars.
    assert abs(out["energy_per_spin"].error - 0.05 / math.sqrt(n)) < 4 * (
        0.05 / math.sqrt(n) / math.sqrt(2 * (nb - 1))
    )
    c_err = N / T**2 * math.sqrt(2.0 / n) * 0.05**2
    assert abs(out["specific_heat"].error - c_err) < 4 * c_err / math.sqrt(2 * (nb - 1))
    assert out["tau_energy"].mean == pytest.approx(0.5, abs=4 * out["tau_energy"].error)


def test_thermo_from_series_autocorrelated_energy():
    rng = np.random.default_rng(13)
    phi, n = 0.9, 100_000
    e = -1.4 + 0.01 * ar1(rng, phi, n)
    m = rng.uniform(-1, 1, size=n)
    out = ob.thermo_from_series(e, m, 2.5, 100)
    true = 0.01 * ar1_error_of_mean(phi, n)
    nb = out["n_bins"]
    assert abs(out["energy_per_spin"].error - true) < 4 * true / math.sqrt(2 * (nb - 1))
    assert abs(out["tau_energy"].mean - ar1_tau(phi)) < 4 * out["tau_energy"].error
    assert out["reliable"]
    short = ob.thermo_from_series(e[:300], m[:300], 2.5, 100)
    assert not short["reliable"]


def test_thermo_from_series_rejects_bad_input():
    with pytest.raises(UsageError):
        ob.thermo_from_series(np.ones(10), np.ones(9), 1.0, 4)
    with pytest.raises(UsageError):
        ob.thermo_from_series(np.ones(10), np.ones(10), 0.0, 4)
    with pytest.raises(UsageError):
        ob.thermo_from_series(np.ones(10), np.ones(10), 1.0, 0)


# ---------------------------------------------------------------------------------------------
# Two-point functions


def brute_periodic(configs, connected):
    n, ly, lx = configs.shape
    c = configs.astype(float)
    g = np.zeros((ly, lx))
    for dy in range(ly):
        for dx in range(lx):
            total = 0.0
            for y in range(ly):
                for x in range(lx):
                    total += np.mean(c[:, y, x] * c[:, (y + dy) % ly, (x + dx) % lx])
            g[dy, dx] = total / (ly * lx)
    if connected:
        g -= c.mean() ** 2
    return g


@pytest.mark.parametrize("connected", [False, True])
def test_correlation_periodic_against_double_loop(connected):
    rng = np.random.default_rng(20)
    for configs in (random_spins(rng, 4, 6, 6), block_like(rng, 3, 4, 6)):
        got = ob.correlation_periodic(configs, connected=connected)
        np.testing.assert_allclose(got, brute_periodic(configs, connected), atol=1e-13)
    single = random_spins(rng, 6, 6)
    np.testing.assert_allclose(
        ob.correlation_periodic(single), brute_periodic(single[None], True), atol=1e-13
    )


def test_radial_average_periodic_against_grouping():
    rng = np.random.default_rng(21)
    g = rng.normal(size=(6, 8))
    groups = {}
    for dy in range(6):
        for dx in range(8):
            d = math.hypot(min(dy, 6 - dy), min(dx, 8 - dx))
            groups.setdefault(round(d), []).append(g[dy, dx])
    r, gr = ob.radial_average_periodic(g)
    np.testing.assert_array_equal(r, sorted(groups))
    np.testing.assert_allclose(gr, [np.mean(groups[k]) for k in sorted(groups)], atol=1e-15)
    r_exact, g_exact = ob.radial_average_periodic(g, exact=True)
    assert r_exact[0] == 0.0 and g_exact[0] == g[0, 0]
    assert r_exact[1] == 1.0 and g_exact[1] == pytest.approx(
        np.mean([g[1, 0], g[5, 0], g[0, 1], g[0, 7]])
    )
    assert r_exact[-1] == pytest.approx(5.0)  # (3, 4)


def brute_paper(configs, r_max, connected=False):
    """The authors' loop: every unordered pair of distinct sites at Euclidean distance
    < r_max (no wrap), each pair's ensemble average, then the mean over pairs per distance."""
    n, ly, lx = configs.shape
    c = configs.astype(float)
    sites = [(y, x) for y in range(ly) for x in range(lx)]
    groups = {}
    for i, (y1, x1) in enumerate(sites):
        for y2, x2 in sites[i + 1 :]:
            d2 = (y1 - y2) ** 2 + (x1 - x2) ** 2
            if d2 < r_max * r_max:
                groups.setdefault(d2, []).append(np.mean(c[:, y1, x1] * c[:, y2, x2]))
    keys = sorted(groups)
    g = np.array([np.mean(groups[k]) for k in keys])
    if connected:
        g -= c.mean() ** 2
    return np.sqrt(np.array(keys, dtype=float)), g


@pytest.mark.parametrize("L", [6, 8])
@pytest.mark.parametrize("connected", [False, True])
def test_correlation_paper_against_all_pairs(L, connected):
    rng = np.random.default_rng(22 + L)
    for configs in (random_spins(rng, 5, L, L), block_like(rng, 3, L, L)):
        r, g = ob.correlation_paper(configs, connected=connected)
        r_ref, g_ref = brute_paper(configs, L / 2, connected)
        np.testing.assert_allclose(r, r_ref, atol=1e-14)
        np.testing.assert_allclose(g, g_ref, atol=1e-13)
        assert r.max() < L / 2


@settings(max_examples=25, deadline=None)
@given(
    st.integers(2, 6),
    st.integers(2, 6),
    st.integers(1, 3),
    st.floats(0.5, 8.0),
    st.integers(0, 2**32 - 1),
)
def test_correlation_paper_any_shape(ly, lx, n, r_max, seed):
    configs = random_spins(np.random.default_rng(seed), n, ly, lx)
    r_ref, g_ref = brute_paper(configs, r_max)
    if r_ref.size == 0:
        r, g = ob.correlation_paper(configs, r_max=r_max)
        assert r.size == 0 and g.size == 0
        return
    r, g = ob.correlation_paper(configs, r_max=r_max)
    np.testing.assert_allclose(r, r_ref, atol=1e-14)
    np.testing.assert_allclose(g, g_ref, atol=1e-13)


def test_correlation_paper_ordered_and_bad_r_max():
    up = np.ones((2, 8, 8), dtype=np.int8)
    r, g = ob.correlation_paper(up)
    np.testing.assert_allclose(g, 1.0, atol=1e-12)
    _, gc = ob.correlation_paper(up, connected=True)
    np.testing.assert_allclose(gc, 0.0, atol=1e-12)
    with pytest.raises(UsageError):
        ob.correlation_paper(up, r_max=-1.0)


def test_xi_second_moment_plane_wave():
    # s = a + b cos(2 pi x / L): chi = a^2 N and F = b^2 N / 8 exactly.
    L, a, b = 16, 0.3, 0.5
    x = np.arange(L)
    s = np.broadcast_to(a + b * np.cos(2 * np.pi * x / L), (L, L))
    expected = math.sqrt(8 * a * a / (b * b) - 1) / (2 * math.sin(math.pi / L))
    assert ob.correlation_length_second_moment(s) == pytest.approx(expected, rel=1e-12)
    # Rotating by 90 degrees changes nothing (both axes averaged).
    assert ob.correlation_length_second_moment(s.T.copy()) == pytest.approx(expected, rel=1e-12)
    # Connected: chi = N (<m^2> - <m>^2) = 0 for one configuration, so xi is NaN.
    assert math.isnan(ob.correlation_length_second_moment(s, connected=True))


def test_xi_second_moment_from_periodic_correlator():
    rng = np.random.default_rng(30)
    L = 12
    # Smooth random fields: correlated, so xi is well above zero.
    noise = rng.normal(size=(40, L, L))
    k = np.fft.fftfreq(L) * 2 * np.pi
    filt = 1.0 / (1.0 + 4.0 * (k[:, None] ** 2 + k[None, :] ** 2))
    fields = np.fft.ifft2(np.fft.fft2(noise) * filt).real
    for connected in (False, True):
        g = ob.correlation_periodic(fields, connected=connected)
        rx = np.arange(L)
        chi = g.sum()
        f = (
            0.5 * (g * np.cos(2 * np.pi * rx[None, :] / L)).sum()
            + 0.5 * (g * np.cos(2 * np.pi * rx[:, None] / L)).sum()
        )
        expected = math.sqrt(chi / f - 1) / (2 * math.sin(math.pi / L))
        got = ob.correlation_length_second_moment(fields, connected=connected)
        assert got == pytest.approx(expected, rel=1e-10)
        assert got > 1.0
    est = ob.correlation_length_second_moment(fields, with_error=True, n_bins=10)
    assert isinstance(est, ob.Estimate)
    assert est.mean == pytest.approx(ob.correlation_length_second_moment(fields))
    assert 0 < est.error < est.mean
    with pytest.raises(UsageError):
        ob.correlation_length_second_moment(np.ones((2, 4, 6)))


def brute_epsilon(c, direction):
    n, ly, lx = c.shape
    out = np.zeros((n, ly, lx))
    for k in range(n):
        for y in range(ly):
            for x in range(lx):
                down = c[k, y, x] * c[k, (y + 1) % ly, x]
                right = c[k, y, x] * c[k, y, (x + 1) % lx]
                out[k, y, x] = {"both": (down + right) / 2, "axis0": down, "axis1": right}[
                    direction
                ]
    return out


@pytest.mark.parametrize("direction", ["both", "axis0", "axis1"])
def test_energy_operator_against_brute_force(direction):
    rng = np.random.default_rng(31)
    configs = random_spins(rng, 4, 8, 8).astype(float)
    eps = brute_epsilon(configs, direction)
    np.testing.assert_allclose(ob.energy_operator_field(configs, direction), eps, atol=1e-15)
    centred = eps - eps.mean()
    r, g = ob.energy_operator_correlation(configs, "paper", direction=direction)
    r_ref, g_ref = brute_paper(centred, 4.0)
    np.testing.assert_allclose(r, r_ref, atol=1e-14)
    np.testing.assert_allclose(g, g_ref, atol=1e-13)
    r, g = ob.energy_operator_correlation(configs, "periodic", direction=direction)
    r_ref, g_ref = ob.radial_average_periodic(brute_periodic(centred, False))
    np.testing.assert_array_equal(r, r_ref)
    np.testing.assert_allclose(g, g_ref, atol=1e-13)
    # Energy-operator mean is the bond energy: -<eps> (both directions) = e / 2.
    if direction == "both":
        assert eps.mean() == pytest.approx(-ob.energy_per_spin(configs).mean() / 2)


def test_energy_operator_rejects_bad_options():
    c = np.ones((2, 4, 4))
    with pytest.raises(UsageError):
        ob.energy_operator_correlation(c, convention="wrapped")
    with pytest.raises(UsageError):
        ob.energy_operator_correlation(c, direction="diagonal")
    with pytest.raises(UsageError):
        ob.energy_operator_field(c, direction="diagonal")


# ---------------------------------------------------------------------------------------------
# Error bars against the scatter of repeated independent runs (see tests/error_bars.py)

REPEATS = 200


def ar1_batch(rng, phi, repeats, n):
    """`repeats` independent stationary AR(1) series of length n, unit innovations, (R, n)."""
    eta = rng.normal(size=(repeats, n))
    x = np.empty((repeats, n))
    x[:, 0] = eta[:, 0] / math.sqrt(1 - phi * phi)
    for t in range(1, n):
        x[:, t] = phi * x[:, t - 1] + eta[:, t]
    return x


def test_repeats_binning_and_jackknife_error_of_an_ar1_mean():
    """phi = 0.95 (tau_int = 19.5), 4000 samples: the automatic bins (>= 20 tau long) must
    absorb the autocorrelation. The naive error is sqrt(2 tau) = 6 times too small, and bins
    only ~tau long (e.g. MAX_AUTO_BINS bins of 20) are still ~40% too small. Mean known: 0."""
    rng = np.random.default_rng(101)
    phi, n = 0.95, 4000
    x = ar1_batch(rng, phi, REPEATS, n)
    means = x.mean(axis=1)
    binning = [ob.binning_error(s) for s in x]
    jack = [ob.jackknife(lambda a: a, s) for s in x]
    assert_error_matches_scatter(means, binning, truth=0.0, label="binning")
    assert_error_matches_scatter([j[0] for j in jack], [j[1] for j in jack], truth=0.0,
                                 label="jackknife")
    # The scatter is the exact AR(1) error of the mean (checks the data, not the code).
    s, _, tol = scatter_vs_error(means, binning)
    assert abs(s - ar1_error_of_mean(phi, n)) < tol


def test_repeats_jackknife_error_of_a_ratio_of_correlated_means():
    """<x> / <y> with x and y sharing one autocorrelated noise source: the jackknife must carry
    the covariance (ignoring it would overestimate the error about 3x here) and the
    autocorrelation. True value 1 / 2."""
    rng = np.random.default_rng(102)
    phi, n = 0.8, 4000
    u = ar1_batch(rng, phi, REPEATS, n)
    w = ar1_batch(rng, phi, REPEATS, n)
    x = 1.0 + 0.05 * u
    y = 2.0 + 0.1 * (0.9 * u + math.sqrt(1 - 0.81) * w)
    res = [ob.jackknife(lambda a, b: a / b, xs, ys) for xs, ys in zip(x, y, strict=True)]
    assert_error_matches_scatter([r[0] for r in res], [r[1] for r in res], truth=0.5,
                                 label="ratio")


@pytest.mark.parametrize(("phi_e", "phi_m", "seed"), [(0.95, 0.5, 103), (0.5, 0.97, 104)])
def test_repeats_thermo_from_series_error_bars(phi_e, phi_m, seed):
    """Every tau_int-corrected error bar of thermo_from_series against the scatter over
    independent autocorrelated series of 4000 samples. e: Gaussian AR(1), so <e> and the
    specific heat N var(e) / T^2 are known exactly; m = tanh of another AR(1), nonlinear, for
    |m|, chi, <m^2> and the Binder cumulant. Either the energy (tau 19.5) or |m| (tau ~16)
    is the slow series: the bins must follow the slower one in both cases."""
    rng = np.random.default_rng(seed)
    n, T, N = 4000, 2.5, 64
    # E[biased sample variance] = variance - variance of the mean (exact for AR(1)).
    var_e = 0.05**2 * (1 / (1 - phi_e**2) - ar1_error_of_mean(phi_e, n) ** 2)
    e = -1.5 + 0.05 * ar1_batch(rng, phi_e, REPEATS, n)
    m = np.tanh(0.4 * ar1_batch(rng, phi_m, REPEATS, n))
    outs = [ob.thermo_from_series(es, ms, T, N) for es, ms in zip(e, m, strict=True)]
    truths = {"energy_per_spin": -1.5, "specific_heat": N * var_e / T**2,
              "magnetisation": 0.0}
    for key in ("energy_per_spin", "specific_heat", "magnetisation", "abs_magnetisation",
                "m2", "susceptibility", "susceptibility_m2", "binder"):
        assert_error_matches_scatter([o[key].mean for o in outs], [o[key].error for o in outs],
                                     truth=truths.get(key), label=key)


def test_repeats_second_moment_correlation_length_error():
    """xi_2 with its jackknife error, over 200 independent sets of 1000 configurations of a
    periodic Gaussian field with spectrum 1 / (khat^2 + mu^2) on 8 x 8. For that spectrum
    chi / F - 1 = khat_min^2 / mu^2 with khat_min = 2 sin(pi / L), so xi_2 = 1 / mu exactly;
    the mean estimate must agree and the error must match the scatter."""
    L, n, mu2 = 8, 1000, 0.3
    k = 2 * np.pi * np.arange(L) / L
    amp = 1.0 / np.sqrt(4 * np.sin(k / 2)[:, None] ** 2 + 4 * np.sin(k / 2)[None, :] ** 2 + mu2)
    rng = np.random.default_rng(105)
    res = [ob.correlation_length_second_moment(
        np.fft.ifft2(np.fft.fft2(rng.normal(size=(n, L, L))) * amp).real, with_error=True)
        for _ in range(REPEATS)]
    assert_error_matches_scatter([r.mean for r in res], [r.error for r in res],
                                 truth=1 / math.sqrt(mu2), label="xi_2")
