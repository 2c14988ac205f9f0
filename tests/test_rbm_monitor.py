"""RBM monitors against brute-force enumeration over both layers, and AIS against exact log Z.

The monitor reads only W / visible_bias / hidden_bias / units, so most tests use a plain
namespace with those attributes; the tests marked with rgflow.core.rbm check consistency with the
RBM class itself."""

import itertools
import math
from types import SimpleNamespace

import numpy as np
import pytest

from rgflow.core import rbm_monitor as mon
from rgflow.core.errors import UsageError
from rgflow.core.rng import PyXoshiro, new_states

UNITS = ("spin", "binary")


def make_rbm(n_v, n_h, units, seed, scale=0.5):
    rng = np.random.default_rng(seed)
    return SimpleNamespace(
        W=rng.normal(0.0, scale, (n_v, n_h)),
        visible_bias=rng.normal(0.0, 0.3, n_v),
        hidden_bias=rng.normal(0.0, 0.3, n_h),
        units=units,
    )


def values(units):
    return (-1.0, 1.0) if units == "spin" else (0.0, 1.0)


def all_configs(n, units):
    return np.array(list(itertools.product(values(units), repeat=n)), dtype=np.float64)


def joint_log_weights(rbm):
    """-E(v, h) for every (v, h), shape (2**n_v, 2**n_h), straight from the energy."""
    V = all_configs(rbm.W.shape[0], rbm.units)
    H = all_configs(rbm.W.shape[1], rbm.units)
    return (V @ rbm.visible_bias)[:, None] + (H @ rbm.hidden_bias)[None, :] + V @ rbm.W @ H.T


def logsumexp(x, axis=None):
    m = np.max(x, axis=axis, keepdims=True)
    out = m + np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True))
    return out.squeeze() if axis is None else np.squeeze(out, axis=axis)


def random_visible(rng, n, n_v, units):
    v = rng.integers(0, 2, size=(n, n_v)).astype(np.float64)
    return 2 * v - 1 if units == "spin" else v


# ----------------------------------------------------------------------------- exact


@pytest.mark.parametrize("units", UNITS)
@pytest.mark.parametrize("shape", [(6, 4), (4, 6), (5, 5), (1, 3)])
def test_exact_log_partition_matches_brute_force_over_both_layers(units, shape):
    rbm = make_rbm(*shape, units, seed=10 * shape[0] + shape[1])
    brute = float(logsumexp(joint_log_weights(rbm)))
    assert mon.exact_log_partition(rbm) == pytest.approx(brute, rel=1e-12, abs=1e-12)


@pytest.mark.parametrize("units", UNITS)
def test_enumerating_visible_or_hidden_gives_the_same_log_z(units):
    # The transposed RBM (layers swapped) has the same Z; with 7 x 11 the function enumerates
    # the visible layer, with 11 x 7 the hidden one.
    rbm = make_rbm(7, 11, units, seed=5, scale=0.8)
    swapped = SimpleNamespace(
        W=rbm.W.T.copy(), visible_bias=rbm.hidden_bias, hidden_bias=rbm.visible_bias,
        units=units,
    )
    assert mon.exact_log_partition(rbm) == pytest.approx(
        mon.exact_log_partition(swapped), rel=1e-12
    )


@pytest.mark.parametrize("units", UNITS)
def test_exact_log_partition_is_chunked_correctly(units, monkeypatch):
    rbm = make_rbm(12, 9, units, seed=2)
    whole = mon.exact_log_partition(rbm)
    monkeypatch.setattr(mon, "_CHUNK_ELEMENTS", 100)  # many small chunks, last one partial
    assert mon.exact_log_partition(rbm) == pytest.approx(whole, rel=1e-13)


