"""Restricted Boltzmann machines (core/SCIENCE.md §3, §7): parameters, conditionals, sampling, free
energy, the RBM flow, and CD-k / PCD-k training with Adam or SGD with momentum.

Energy E(v, h) = -a·v - b·h - vᵀWh. "spin" units are ±1 with E[h_a|v] = tanh(b_a + (vW)_a)
and P(h_a = +1|v) = (1 + tanh(...))/2; "binary" units are 0/1 with sigmoid conditionals,
computed as sigmoid(z) = (1 + tanh(z/2))/2. Visible units mirror the hidden ones.

Random numbers. Every sampling kernel takes a xoshiro256** state (core/rng.py) and draws
exactly one `next_u64` from it per call, the call's key. Unit (i, j) of the sampled (B, n)
array gets the counter-based number x = splitmix_at(key, i·n + j) (core/rng.py), whatever
order the kernel visits it in, and u = (x >> 11)·2⁻⁵³ (a double in [0, 1)); the unit is on
(+1, or 1 for binary units) iff u < p, with p its probability in the RBM's dtype promoted to
float64. `uniforms(state, shape)` draws the same numbers in bulk (one key, row-major), so a
numpy reference can replay any one kernel call exactly.

Activations. float32 RBMs use a rational tanh (Eigen's float coefficients: odd degree-13
over even degree-6 polynomial, input clamped to ±7.9053; absolute error < 4e-7, exactly
odd, |tanh| <= 1; so binary probabilities below ~1e-7 may read as 0). Unlike libm's
tanhf it vectorises, and it is written as plain float32
operations in a fixed order with no fast-math, so `tanh_rational` (numpy) reproduces it bit
for bit. float64 RBMs use libm tanh.

Reproducibility. OpenBLAS's float32 GEMM rounds differently with different thread counts,
so every GEMM here runs with BLAS pinned to one thread (threadpoolctl) unless a Trainer is
told otherwise: same seed and same calls give the same bits whatever the machine's threads.
On this workload one BLAS thread is also the fast choice when the other cores are busy.

Training follows the usual recipe: data term from hidden MEANS given the batch, model term
from hidden means given the chains after k Gibbs sweeps (each sweep samples h then v). The
data and model terms share one GEMM: G = [v_data; v_model]ᵀ @ [h_data/B; -h_model/C].
PCD chains carry their hidden field b + vW from the end of the previous step, computed for
that step's model term, i.e. before its update; a step's first hidden sample is drawn from it,
as scikit-learn's BernoulliRBM and the Theano tutorial's PCD do (they keep the hidden sample
itself). This saves a sixth of a PCD-1 step's GEMM work; the chain stays a Gibbs chain,
each half-sweep using parameters at most one update old. That lag is invisible at the paper's
learning rate but makes training less stable at large ones; `fresh_chain_field` recomputes
the field from the current parameters instead (one more GEMM).
Adam is Kingma & Ba's Algorithm 1 (ε added to sqrt(v̂); the bias corrections folded into
the step size); SGD is velocity = momentum·velocity + lr·g, param += velocity. L1 and L2
penalties apply to W only. Buffers are preallocated; a step makes no large temporaries.
"""

import math
from dataclasses import dataclass

import numpy as np
from numba import njit, types
from numba.extending import overload

from .blas import blas_threads  # noqa: F401 (re-exported: rgflow.core.rbm.blas_threads)
from .errors import UsageError
from .rng import DOUBLE_UNIT, check_state, new_states, next_u64, splitmix_at, xoshiro_next

UNITS = ("spin", "binary")
OPTIMIZERS = ("adam", "sgd")
LR_SCHEDULES = ("constant", "linear", "exp")
DTYPES = (np.dtype(np.float32), np.dtype(np.float64))

_U11 = np.uint64(11)

# ---- activations --------------------------------------------------------------------------
# Eigen's ptanh_float coefficients (numerator odd, denominator even), float32 constants.
_TANH_CLAMP = np.float32(7.90531110763549805)
_TANH_P = tuple(np.float32(c) for c in (
    -2.76076847742355e-16, 2.00018790482477e-13, -8.60467152213735e-11, 5.12229709037114e-08,
    1.48572235717979e-05, 6.37261928875436e-04, 4.89352455891786e-03))
_TANH_Q = tuple(np.float32(c) for c in (
    1.19825839466702e-06, 1.18534705686654e-04, 2.26843463243900e-03, 4.89352518554385e-03))
_P0, _P1, _P2, _P3, _P4, _P5, _P6 = _TANH_P
_Q0, _Q1, _Q2, _Q3 = _TANH_Q
_HALF32 = np.float32(0.5)
_ONE32 = np.float32(1.0)


@njit(inline="always")
def _tanh32(x):
    if x > _TANH_CLAMP:
        x = _TANH_CLAMP
    elif x < -_TANH_CLAMP:
        x = -_TANH_CLAMP
    x2 = x * x
    p = x2 * _P0 + _P1
    p = x2 * p + _P2
    p = x2 * p + _P3
    p = x2 * p + _P4
    p = x2 * p + _P5
    p = x2 * p + _P6
    p = x * p
    q = x2 * _Q0 + _Q1
    q = x2 * q + _Q2
    q = x2 * q + _Q3
    return p / q


