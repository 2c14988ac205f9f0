"""2D Ising Monte Carlo: checkerboard Metropolis and heat-bath, Wolff clusters, and
batch-of-replicas variants.

Model: H = -J sum_<ij> s_i s_j - h sum_i s_i with J = 1 on an L x L periodic square lattice.
Spins are C-contiguous int8 arrays of +1/-1, updated in place; RNG states are xoshiro256**
uint64[4] rows (see rgflow.core.rng), advanced in place.

How random bits map to decisions (the test suite replays this with rgflow.core.rng.PyXoshiro):

* Local updates (Metropolis, heat-bath). A sweep is two half-sweeps: first every site with
  (r + c) even, then every site with (r + c) odd. Within a half-sweep the L*L/2 sites are
  visited in row-major order, attempt j = 0, 1, 2, ... A half-sweep consumes exactly L*L/4
  64-bit draws: draw q supplies attempt 2q (its low 32 bits) and attempt 2q + 1 (its high
  32 bits). Nothing is carried between half-sweeps, so n sweeps in one call equal n calls of
  one sweep, bit for bit.
* Each decision compares the 32-bit integer u with an integer threshold:
  "u < ceil(p * 2**32)", which is exactly the decision "u / 2**32 < p" for the float64 p
  (u is an integer and p * 2**32 is exact), so acceptance probabilities are p rounded up to
  the next multiple of 2**-32. The kernels store c = ceil(p * 2**32) - 1 and test u <= c
  (it fits in 32 bits because p > 0, see below).
  - Metropolis flips s -> -s when u < p with dE = 2 s (sum_nn + h), p = 1 if dE <= 0 else
    exp(-min(beta * dE, 700)).
  - Heat-bath sets s = +1 when u < p+, else s = -1, with
    p+ = 1 / (1 + exp(-x)), x = clip(2 (beta (sum_nn + h)), -700, 700).
  Clipping the exponent at 700 keeps p >= exp(-700) > 0, so c fits in 32 bits. Its only
  effect: a move whose probability would underflow to exactly 0 (beta * dE > ~745) gets
  2**-32, like every p in (0, 2**-32].
* Wolff (h = 0 only). Each step draws one 64-bit word x and seeds the cluster at flat site
  x mod (L*L) (bias below L*L / 2**64). The cluster grows breadth-first from a FIFO queue;
  a site is flipped when it is enqueued. Every site taken from the queue consumes two 64-bit
  draws w0, w1: the bond tests towards its up (r-1), down (r+1), left (c-1) and right (c+1)
  neighbours use the low and high halves of w0, then of w1, in that order, whether or not
  that neighbour can join. A neighbour joins when it still has the cluster's old sign and
  u < ceil(p_add * 2**32), p_add = 1 - exp(-2 beta). A step consumes 1 + 2 * (cluster size)
  draws.

Wolff has no fixed notion of a sweep: a caller that wants "one sweep" runs about
L*L / <cluster size> steps, using the flipped-spin counts the functions return.

Local kernels work on a private checkerboard-split copy of the lattice (each sublattice
packed row by row with one halo column at each end), so the inner loop has unit stride, no
modulo and no table lookups, and LLVM vectorises it; the copy is made and written back once
per call.

The Python wrappers validate and normalise their inputs once and call `@njit(cache=True,
nogil=True)` kernels; nothing is compiled at import time.
"""

import functools
import math
import numbers

import numpy as np
from numba import njit, prange

from .errors import UsageError
from .observables import energy_and_magnetisation
from .rng import check_state, xoshiro_next

ALGORITHMS = ("metropolis", "heatbath", "wolff")
MIN_L = 4
MAX_L = 4096
# Exponents are clipped here so that no probability is exactly 0 (see the module docstring).
EXP_CLIP = 700.0

_U64 = np.uint64
_I8 = np.int8
_LO32 = np.uint64(0xFFFFFFFF)
_S32 = np.uint64(32)
_TWO32 = 2**32