@pytest.mark.parametrize("units", UNITS)
def test_exact_log_likelihood_is_normalised_and_matches_brute_force(units):
    rbm = make_rbm(6, 5, units, seed=11)
    V = all_configs(6, units)
    joint = joint_log_weights(rbm)
    brute_log_p = logsumexp(joint, axis=1) - logsumexp(joint)
    per_config = np.array([mon.exact_log_likelihood(rbm, v[None]) for v in V])
    np.testing.assert_allclose(per_config, brute_log_p, rtol=0, atol=1e-12)
    assert float(logsumexp(per_config)) == pytest.approx(0.0, abs=1e-12)  # Σ_v P(v) = 1
    assert mon.exact_log_likelihood(rbm, V[:7]) == pytest.approx(brute_log_p[:7].mean())


def test_exact_log_partition_refuses_two_large_layers():
    rbm = make_rbm(21, 22, "spin", seed=0)
    with pytest.raises(UsageError, match="ais_log_partition"):
        mon.exact_log_partition(rbm)


@pytest.mark.parametrize("units", UNITS)
def test_free_energy_matches_marginalised_energy(units):
    rbm = make_rbm(5, 4, units, seed=3)
    V = all_configs(5, units)
    np.testing.assert_allclose(
        mon.free_energy(rbm, V), -logsumexp(joint_log_weights(rbm), axis=1), atol=1e-12
    )


# ----------------------------------------------------------------------------- PLL


def brute_conditional_log_probs(rbm, v):
    """log P(v_i | v_-i) for every sample and unit from the joint over (v_i, h)."""
    vals = values(rbm.units)
    out = np.empty(v.shape)
    H = all_configs(rbm.W.shape[1], rbm.units)
    for s, row in enumerate(v):
        for i in range(v.shape[1]):
            log_marg = {}
            for x in vals:
                w = row.copy()
                w[i] = x
                e = w @ rbm.visible_bias + H @ rbm.hidden_bias + (w @ rbm.W) @ H.T
                log_marg[x] = logsumexp(e)
            out[s, i] = log_marg[row[i]] - logsumexp(np.array(list(log_marg.values())))
    return out


@pytest.mark.parametrize("units", UNITS)
def test_pll_exact_matches_brute_force_conditionals(units):
    rbm = make_rbm(5, 4, units, seed=21, scale=1.0)
    v = random_visible(np.random.default_rng(0), 9, 5, units)
    brute = brute_conditional_log_probs(rbm, v)
    assert mon.pseudo_log_likelihood(rbm, v) == pytest.approx(brute.mean(), rel=1e-12)


@pytest.mark.parametrize("units", UNITS)
def test_pll_exact_does_not_depend_on_thread_count(units):
    import numba

    rbm = make_rbm(16, 7, units, seed=4)
    v = random_visible(np.random.default_rng(1), 13, 16, units)
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = mon.pseudo_log_likelihood(rbm, v)
        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
        many = mon.pseudo_log_likelihood(rbm, v)
    finally:
        numba.set_num_threads(before)
    assert one == many


@pytest.mark.parametrize("units", UNITS)
def test_pll_stochastic_is_the_conditional_at_the_drawn_unit(units):
    rbm = make_rbm(6, 4, units, seed=8, scale=1.0)
    v = random_visible(np.random.default_rng(2), 11, 6, units)
    brute = brute_conditional_log_probs(rbm, v)
    state = new_states(17)
    ref = PyXoshiro(state)
    idx = [min(int(ref.next_double() * 6), 5) for _ in range(11)]
    got = mon.pseudo_log_likelihood(rbm, v, state)
    assert got == pytest.approx(brute[np.arange(11), idx].mean(), rel=1e-12)
    np.testing.assert_array_equal(state, ref.state())  # state advanced in place


def test_pll_is_at_most_zero_and_improves_for_a_fitting_model():
    # Visible biases pointing at the data make every conditional more likely.
    v = np.ones((4, 8))
    flat = SimpleNamespace(W=np.zeros((8, 3)), visible_bias=np.zeros(8),
                           hidden_bias=np.zeros(3), units="spin")
    fit = SimpleNamespace(W=np.zeros((8, 3)), visible_bias=np.full(8, 2.0),
                          hidden_bias=np.zeros(3), units="spin")
    assert mon.pseudo_log_likelihood(flat, v) == pytest.approx(math.log(0.5))
    assert mon.pseudo_log_likelihood(fit, v) == pytest.approx(-math.log1p(math.exp(-4.0)))


