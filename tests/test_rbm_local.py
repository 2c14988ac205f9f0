"""core/rbm_local.py: the receptive field's geometry against brute force, the kernels against
plain numpy, the locally connected RBM against the global one and against exact
enumeration, and weights outside the field staying exactly zero through training, files
and resume."""

import itertools

import numpy as np
import pytest

import rgflow.core.rbm_local as RL
from rgflow.core.errors import UsageError
from rgflow.core.rbm import RBM, TrainConfig, hidden_mean, sample_hidden, sample_visible
from rgflow.core.rng import new_states


def _periodic(d, L):
    d = abs(d) % L
    return min(d, L - d)


@pytest.mark.parametrize("L,R", [(4, 0), (8, 0), (8, 1), (8, 2), (8, 3), (8, 9), (12, 2)])
def test_field_is_the_sites_within_chebyshev_distance_R_of_the_block(L, R):
    index = RL.field_index(L, R)
    half = L // 2
    for a in range(half * half):
        K, J = divmod(a, half)
        block = [(2 * K + dy, 2 * J + dx) for dy in (0, 1) for dx in (0, 1)]
        expected = [y * L + x for y in range(L) for x in range(L)
                    if min(max(_periodic(y - by, L), _periodic(x - bx, L))
                           for by, bx in block) <= R]
        assert index[a].tolist() == expected
    assert index.shape[1] == min(2 + 2 * R, L) ** 2


def test_bad_geometry_is_a_usage_error():
    for bad in (-1, 1.5, True, "2"):
        with pytest.raises(UsageError):
            RL.check_receptive_field(bad)
    with pytest.raises(UsageError):
        RL.lattice_side(64, 15)  # not one hidden unit per block
    with pytest.raises(UsageError):
        RL.lattice_side(81, 20)  # odd L
    with pytest.raises(UsageError):
        RL.LocalRBM.create(8, None)


# ---- kernels against numpy ----------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_field_kernels_replay_numpy_bit_for_bit(dtype):
    rng = np.random.default_rng(0)
    index = RL.field_index(8, 1)
    n_h, P = index.shape
    patches = rng.standard_normal((n_h, P)).astype(dtype)
    vT = rng.standard_normal((64, 13)).astype(dtype)
    hT = rng.standard_normal((n_h, 13)).astype(dtype)
    zT = np.empty((n_h, 13), dtype)
    RL._gather_dot_kernel(vT, patches, index, zT)
    ref = np.zeros((n_h, 13), dtype)
    for p in range(P):  # the kernel's order: p ascending
        ref = ref + patches[:, p, None] * vT[index[:, p]]
    assert np.array_equal(zT, ref)
    fT = np.empty((64, 13), dtype)
    RL._scatter_add_kernel(hT, patches, index, fT)
    ref = np.zeros((64, 13), dtype)
    for a in range(n_h):  # (a, p) ascending; a unit's sites are distinct
        ref[index[a]] = ref[index[a]] + patches[a, :, None] * hT[a]
    assert np.array_equal(fT, ref)
    out = np.empty((13, 64), dtype)
    RL._transpose_kernel(np.ascontiguousarray(vT), out)
    assert np.array_equal(out, vT.T)