# --------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------
def validate_lattice_size(L) -> int:
    """An even lattice side 4 <= L <= 4096, as a Python int, or a UsageError."""
    if isinstance(L, bool) or not isinstance(L, numbers.Integral):
        raise UsageError(f"the lattice size L must be a whole number, got {L!r}")
    L = int(L)
    if L < MIN_L:
        raise UsageError(f"the lattice size L must be at least {MIN_L}, got {L}")
    if L > MAX_L:
        raise UsageError(f"the lattice size L must be at most {MAX_L}, got {L}")
    if L % 2:
        raise UsageError(
            f"the lattice size L must be even, got {L}: checkerboard updates need two "
            "sublattices that wrap around consistently, which periodic odd lattices lack"
        )
    return L


def _beta(beta) -> float:
    try:
        b = float(beta)
    except (TypeError, ValueError):
        raise UsageError(f"beta must be a number, got {beta!r}") from None
    if not math.isfinite(b) or b <= 0.0:
        raise UsageError(
            f"beta = 1/T must be finite and positive (T > 0), got beta = {beta!r}"
        )
    return b


def _field(h) -> float:
    try:
        value = float(h)
    except (TypeError, ValueError):
        raise UsageError(f"the field h must be a number, got {h!r}") from None
    if not math.isfinite(value):
        raise UsageError(f"the field h must be finite, got {h!r}")
    return value


def _count(n, what: str) -> int:
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 0:
        raise UsageError(f"the number of {what} must be a whole number >= 0, got {n!r}")
    return int(n)


@njit(cache=True, nogil=True)
def _all_plus_minus_one(flat):
    """One vectorised pass (a Wolff cluster of 0-valued sites would never end)."""
    bad = 0
    for i in range(flat.shape[0]):
        v = flat[i]
        bad |= (v != 1) & (v != -1)
    return bad == 0


def _check_spins(spins, batch: bool) -> np.ndarray:
    """The spins array itself (updated in place), or a UsageError: never a silent copy."""
    ndim = 3 if batch else 2
    shape_text = "(R, L, L)" if batch else "(L, L)"
    if not isinstance(spins, np.ndarray) or spins.ndim != ndim:
        raise UsageError(f"spins must be a numpy array of shape {shape_text}")
    if spins.shape[-1] != spins.shape[-2]:
        raise UsageError(f"spins must be square, got shape {spins.shape}")
    validate_lattice_size(spins.shape[-1])
    if batch and spins.shape[0] == 0:
        raise UsageError("a batch needs at least one replica")
    if spins.dtype != np.int8 or not spins.flags.c_contiguous or not spins.flags.writeable:
        raise UsageError(
            "spins are updated in place and must be a writeable C-contiguous int8 array "
            f"(got {spins.dtype}, C-contiguous={spins.flags.c_contiguous}); "
            "convert once with np.ascontiguousarray(spins, dtype=np.int8)"
        )
    if not _all_plus_minus_one(spins.reshape(-1)):
        raise UsageError("spins must all be +1 or -1")
    return spins


def _check_states(state, rows: int | None) -> np.ndarray:
    return check_state(state, rows)