# ----------------------------------------------------------------------------- recon, FE gap


@pytest.mark.parametrize("units", UNITS)
def test_reconstruction_error_formula(units):
    rbm = make_rbm(7, 3, units, seed=9)
    v = random_visible(np.random.default_rng(3), 5, 7, units)
    if units == "spin":
        h = np.tanh(rbm.hidden_bias + v @ rbm.W)
        r = np.tanh(rbm.visible_bias + h @ rbm.W.T)
    else:
        h = 1 / (1 + np.exp(-(rbm.hidden_bias + v @ rbm.W)))
        r = 1 / (1 + np.exp(-(rbm.visible_bias + h @ rbm.W.T)))
    assert mon.reconstruction_error(rbm, v) == pytest.approx(np.mean((v - r) ** 2), rel=1e-12)


def test_free_energy_gap_zero_on_identical_sets_and_signed():
    rbm = make_rbm(8, 4, "spin", seed=1, scale=0.1)
    rbm.visible_bias = np.full(8, 1.0)  # favours +1 spins
    v = random_visible(np.random.default_rng(4), 10, 8, "spin")
    assert mon.free_energy_gap(rbm, v, v) == 0.0
    up, down = np.ones((3, 8)), -np.ones((5, 8))
    gap = mon.free_energy_gap(rbm, up, down)
    assert gap > 0  # held-out data the model finds less probable -> positive gap
    assert mon.free_energy_gap(rbm, down, up) == pytest.approx(-gap)
    f = mon.free_energy(rbm, np.vstack([up[:1], down[:1]]))
    assert gap == pytest.approx(f[1] - f[0])


def test_bad_batch_shape_is_a_usage_error():
    rbm = make_rbm(8, 4, "spin", seed=1)
    with pytest.raises(UsageError, match="expected shape"):
        mon.reconstruction_error(rbm, np.ones((3, 7)))
    with pytest.raises(UsageError, match="units"):
        mon.free_energy(SimpleNamespace(**{**vars(rbm), "units": "gauss"}), np.ones((1, 8)))


# ----------------------------------------------------------------------------- AIS


def test_ais_is_exact_for_an_independent_model():
    # W = 0: the path is constant, every weight is 1, log Z exact and the error exactly 0.
    rbm = make_rbm(10, 6, "spin", seed=0)
    rbm.W = np.zeros((10, 6))
    log_z, err = mon.ais_log_partition(rbm, 20, 50, new_states(1))
    assert log_z == pytest.approx(mon.exact_log_partition(rbm), rel=1e-13)
    assert err == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("units", UNITS)
@pytest.mark.parametrize("shape,seed", [((12, 8), 101), ((30, 16), 102)])
def test_ais_agrees_with_exact_log_z(units, shape, seed):
    # 30 x 16 is exact by enumerating the 2**16 hidden states. Tolerance: 3 reported standard
    # errors plus err**2 / 2, the second-order (Jensen) downward bias of the log of a mean of
    # weights; both come from the run itself. (Over 30 seeds of these models the z-scores had
    # mean ~0 and std 0.7-1.0, so the reported error is well calibrated here.)
    rbm = make_rbm(*shape, units, seed=seed)
    exact = mon.exact_log_partition(rbm)
    log_z, err = mon.ais_log_partition(rbm, 100, 1000, new_states(seed))
    assert 0 < err < 0.2
    assert abs(log_z - exact) <= 3 * err + err**2 / 2


def test_ais_base_rate_start_and_reproducibility():
    rbm = make_rbm(12, 8, "binary", seed=7)
    data = random_visible(np.random.default_rng(5), 50, 12, "binary")
    base = mon.base_rate_visible_bias(data, "binary")
    p = 1 / (1 + np.exp(-base))
    np.testing.assert_allclose(p, (data.sum(axis=0) + 1) / 52)
    s1, s2 = new_states(9), new_states(9)
    r1 = mon.ais_log_partition(rbm, 50, 500, s1, base_visible_bias=base)
    r2 = mon.ais_log_partition(rbm, 50, 500, s2, base_visible_bias=base)
    assert r1 == r2 and np.array_equal(s1, s2)
    assert not np.array_equal(s1, new_states(9))  # advanced
    assert abs(r1[0] - mon.exact_log_partition(rbm)) <= 3 * r1[1] + r1[1] ** 2 / 2


