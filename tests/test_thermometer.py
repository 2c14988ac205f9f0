"""Thermometers (rgflow.core.thermometer): exact inversions, statistical recovery of the temperature
of held-out configuration sets, classifier training, persistence."""

import math
from functools import lru_cache

import numpy as np
import pytest
from error_bars import assert_error_matches_scatter

from rgflow.core import thermometer as TH
from rgflow.core.errors import UsageError
from rgflow.core.exact import TC, enumerate_ising, onsager_energy_per_spin, onsager_magnetisation
from rgflow.core.npzio import atomic_write_npz, read_npz

# ---------------------------------------------------------------- exact sampling of L = 4


@lru_cache(maxsize=1)
def _l4_states():
    codes = np.arange(1 << 16, dtype=np.int64)
    bits = (codes[:, None] >> np.arange(16)) & 1
    s = (2 * bits - 1).astype(np.int8).reshape(-1, 4, 4)
    si = s.astype(np.int64)
    e = -(si * np.roll(si, -1, 1) + si * np.roll(si, -1, 2)).sum(axis=(1, 2))
    return s, e.astype(np.float64)


def exact_samples_l4(T, n, rng):
    """n independent configurations drawn from the exact Boltzmann distribution of the
    periodic 4 x 4 lattice (every one of the 65,536 states weighted exactly)."""
    s, e = _l4_states()
    w = np.exp(-(e - e.min()) / T)
    return s[rng.choice(e.size, size=n, p=w / w.sum())]


# ---------------------------------------------------------------- exact round trips


def test_from_exact_l4_inversion_round_trip():
    th = TH.ObservableThermometer.from_exact(4, np.arange(0.5, 6.01, 0.5))
    assert th.source == "exact_enumeration"
    for T in (0.8, 1.37, 2.0, TC, 2.9, 4.41, 5.5):
        ex = enumerate_ising(4, T)
        got = th.temperature_from_values(energy_per_spin=ex["energy_per_spin"],
                                         abs_m=ex["abs_magnetisation"])
        # Linear interpolation on a 2001-point grid: curvature error ~1e-5 in T.
        assert got["T_from_energy"] == pytest.approx(T, abs=1e-4)
        assert got["T_from_abs_m"] == pytest.approx(T, abs=1e-4)
        assert got["energy_range"] == 0 and got["abs_m_range"] == 0


def test_from_exact_onsager_round_trip_and_label():
    th = TH.ObservableThermometer.from_exact(64, np.linspace(1.0, 5.0, 41), infinite_lattice=True)
    assert th.source == "onsager_infinite_lattice" and not th.use_abs_m
    for T in (1.3, 2.0, TC - 0.01, TC + 0.01, 3.7):
        got = th.temperature_from_values(energy_per_spin=onsager_energy_per_spin(T),
                                         abs_m=onsager_magnetisation(T))
        assert got["T_from_energy"] == pytest.approx(T, abs=1e-4)
        if T < TC:  # |m| = 0 above Tc carries no temperature information
            assert got["T_from_abs_m"] == pytest.approx(T, abs=1e-3)
    with pytest.raises(UsageError, match="enumeration"):
        TH.ObservableThermometer.from_exact(8, [1.0, 2.0])


def test_out_of_range_is_clipped_and_flagged():
    th = TH.ObservableThermometer.from_exact(4, np.linspace(1.5, 4.0, 11))
    ordered = np.ones((5, 4, 4), dtype=np.int8)
    ordered[::2] *= -1
    res = th.estimate(ordered)
    assert res["energy_range"] == "below" and res["abs_m_range"] == "below"
    assert res["T"] == 1.5 and res["combined_from"] == ["energy"]
    hot = np.random.default_rng(0).choice(np.array([-1, 1], np.int8), size=(400, 4, 4))
    res = th.estimate(hot)
    assert res["energy_range"] == "above" and res["T_from_energy"] == 4.0
    # A value inside the range is never flagged.
    mid = exact_samples_l4(2.5, 400, np.random.default_rng(1))
    res = th.estimate(mid)
    assert res["energy_range"] == "inside" and res["abs_m_range"] == "inside"
    assert res["combined_from"] == ["energy", "abs_m"]