@pytest.mark.parametrize("units", ["spin", "binary"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_site_major_sampler_draws_the_row_major_samplers_numbers(units, dtype):
    """The same state gives the transposed samples of the global sampler (the random number
    of unit (r, j) is found by its row-major index, whatever the layout)."""
    from rgflow.core.rbm import _sample_kernel

    rng = np.random.default_rng(5)
    field = rng.standard_normal((13, 20)).astype(dtype)  # (batch, units)
    bias = rng.standard_normal(20).astype(dtype)
    spin = units == "spin"
    s1, s2 = new_states(6), new_states(6)
    rows = np.empty_like(field)
    _sample_kernel(field, bias, spin, s1, rows)
    cols = np.empty((20, 13), dtype)
    RL._sample_site_major_kernel(np.ascontiguousarray(field.T), bias, spin, s2, cols,
                                 np.empty(13))
    assert np.array_equal(cols, rows.T)
    assert np.array_equal(s1, s2)
    assert 0.2 < np.mean(rows == 1) < 0.8  # both values occur


@pytest.mark.parametrize("dtype,tol", [(np.float32, 1e-5), (np.float64, 1e-13)])
def test_patch_gradient_kernel_against_float64_numpy(dtype, tol):
    rng = np.random.default_rng(1)
    index = RL.field_index(8, 2)
    n_h, P = index.shape
    v1, v2 = (rng.standard_normal((64, n)).astype(dtype) for n in (37, 21))
    h1, h2 = (rng.standard_normal((n_h, n)).astype(dtype) for n in (37, 21))
    g = np.empty((n_h, P), dtype)
    RL._patch_gradient_kernel(v1, h1, v2, h2, index, g, dtype(0))
    dense = (v1.astype(np.float64) @ h1.T.astype(np.float64)
             + v2.astype(np.float64) @ h2.T.astype(np.float64))
    ref = dense[index, np.arange(n_h)[:, None]]
    # float32: 58 products of O(1) numbers, rounding ~ 58 * 6e-8 * |terms| per entry
    np.testing.assert_allclose(g, ref, rtol=0, atol=tol * np.abs(ref).max() * 10)


# ---- the model ----------------------------------------------------------------------------
def test_create_is_the_masked_global_initialisation():
    local = RL.LocalRBM.create(8, 1, seed_or_state=7)
    glob = RBM.create(64, 16, seed_or_state=7)
    mask = RL.field_mask(8, 1)
    assert np.array_equal(local.W, np.where(mask, glob.W, 0))
    assert local.W.dtype == np.float32 and local.patches.shape == (16, 16)
    again = RL.LocalRBM.create(8, 1, seed_or_state=7)
    assert np.array_equal(again.patches, local.patches)


def test_conditionals_equal_the_global_rbm_with_the_dense_weights():
    local = RL.LocalRBM.create(8, 1, dtype=np.float64, seed_or_state=3, weight_scale=0.5)
    rng = np.random.default_rng(2)
    local.visible_bias[:] = rng.standard_normal(64) * 0.2
    local.hidden_bias[:] = rng.standard_normal(16) * 0.2
    glob = RBM(local.W, local.visible_bias, local.hidden_bias, "spin")
    v = np.where(rng.random((9, 64)) < 0.5, 1.0, -1.0)
    np.testing.assert_allclose(hidden_mean(local, v), hidden_mean(glob, v), atol=1e-14)
    s1, s2 = new_states(4), new_states(4)
    assert np.array_equal(sample_hidden(local, v, s1), sample_hidden(glob, v, s2))
    h = sample_hidden(glob, v, new_states(5))
    assert np.array_equal(sample_visible(local, h, s1), sample_visible(glob, h, s2))


def test_gather_refuses_weights_outside_the_field():
    local = RL.LocalRBM.create(8, 0)
    W = local.W
    assert np.array_equal(local.gather(W), local.patches)
    far = np.argwhere(~RL.field_mask(8, 0))[0]
    W[tuple(far)] = 1e-30
    with pytest.raises(UsageError, match="outside the receptive field"):
        local.gather(W)


# ---- training -----------------------------------------------------------------------------
def _data(n, n_v, seed=0):
    rng = np.random.default_rng(seed)
    ordered = np.where(rng.random(n) < 0.5, 1.0, -1.0)[:, None]
    return ordered * np.where(rng.random((n, n_v)) < 0.2, -1.0, 1.0)


def _train(trainer, data, steps, batch, other_batch=None):
    """The steps' reconstruction errors."""
    errors = []
    for i in range(steps):
        size = other_batch if other_batch and i % 3 == 2 else batch
        start = (i * batch) % (len(data) - batch + 1)
        errors.append(trainer.step(data[start:start + size]).reconstruction_error)
    return np.array(errors)


@pytest.mark.parametrize("R,persistent,k,fresh", [(3, True, 1, False), (7, True, 1, False),
                                                  (3, False, 1, False), (7, False, 2, False),
                                                  (3, True, 2, True)])
def test_covering_field_follows_the_global_rbm(R, persistent, k, fresh):
    """With the field covering the 8×8 lattice the two differ only in the summation order
    of their products (float64: last-place differences, far below any sampling threshold
    in 40 steps), so the chains stay identical and the weights agree to 1e-12. Batches of
    two sizes alternate (the buffers are rebuilt when the size changes)."""
    cfg = TrainConfig(batch=20, n_chains=10, persistent=persistent, lr=0.01, k=k,
                      fresh_chain_field=fresh)
    local = RL.trainer_for(RL.LocalRBM.create(8, R, dtype=np.float64, seed_or_state=1), cfg,
                           new_states(9))
    glob = RL.trainer_for(RBM.create(64, 16, dtype=np.float64, seed_or_state=1), cfg,
                          new_states(9))
    data = _data(200, 64)
    local_errors = _train(local, data, 40, 20, other_batch=13)
    glob_errors = _train(glob, data, 40, 20, other_batch=13)
    if persistent:
        assert np.array_equal(local.chains, glob.chains)
        np.testing.assert_allclose(local.chain_field, glob.chain_field, rtol=0, atol=1e-12)
    np.testing.assert_allclose(local.rbm.W, glob.rbm.W, rtol=0, atol=1e-12)
    np.testing.assert_allclose(local.rbm.hidden_bias, glob.rbm.hidden_bias, atol=1e-12)
    np.testing.assert_allclose(local.rbm.visible_bias, glob.rbm.visible_bias, atol=1e-12)
    np.testing.assert_allclose(local_errors, glob_errors, rtol=1e-12)
    assert np.array_equal(local.state, glob.state)


def test_first_step_gradient_is_the_global_gradient_on_the_field():
    """Same weights (the local ones, dense), chains and random numbers: the local Trainer's
    weight gradient is the global Trainer's, restricted to the field."""
    cfg = TrainConfig(batch=25, n_chains=15)
    local_rbm = RL.LocalRBM.create(8, 1, dtype=np.float64, seed_or_state=2, weight_scale=0.3)
    glob_rbm = RBM(local_rbm.W, local_rbm.visible_bias.copy(), local_rbm.hidden_bias.copy(),
                   "spin")
    local = RL.trainer_for(local_rbm, cfg, new_states(3))
    glob = RL.trainer_for(glob_rbm, cfg, new_states(3))
    batch = _data(25, 64, seed=4)
    local.step(batch)
    glob.step(batch)
    g = glob.gradients["W"]
    expected = g[local_rbm.index, np.arange(16)[:, None]]
    np.testing.assert_allclose(local.gradients["patches"], expected, rtol=0, atol=1e-14)
    assert np.abs(g[~RL.field_mask(8, 1)]).max() > 1e-3  # the global one is not local


def test_gradient_equals_exact_gradient_by_enumeration():
    """L = 4, R = 0 (each unit sees its own block): the data term minus the model term
    summed over all 2^16 visible states, weighted by P(v) from the dense weights, equals the
    exact log-likelihood gradient computed independently in float64 numpy, on the field."""
    rbm = RL.LocalRBM.create(4, 0, dtype=np.float64, seed_or_state=5, weight_scale=0.6)
    rng = np.random.default_rng(6)
    rbm.visible_bias[:] = rng.standard_normal(16) * 0.3
    rbm.hidden_bias[:] = rng.standard_normal(4) * 0.3
    data = _data(30, 16, seed=7)
    states = np.array(list(itertools.product((-1.0, 1.0), repeat=16)))
    W, a, b = rbm.W, rbm.visible_bias, rbm.hidden_bias
    x = states @ W + b
    log_p = states @ a + np.log(2 * np.cosh(x)).sum(axis=1)
    p = np.exp(log_p - log_p.max())
    p /= p.sum()
    exact = data.T @ np.tanh(data @ W + b) / len(data) - states.T @ (p[:, None] * np.tanh(x))
    rows = np.concatenate([data, states])
    weights = np.concatenate([hidden_mean(rbm, data) / len(data),
                              -p[:, None] * hidden_mean(rbm, states)])
    g = rbm.weight_gradient(rows, weights)
    np.testing.assert_allclose(g, exact[rbm.index, np.arange(4)[:, None]], atol=1e-13)
    assert np.abs(exact[~RL.field_mask(4, 0)]).max() > 1e-3  # the dense gradient is not


@pytest.mark.parametrize("optimizer,l1,l2", [("adam", 0.0, 0.0), ("sgd", 1e-3, 1e-3)])
def test_weights_outside_the_field_stay_zero_through_training_and_resume(optimizer, l1, l2):
    cfg = TrainConfig(batch=20, n_chains=20, optimizer=optimizer, lr=0.05, l1=l1, l2=l2)
    mask = RL.field_mask(8, 1)
    trainer = RL.trainer_for(RL.LocalRBM.create(8, 1, seed_or_state=0), cfg, new_states(1))
    data = _data(200, 64)
    _train(trainer, data, 30, 20)
    arrays = trainer.state_arrays()
    for name in ("W", *(k for k in arrays if k.endswith("_W"))):
        assert not arrays[name][~mask].any(), name
        assert np.abs(arrays[name][mask]).min() > 0, name  # every in-field entry trained
    resumed = RL.restore_trainer(arrays, cfg, "spin", 1)
    assert isinstance(resumed.rbm, RL.LocalRBM)
    _train(trainer, data[7:], 20, 20)
    _train(resumed, data[7:], 20, 20)
    for name, value in trainer.state_arrays().items():
        assert np.array_equal(value, resumed.state_arrays()[name]), name
    assert not trainer.rbm.W[~mask].any()


def test_restore_refuses_a_weight_outside_the_field():
    cfg = TrainConfig(batch=10, n_chains=10)
    trainer = RL.trainer_for(RL.LocalRBM.create(8, 1), cfg, new_states(1))
    trainer.step(_data(10, 64))
    arrays = trainer.state_arrays()
    far = tuple(np.argwhere(~RL.field_mask(8, 1))[0])
    for name in ("W", "m_W"):
        bad = dict(arrays)
        bad[name] = arrays[name].copy()
        bad[name][far] = 0.5
        with pytest.raises(UsageError, match="outside the receptive field"):
            RL.restore_trainer(bad, cfg, "spin", 1)
    with pytest.raises(UsageError):  # a different field
        RL.restore_trainer(arrays, cfg, "spin", 0)
