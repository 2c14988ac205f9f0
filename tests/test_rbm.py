"""core/rbm.py: kernels against plain numpy references fed the same random numbers, exact
results by enumeration of tiny RBMs, statistics with error bars computed here, resume."""

import dataclasses
import io
import itertools
import math

import numpy as np
import pytest

import rgflow.core.rbm as R
from rgflow.core.errors import UsageError
from rgflow.core.rbm_monitor import exact_log_likelihood
from rgflow.core.rng import DOUBLE_UNIT, PyXoshiro, new_states, py_splitmix_at


def _tiny_rbm(n_v, n_h, units, dtype=np.float32, scale=0.7, seed=0):
    rng = np.random.default_rng(seed)
    return R.RBM((rng.standard_normal((n_v, n_h)) * scale).astype(dtype),
                 (rng.standard_normal(n_v) * 0.3).astype(dtype),
                 (rng.standard_normal(n_h) * 0.3).astype(dtype), units)


def _all_states(n, units):
    states = np.array(list(itertools.product((-1.0, 1.0), repeat=n)))
    return states if units == "spin" else (states + 1) / 2


def _random_visible(rng, shape, units, dtype=np.float32):
    s = np.where(rng.random(shape) < 0.5, 1.0, -1.0)
    return (s if units == "spin" else (s + 1) / 2).astype(dtype)


def _logsumexp(x, axis=None):
    m = np.max(x, axis=axis, keepdims=True)
    return np.squeeze(m, axis=axis) + np.log(np.sum(np.exp(x - m), axis=axis))


# ---- activation ---------------------------------------------------------------------------
def test_rational_tanh_accuracy_and_symmetry():
    x = np.concatenate([np.linspace(-12, 12, 400_001), [0.0, 1e-30, 7.9053, 7.91, 50.0, 1e30]])
    x = np.concatenate([x, -x]).astype(np.float32)
    t = R.tanh_rational(x)
    assert t.dtype == np.float32
    assert np.abs(t - np.tanh(x.astype(np.float64))).max() < 4e-7
    assert np.array_equal(R.tanh_rational(-x), -t)  # exactly odd
    assert np.abs(t).max() <= 1.0
    assert R.tanh_rational(np.float32(0.0)) == 0.0