def test_non_monotone_reference_is_pooled():
    t = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    e = np.array([-1.9, -1.7, -1.75, -1.3, -1.0])  # a noisy dip between 2 and 3
    m = np.array([0.9, 0.7, 0.5, 0.3, 0.2])
    err = np.full(5, 0.01)
    th = TH.ObservableThermometer.from_monte_carlo(t, e, err, m, err, L=4)
    # Equal weights pool the dip to -1.725 on [2, 3]: that value maps to the plateau's middle,
    # and its error covers the plateau.
    got = th.temperature_from_values(energy_per_spin=-1.725)
    assert got["T_from_energy"] == pytest.approx(2.5)
    T, err_T, flag, _ = th._e.estimate(-1.725, 0.0)
    assert T == pytest.approx(2.5) and err_T >= 0.5 and flag == 0
    assert th._e.err[1] == pytest.approx(0.01 / math.sqrt(2))
    # Strictly monotone stretches invert linearly.
    assert th.temperature_from_values(energy_per_spin=-1.15)["T_from_energy"] == pytest.approx(4.5)
    assert th.temperature_from_values(abs_m=0.4)["T_from_abs_m"] == pytest.approx(3.5)


# ---------------------------------------------------------------- statistical recovery (L = 4)


def test_observable_thermometer_exact_reference_pulls():
    """Sets of exactly sampled L = 4 configurations: the estimate is within 4 T_err of the
    true T for every set, and the pulls (T_est - T) / T_err have spread about 1, so the
    error bars are neither too small nor wildly too large."""
    th = TH.ObservableThermometer.from_exact(4, np.arange(0.5, 6.01, 0.25))
    rng = np.random.default_rng(20)
    pulls = {"T": [], "e": [], "m": []}
    for T in (1.5, TC, 3.0, 4.5):
        for _ in range(40):
            res = th.estimate(exact_samples_l4(T, 400, rng))
            assert abs(res["T"] - T) < 4 * res["T_err"]
            pulls["T"].append((res["T"] - T) / res["T_err"])
            pulls["e"].append((res["T_from_energy"] - T) / res["T_from_energy_err"])
            pulls["m"].append((res["T_from_abs_m"] - T) / res["T_from_abs_m_err"])
    # 160 pulls: the sample standard deviation of unit normals is 1 +- 0.056; allow 4.5 sigma.
    for key, p in pulls.items():
        assert 0.75 < np.std(p) < 1.25, key
        assert abs(np.mean(p)) < 4.5 / math.sqrt(len(p)), key


def test_observable_thermometer_independent_reference_l4():
    """Reference curves from an independent exact-sampling run (different seed, finite
    statistics, coarse grid), used through from_monte_carlo."""
    rng_ref = np.random.default_rng(21)
    grid = np.arange(1.0, 5.01, 0.25)
    e_m, e_e, m_m, m_e = [], [], [], []
    n_ref = 2000
    for T in grid:
        s = exact_samples_l4(T, n_ref, rng_ref)
        e, am = TH.energy_and_abs_m(s)
        e_m.append(e.mean())
        e_e.append(e.std(ddof=1) / math.sqrt(n_ref))
        m_m.append(am.mean())
        m_e.append(am.std(ddof=1) / math.sqrt(n_ref))
    th = TH.ObservableThermometer.from_monte_carlo(grid, e_m, e_e, m_m, m_e, L=4)
    ex_grid = enumerate_ising(4, grid)
    rng = np.random.default_rng(22)
    for T in (1.9, 2.6, 3.3):
        # Linear interpolation on the 0.25 grid is biased by the curvature of E(T): measure
        # that bias with the exact curve and require it to be small against the error bar.
        ex = enumerate_ising(4, T)
        bias_e = abs(np.interp(T, grid, ex_grid["energy_per_spin"]) - ex["energy_per_spin"])
        res = th.estimate(exact_samples_l4(T, 1000, rng))
        slope = (res["T_from_energy_err"] / math.hypot(res["energy_per_spin_err"],
                                                       np.interp(T, grid, e_e)))
        assert bias_e * slope < 0.5 * res["T_from_energy_err"]
        assert abs(res["T"] - T) < 4 * res["T_err"], (T, res)
        assert abs(res["T_from_energy"] - T) < 4 * res["T_from_energy_err"]
        assert abs(res["T_from_abs_m"] - T) < 4 * res["T_from_abs_m_err"]
        assert abs(res["disagreement_sigma"]) < 4