def tanh_rational(x: np.ndarray) -> np.ndarray:
    """numpy twin of the float32 kernel tanh: the same operations in the same order."""
    x = np.clip(np.asarray(x, dtype=np.float32), -_TANH_CLAMP, _TANH_CLAMP)
    x2 = x * x
    p = x2 * _P0 + _P1
    for c in _TANH_P[2:]:
        p = x2 * p + c
    p = x * p
    q = x2 * _Q0 + _Q1
    for c in _TANH_Q[2:]:
        q = x2 * q + c
    return p / q


def _act(z, spin):
    """(mean, probability of on) of a unit with total input z (dispatched on z's type)."""
    raise NotImplementedError  # only used inside kernels


@overload(_act, inline="always")
def _act_overload(z, spin):
    if isinstance(z, types.Float) and z.bitwidth == 32:
        def act32(z, spin):
            if spin:
                t = _tanh32(z)
                return t, _HALF32 * (_ONE32 + t)
            p = _HALF32 * (_ONE32 + _tanh32(_HALF32 * z))
            return p, p
        return act32

    def act64(z, spin):
        if spin:
            t = math.tanh(z)
            return t, 0.5 * (1.0 + t)
        p = 0.5 * (1.0 + math.tanh(0.5 * z))
        return p, p
    return act64


def activation_reference(z: np.ndarray, units: str) -> tuple[np.ndarray, np.ndarray]:
    """numpy (mean, probability) for inputs z, bit-identical to the kernels."""
    z = np.asarray(z)
    if z.dtype == np.float32:
        if units == "spin":
            t = tanh_rational(z)
            return t, _HALF32 * (_ONE32 + t)
        p = _HALF32 * (_ONE32 + tanh_rational(_HALF32 * z))
        return p, p
    if units == "spin":
        t = np.tanh(z)
        return t, 0.5 * (1.0 + t)
    p = 0.5 * (1.0 + np.tanh(0.5 * z))
    return p, p


# ---- kernels ------------------------------------------------------------------------------
# error_model="numpy" keeps divisions free of zero checks so the loops vectorise; no
# fastmath, so every result is the IEEE value of the written operations.
_KERNEL = dict(cache=True, nogil=True, error_model="numpy")


@njit(**_KERNEL)
def _mean_kernel(field, bias, scale, spin, out):
    """out[i, j] = scale * mean(field[i, j] + bias[j]); out may be field."""
    n, m = field.shape
    for i in range(n):
        for j in range(m):
            mean, _ = _act(field[i, j] + bias[j], spin)
            out[i, j] = scale * mean


@njit(**_KERNEL)
def _mean_colsum_kernel(field, bias, scale, spin, out, colsum, reset):
    """_mean_kernel that also adds each output row to colsum, rows in order (the trainer's
    hidden-bias gradient, summed while the values are in registers)."""
    n, m = field.shape
    if reset:
        colsum[:] = 0
    for i in range(n):
        for j in range(m):
            mean, _ = _act(field[i, j] + bias[j], spin)
            x = scale * mean
            out[i, j] = x
            colsum[j] += x


@njit(inline="always")
def _unit_uniform(key, t):
    """The uniform double in [0, 1) of entry t (flat, row-major) of a sampling call."""
    return np.float64(splitmix_at(key, np.uint64(t)) >> _U11) * DOUBLE_UNIT


@njit(inline="always")
def _draw_row(row, u, on, off, key, start, stride):
    """row holds the probabilities of entries start, start + stride, ... of a call (stride 1
    for a row of a (batch, units) array, the number of units for a column of its transpose);
    replace each by on/off. The uniforms go to the scratch row u first: a separate select
    loop vectorises, whereas a compare-and-branch per unit mispredicts half the time (x86
    lowers a scalar float select to a branch)."""
    m = row.shape[0]
    for j in range(m):
        u[j] = _unit_uniform(key, start + j * stride)
    for j in range(m):
        row[j] = on if u[j] < row[j] else off


@njit(**_KERNEL)
def _sample_kernel(field, bias, spin, state, out):
    """out = units sampled given inputs field + bias; out may be field."""
    n, m = field.shape
    off = -1 if spin else 0
    u = np.empty(m, dtype=np.float64)
    key = next_u64(state)
    for i in range(n):
        row = out[i]
        for j in range(m):  # vectorised: probabilities
            _, p = _act(field[i, j] + bias[j], spin)
            row[j] = p
        _draw_row(row, u, 1, off, key, i * m, 1)


@njit(**_KERNEL)
def _mean_sample_kernel(field, bias, scale, spin, state, mean_out, sample_out, colsum):
    """mean_out = scale * means and sample_out = samples, from the same inputs; colsum =
    the column sums of mean_out, rows in order."""
    n, m = field.shape
    off = -1 if spin else 0
    u = np.empty(m, dtype=np.float64)
    colsum[:] = 0
    key = next_u64(state)
    for i in range(n):
        row = sample_out[i]
        for j in range(m):
            mean, p = _act(field[i, j] + bias[j], spin)
            x = scale * mean
            mean_out[i, j] = x
            colsum[j] += x
            row[j] = p
        _draw_row(row, u, 1, off, key, i * m, 1)