@pytest.mark.parametrize("units", R.UNITS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_mean_kernel_matches_numpy_activation(units, dtype):
    rng = np.random.default_rng(1)
    field = (rng.standard_normal((7, 33)) * 6).astype(dtype)
    bias = rng.standard_normal(33).astype(dtype)
    out = np.empty_like(field)
    R._mean_kernel(field, bias, np.dtype(dtype).type(1), units == "spin", out)
    mean, _ = R.activation_reference(field + bias, units)
    if dtype == np.float32:
        assert np.array_equal(out, mean)
    else:  # libm tanh vs numpy's tanh: allow the last bits
        np.testing.assert_allclose(out, mean, rtol=1e-14, atol=1e-15)


# ---- random numbers and sampling ----------------------------------------------------------
def _call_uniforms(py, shape):
    """One sampling call's uniforms, written from the definition: one xoshiro draw as the
    key, then entry t (row-major) is SplitMix64's output t of that key, top 53 bits."""
    key = py.next_u64()
    n = int(np.prod(shape))
    return np.array([(py_splitmix_at(key, t) >> 11) * DOUBLE_UNIT
                     for t in range(n)]).reshape(shape)


def test_uniforms_replay_the_generator():
    state = new_states(3)
    py = PyXoshiro(state)
    u = R.uniforms(state, (3, 5))
    assert u.shape == (3, 5) and u.dtype == np.float64
    assert np.array_equal(u, _call_uniforms(py, (3, 5)))
    assert np.array_equal(state, py.state())
    assert len(set(u.ravel())) == 15


def _reference_sample(p, py, units):
    u = _call_uniforms(py, p.shape)
    on, off = (1, -1) if units == "spin" else (1, 0)
    return np.where(u < p.astype(np.float64), on, off).astype(p.dtype)


@pytest.mark.parametrize("units", R.UNITS)
def test_sampling_kernels_bit_exact_one_key_per_call(units):
    rbm = _tiny_rbm(9, 6, units)
    rng = np.random.default_rng(2)
    v = _random_visible(rng, (4, 9), units)
    state = new_states(4)
    py = PyXoshiro(state)
    h = R.sample_hidden(rbm, v, state)
    _, p = R.activation_reference(v @ rbm.W + rbm.hidden_bias, units)
    assert np.array_equal(h, _reference_sample(p, py, units))
    v2 = R.sample_visible(rbm, h, state)
    _, p = R.activation_reference(h @ rbm.W.T + rbm.visible_bias, units)
    assert np.array_equal(v2, _reference_sample(p, py, units))
    assert np.array_equal(state, py.state())  # exactly one draw (the key) per call


def _formula_mean(x, units):
    """E[unit | input x] written from the definition, in float64: tanh(x) for +-1 units,
    the logistic function for 0/1 units (independent of the module's activation code)."""
    x = np.asarray(x, dtype=np.float64)
    return np.tanh(x) if units == "spin" else 1.0 / (1.0 + np.exp(-x))


@pytest.mark.parametrize("units", R.UNITS)
def test_sampled_means_agree_with_the_formula(units):
    """The sample mean of many draws matches E[h|v] = tanh(b + vW) (spin) or sigmoid(b + vW)
    (binary) computed here from the formula, and likewise for v given h: 5 sigma, sigma the
    binomial error of the mean from the formula's probability. The module's mean kernels must
    agree with the same formula."""
    rbm = _tiny_rbm(6, 5, units, scale=0.8)
    W, a, b = (x.astype(np.float64) for x in (rbm.W, rbm.visible_bias, rbm.hidden_bias))
    rng = np.random.default_rng(5)
    n = 20_000
    base_v = _random_visible(rng, (3, 6), units)
    base_h = _random_visible(rng, (3, 5), units)
    state = new_states(6)
    for base, sample, mean, field in (
            (base_v, R.sample_hidden, R.hidden_mean, base_v.astype(np.float64) @ W + b),
            (base_h, R.sample_visible, R.visible_mean, base_h.astype(np.float64) @ W.T + a)):
        draws = sample(rbm, np.repeat(base, n, axis=0), state).reshape(3, n, -1)
        allowed = (-1, 1) if units == "spin" else (0, 1)
        assert np.isin(draws, allowed).all()
        m = _formula_mean(field, units)
        np.testing.assert_allclose(mean(rbm, base), m, rtol=1e-6, atol=1e-6)
        var = 1 - m * m if units == "spin" else m * (1 - m)  # variance of one draw
        sigma = np.sqrt(var / n)
        assert np.all(np.abs(draws.mean(axis=1) - m) <= 5 * sigma + 1e-12)


# ---- free energy, flow --------------------------------------------------------------------
@pytest.mark.parametrize("units", R.UNITS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_free_energy_matches_brute_force_over_hidden(units, dtype):
    rbm = _tiny_rbm(5, 4, units, dtype=dtype, scale=1.5)
    v = _all_states(5, units)
    h = _all_states(4, units)
    W, a, b = (x.astype(np.float64) for x in (rbm.W, rbm.visible_bias, rbm.hidden_bias))
    neg_energy = (v @ a)[:, None] + (h @ b)[None, :] + v @ W @ h.T  # (n_v states, n_h states)
    F = R.free_energy(rbm, v.astype(dtype))
    assert F.dtype == np.float64
    np.testing.assert_allclose(-F, _logsumexp(neg_energy, axis=1), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("units", R.UNITS)
def test_rbm_flow_shape_start_and_determinism(units):
    rbm = _tiny_rbm(12, 8, units)
    v0 = _random_visible(np.random.default_rng(7), (5, 12), units)
    s1, s2, s3 = new_states(8), new_states(8), new_states(9)
    flow = R.rbm_flow(rbm, v0, 6, s1)
    assert flow.shape == (7, 5, 12) and flow.dtype == rbm.dtype
    assert np.array_equal(flow[0], v0)
    assert np.isin(flow, (-1, 1) if units == "spin" else (0, 1)).all()
    assert np.array_equal(flow, R.rbm_flow(rbm, v0, 6, s2))
    assert np.array_equal(s1, s2)
    assert not np.array_equal(flow, R.rbm_flow(rbm, v0, 6, s3))
    # draws: per step one key for h, one for v
    check = PyXoshiro(new_states(8))
    for _ in range(6 * 2):
        check.next_u64()
    assert np.array_equal(check.state(), s1)
    # mean field: no randomness, iterated conditional means
    before = s1.copy()
    mf = R.rbm_flow(rbm, v0, 3, s1, mean_field=True)
    assert np.array_equal(s1, before)
    v = v0
    for n in range(1, 4):
        v = R.visible_mean(rbm, R.hidden_mean(rbm, v))
        assert np.array_equal(mf[n], v)


def test_spins_to_visible():
    spins = np.array([[[1, -1], [-1, 1]], [[1, 1], [1, 1]]], dtype=np.int8)
    v = R.spins_to_visible(spins, "spin", np.float32)
    assert v.shape == (2, 4) and v.dtype == np.float32
    assert np.array_equal(v[0], [1, -1, -1, 1])
    b = R.spins_to_visible(spins.reshape(2, 4), "binary", np.float64)
    assert b.dtype == np.float64 and np.array_equal(b[0], [1, 0, 0, 1])
    with pytest.raises(UsageError):
        R.spins_to_visible(np.zeros((2, 4), np.int8), "spin")


def test_create_initialisation_statistics():
    rbm = R.RBM.create(512, 128, seed_or_state=11)
    w = rbm.W.astype(np.float64).ravel()
    n = w.size
    assert rbm.W.dtype == np.float32 and rbm.W.flags.c_contiguous
    assert not rbm.visible_bias.any() and not rbm.hidden_bias.any()
    assert abs(w.mean()) < 5 * 0.05 / math.sqrt(n)
    assert abs(w.std() - 0.05) < 5 * 0.05 / math.sqrt(2 * n)
    inside = np.mean(np.abs(w) < 0.05)  # normal: 68.27% within one sigma
    assert abs(inside - 0.682689) < 5 * math.sqrt(0.682689 * 0.317311 / n)
    assert np.array_equal(rbm.W, R.RBM.create(512, 128, seed_or_state=11).W)
    state = new_states(12)
    before = state.copy()
    r64 = R.RBM.create(4, 3, dtype=np.float64, seed_or_state=state)
    assert r64.dtype == np.float64 and not np.array_equal(state, before)  # advanced in place


# ---- one training step against a numpy reference ------------------------------------------
def _reference_trainer_steps(rbm, cfg, state, batches):
    """The documented algorithm in plain numpy, replaying the generator with PyXoshiro.
    It mirrors the engine's GEMMs (the gradient's stacked [batch; chains] layout) so they see
    the same operands: OpenBLAS gives bit-identical results for identical calls. PCD chains
    carry their hidden field (with its bias) from one step's model term to the next step's
    first hidden sample."""
    units, dt = rbm.units, rbm.dtype
    W, a, b = rbm.W.copy(), rbm.visible_bias.copy(), rbm.hidden_bias.copy()
    py = PyXoshiro(state)
    act = lambda z: R.activation_reference(z, units)  # noqa: E731
    chains = chain_field = None
    if cfg.persistent:
        chains = _reference_sample(np.full((cfg.n_chains, W.shape[0]), 0.5, dt), py, units)
        chain_field = chains @ W + b
    kinds = ("m", "v") if cfg.optimizer == "adam" else ("velocity",)
    mom = {(k, p): np.zeros_like(x) for p, x in (("W", W), ("a", a), ("b", b)) for k in kinds}
    for t, batch in enumerate(batches):
        B = len(batch)
        if cfg.persistent:
            C = len(chains)
            if cfg.fresh_chain_field:
                chain_field = chains @ W + b
            h_data = dt.type(1 / B) * act(batch @ W + b)[0]
            hs = _reference_sample(act(chain_field)[1], py, units)
            v_chain = chains
        else:
            C = B
            mean, p = act(batch @ W + b)
            h_data = dt.type(1 / B) * mean
            hs = _reference_sample(p, py, units)
        for sweep in range(cfg.k):
            if sweep > 0:
                hs = _reference_sample(act(v_chain @ W + b)[1], py, units)
            v_chain = _reference_sample(act(hs @ W.T + a)[1], py, units)
        chain_field = v_chain @ W + b
        h_model = dt.type(-1 / C) * act(chain_field)[0]
        V = np.concatenate([batch, v_chain])
        H = np.concatenate([h_data, h_model])
        weights = np.concatenate([np.full(B, 1 / B, dt), np.full(C, -1 / C, dt)])
        gb = np.zeros(H.shape[1], dt)
        for row in H:  # rows in order
            gb = gb + row
        grads = {"W": V.T @ H, "a": weights @ V, "b": gb}
        grads["W"] = grads["W"] - dt.type(cfg.l2) * W - dt.type(cfg.l1) * np.sign(W)
        lr = cfg.lr_at(t)
        params = {"W": W, "a": a, "b": b}
        for name, g in grads.items():
            p = params[name]
            if cfg.optimizer == "adam":
                b1, b2 = cfg.adam_betas
                n = t + 1
                lr_t = dt.type(lr * math.sqrt(1 - b2 ** n) / (1 - b1 ** n))
                eps_t = dt.type(cfg.adam_eps * math.sqrt(1 - b2 ** n))
                m = dt.type(b1) * mom["m", name] + dt.type(1 - b1) * g
                v = dt.type(b2) * mom["v", name] + dt.type(1 - b2) * (g * g)
                mom["m", name], mom["v", name] = m, v
                params[name] = p + lr_t * m / (np.sqrt(v) + eps_t)
            else:
                vel = dt.type(cfg.momentum) * mom["velocity", name] + dt.type(lr) * g
                mom["velocity", name] = vel
                params[name] = p + vel
        W, a, b = params["W"], params["a"], params["b"]
        if cfg.persistent:
            chains = v_chain
    return W, a, b, chains, mom, py.state()


CASES = [
    # units, optimizer, persistent, k, schedule, (l1, l2)
    ("spin", "adam", True, 1, "constant", (1e-3, 1e-2)),
    ("spin", "adam", True, 1, "constant", (0.0, 0.0)),  # the paper's settings
    ("spin", "adam", False, 1, "constant", (1e-3, 1e-2)),
    ("spin", "sgd", True, 1, "linear", (1e-3, 1e-2)),
    ("spin", "sgd", False, 1, "exp", (0.0, 1e-2)),
    ("binary", "adam", True, 1, "linear", (1e-3, 1e-2)),
    ("binary", "adam", False, 1, "constant", (1e-3, 0.0)),
    ("binary", "sgd", True, 1, "constant", (1e-3, 1e-2)),
    ("binary", "sgd", False, 1, "constant", (0.0, 0.0)),
    ("spin", "adam", True, 3, "constant", (1e-3, 1e-2)),
    ("binary", "sgd", False, 2, "constant", (1e-3, 1e-2)),
]
# PCD cases rerun with the chains' hidden field recomputed every step
FRESH_FIELD_CASES = [CASES[1], ("binary", "sgd", True, 2, "constant", (1e-3, 1e-2))]


@pytest.mark.parametrize(("units", "optimizer", "persistent", "k", "schedule", "decay", "fresh"),
                         [(*c, False) for c in CASES] + [(*c, True) for c in FRESH_FIELD_CASES])
def test_training_steps_bit_exact_against_numpy_reference(units, optimizer, persistent, k,
                                                          schedule, decay, fresh):
    rbm = _tiny_rbm(12, 7, units, scale=0.5)
    cfg = R.TrainConfig(k=k, persistent=persistent, n_chains=3, optimizer=optimizer, lr=0.05,
                        l1=decay[0], l2=decay[1], batch=5, lr_schedule=schedule,
                        total_steps=4, fresh_chain_field=fresh)
    rng = np.random.default_rng(3)
    batches = [_random_visible(rng, (5, 12), units) for _ in range(3)]
    state = new_states(13)
    W, a, b, chains, mom, ref_state = _reference_trainer_steps(rbm, cfg, state.copy(), batches)
    trainer = R.Trainer(rbm.copy(), cfg, state)
    for batch in batches:
        trainer.step(batch)
    assert trainer.steps_done == 3
    assert np.array_equal(trainer.rbm.W, W)
    assert np.array_equal(trainer.rbm.visible_bias, a)
    assert np.array_equal(trainer.rbm.hidden_bias, b)
    names = {"W": "W", "a": "visible_bias", "b": "hidden_bias"}
    for (kind, p), value in mom.items():
        assert np.array_equal(trainer.moments[f"{kind}_{names[p]}"], value), (kind, p)
    if persistent:
        assert trainer.chains.shape == (3, 12)
        assert np.array_equal(trainer.chains, chains)
    else:
        assert trainer.chains is None
    assert np.array_equal(trainer.state, ref_state)


def test_carried_chain_field_predates_the_last_update():
    rbm = _tiny_rbm(12, 7, "spin", scale=0.5)
    trainer = R.Trainer(rbm, R.TrainConfig(n_chains=3, lr=0.05, batch=5), new_states(24))
    rng = np.random.default_rng(23)
    for _ in range(3):
        trainer.step(_random_visible(rng, (5, 12), "spin"))
    current = trainer.chains @ trainer.rbm.W + trainer.rbm.hidden_bias
    assert not np.allclose(trainer.chain_field, current, rtol=0, atol=1e-6)


def test_carried_chain_field_matches_fresh_at_the_papers_learning_rate():
    """Carrying the chains' hidden field over an update (the default) must not change what
    training reaches at lr 1e-3: exact log-likelihood of a small RBM after training, paired
    over seeds (same start and random stream), within 5 standard errors of the differences."""
    n_v = 8
    rng = np.random.default_rng(12)
    protos = np.array([[1] * 4 + [-1] * 4, [-1] * 4 + [1] * 4, [1, -1] * 4], np.float32)
    data = protos[rng.integers(0, 3, 300)] * np.where(rng.random((300, n_v)) < 0.1, -1, 1)
    data = data.astype(np.float32)
    diffs, gains = [], []
    for seed in range(8):
        ll = {}
        for fresh in (False, True):
            rbm = R.RBM.create(n_v, 4, seed_or_state=seed)
            cfg = R.TrainConfig(batch=30, n_chains=30, fresh_chain_field=fresh)
            trainer = R.Trainer(rbm, cfg, new_states(100 + seed))
            start = exact_log_likelihood(rbm, data)
            for step in range(1000):
                i = step * 30 % 300
                trainer.step(data[i:i + 30], reconstruction=False)
            ll[fresh] = exact_log_likelihood(rbm, data)
        diffs.append(ll[False] - ll[True])
        gains.append(ll[True] - start)
    diffs = np.array(diffs)
    se = diffs.std(ddof=1) / np.sqrt(len(diffs))
    assert se > 0  # the two variants did train differently
    assert abs(diffs.mean()) <= 5 * se, (diffs.mean(), se)
    # not vacuous: training moved the likelihood by far more than the tolerance
    assert min(gains) > 100 * 5 * se, (gains, se)


def test_float64_training_step_against_numpy_reference():
    """float64 uses libm tanh in the kernels and numpy's tanh in the reference: equal up to
    the last bits; a sampled unit could only differ if u fell within ~1e-16 of p."""
    rbm = _tiny_rbm(10, 6, "spin", dtype=np.float64)
    cfg = R.TrainConfig(n_chains=4, batch=6, lr=0.05, l2=1e-2)
    batches = [_random_visible(np.random.default_rng(4), (6, 10), "spin", np.float64)] * 2
    state = new_states(14)
    W, a, b, chains, _, ref_state = _reference_trainer_steps(rbm, cfg, state.copy(), batches)
    trainer = R.Trainer(rbm.copy(), cfg, state)
    for batch in batches:
        trainer.step(batch)
    assert trainer.rbm.W.dtype == np.float64
    np.testing.assert_allclose(trainer.rbm.W, W, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(trainer.rbm.hidden_bias, b, rtol=1e-12, atol=1e-14)
    assert np.array_equal(trainer.chains, chains)
    assert np.array_equal(trainer.state, ref_state)


def test_folded_adam_equals_textbook_adam():
    """The kernel folds the bias corrections into lr_t and eps_t; check the algebra."""
    rng = np.random.default_rng(8)
    m, v = rng.standard_normal(100), rng.random(100)
    lr, b1, b2, eps, t = 1e-3, 0.9, 0.999, 1e-2, 7
    textbook = lr * (m / (1 - b1 ** t)) / (np.sqrt(v / (1 - b2 ** t)) + eps)
    lr_t = lr * math.sqrt(1 - b2 ** t) / (1 - b1 ** t)
    folded = lr_t * m / (np.sqrt(v) + eps * math.sqrt(1 - b2 ** t))
    np.testing.assert_allclose(folded, textbook, rtol=1e-12)


def test_reconstruction_error_and_flag():
    rbm = _tiny_rbm(10, 4, "spin")
    batch = _random_visible(np.random.default_rng(9), (8, 10), "spin")
    t1 = R.Trainer(rbm.copy(), R.TrainConfig(batch=8), new_states(15))
    t2 = R.Trainer(rbm.copy(), R.TrainConfig(batch=8), new_states(15))
    r1 = t1.step(batch)
    r2 = t2.step(batch, reconstruction=False)
    expected = np.mean((batch - R.visible_mean(rbm, R.hidden_mean(rbm, batch))) ** 2)
    assert r1.reconstruction_error == pytest.approx(expected, rel=1e-6)
    assert math.isnan(r2.reconstruction_error)
    assert r1.step == 1 and r1.lr == 1e-3
    assert np.array_equal(t1.rbm.W, t2.rbm.W)  # monitoring never changes the trajectory


# ---- gradients against exact enumeration --------------------------------------------------
def _exact_model_terms(rbm):
    """Exact E[v_i m_a(v)], E[v_i], E[m_a(v)] and their per-draw variances (m = E[h|v])."""
    v = _all_states(rbm.n_visible, rbm.units)
    logp = -R.free_energy(rbm, v)
    p = np.exp(logp - _logsumexp(logp))
    m = R.hidden_mean(rbm.copy(), v.astype(rbm.dtype)).astype(np.float64)
    terms = {"W": v[:, :, None] * m[:, None, :], "visible_bias": v, "hidden_bias": m}
    out = {}
    for name, x in terms.items():
        mean = np.tensordot(p, x, axes=1)
        out[name] = (mean, np.tensordot(p, x * x, axes=1) - mean * mean)
    return out


@pytest.mark.parametrize("units", R.UNITS)
@pytest.mark.parametrize("persistent", [False, True])
def test_model_term_converges_to_exact_expectation(units, persistent):
    """Many independent chains, many Gibbs sweeps: model term = data term - gradient must
    match the exact model expectation within 5 standard errors (exact per-chain variance)."""
    rbm = _tiny_rbm(6, 4, units, dtype=np.float64, scale=0.9, seed=4)
    C = 4000
    cfg = R.TrainConfig(k=40, persistent=persistent, n_chains=C, batch=C if not persistent
                        else 50, optimizer="sgd", lr=1e-3)
    data = _random_visible(np.random.default_rng(10), (cfg.batch, 6), units, np.float64)
    trainer = R.Trainer(rbm.copy(), cfg, new_states(16))
    trainer.step(data, reconstruction=False)
    m_data = R.hidden_mean(rbm, data)
    data_terms = {"W": data.T @ m_data / len(data), "visible_bias": data.mean(axis=0),
                  "hidden_bias": m_data.mean(axis=0)}
    exact = _exact_model_terms(rbm)
    for name, (mean, var) in exact.items():
        estimate = data_terms[name] - trainer.gradients[name]
        se = np.sqrt(var / C)
        assert np.all(np.abs(estimate - mean) <= 5 * se + 1e-12), name
    # not vacuous: the data term is far from the model term at this tolerance
    mean, var = exact["W"]
    assert np.max(np.abs(data_terms["W"] - mean) / np.sqrt(var / C)) > 20


def test_trained_log_likelihood_reaches_the_generating_distribution():
    """Known answer: sites 0-3 are a symmetric mixture of all-up and all-down with 10% flips,
    sites 4-7 independent with magnetisations m_ind. With one hidden spin unit,
    P(v) ~ exp(a.v) 2 cosh(w.v) is exactly that distribution for w = atanh(0.8) on sites 0-3
    and a = atanh(m_ind) on sites 4-7, so PCD must reach its log-likelihood. The visible biases
    carry sites 4-7; the single hidden unit cannot stand in for them without giving up the
    mixture (without the visible-bias update the model stays ~0.8 nats short).

    Criterion: mean over the data of log p_model - log p_true (exact, by enumeration) is
    > -4 standard errors of that mean: the data cannot tell the trained model from the true
    distribution. (A maximum-likelihood fit sits slightly above 0 on its own training data.)"""
    units, n_v, n = "spin", 8, 2000
    rng = np.random.default_rng(12)
    m_ind = np.array([0.7, -0.5, 0.6, -0.7])
    sign = np.where(rng.random(n) < 0.5, 1, -1)
    mixture = sign[:, None] * np.where(rng.random((n, 4)) < 0.1, -1, 1)
    independent = np.where(rng.random((n, 4)) < (1 + m_ind) / 2, 1, -1)
    spins = np.concatenate([mixture, independent], axis=1)
    up = (mixture == 1).sum(axis=1)
    log_p_true = (np.log(0.5 * (0.9**up * 0.1 ** (4 - up) + 0.1**up * 0.9 ** (4 - up)))
                  + np.log((1 + m_ind * independent) / 2).sum(axis=1))
    data = R.spins_to_visible(spins.astype(np.int8), units, np.float32)
    all_v = _all_states(n_v, units)

    def log_p(rbm):
        return -R.free_energy(rbm, data) - _logsumexp(-R.free_energy(rbm, all_v))

    rbm = R.RBM.create(n_v, 1, units=units, seed_or_state=3)
    epochs, batch = 20, 100
    cfg = R.TrainConfig(batch=batch, n_chains=200, lr=1e-2, adam_eps=1e-8,
                        lr_schedule="linear", total_steps=epochs * n // batch)
    trainer = R.Trainer(rbm, cfg, new_states(17))
    start = log_p(rbm).mean()
    for _ in range(epochs):
        for i in range(0, n, batch):
            trainer.step(data[i:i + batch], reconstruction=False)
    diff = log_p(rbm) - log_p_true
    se = diff.std(ddof=1) / math.sqrt(n)
    assert diff.mean() > -4 * se, (diff.mean(), se)
    # Not vacuous: the untrained (near uniform) model is far below that tolerance.
    assert start - log_p_true.mean() < -100 * se


# ---- resume, threads ----------------------------------------------------------------------
@pytest.mark.parametrize(("units", "optimizer", "persistent"),
                         [("spin", "adam", True), ("binary", "sgd", False),
                          ("spin", "sgd", True)])
def test_resume_is_bit_exact(units, optimizer, persistent):
    rbm = _tiny_rbm(16, 6, units, scale=0.3)
    cfg = R.TrainConfig(persistent=persistent, n_chains=7, optimizer=optimizer, lr=0.02,
                        batch=10, lr_schedule="linear", total_steps=20, k=2)
    rng = np.random.default_rng(18)
    batches = [_random_visible(rng, (10, 16), units) for _ in range(7)]
    full = R.Trainer(rbm.copy(), cfg, new_states(19))
    for batch in batches:
        full.step(batch)
    part = R.Trainer(rbm.copy(), cfg, new_states(19))
    for batch in batches[:3]:
        part.step(batch)
    arrays = part.state_arrays()
    arrays["W"][...] = 0  # copies, not views
    assert part.rbm.W.any()
    buffer = io.BytesIO()
    np.savez(buffer, **part.state_arrays())
    buffer.seek(0)
    with np.load(buffer, allow_pickle=False) as f:
        loaded = {k: f[k] for k in f.files}
    resumed = R.Trainer.from_state_arrays(loaded, cfg, units)
    assert resumed.steps_done == 3
    for batch in batches[3:]:
        resumed.step(batch)
    a, b = full.state_arrays(), resumed.state_arrays()
    assert a.keys() == b.keys()
    for key in a:
        assert np.array_equal(a[key], b[key]), key


def test_bad_state_arrays_are_refused():
    cfg = R.TrainConfig(batch=4, n_chains=2)
    trainer = R.Trainer(_tiny_rbm(5, 3, "spin"), cfg, new_states(20))
    arrays = trainer.state_arrays()
    for key in ("W", "chains", "m_W", "rng_state", "steps_done"):
        broken = dict(arrays)
        del broken[key]
        with pytest.raises(UsageError):
            R.Trainer.from_state_arrays(broken, cfg, "spin")
    broken = dict(arrays, m_W=np.zeros((2, 2), np.float32))
    with pytest.raises(UsageError):
        R.Trainer.from_state_arrays(broken, cfg, "spin")
    with pytest.raises(UsageError):
        R.Trainer.from_state_arrays(arrays, R.TrainConfig(batch=4, n_chains=3), "spin")
    trainer.step(np.ones((4, 5), np.float32))
    arrays = trainer.state_arrays()
    for field in (np.zeros((3, 3), np.float32), np.zeros((2, 3), np.float64)):
        with pytest.raises(UsageError, match="chain_field"):
            R.Trainer.from_state_arrays(dict(arrays, chain_field=field), cfg, "spin")


def test_state_without_chain_field_recomputes_it():
    """Chains restored without their field (new chains, or a file that lacks it) get it
    from the current parameters on their first step, then carry it."""
    cfg = R.TrainConfig(batch=4, n_chains=3, lr=0.05)
    trainer = R.Trainer(_tiny_rbm(6, 3, "spin"), cfg, new_states(25))
    assert trainer.chain_field is None and "chain_field" not in trainer.state_arrays()
    batch = _random_visible(np.random.default_rng(26), (4, 6), "spin")
    trainer.step(batch)
    older = {k: v for k, v in trainer.state_arrays().items() if k != "chain_field"}
    carried = R.Trainer.from_state_arrays(older, cfg, "spin")
    fresh = R.Trainer.from_state_arrays(
        older, dataclasses.replace(cfg, fresh_chain_field=True), "spin")
    assert carried.chain_field is None
    carried.step(batch)
    fresh.step(batch)
    for a, b in zip(carried.state_arrays().values(), fresh.state_arrays().values(),
                    strict=True):
        assert np.array_equal(a, b)
    assert carried.chain_field.shape == (3, 3)


def test_results_do_not_depend_on_outer_blas_threads():
    """OpenBLAS's sgemm rounds differently with 2 threads; the Trainer pins BLAS to one."""
    pytest.importorskip("threadpoolctl")
    data = _random_visible(np.random.default_rng(21), (200, 1024), "spin")
    out = []
    for threads in (1, 2):
        trainer = R.Trainer(R.RBM.create(1024, 256, seed_or_state=5), R.TrainConfig(),
                            new_states(22))
        with R.blas_threads(threads):
            trainer.step(data[:100])
            trainer.step(data[100:])
            h = R.hidden_mean(trainer.rbm, data)
        out.append((trainer.rbm.W.copy(), h))
    assert np.array_equal(out[0][0], out[1][0])
    assert np.array_equal(out[0][1], out[1][1])


def test_batches_of_other_sizes_and_int8_spins():
    """A batch size other than config.batch reallocates buffers and keeps the chains."""
    rbm = _tiny_rbm(6, 3, "spin")
    cfg = R.TrainConfig(batch=4, n_chains=5, lr=0.05)
    spins = np.where(np.random.default_rng(24).random((7, 6)) < 0.5, 1, -1).astype(np.int8)
    batches = [spins.astype(np.float32), spins[:4].astype(np.float32), spins[2:].astype(
        np.float32)]
    state = new_states(23)
    W, _, _, chains, _, ref_state = _reference_trainer_steps(rbm, cfg, state.copy(), batches)
    trainer = R.Trainer(rbm.copy(), cfg, state)
    trainer.step(spins)  # int8 is cast to the RBM's dtype
    trainer.step(batches[1])
    trainer.step(batches[2])
    assert trainer.chains.shape == (5, 6)
    assert np.array_equal(trainer.rbm.W, W)
    assert np.array_equal(trainer.chains, chains)
    assert np.array_equal(trainer.state, ref_state)


def test_lr_schedules():
    lin = R.TrainConfig(lr=1e-2, lr_schedule="linear", total_steps=10)
    assert lin.lr_at(0) == 1e-2 and lin.lr_at(5) == pytest.approx(5e-3) and lin.lr_at(10) == 0
    ex = R.TrainConfig(lr=1e-2, lr_schedule="exp", total_steps=10, lr_end_fraction=1e-2)
    assert ex.lr_at(0) == 1e-2 and ex.lr_at(5) == pytest.approx(1e-3)
    assert ex.lr_at(10) == pytest.approx(1e-4) and ex.lr_at(50) == pytest.approx(1e-4)
    assert R.TrainConfig(lr=3e-3).lr_at(10_000) == 3e-3


# ---- bad input ----------------------------------------------------------------------------
def _swap_weights(W):
    """Replacing the RBM's arrays under a Trainer must not reach the unchecked kernels."""
    rbm = _tiny_rbm(4, 2, "spin")
    trainer = R.Trainer(rbm, R.TrainConfig(batch=2, n_chains=2), new_states(1))
    rbm.W = W
    trainer.step(np.ones((2, 4), np.float32))


@pytest.mark.parametrize("make", [
    lambda: R.RBM.create(16, 0),
    lambda: R.RBM.create(0, 4),
    lambda: R.RBM.create(16, -3),
    lambda: R.RBM.create(16, 4, units="gaussian"),
    lambda: R.RBM.create(16, 4, dtype=np.int32),
    lambda: R.RBM.create(16, 4, seed_or_state=-1),
    lambda: R.TrainConfig(k=0),
    lambda: R.TrainConfig(lr=0.0),
    lambda: R.TrainConfig(lr=-1e-3),
    lambda: R.TrainConfig(lr=float("nan")),
    lambda: R.TrainConfig(optimizer="rmsprop"),
    lambda: R.TrainConfig(n_chains=0),
    lambda: R.TrainConfig(batch=0),
    lambda: R.TrainConfig(momentum=1.0),
    lambda: R.TrainConfig(adam_eps=0.0),
    lambda: R.TrainConfig(l1=-1.0),
    lambda: R.TrainConfig(lr_schedule="cosine"),
    lambda: R.TrainConfig(lr_schedule="linear"),
    lambda: R.TrainConfig(lr_schedule="exp", total_steps=0),
    lambda: R.TrainConfig(adam_betas=(0.9, 1.0)),
    lambda: R.RBM(np.zeros((3, 2)), np.zeros(3), np.zeros(2), units="ising"),
    lambda: R.RBM(np.zeros((3, 2)), np.zeros(2), np.zeros(2)),
    lambda: R.spins_to_visible(np.ones((2, 4), np.int8), "potts"),
    lambda: R.sample_hidden(_tiny_rbm(4, 2, "spin"), np.ones((1, 4)), np.zeros(4, np.uint64)),
    lambda: R.sample_hidden(_tiny_rbm(4, 2, "spin"), np.ones((1, 4)), new_states(1, 2)),
    lambda: R.hidden_mean(_tiny_rbm(4, 2, "spin"), np.ones((1, 5))),
    lambda: R.rbm_flow(_tiny_rbm(4, 2, "spin"), np.ones((1, 4)), -1, new_states(1)),
    lambda: R.Trainer(_tiny_rbm(4, 2, "spin"), R.TrainConfig(), new_states(1)).step(
        np.ones((3, 5))),
    lambda: R.Trainer(_tiny_rbm(4, 2, "spin"), R.TrainConfig(n_chains=3), new_states(1),
                      chains=np.ones((2, 4))),
    lambda: _swap_weights(np.zeros((4, 3), np.float32)),
    lambda: _swap_weights(np.zeros((4, 2), np.float64)),
    lambda: _swap_weights(np.zeros((2, 4), np.float32).T),
])
def test_bad_configuration_raises_usage_error(make):
    with pytest.raises(UsageError):
        make()