def test_per_configuration_matches_value_inversion():
    th = TH.ObservableThermometer.from_exact(4, np.linspace(1.0, 5.0, 17))
    s = exact_samples_l4(2.5, 50, np.random.default_rng(23))
    t = th.per_configuration(s)
    e, _ = TH.energy_and_abs_m(s)
    np.testing.assert_array_equal(t, th.temperature_from_values(energy_per_spin=e)["T_from_energy"])
    assert t.shape == (50,) and (t >= 1.0).all() and (t <= 5.0).all()
    with pytest.raises(UsageError, match="L=4"):
        th.per_configuration(np.ones((2, 8, 8), np.int8))
    with pytest.raises(UsageError):
        th.estimate(s[:1])


def test_observable_thermometer_state_round_trip(tmp_path):
    th = TH.ObservableThermometer.from_exact(4, np.linspace(1.0, 5.0, 9), n_dense=0)
    path = atomic_write_npz(tmp_path / "th.npz", th.state_arrays())
    arrays, _ = read_npz(path)
    th2 = TH.ObservableThermometer.from_state_arrays(arrays)
    s = exact_samples_l4(2.2, 100, np.random.default_rng(24))
    assert th2.estimate(s) == th.estimate(s)


# ---------------------------------------------------------------- Monte Carlo at L = 8


@pytest.fixture(scope="module")
def reference_l8():
    return TH.reference_curves(8, np.round(np.arange(1.5, 3.51, 0.1), 10), n_per_T=400, seed=11)


def test_reference_curves_against_enumeration():
    grid = np.array([1.5, 2.2, 3.0, 4.0])
    ref = TH.reference_curves(4, grid, n_per_T=500, seed=3)
    ex = enumerate_ising(4, grid)
    assert ref["L"] == 4 and ref["n_per_T"] == 500
    assert (np.abs(ref["e_mean"] - ex["energy_per_spin"]) < 4 * ref["e_err"]).all()
    assert (np.abs(ref["m_mean"] - ex["abs_magnetisation"]) < 4 * ref["m_err"]).all()
    assert (ref["tau_e"] >= 0.5).all() and (ref["tau_m"] >= 0.5).all()


def test_observable_thermometer_recovers_mc_temperature_l8(reference_l8):
    """Reference and held-out sets from two independent runs of rgflow.core.sampling
    (seeds 11, 12)."""
    from rgflow.core.sampling import SampleSpec, generate

    th = TH.ObservableThermometer.from_reference(reference_l8)
    temps = (1.75, 2.27, 2.95)
    spins, _, _ = generate(SampleSpec(L=8, temperatures=temps, n=500, seed=12))
    for k, T in enumerate(temps):
        res = th.estimate(spins[k])
        assert res["energy_range"] == "inside"
        assert abs(res["T"] - T) < 4 * res["T_err"], (T, res)
        assert abs(res["T_from_energy"] - T) < 4 * res["T_from_energy_err"], (T, res)
        assert abs(res["T_from_abs_m"] - T) < 4 * res["T_from_abs_m_err"], (T, res)
        # The combination is at least as precise as the energy estimate alone here.
        assert res["T_err"] <= res["T_from_energy_err"] * 1.0000001


# ---------------------------------------------------------------- classifier