@njit(**_KERNEL)
def _fill_prob_kernel(prob, spin, state, out):
    """Every unit on with the same probability prob (random chain starts)."""
    n, m = out.shape
    off = -1 if spin else 0
    u = np.empty(m, dtype=np.float64)
    key = next_u64(state)
    for i in range(n):
        row = out[i]
        for j in range(m):
            row[j] = prob
        _draw_row(row, u, 1, off, key, i * m, 1)


@njit(**_KERNEL)
def _squared_error_kernel(field, bias, spin, v):
    """Σ (v - mean(field + bias))² in float64 (the reconstruction error, fused)."""
    n, m = field.shape
    total = 0.0
    for i in range(n):
        for j in range(m):
            mean, _ = _act(field[i, j] + bias[j], spin)
            d = np.float64(v[i, j]) - np.float64(mean)
            total += d * d
    return total


@njit(**_KERNEL)
def _uniforms_kernel(state, out):
    key = next_u64(state)
    for t in range(out.shape[0]):
        out[t] = _unit_uniform(key, t)


@njit(**_KERNEL)
def _normals_kernel(state, out):
    """Standard normals by Box-Muller, two draws per pair of outputs."""
    s0, s1, s2, s3 = state[0], state[1], state[2], state[3]
    n = out.shape[0]
    for i in range(0, n, 2):
        r1, s0, s1, s2, s3 = xoshiro_next(s0, s1, s2, s3)
        r2, s0, s1, s2, s3 = xoshiro_next(s0, s1, s2, s3)
        u1 = 1.0 - np.float64(r1 >> _U11) * DOUBLE_UNIT  # (0, 1]: log is finite
        u2 = np.float64(r2 >> _U11) * DOUBLE_UNIT
        radius = math.sqrt(-2.0 * math.log(u1))
        out[i] = radius * math.cos(2.0 * math.pi * u2)
        if i + 1 < n:
            out[i + 1] = radius * math.sin(2.0 * math.pi * u2)
    state[0], state[1], state[2], state[3] = s0, s1, s2, s3


@njit(inline="always")
def _decayed(grad, w, l1, l2, decay):
    """Log-likelihood ascent direction with L2 and L1 penalties on the parameter. Without
    penalties the terms would be exact zeros; skipping them saves a quarter of the pass."""
    if decay:
        return grad - l2 * w - l1 * np.sign(w)
    return grad


@njit(**_KERNEL)
def _adam_kernel(param, grad, m, v, lr_t, b1, c1, b2, c2, eps_t, l1, l2, decay):
    """Adam (Kingma & Ba, Algorithm 1) with the bias corrections folded into lr_t and eps_t.
    1-D views; c1 = 1 - b1, c2 = 1 - b2."""
    for i in range(param.shape[0]):
        w = param[i]
        g = _decayed(grad[i], w, l1, l2, decay)
        mi = b1 * m[i] + c1 * g
        vi = b2 * v[i] + c2 * (g * g)
        m[i] = mi
        v[i] = vi
        param[i] = w + lr_t * mi / (np.sqrt(vi) + eps_t)


@njit(**_KERNEL)
def _sgd_kernel(param, grad, velocity, lr, momentum, l1, l2, decay):
    """velocity = momentum * velocity + lr * g; param += velocity."""
    for i in range(param.shape[0]):
        w = param[i]
        g = _decayed(grad[i], w, l1, l2, decay)
        vel = momentum * velocity[i] + lr * g
        velocity[i] = vel
        param[i] = w + vel


# ---- validation helpers -------------------------------------------------------------------
def _check_units(units) -> str:
    if units not in UNITS:
        raise UsageError(f"unknown unit type {units!r} (choose from {', '.join(UNITS)})")
    return units


def _check_dtype(dtype) -> np.dtype:
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise UsageError(f"unsupported RBM dtype {dtype!r} (float32 or float64)") from None
    if dt not in DTYPES:
        raise UsageError(f"unsupported RBM dtype {dt} (float32 or float64)")
    return dt