def _betas(betas, rows: int) -> np.ndarray:
    try:
        arr = np.asarray(betas, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise UsageError(f"betas must be numbers, got {betas!r}") from None
    if arr.shape != (rows,):
        raise UsageError(f"need one beta per replica ({rows}), got {arr.size}")
    if not (np.isfinite(arr) & (arr > 0)).all():
        raise UsageError(f"every beta = 1/T must be finite and positive (T > 0), got {arr}")
    return np.ascontiguousarray(arr)


# --------------------------------------------------------------------------------------
# Threshold tables: computed in Python (math.exp), read by the kernels
# --------------------------------------------------------------------------------------
NN_VALUES = (-4, -2, 0, 2, 4)


def _threshold(p: float) -> int:
    """c = ceil(p * 2**32) - 1 for 0 < p <= 1: u <= c  <=>  u < p * 2**32  <=>  u/2**32 < p."""
    return math.ceil(p * _TWO32) - 1


def metropolis_probability(beta: float, h: float, s: int, nn: int) -> float:
    """The float64 acceptance probability of flipping spin s with neighbour sum nn."""
    dE = 2.0 * s * (nn + h)
    if dE <= 0.0:
        return 1.0
    return math.exp(-min(beta * dE, EXP_CLIP))


def heatbath_probability(beta: float, h: float, nn: int) -> float:
    """The float64 probability that heat-bath sets the spin to +1."""
    x = min(max(2.0 * (beta * (nn + h)), -EXP_CLIP), EXP_CLIP)  # beta * 0 is 0 even for huge beta
    if x >= 0.0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


def wolff_add_probability(beta: float) -> float:
    return 1.0 - math.exp(-2.0 * beta)


def _metropolis_table(beta: float, h: float):
    """(c, bounds): c[e] is the threshold for neighbour sum NN_VALUES[e] when the move costs
    energy, and a flip of spin s is free (dE <= 0) exactly when s * nn <= bounds[s < 0]."""
    c = np.empty(5, np.uint32)
    for e, nn in enumerate(NN_VALUES):
        s = 1 if nn + h > 0 else -1  # the spin for which this neighbour sum costs energy
        c[e] = _threshold(metropolis_probability(beta, h, s, nn))
    # s * (nn + h) <= 0  <=>  s * nn <= -s * h  <=>  s * nn <= floor(-s * h) (s * nn integer)
    bounds = np.array([math.floor(-h), math.floor(h)], np.int64)
    return c, bounds


def _heatbath_table(beta: float, h: float) -> np.ndarray:
    return np.array([_threshold(heatbath_probability(beta, h, nn)) for nn in NN_VALUES],
                    np.uint32)


def _wolff_threshold(beta: float) -> int:
    """ceil(p_add * 2**32): a bond is added when u < this (it can be 0, so uint64)."""
    return math.ceil(wolff_add_probability(beta) * _TWO32)


# --------------------------------------------------------------------------------------
# Kernels: initial configurations
# --------------------------------------------------------------------------------------
@njit(cache=True, nogil=True)
def _random_spins_kernel(flat, state):
    """Site i gets +1 if bit (i % 64) of draw i // 64 is set, else -1."""
    n = flat.shape[0]
    s0, s1, s2, s3 = state[0], state[1], state[2], state[3]
    word = _U64(0)
    for i in range(n):
        b = i & 63
        if b == 0:
            word, s0, s1, s2, s3 = xoshiro_next(s0, s1, s2, s3)
        flat[i] = 2 * np.int8((word >> _U64(b)) & _U64(1)) - 1
    state[0], state[1], state[2], state[3] = s0, s1, s2, s3


def random_spins(L, state) -> np.ndarray:
    """A uniformly random (infinite-temperature) lattice, int8 (L, L); advances state by
    ceil(L*L / 64) draws (site i is bit i % 64 of draw i // 64: set means +1)."""
    L = validate_lattice_size(L)
    state = _check_states(state, None)
    spins = np.empty((L, L), np.int8)
    _random_spins_kernel(spins.reshape(-1), state)
    return spins


def random_spins_batch(R, L, states) -> np.ndarray:
    """R random lattices (R, L, L); replica i is random_spins(L, states[i])."""
    R = _count(R, "replicas")
    if R == 0:
        raise UsageError("a batch needs at least one replica")
    L = validate_lattice_size(L)
    states = _check_states(states, R)
    spins = np.empty((R, L, L), np.int8)
    for i in range(R):
        _random_spins_kernel(spins[i].reshape(-1), states[i])
    return spins


def ordered_spins(L, sign=1) -> np.ndarray:
    """The fully ordered lattice: all +1 (sign=1) or all -1 (sign=-1), int8 (L, L)."""
    L = validate_lattice_size(L)
    if sign not in (1, -1):
        raise UsageError(f"sign must be +1 or -1, got {sign!r}")
    return np.full((L, L), sign, np.int8)


# --------------------------------------------------------------------------------------
# Kernels: checkerboard local updates on a split copy
# --------------------------------------------------------------------------------------
# Split layout: X[p, r, 1 + k] is the k-th site of row r on sublattice p (p = (r + c) % 2),
# i.e. column c = 2k + ((r + p) & 1). Columns 0 and H + 1 are halo copies of k = H-1 and 0.
# For a site of sublattice p in row r the neighbours are, in the other sublattice q,
# Y[r-1, k], Y[r+1, k], Y[r, k] and Y[r, k + d] with d = -1 if (r + p) is even else +1.


@njit(cache=True, nogil=True)
def _to_split(spins, X):
    L = spins.shape[0]
    H = L >> 1
    for r in range(L):
        o = r & 1
        for k in range(H):
            X[0, r, k + 1] = spins[r, 2 * k + o]
            X[1, r, k + 1] = spins[r, 2 * k + 1 - o]
        for p in range(2):
            X[p, r, 0] = X[p, r, H]
            X[p, r, H + 1] = X[p, r, 1]


@njit(cache=True, nogil=True)
def _from_split(X, spins):
    L = spins.shape[0]
    H = L >> 1
    for r in range(L):
        o = r & 1
        for k in range(H):
            spins[r, 2 * k + o] = X[0, r, k + 1]
            spins[r, 2 * k + 1 - o] = X[1, r, k + 1]


@njit(inline="always")
def _fill_randoms(rb, n64, s0, s1, s2, s3):
    """rb[2q] / rb[2q+1] = low / high half of draw q, for q < n64."""
    for q in range(n64):
        x, s0, s1, s2, s3 = xoshiro_next(s0, s1, s2, s3)
        rb[2 * q] = np.uint32(x & _LO32)
        rb[2 * q + 1] = np.uint32(x >> _S32)
    return s0, s1, s2, s3


# Row updates. Indices go through uint64 so numba emits no negative-index wraparound code;
# spin arithmetic is truncated to int8 and the count to uint32 so LLVM can keep the vector
# lanes narrow; every decision is a select, so the loop vectorises. inline="always" costs
# ~2 s of first compilation and buys 10-35% at L = 32-128 (measured).
@njit(inline="always")
def _metropolis_row_h0(X, xb, ub, db, cb, d, rb, ro, c, bp, bm, H):
    """Zero field: a flip is free iff y = s * nn <= 0, otherwise it costs 2y (y = 2 or 4)."""
    c2 = c[3]
    c4 = c[4]
    acc = np.uint32(0)
    for k in range(1, H + 1):
        s = X[_U64(xb + k)]
        nn = _I8(X[_U64(ub + k)] + X[_U64(db + k)] + X[_U64(cb + k)] + X[_U64(cb + k + d)])
        y = _I8(s * nn)
        t = c4 if y == 4 else c2
        f = (y <= 0) | (rb[_U64(ro + k - 1)] <= t)
        X[_U64(xb + k)] = -s if f else s
        acc = np.uint32(acc + f)
    return acc


@njit(inline="always")
def _metropolis_row(X, xb, ub, db, cb, d, rb, ro, c, bp, bm, H):
    """Any field: free iff s * nn <= bp (s = +1) or bm (s = -1); otherwise the threshold
    depends on nn only (the sign of s is then fixed by the sign of nn + h)."""
    c0 = c[0]
    c1 = c[1]
    c2 = c[2]
    c3 = c[3]
    c4 = c[4]
    bp8 = _I8(bp)
    bm8 = _I8(bm)
    acc = np.uint32(0)
    for k in range(1, H + 1):
        s = X[_U64(xb + k)]
        nn = _I8(X[_U64(ub + k)] + X[_U64(db + k)] + X[_U64(cb + k)] + X[_U64(cb + k + d)])
        y = _I8(s * nn)
        free = y <= (bp8 if s > 0 else bm8)
        t = c0
        t = c1 if nn == -2 else t
        t = c2 if nn == 0 else t
        t = c3 if nn == 2 else t
        t = c4 if nn == 4 else t
        f = free | (rb[_U64(ro + k - 1)] <= t)
        X[_U64(xb + k)] = -s if f else s
        acc = np.uint32(acc + f)
    return acc


@njit(inline="always")
def _heatbath_row(X, xb, ub, db, cb, d, rb, ro, c, bp, bm, H):
    c0 = c[0]
    c1 = c[1]
    c2 = c[2]
    c3 = c[3]
    c4 = c[4]
    acc = np.uint32(0)
    for k in range(1, H + 1):
        s = X[_U64(xb + k)]
        nn = _I8(X[_U64(ub + k)] + X[_U64(db + k)] + X[_U64(cb + k)] + X[_U64(cb + k + d)])
        t = c0
        t = c1 if nn == -2 else t
        t = c2 if nn == 0 else t
        t = c3 if nn == 2 else t
        t = c4 if nn == 4 else t
        new = _I8(1) if rb[_U64(ro + k - 1)] <= t else _I8(-1)
        X[_U64(xb + k)] = new
        acc = np.uint32(acc + (new != s))
    return acc


@njit(inline="always")
def _row_geometry(p, r, L, W):
    """Flat bases of row r of sublattice p and of its three neighbour rows in the other
    sublattice, the horizontal offset d, and where the row's random halves start in rb."""
    H = W - 2
    yo = (1 - p) * L * W
    xb = p * L * W + r * W
    ub = yo + (r - 1 if r > 0 else L - 1) * W
    db = yo + (r + 1 if r < L - 1 else 0) * W
    cb = yo + r * W
    d = -1 if ((r + p) & 1) == 0 else 1
    ro = H * (r & 1)
    return xb, ub, db, cb, d, ro


@njit(inline="always")
def _refresh_halo(X, xb, H):
    X[xb] = X[xb + H]
    X[xb + H + 1] = X[xb + 1]


# One driver per rule (rather than a branch per row) keeps each hot loop lean: measured
# 5-20% faster. Row pairs share one buffer of 2H random halves (H draws).
@njit(cache=True, nogil=True)
def _sweeps_metropolis_h0(X, L, c, bp, bm, n_sweeps, state):
    H = L >> 1
    rb = np.empty(2 * H, np.uint32)
    s0, s1, s2, s3 = state[0], state[1], state[2], state[3]
    acc = 0
    for _ in range(n_sweeps):
        for p in range(2):
            for r in range(L):
                if (r & 1) == 0:
                    s0, s1, s2, s3 = _fill_randoms(rb, H, s0, s1, s2, s3)
                xb, ub, db, cb, d, ro = _row_geometry(p, r, L, H + 2)
                acc += _metropolis_row_h0(X, xb, ub, db, cb, d, rb, ro, c, bp, bm, H)
                _refresh_halo(X, xb, H)
    state[0], state[1], state[2], state[3] = s0, s1, s2, s3
    return acc


@njit(cache=True, nogil=True)
def _sweeps_metropolis(X, L, c, bp, bm, n_sweeps, state):
    H = L >> 1
    rb = np.empty(2 * H, np.uint32)
    s0, s1, s2, s3 = state[0], state[1], state[2], state[3]
    acc = 0
    for _ in range(n_sweeps):
        for p in range(2):
            for r in range(L):
                if (r & 1) == 0:
                    s0, s1, s2, s3 = _fill_randoms(rb, H, s0, s1, s2, s3)
                xb, ub, db, cb, d, ro = _row_geometry(p, r, L, H + 2)
                acc += _metropolis_row(X, xb, ub, db, cb, d, rb, ro, c, bp, bm, H)
                _refresh_halo(X, xb, H)
    state[0], state[1], state[2], state[3] = s0, s1, s2, s3
    return acc


@njit(cache=True, nogil=True)
def _sweeps_heatbath(X, L, c, bp, bm, n_sweeps, state):
    H = L >> 1
    rb = np.empty(2 * H, np.uint32)
    s0, s1, s2, s3 = state[0], state[1], state[2], state[3]
    acc = 0
    for _ in range(n_sweeps):
        for p in range(2):
            for r in range(L):
                if (r & 1) == 0:
                    s0, s1, s2, s3 = _fill_randoms(rb, H, s0, s1, s2, s3)
                xb, ub, db, cb, d, ro = _row_geometry(p, r, L, H + 2)
                acc += _heatbath_row(X, xb, ub, db, cb, d, rb, ro, c, bp, bm, H)
                _refresh_halo(X, xb, H)
    state[0], state[1], state[2], state[3] = s0, s1, s2, s3
    return acc


@njit(cache=True, nogil=True)
def _local_core(spins, mode, c, bp, bm, n_sweeps, state):
    """n checkerboard sweeps; mode 0 = Metropolis h = 0, 1 = Metropolis, 2 = heat-bath.
    Returns the number of spins that changed sign."""
    L = spins.shape[0]
    W = (L >> 1) + 2
    X3 = np.empty((2, L, W), np.int8)
    _to_split(spins, X3)
    X = X3.reshape(2 * L * W)
    if mode == 0:
        acc = _sweeps_metropolis_h0(X, L, c, bp, bm, n_sweeps, state)
    elif mode == 1:
        acc = _sweeps_metropolis(X, L, c, bp, bm, n_sweeps, state)
    else:
        acc = _sweeps_heatbath(X, L, c, bp, bm, n_sweeps, state)
    _from_split(X3, spins)
    return acc


@njit(cache=True, nogil=True, parallel=True)
def _local_batch(spins, mode, c, bounds, n_sweeps, states):
    R = spins.shape[0]
    out = np.zeros(R, np.int64)
    for i in prange(R):
        out[i] = _local_core(spins[i], mode, c[i], bounds[i, 0], bounds[i, 1], n_sweeps,
                             states[i])
    return out


# --------------------------------------------------------------------------------------
# Kernels: Wolff
# --------------------------------------------------------------------------------------
@njit(inline="always")
def _wolff_try(sp, queue, tail, r, c, L, old, u, thr):
    """Bond test towards site (r, c): join (flip and enqueue) iff it still has the old sign
    and u < thr. Branch-free: the queue slot is always written, tail advances on a join."""
    i = _U64(r * L + c)
    a = (sp[i] == old) & (u < thr)
    sp[i] = sp[i] * (1 - 2 * a)
    queue[_U64(tail)] = np.int32((r << 12) | c)
    return tail + a


@njit(cache=True, nogil=True)
def _wolff_core(spins, thr, n_steps, state):
    """n Wolff cluster flips; returns the total number of spins flipped.

    Breadth-first growth from a FIFO queue of packed sites r << 12 | c (L <= 4096): the site
    processed next was enqueued long ago, so consecutive sites do not wait on each other
    (measured ~15% faster than a LIFO stack). Each site is enqueued at most once per step.
    """
    L = spins.shape[0]
    N = L * L
    sp = spins.reshape(N)
    queue = np.empty(N + 1, np.int32)  # + 1: the branch-free write after a full lattice
    s0, s1, s2, s3 = state[0], state[1], state[2], state[3]
    total = 0
    for _ in range(n_steps):
        x, s0, s1, s2, s3 = xoshiro_next(s0, s1, s2, s3)
        seed = np.int64(x % _U64(N))
        r0 = seed // L
        c0 = seed - r0 * L
        old = sp[seed]
        sp[seed] = -old
        queue[0] = np.int32((r0 << 12) | c0)
        head = 0
        tail = 1
        while head < tail:
            e = np.int64(queue[_U64(head)])
            head += 1
            r = e >> 12
            c = e & 4095
            w0, s0, s1, s2, s3 = xoshiro_next(s0, s1, s2, s3)
            w1, s0, s1, s2, s3 = xoshiro_next(s0, s1, s2, s3)
            ru = r - 1 if r > 0 else L - 1
            rd = r + 1 if r < L - 1 else 0
            cl = c - 1 if c > 0 else L - 1
            cr = c + 1 if c < L - 1 else 0
            tail = _wolff_try(sp, queue, tail, ru, c, L, old, w0 & _LO32, thr)
            tail = _wolff_try(sp, queue, tail, rd, c, L, old, w0 >> _S32, thr)
            tail = _wolff_try(sp, queue, tail, r, cl, L, old, w1 & _LO32, thr)
            tail = _wolff_try(sp, queue, tail, r, cr, L, old, w1 >> _S32, thr)
        total += tail
    state[0], state[1], state[2], state[3] = s0, s1, s2, s3
    return total


@njit(cache=True, nogil=True, parallel=True)
def _wolff_batch(spins, thr, n_steps, states):
    R = spins.shape[0]
    out = np.zeros(R, np.int64)
    for i in prange(R):
        out[i] = _wolff_core(spins[i], thr[i], n_steps, states[i])
    return out


# --------------------------------------------------------------------------------------
# Public wrappers: validate once, then run a kernel
# --------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=256)
def _local_args(algorithm: str, beta: float, h: float):
    """(mode, thresholds, bounds) for a kernel call; cached, the kernels never write them."""
    if algorithm == "metropolis":
        c, bounds = _metropolis_table(beta, h)
        return (0 if h == 0.0 else 1), c, bounds
    return 2, _heatbath_table(beta, h), np.zeros(2, np.int64)


def _local_sweeps(algorithm, spins, beta, h, n_sweeps, state) -> int:
    spins = _check_spins(spins, batch=False)
    beta, h = _beta(beta), _field(h)
    n = _count(n_sweeps, "sweeps")
    state = _check_states(state, None)
    if n == 0:
        return 0
    mode, c, bounds = _local_args(algorithm, beta, h)
    return int(_local_core(spins, mode, c, bounds[0], bounds[1], n, state))


def _local_sweeps_batch(algorithm, spins, betas, h, n_sweeps, states) -> np.ndarray:
    spins = _check_spins(spins, batch=True)
    R = spins.shape[0]
    betas = _betas(betas, R)
    h = _field(h)
    n = _count(n_sweeps, "sweeps")
    states = _check_states(states, R)
    if n == 0:
        return np.zeros(R, np.int64)
    c = np.empty((R, 5), np.uint32)
    bounds = np.empty((R, 2), np.int64)
    mode = 0
    for i, beta in enumerate(betas.tolist()):
        mode, c[i], bounds[i] = _local_args(algorithm, beta, h)
    return _local_batch(spins, mode, c, bounds, n, states)


@njit(cache=True, nogil=True)
def _local_steps_measured(spins, mode, c, bp, bm, sweeps_per_step, changed, bond_e, mag, state,
                          sample_first, sample_every, samples):
    """len(changed) steps of sweeps_per_step sweeps each, measuring the lattice after each
    step and copying it into samples after steps sample_first, sample_first + sample_every,
    ..., in one call (one GIL release instead of several per step)."""
    j = 0
    for i in range(changed.shape[0]):
        changed[i] = _local_core(spins, mode, c, bp, bm, sweeps_per_step, state)
        bond_e[i], mag[i] = energy_and_magnetisation(spins)
        if j < samples.shape[0] and i >= sample_first and (i - sample_first) % sample_every == 0:
            samples[j] = spins
            j += 1


def sample_count(n_steps: int, sample_first: int, sample_every: int) -> int:
    """How many of steps 0..n_steps-1 are sample_first + k * sample_every (k >= 0)."""
    if sample_first < 0 or sample_first >= n_steps:
        return 0
    return 1 + (n_steps - 1 - sample_first) // sample_every


def local_steps_measured(algorithm, spins, beta, h, sweeps_per_step, n_steps, state):
    """n_steps x (sweeps_per_step Metropolis or heat-bath sweeps, then a measurement), bit
    for bit what n_steps calls of run_sweeps(..., sweeps_per_step, ...) do. Returns int64
    arrays (n_steps,): spins changed, total bond energy and magnetisation after each step."""
    return local_steps_sampled(algorithm, spins, beta, h, sweeps_per_step, n_steps, state)[:3]


def local_steps_sampled(algorithm, spins, beta, h, sweeps_per_step, n_steps, state,
                        sample_first: int = -1, sample_every: int = 1):
    """local_steps_measured that also keeps copies of the lattice after steps sample_first,
    sample_first + sample_every, ... (none when sample_first < 0). Returns (changed, bond
    energy, magnetisation, samples) with samples int8 (sample_count(...), L, L)."""
    if algorithm not in ("metropolis", "heatbath"):
        raise UsageError(f"measured local steps need metropolis or heatbath, got {algorithm!r}")
    spins = _check_spins(spins, batch=False)
    beta, h = _beta(beta), _field(h)
    per_step = _count(sweeps_per_step, "sweeps")
    n = _count(n_steps, "steps")
    every = int(sample_every)
    if every < 1:
        raise UsageError(f"sample_every must be >= 1, got {sample_every}")
    state = _check_states(state, None)
    changed, bond_e, mag = (np.zeros(n, np.int64) for _ in range(3))
    samples = np.empty((sample_count(n, int(sample_first), every), *spins.shape), spins.dtype)
    if n and per_step:
        mode, c, bounds = _local_args(algorithm, beta, h)
        _local_steps_measured(spins, mode, c, bounds[0], bounds[1], per_step, changed, bond_e,
                              mag, state, int(sample_first), every, samples)
    elif n:
        e, m = energy_and_magnetisation(spins)
        bond_e[:], mag[:] = e, m
        samples[:] = spins
    return changed, bond_e, mag, samples


def metropolis_sweeps(spins, beta, h, n_sweeps, state) -> int:
    """n_sweeps checkerboard Metropolis sweeps in place; returns the number of accepted flips."""
    return _local_sweeps("metropolis", spins, beta, h, n_sweeps, state)


def heatbath_sweeps(spins, beta, h, n_sweeps, state) -> int:
    """n_sweeps checkerboard heat-bath sweeps in place; returns the number of spins whose
    sign changed."""
    return _local_sweeps("heatbath", spins, beta, h, n_sweeps, state)


def wolff_steps(spins, beta, n_steps, state) -> int:
    """n_steps Wolff cluster flips (h = 0) in place; returns the total number of spins
    flipped (the sum of the cluster sizes)."""
    spins = _check_spins(spins, batch=False)
    beta = _beta(beta)
    n = _count(n_steps, "Wolff steps")
    state = _check_states(state, None)
    if n == 0:
        return 0
    return int(_wolff_core(spins, _U64(_wolff_threshold(beta)), n, state))


def metropolis_sweeps_batch(spins, betas, h, n_sweeps, states) -> np.ndarray:
    """Metropolis on R independent replicas (R, L, L) in parallel, replica i with betas[i]
    and states[i]; returns accepted flips per replica, int64 (R,). Bit-identical to running
    metropolis_sweeps on each replica, whatever the thread count."""
    return _local_sweeps_batch("metropolis", spins, betas, h, n_sweeps, states)


def heatbath_sweeps_batch(spins, betas, h, n_sweeps, states) -> np.ndarray:
    """Heat-bath on R independent replicas; returns sign changes per replica, int64 (R,)."""
    return _local_sweeps_batch("heatbath", spins, betas, h, n_sweeps, states)


def wolff_steps_batch(spins, betas, n_steps, states) -> np.ndarray:
    """Wolff on R independent replicas; returns spins flipped per replica, int64 (R,)."""
    spins = _check_spins(spins, batch=True)
    R = spins.shape[0]
    betas = _betas(betas, R)
    n = _count(n_steps, "Wolff steps")
    states = _check_states(states, R)
    if n == 0:
        return np.zeros(R, np.int64)
    thr = np.array([_wolff_threshold(b) for b in betas.tolist()], np.uint64)
    return _wolff_batch(spins, thr, n, states)


def _algorithm(algorithm, h: float) -> str:
    if algorithm not in ALGORITHMS:
        raise UsageError(f"unknown algorithm {algorithm!r}; choose from {', '.join(ALGORITHMS)}")
    if algorithm == "wolff" and h != 0.0:
        raise UsageError(f"the Wolff algorithm needs h = 0, got h = {h}; use metropolis or "
                         "heatbath in a field")
    return algorithm


def run_sweeps(algorithm, spins, beta, h, n, state) -> int:
    """Dispatch to metropolis_sweeps / heatbath_sweeps (n sweeps) or wolff_steps (n cluster
    flips, h must be 0). Returns the count that function returns."""
    algorithm = _algorithm(algorithm, _field(h))
    if algorithm == "wolff":
        return wolff_steps(spins, beta, n, state)
    return _local_sweeps(algorithm, spins, beta, h, n, state)


def run_sweeps_batch(algorithm, spins, betas, h, n, states) -> np.ndarray:
    """The batch form of run_sweeps: counts per replica, int64 (R,)."""
    algorithm = _algorithm(algorithm, _field(h))
    if algorithm == "wolff":
        return wolff_steps_batch(spins, betas, n, states)
    return _local_sweeps_batch(algorithm, spins, betas, h, n, states)