def test_mlp_gradients_match_finite_differences():
    rng = np.random.default_rng(30)
    for act in TH.ACTIVATIONS:
        mlp = TH.MLPThermometer(n_hidden=5, activation=act, l2=0.01, dtype=np.float64)
        mlp._init_params(6, 4, rng)
        mlp.b1 += rng.normal(size=5)  # move relu kinks away from zero pre-activations
        x = rng.choice([-1.0, 1.0], size=(8, 6))
        y = rng.integers(0, 4, size=8)

        def objective(m=mlp, x=x, y=y):
            return m._loss_and_grads(x, y)[0] + 0.5 * m.l2 * ((m.W1**2).sum() + (m.W2**2).sum())

        _, grads = mlp._loss_and_grads(x, y)
        for p, g in zip((mlp.W1, mlp.b1, mlp.W2, mlp.b2), grads, strict=True):
            num = np.zeros_like(p)
            for idx in np.ndindex(p.shape):
                old = p[idx]
                p[idx] = old + 1e-6
                up = objective()
                p[idx] = old - 1e-6
                dn = objective()
                p[idx] = old
                num[idx] = (up - dn) / 2e-6
            np.testing.assert_allclose(g, num, rtol=1e-5, atol=1e-8, err_msg=act)


@pytest.fixture(scope="module")
def classifier_data():
    from rgflow.core.sampling import SampleSpec, generate

    temps = (1.0, 1.6, 2.2, 2.8, 3.4, 4.0)
    train, T, _ = generate(SampleSpec(L=8, temperatures=temps, n=600, seed=1, symmetrize=True))
    test, _, _ = generate(SampleSpec(L=8, temperatures=temps, n=300, seed=2, symmetrize=True))
    return train, test, T


def test_mlp_thermometer_on_monte_carlo(classifier_data, tmp_path):
    train, test, T = classifier_data
    n_t = T.size
    dT = 0.6
    x, y = TH.grouped_dataset(train)
    mlp = TH.MLPThermometer()
    res = mlp.fit(x, y, T, epochs=30, batch=50, lr=3e-3, holdout_fraction=0.25, seed=0)
    assert res["n_heldout"] == 6 * 150 and res["n_train"] == 6 * 450
    conf = np.array(res["confusion"])
    assert conf.sum() == res["n_heldout"]
    # Well above chance: chance is 1/6 with a binomial sd of 0.012 on 900 held-out samples.
    chance_sd = math.sqrt(res["chance"] * (1 - res["chance"]) / res["n_heldout"])
    assert res["heldout_accuracy"] > res["chance"] + 10 * chance_sd
    # Errors mostly land on a neighbouring temperature: random errors would do so for
    # 10/30 = 1/3 of them on this 6-point grid.
    assert res["neighbour_confusion"] > 0.5

    # The held-out confusion predicts the mean assigned temperature of each class and its
    # spread; its bias must be below one grid spacing, and independent test sets (seed 2)
    # must agree with the prediction within 4 combined standard errors.
    for k in range(n_t):
        row = conf[k] / conf[k].sum()
        mu = row @ T
        sd = math.sqrt(row @ (T - mu) ** 2)
        assert abs(mu - T[k]) < dT
        pred = mlp.predict_temperature(test[k])
        se = math.sqrt(pred.var(ddof=1) / pred.size + sd**2 / conf[k].sum())
        assert abs(pred.mean() - mu) < 4 * se + 1e-12, (k, pred.mean(), mu, se)
        assert abs(pred.mean() - T[k]) < dT

    hist = mlp.histogram(test[2])
    assert hist.sum() == test.shape[1] and hist.dtype == np.int64
    np.testing.assert_array_equal(
        hist, np.bincount(np.searchsorted(T, mlp.predict_temperature(test[2])), minlength=n_t))
    p = mlp.predict_proba(test[0])
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-6)
    tm = mlp.predict_temperature(test[0], method="mean")
    assert (tm >= T[0]).all() and (tm <= T[-1]).all()
    ev = mlp.evaluate(*TH.grouped_dataset(test))
    assert ev["accuracy"] > res["chance"] + 10 * chance_sd

    # Persistence: plain arrays through an npz, identical predictions.
    path = atomic_write_npz(tmp_path / "mlp.npz", mlp.state_arrays())
    arrays, _ = read_npz(path)
    mlp2 = TH.MLPThermometer.from_state_arrays(arrays)
    np.testing.assert_array_equal(mlp2.predict_proba(test[3]), mlp.predict_proba(test[3]))
    bad = dict(arrays)
    bad["W2"] = bad["W2"][:, :3]
    with pytest.raises(UsageError):
        TH.MLPThermometer.from_state_arrays(bad)