def test_ais_argument_errors():
    rbm = make_rbm(4, 3, "spin", seed=0)
    with pytest.raises(UsageError, match="state"):
        mon.ais_log_partition(rbm, 10, 10)
    with pytest.raises(UsageError, match="state"):
        mon.ais_log_partition(rbm, 10, 10, np.zeros(4, dtype=np.int64))
    with pytest.raises(UsageError, match="chains"):
        mon.ais_log_partition(rbm, 1, 10, new_states(0))
    with pytest.raises(UsageError, match="betas"):
        mon.ais_log_partition(rbm, 10, state=new_states(0), betas=[0.0, 0.7, 0.5, 1.0])


# ----------------------------------------------------------------------------- monitor


def test_monitor_small_model_includes_exact_ll():
    rbm = make_rbm(12, 6, "spin", seed=3)
    rng = np.random.default_rng(6)
    train, held = random_visible(rng, 20, 12, "spin"), random_visible(rng, 10, 12, "spin")
    out = mon.monitor(rbm, train, held, new_states(0))
    assert out["pll_method"] == "exact" and out["pll_samples"] == 20
    assert out["reconstruction_error"] == mon.reconstruction_error(rbm, train)
    assert out["pll"] == mon.pseudo_log_likelihood(rbm, train)
    assert out["free_energy_gap"] == mon.free_energy_gap(rbm, train, held)
    assert out["log_z"] == mon.exact_log_partition(rbm)
    assert out["exact_ll"] == pytest.approx(mon.exact_log_likelihood(rbm, train))
    assert out["exact_ll_heldout"] == pytest.approx(mon.exact_log_likelihood(rbm, held))
    # over the enumeration budget (2**6 * 12 terms): no exact numbers
    out = mon.monitor(rbm, train, held, new_states(0), exact_budget=2**6 * 12 - 1)
    assert out["log_z"] is None and out["exact_ll"] is None


def test_monitor_large_model_is_cheap():
    rbm = make_rbm(64, 32, "binary", seed=3)
    rng = np.random.default_rng(7)
    train = random_visible(rng, 40, 64, "binary")
    out = mon.monitor(rbm, train, None, new_states(0), pll_exact_budget=1000)
    assert out["pll_method"] == "stochastic" and out["pll_samples"] == 40
    assert out["exact_ll"] is None and out["log_z"] is None
    assert out["free_energy_gap"] is None
    assert out["pll"] == mon.pseudo_log_likelihood(rbm, train, new_states(0))
    # A budget for 35 configurations: exact on the first 35 of them.
    out = mon.monitor(rbm, train, train[:5], new_states(0), pll_exact_budget=64 * 32 * 35)
    assert out["pll_method"] == "exact" and out["pll_samples"] == 35
    assert out["pll"] == mon.pseudo_log_likelihood(rbm, train[:35])
    assert out["free_energy_gap"] == mon.free_energy_gap(rbm, train, train[:5])


# ----------------------------------------------------------------------------- rgflow.core.rbm


def test_consistent_with_core_rbm():
    rbm_mod = pytest.importorskip("rgflow.core.rbm")
    for units in UNITS:
        rbm = rbm_mod.RBM.create(9, 5, units=units, dtype=np.float64, seed_or_state=3,
                                 weight_scale=0.5)
        v = random_visible(np.random.default_rng(8), 6, 9, units)
        np.testing.assert_allclose(mon.free_energy(rbm, v), rbm_mod.free_energy(rbm, v),
                                   rtol=1e-12)
        recon = rbm_mod.visible_mean(rbm, rbm_mod.hidden_mean(rbm, v))
        assert mon.reconstruction_error(rbm, v) == pytest.approx(np.mean((v - recon) ** 2))