def _check_count(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value <= 0:
        raise UsageError(f"{name} must be a positive whole number, got {value!r}")
    return int(value)


def _check_state(state) -> np.ndarray:
    """A xoshiro state the kernels can advance in place."""
    return check_state(state)


def _state_from(seed_or_state, name: str) -> np.ndarray:
    if isinstance(seed_or_state, np.ndarray):
        return _check_state(seed_or_state)
    if isinstance(seed_or_state, np.random.SeedSequence):
        return new_states(seed_or_state)
    if isinstance(seed_or_state, bool) or not isinstance(seed_or_state, int | np.integer) \
            or seed_or_state < 0:
        raise UsageError(f"seed must be a non-negative integer, got {seed_or_state!r}")
    return new_states(int(seed_or_state), name=name)


def initial_weights(n_visible: int, n_hidden: int, dtype, seed_or_state,
                    weight_scale: float) -> np.ndarray:
    """W ~ Normal(0, weight_scale²) drawn from the stream "rbm-init" of seed_or_state, as
    (n_visible, n_hidden) of dtype: the one initialisation of global and local RBMs."""
    dt = _check_dtype(dtype)
    if not (math.isfinite(weight_scale) and weight_scale >= 0):
        raise UsageError(f"weight_scale must be finite and >= 0, got {weight_scale!r}")
    state = _state_from(seed_or_state, "rbm-init")
    normals = np.empty(n_visible * n_hidden, dtype=np.float64)
    _normals_kernel(state, normals)
    return (normals * weight_scale).astype(dt).reshape(n_visible, n_hidden)


# ---- the model ----------------------------------------------------------------------------
@dataclass
class RBM:
    """Parameters of an RBM; arrays are C-contiguous and share one float dtype."""

    W: np.ndarray
    visible_bias: np.ndarray
    hidden_bias: np.ndarray
    units: str = "spin"

    def __post_init__(self):
        _check_units(self.units)
        W = np.asarray(self.W)
        if W.ndim != 2 or W.shape[0] < 1 or W.shape[1] < 1:
            raise UsageError(f"W must be a non-empty 2-D array, got shape {W.shape}")
        dt = _check_dtype(W.dtype) if W.dtype.kind == "f" else _check_dtype(np.float32)
        a = np.asarray(self.visible_bias)
        b = np.asarray(self.hidden_bias)
        if a.shape != (W.shape[0],) or b.shape != (W.shape[1],):
            raise UsageError(f"biases of shapes {a.shape}, {b.shape} do not fit W {W.shape}")
        self.W = np.ascontiguousarray(W, dtype=dt)
        self.visible_bias = np.ascontiguousarray(a, dtype=dt)
        self.hidden_bias = np.ascontiguousarray(b, dtype=dt)

    PARAMS = ("W", "visible_bias", "hidden_bias")  # what a Trainer updates (no annotation:
    # a class constant, not a dataclass field)

    @property
    def n_visible(self) -> int:
        return self.W.shape[0]

    @property
    def n_hidden(self) -> int:
        return self.W.shape[1]

    @property
    def dtype(self) -> np.dtype:
        return self.W.dtype

    @classmethod
    def create(cls, n_visible, n_hidden, units="spin", dtype=np.float32, seed_or_state=0,
               weight_scale=0.05) -> "RBM":
        """W ~ Normal(0, weight_scale²), biases 0 (core/SCIENCE.md §3). seed_or_state: an int seed
        (stream "rbm-init" of it), a SeedSequence, or a xoshiro state advanced in place."""
        n_visible = _check_count("n_visible", n_visible)
        n_hidden = _check_count("n_hidden", n_hidden)
        _check_units(units)
        W = initial_weights(n_visible, n_hidden, dtype, seed_or_state, weight_scale)
        return cls(W, np.zeros(n_visible, W.dtype), np.zeros(n_hidden, W.dtype), units)

    def copy(self) -> "RBM":
        return RBM(self.W.copy(), self.visible_bias.copy(), self.hidden_bias.copy(), self.units)

    def hidden_field(self, v, out=None) -> np.ndarray:
        """vW (B, n_hidden), without the bias; v C-contiguous in the RBM's dtype."""
        with blas_threads(1):
            return np.matmul(v, self.W, out=out)

    def visible_field(self, h, out=None) -> np.ndarray:
        """hWᵀ (B, n_visible), without the bias."""
        with blas_threads(1):
            return np.matmul(h, self.W.T, out=out)


def _batch(rbm: RBM, x, n: int, what: str) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim != 2 or x.shape[1] != n:
        raise UsageError(f"{what} must have shape (B, {n}), got {x.shape}")
    return np.ascontiguousarray(x, dtype=rbm.dtype)


def spins_to_visible(spins, units, dtype=np.float32) -> np.ndarray:
    """±1 spins, (n, L, L) or (n, N), as a (n, N) visible batch: ±1 (spin) or 0/1 (binary)."""
    _check_units(units)
    dt = _check_dtype(dtype)
    s = np.asarray(spins)
    if s.ndim not in (2, 3):
        raise UsageError(f"spins must have shape (n, L, L) or (n, N), got {s.shape}")
    s = s.reshape(s.shape[0], -1)
    if s.size and not np.all(np.abs(s) == 1):
        raise UsageError("spins must be ±1")
    if units == "spin":
        return np.ascontiguousarray(s, dtype=dt)
    return np.ascontiguousarray((s > 0).astype(dt))


def uniforms(state, shape, dtype=np.float64) -> np.ndarray:
    """One sampling call's uniforms in bulk: one next_u64 (the key), then entry t (row-major)
    is (splitmix_at(key, t) >> 11)·2⁻⁵³. Exact replay of the samplers needs float64 (a
    float32 cast rounds)."""
    _check_state(state)
    out = np.empty(int(np.prod(shape, dtype=np.int64)), dtype=np.float64)
    _uniforms_kernel(state, out)
    return out.reshape(shape).astype(dtype, copy=False)


def hidden_mean(rbm: RBM, v) -> np.ndarray:
    """E[h | v]: tanh(b + vW) (spin) or sigmoid(b + vW) (binary), shape (B, n_hidden)."""
    v = _batch(rbm, v, rbm.n_visible, "v")
    out = rbm.hidden_field(v)
    _mean_kernel(out, rbm.hidden_bias, rbm.dtype.type(1), rbm.units == "spin", out)
    return out


def visible_mean(rbm: RBM, h) -> np.ndarray:
    """E[v | h]: tanh(a + hWᵀ) or sigmoid(a + hWᵀ), shape (B, n_visible)."""
    h = _batch(rbm, h, rbm.n_hidden, "h")
    out = rbm.visible_field(h)
    _mean_kernel(out, rbm.visible_bias, rbm.dtype.type(1), rbm.units == "spin", out)
    return out


def sample_hidden(rbm: RBM, v, state) -> np.ndarray:
    """h ~ P(h | v), shape (B, n_hidden); state (xoshiro uint64[4]) is advanced in place."""
    _check_state(state)
    v = _batch(rbm, v, rbm.n_visible, "v")
    out = rbm.hidden_field(v)
    _sample_kernel(out, rbm.hidden_bias, rbm.units == "spin", state, out)
    return out


def sample_visible(rbm: RBM, h, state) -> np.ndarray:
    """v ~ P(v | h), shape (B, n_visible); state is advanced in place."""
    _check_state(state)
    h = _batch(rbm, h, rbm.n_hidden, "h")
    out = rbm.visible_field(h)
    _sample_kernel(out, rbm.visible_bias, rbm.units == "spin", state, out)
    return out


def free_energy(rbm: RBM, v) -> np.ndarray:
    """F(v) = -log Σ_h exp(-E(v, h)) in float64, shape (B,):
    -a·v - Σ_a log(2 cosh x_a) (spin) or -a·v - Σ_a log(1 + exp x_a) (binary), x = b + vW."""
    v = np.asarray(v)
    if v.ndim != 2 or v.shape[1] != rbm.n_visible:
        raise UsageError(f"v must have shape (B, {rbm.n_visible}), got {v.shape}")
    W = rbm.W.astype(np.float64)
    a = rbm.visible_bias.astype(np.float64)
    b = rbm.hidden_bias.astype(np.float64)
    out = np.empty(v.shape[0], dtype=np.float64)
    with blas_threads(1):
        for start in range(0, v.shape[0], 2048):
            out[start:start + 2048] = _free_energy_chunk(rbm.units, v[start:start + 2048],
                                                         W, a, b)
    return out


def _free_energy_chunk(units, v, W, a, b):
    v = v.astype(np.float64)  # in chunks: bounded float64 temporaries
    x = v @ W + b
    ax = np.abs(x)
    if units == "spin":  # log(2 cosh x) = log(e^|x| (1 + e^-2|x|))
        hidden = ax + np.log1p(np.exp(-2.0 * ax))
    else:  # softplus
        hidden = np.maximum(x, 0.0) + np.log1p(np.exp(-ax))
    return -(v @ a) - hidden.sum(axis=1)


def rbm_flow(rbm: RBM, v0, n_steps: int, state, mean_field: bool = False) -> np.ndarray:
    """The RBM flow (core/SCIENCE.md §7): flow[0] = v0, then h ~ P(h|vⁿ⁻¹), vⁿ ~ P(v|h).
    Returns (n_steps + 1, B, n_visible). mean_field uses conditional means and no RNG."""
    if isinstance(n_steps, bool) or not isinstance(n_steps, int | np.integer) or n_steps < 0:
        raise UsageError(f"n_steps must be a non-negative whole number, got {n_steps!r}")
    v0 = _batch(rbm, v0, rbm.n_visible, "v0")
    if not mean_field:
        _check_state(state)
    flow = np.empty((n_steps + 1,) + v0.shape, dtype=rbm.dtype)
    flow[0] = v0
    spin = rbm.units == "spin"
    one = rbm.dtype.type(1)
    h = np.empty((v0.shape[0], rbm.n_hidden), dtype=rbm.dtype)
    for n in range(1, n_steps + 1):
        rbm.hidden_field(flow[n - 1], out=h)
        if mean_field:
            _mean_kernel(h, rbm.hidden_bias, one, spin, h)
            rbm.visible_field(h, out=flow[n])
            _mean_kernel(flow[n], rbm.visible_bias, one, spin, flow[n])
        else:
            _sample_kernel(h, rbm.hidden_bias, spin, state, h)
            rbm.visible_field(h, out=flow[n])
            _sample_kernel(flow[n], rbm.visible_bias, spin, state, flow[n])
    return flow


# ---- training -----------------------------------------------------------------------------
@dataclass(frozen=True)
class TrainConfig:
    k: int = 1
    persistent: bool = True          # PCD (paper) vs CD-k
    n_chains: int = 100              # persistent chains (paper: one chain of batch size 100)
    fresh_chain_field: bool = False  # PCD: recompute the chains' hidden field every step
    optimizer: str = "adam"          # "adam" | "sgd"
    lr: float = 1e-3
    momentum: float = 0.9            # sgd
    adam_betas: tuple = (0.9, 0.999)
    adam_eps: float = 1e-2           # paper
    l1: float = 0.0
    l2: float = 0.0
    batch: int = 100
    lr_schedule: str = "constant"    # "constant" | "linear" (to 0) | "exp" (to lr*lr_end_fraction)
    total_steps: int | None = None   # length of the "linear" / "exp" schedules
    lr_end_fraction: float = 1e-2    # "exp": lr decays geometrically to lr*lr_end_fraction

    def __post_init__(self):
        _check_count("k", self.k)
        _check_count("n_chains", self.n_chains)
        _check_count("batch", self.batch)
        for name in ("persistent", "fresh_chain_field"):
            if not isinstance(getattr(self, name), bool):
                raise UsageError(f"{name} must be true or false, got {getattr(self, name)!r}")
        if self.optimizer not in OPTIMIZERS:
            raise UsageError(f"unknown optimizer {self.optimizer!r} "
                             f"(choose from {', '.join(OPTIMIZERS)})")
        if self.lr_schedule not in LR_SCHEDULES:
            raise UsageError(f"unknown lr schedule {self.lr_schedule!r} "
                             f"(choose from {', '.join(LR_SCHEDULES)})")

        def finite(name, value, low, low_ok, high=None):
            ok = isinstance(value, int | float | np.floating | np.integer) \
                and not isinstance(value, bool) and math.isfinite(value) \
                and (value >= low if low_ok else value > low) and (high is None or value < high)
            if not ok:
                bound = f">= {low}" if low_ok else f"> {low}"
                extra = f" and < {high}" if high is not None else ""
                raise UsageError(f"{name} must be a finite number {bound}{extra}, got {value!r}")

        finite("lr", self.lr, 0, False)
        finite("momentum", self.momentum, 0, True, 1)
        finite("adam_eps", self.adam_eps, 0, False)
        finite("l1", self.l1, 0, True)
        finite("l2", self.l2, 0, True)
        finite("lr_end_fraction", self.lr_end_fraction, 0, False, None)
        if len(self.adam_betas) != 2:
            raise UsageError(f"adam_betas must be two numbers, got {self.adam_betas!r}")
        for beta in self.adam_betas:
            finite("adam beta", beta, 0, True, 1)
        if self.lr_schedule != "constant" and self.total_steps is None:
            raise UsageError(f"lr schedule {self.lr_schedule!r} needs total_steps")
        if self.total_steps is not None:
            _check_count("total_steps", self.total_steps)

    def lr_at(self, step: int) -> float:
        """Learning rate of update number step (0-based)."""
        if self.lr_schedule == "constant":
            return float(self.lr)
        frac = min(step / self.total_steps, 1.0)
        if self.lr_schedule == "linear":
            return float(self.lr) * (1.0 - frac)
        return float(self.lr) * float(self.lr_end_fraction) ** frac


@dataclass(frozen=True)
class StepResult:
    step: int
    reconstruction_error: float  # mean squared error of the batch vs E[v | h = E[h | v]]
    lr: float


class Trainer:
    """Owns an RBM (updated in place), optimiser moments, persistent chains, the RNG state
    (advanced in place) and the step counter. One minibatch per `step` call.

    Per step the random numbers are drawn in this order, one per unit: for each of the k Gibbs
    sweeps, the hidden units of all chains (row-major), then their visible units. PCD chains
    are never reset; CD-k chains start from the batch, and their first hidden sample reuses
    the batch's hidden probabilities. New PCD chains are uniformly random unless given; a PCD
    step's first hidden sample uses `chain_field`, kept from the previous step (computed from
    the current parameters instead with config.fresh_chain_field, and for chains without
    one: new, or restored from a file that lacks it).

    blas_threads: BLAS threads for the step's GEMMs (1: bit-reproducible everywhere; None:
    leave BLAS as configured, faster on an idle multi-core machine but reproducible only at
    a fixed thread count)."""

    def __init__(self, rbm: RBM, config: TrainConfig, state, chains=None,
                 blas_threads: int | None = 1):
        if not isinstance(rbm, RBM):
            raise UsageError("Trainer needs an RBM")
        if not isinstance(config, TrainConfig):
            raise UsageError("Trainer needs a TrainConfig")
        self.rbm = rbm
        self.config = config
        self.state = _check_state(state)
        self.steps_done = 0
        self.blas_threads = blas_threads
        self._dt = rbm.dtype
        self._params = rbm.PARAMS
        self._shapes = {p: getattr(rbm, p).shape for p in self._params}
        names = ("m", "v") if config.optimizer == "adam" else ("velocity",)
        self.moments = {f"{kind}_{p}": np.zeros_like(getattr(rbm, p))
                        for p in self._params for kind in names}
        self._B = None
        self._vv = None
        self._chain_field_ready = False
        initial = None
        if config.persistent:
            shape = (config.n_chains, rbm.n_visible)
            if chains is None:
                initial = np.empty(shape, dtype=self._dt)
                _fill_prob_kernel(self._dt.type(0.5), rbm.units == "spin", self.state, initial)
            else:
                initial = np.asarray(chains)
                if initial.shape != shape:
                    raise UsageError(f"chains must have shape {shape}, got {initial.shape}")
        self._allocate(config.batch, initial)

    # buffers: vv = [batch; chains] (B + C, n_v), z = hidden fields (the chains' with their
    # bias), hh = [h_data/B; -h_model/C]
    def _set_batch_size(self, B: int) -> int:
        """The per-batch-size state every Trainer keeps (B, C, the term scales, gradient and
        reconstruction buffers); returns C, the model term's row count."""
        dt, cfg = self._dt, self.config
        C = cfg.n_chains if cfg.persistent else B
        self._B, self._C = B, C
        self._no_bias = np.zeros(self.rbm.n_hidden, dtype=dt)
        self._scale_data = dt.type(1.0 / B)
        self._scale_model = dt.type(-1.0 / C)
        self._grads = {p: np.empty_like(getattr(self.rbm, p)) for p in self._params}
        self._recon = None  # reconstruction buffers, made when first asked for
        return C

    def _allocate(self, B: int, chains, chain_field=None) -> None:
        dt, rbm = self._dt, self.rbm
        C = self._set_batch_size(B)
        self._vv = np.empty((B + C, rbm.n_visible), dtype=dt)
        if chains is not None:
            self._vv[B:] = chains
        self._z = np.empty((B + C, rbm.n_hidden), dtype=dt)
        if chain_field is not None:
            self._z[B:] = chain_field
        self._hh = np.empty((B + C, rbm.n_hidden), dtype=dt)
        self._hs = np.empty((C, rbm.n_hidden), dtype=dt)
        self._vf = np.empty((C, rbm.n_visible), dtype=dt)
        self._weights = np.concatenate([np.full(B, self._scale_data, dt),
                                        np.full(C, self._scale_model, dt)])

    @property
    def chains(self):
        """The persistent chains (n_chains, n_visible), a live view; None for CD-k."""
        return self._vv[self._B:] if self.config.persistent else None

    def _set_chain_field(self, field) -> None:
        self._z[self._B:] = field
        self._chain_field_ready = True

    @property
    def chain_field(self):
        """The persistent chains' hidden fields b + vW (n_chains, n_hidden) as computed at the
        end of the last step, before its update (a live view); None for CD-k or before the
        first step."""
        return self._z[self._B:] if self._chain_field_ready else None

    def step(self, batch, reconstruction: bool = True) -> StepResult:
        """One CD-k / PCD-k update on batch (B, n_visible). reconstruction=False skips the
        monitoring GEMM (result NaN); it never changes the training trajectory."""
        rbm, cfg = self.rbm, self.config
        batch = np.asarray(batch)
        if batch.ndim != 2 or batch.shape[1] != rbm.n_visible or batch.shape[0] < 1:
            raise UsageError(f"batch must have shape (B, {rbm.n_visible}), got {batch.shape}")
        for p, shape in self._shapes.items():  # kernels update in place, unchecked indices
            x = getattr(rbm, p)
            if x.dtype != self._dt or x.shape != shape or not x.flags.c_contiguous \
                    or not x.flags.writeable:
                raise UsageError(f"the RBM's {p} no longer matches its Trainer")
        B = batch.shape[0]
        if B != self._B:
            self._allocate(B, self.chains, self.chain_field)
        with blas_threads(self.blas_threads):
            recon = self._gradient(batch, reconstruction)
            lr = cfg.lr_at(self.steps_done)
            self._update(lr)
        self.steps_done += 1
        return StepResult(self.steps_done, float(recon), lr)

    @property
    def gradients(self) -> dict[str, np.ndarray]:
        """The last step's log-likelihood gradient estimate (data term - model term, before
        weight decay), keyed W / visible_bias / hidden_bias. Overwritten by the next step."""
        return self._grads

    def _gradient(self, batch, reconstruction: bool) -> float:
        """Fill self._grads from batch; returns the reconstruction error (or NaN)."""
        rbm, cfg, B = self.rbm, self.config, self._B
        spin, state = rbm.units == "spin", self.state
        a, b = rbm.visible_bias, rbm.hidden_bias
        vv, z, hh, hs, vf = self._vv, self._z, self._hh, self._hs, self._vf
        vv[:B] = batch
        chain_v, chain_z = vv[B:], z[B:]
        gb = self._grads["hidden_bias"]  # = Σ_rows hh, accumulated by the mean kernels

        self._hidden_field("data", z[:B])
        if cfg.persistent:
            _mean_colsum_kernel(z[:B], b, self._scale_data, spin, hh[:B], gb, True)
            if cfg.fresh_chain_field or not self._chain_field_ready:
                self._hidden_field("chains", chain_z)
                np.add(chain_z, b, out=chain_z)
            _sample_kernel(chain_z, self._no_bias, spin, state, hs)
        else:
            _mean_sample_kernel(z[:B], b, self._scale_data, spin, state, hh[:B], hs, gb)
        recon = math.nan
        if reconstruction:
            if self._recon is None:
                self._recon = (np.empty((B, rbm.n_hidden), self._dt),
                               np.empty((B, rbm.n_visible), self._dt))
            h_mean, field = self._recon
            _mean_kernel(z[:B], b, self._dt.type(1), spin, h_mean)
            self._visible_field(h_mean, field)
            recon = _squared_error_kernel(field, a, spin, vv[:B]) / (B * rbm.n_visible)
        for sweep in range(cfg.k):
            if sweep > 0:
                self._hidden_field("chains", chain_z)
                _sample_kernel(chain_z, b, spin, state, hs)
            self._visible_field(hs, vf)
            _sample_kernel(vf, a, spin, state, chain_v)
        self._hidden_field("chains", chain_z)
        np.add(chain_z, b, out=chain_z)  # with the bias: PCD's next step samples from it
        _mean_colsum_kernel(chain_z, self._no_bias, self._scale_model, spin, hh[B:], gb, False)
        self._chain_field_ready = cfg.persistent

        g = self._grads
        self._weight_gradient(g[self._params[0]])
        np.matmul(self._weights, vv, out=g["visible_bias"])
        return recon

    # The products with the weights.
    def _hidden_field(self, part: str, out) -> None:
        """out = vW for the batch rows ("data") or the chain rows ("chains") of vv."""
        rows = slice(0, self._B) if part == "data" else slice(self._B, None)
        np.matmul(self._vv[rows], self.rbm.W, out=out)

    def _visible_field(self, h, out) -> None:
        np.matmul(h, self.rbm.W.T, out=out)

    def _weight_gradient(self, out) -> None:
        """out = vvᵀ hh: data term minus model term, both already scaled into hh."""
        np.matmul(self._vv.T, self._hh, out=out)

    def _update(self, lr: float) -> None:
        cfg, rbm, dt = self.config, self.rbm, self._dt.type
        zero = dt(0)
        weights = self._params[0]  # L1/L2 act on the weights only
        decay = {p: p == weights and (cfg.l1 > 0 or cfg.l2 > 0) for p in self._params}
        if cfg.optimizer == "adam":
            b1, b2 = (float(x) for x in cfg.adam_betas)
            t = self.steps_done + 1
            lr_t = dt(lr * math.sqrt(1.0 - b2 ** t) / (1.0 - b1 ** t))
            eps_t = dt(cfg.adam_eps * math.sqrt(1.0 - b2 ** t))
            consts = (lr_t, dt(b1), dt(1.0 - b1), dt(b2), dt(1.0 - b2), eps_t)
            for p in self._params:
                l1, l2 = (dt(cfg.l1), dt(cfg.l2)) if p == weights else (zero, zero)
                _adam_kernel(getattr(rbm, p).reshape(-1), self._grads[p].reshape(-1),
                             self.moments[f"m_{p}"].reshape(-1),
                             self.moments[f"v_{p}"].reshape(-1), *consts, l1, l2, decay[p])
        else:
            for p in self._params:
                l1, l2 = (dt(cfg.l1), dt(cfg.l2)) if p == weights else (zero, zero)
                _sgd_kernel(getattr(rbm, p).reshape(-1), self._grads[p].reshape(-1),
                            self.moments[f"velocity_{p}"].reshape(-1), dt(lr),
                            dt(cfg.momentum), l1, l2, decay[p])

    # ---- resume -----------------------------------------------------------------------
    def state_arrays(self) -> dict[str, np.ndarray]:
        """Copies of everything a bit-exact resume needs: parameters, optimiser moments
        (m_*, v_* for Adam, velocity_* for SGD), chains and, once a step has run,
        chain_field (PCD), rng_state, steps_done."""
        out = {p: getattr(self.rbm, p).copy() for p in self._params}
        out.update({k: v.copy() for k, v in self.moments.items()})
        if self.config.persistent:
            out["chains"] = self.chains.copy()
            if self._chain_field_ready:
                out["chain_field"] = self.chain_field.copy()
        out["rng_state"] = self.state.copy()
        out["steps_done"] = np.array(self.steps_done, dtype=np.int64)
        return out

    @classmethod
    def from_state_arrays(cls, arrays, config: TrainConfig, units: str,
                          blas_threads: int | None = 1) -> "Trainer":
        """Rebuild a Trainer from state_arrays() output; UsageError on anything inconsistent."""
        get = _getter(arrays)
        W = get("W")
        if W.dtype not in DTYPES:
            raise UsageError(f"RBM weights have dtype {W.dtype}, expected float32 or float64")
        rbm = RBM(W.copy(), get("visible_bias").copy(), get("hidden_bias").copy(), units)
        return cls._restore(rbm, arrays, config, blas_threads)

    @classmethod
    def _restore(cls, rbm, arrays, config, blas_threads):
        """A Trainer for rbm with the chains, moments, RNG state and counter arrays hold."""
        get = _getter(arrays)
        state = get("rng_state")
        if state.dtype != np.uint64 or state.shape != (4,):
            raise UsageError("rng_state must be uint64 of shape (4,)")
        steps = get("steps_done")
        if steps.shape != () or steps.dtype.kind not in "iu" or int(steps) < 0:
            raise UsageError("steps_done must be a non-negative integer scalar")
        chains = get("chains") if config.persistent else None
        trainer = cls(rbm, config, np.ascontiguousarray(state).copy(), chains=chains,
                      blas_threads=blas_threads)
        for name, moment in trainer.moments.items():
            saved = get(name)
            if saved.shape != moment.shape:
                raise UsageError(f"{name!r} has shape {saved.shape}, expected {moment.shape}")
            moment[...] = saved
        if config.persistent and "chain_field" in arrays:
            field = get("chain_field")
            if field.shape != (config.n_chains, rbm.n_hidden) or field.dtype != rbm.dtype:
                raise UsageError(f"chain_field must be {rbm.dtype} of shape "
                                 f"{(config.n_chains, rbm.n_hidden)}")
            trainer._set_chain_field(field)
        trainer.steps_done = int(steps)
        return trainer


def _getter(arrays):
    def get(name):
        if name not in arrays:
            raise UsageError(f"RBM state lacks {name!r}")
        return np.asarray(arrays[name])
    return get