def test_mlp_fit_is_deterministic_per_seed(classifier_data):
    train, _, T = classifier_data
    x, y = TH.grouped_dataset(train[:, :100])
    runs = [TH.MLPThermometer(n_hidden=16).fit(x, y, T, epochs=2, seed=s)["loss"]
            for s in (5, 5, 6)]
    assert runs[0] == runs[1] and runs[0] != runs[2]


def test_mlp_rejects_bad_input():
    mlp = TH.MLPThermometer()
    x = np.ones((6, 4, 4), np.int8)
    with pytest.raises(UsageError):
        mlp.fit(x, np.array([0, 1, 2, 0, 1, 5]), [1.0, 2.0, 3.0])  # label out of range
    with pytest.raises(UsageError):
        mlp.fit(x, np.zeros(6, int), [2.0, 1.0])  # grid not increasing
    with pytest.raises(UsageError):
        mlp.predict_proba(x)  # not trained
    with pytest.raises(UsageError):
        TH.MLPThermometer(activation="softplus")


# ---------------------------------------------------------------- error bars over repeats

REPEATS = 200


@pytest.fixture(scope="module")
def l4_thermometers():
    """Both thermometers for L = 4: a classifier trained on exactly sampled configurations on
    a six-point grid, and observable matching against exact-enumeration curves."""
    grid = np.array([1.0, 1.6, 2.2, 2.8, 3.4, 4.0])
    rng = np.random.default_rng(501)
    train = np.stack([exact_samples_l4(T, 500, rng) for T in grid])
    mlp = TH.MLPThermometer(n_hidden=16)
    mlp.fit(*TH.grouped_dataset(train), grid, epochs=10, batch=50, lr=3e-3, seed=0)
    return mlp, TH.ObservableThermometer.from_exact(4, np.arange(0.5, 6.01, 0.25))


@pytest.mark.parametrize("T", [1.9, 2.7])
def test_repeats_measured_temperature_error_bars(l4_thermometers, T):
    """The pipeline's per-set thermometer readings (classifier mean temperature, observable-
    matching temperature, <|m|>) against the scatter over 200 independent sets of 100 exactly
    sampled L = 4 configurations: each reported error must match the observed scatter
    (tests/error_bars.py). A classifier error without its 1/sqrt(n) is 10x too large."""
    mlp, obs = l4_thermometers
    rng = np.random.default_rng(502)
    readings = [TH.measure_temperature(exact_samples_l4(T, 100, rng), mlp, obs)
                for _ in range(REPEATS)]
    exact_abs_m = float(enumerate_ising(4, T)["abs_magnetisation"])
    for key, truth in (("T_mlp", None), ("T_obs", T), ("abs_m", exact_abs_m)):
        assert_error_matches_scatter([r[key] for r in readings],
                                     [r[f"{key}_err"] for r in readings], truth=truth, label=key)


def test_repeats_reference_curve_errors_account_for_autocorrelation():
    """reference_from_spins on 200 independent Metropolis chains at L = 4 sampled every sweep
    (tau_int ~ 1.2 sweeps): its errors of E/N and <|m|>, inflated by sqrt(2 tau_int), must
    match the scatter of the chain means (without the inflation they are ~35% too small), and
    the means must agree with exact enumeration."""
    from rgflow.core.sampling import SampleSpec, generate

    T = 2.5
    spins, _, _ = generate(SampleSpec(L=4, temperatures=(T,) * REPEATS, n=500,
                                      algorithm="metropolis", seed=7, thermalize=200,
                                      spacing=1))
    ref = TH.reference_from_spins(spins)
    exact = enumerate_ising(4, T)
    # Autocorrelated enough that a missing sqrt(2 tau) (> 1.4) is beyond the ~20% resolution.
    assert ref["tau_e"].mean() > 1.0
    for key, truth in (("e", exact["energy_per_spin"]), ("m", exact["abs_magnetisation"])):
        assert_error_matches_scatter(ref[f"{key}_mean"], ref[f"{key}_err"], truth=float(truth),
                                     label=key)
