"""RG block-spin transformations: block average, majority rule, decimation, hierarchies.

Conventions (core/SCIENCE.md §2):
- A configuration is an (L, L) array; a batch is (..., L, L) (usually (n, L, L)). Spins are
  int8 +1/-1; block averages are float32 and can be averaged again.
- Blocks are b x b. Block (K, J) covers sites r = K*b .. K*b+b-1, c = J*b .. J*b+b-1.
- Hidden index a <-> block (K, J) row-major on the (L/b) x (L/b) grid: a = K*(L/b) + J.
  Visible index i <-> site (r, c) row-major: i = r*L + c.

Majority-rule ties (possible only when b is even, block sum 0) are broken with an explicit
xoshiro256** state (rgflow.core.rng): exactly one `next_u64` per tied block, in row-major order over
(configuration, K, J) of the flattened batch; the block spin is +1 if the top bit (bit 63) of
that draw is set, else -1. Blocks without a tie draw nothing, so odd b never touches the state.
Processing a batch in consecutive pieces with the same state gives the same result as one call.
"""

import numpy as np
from numba import njit, prange

from .config import RG_RULES
from .errors import UsageError
from .rng import check_state, xoshiro_next

RULES = RG_RULES  # the one list, kept in config (light to import)

_U64 = np.uint64


# ---------------------------------------------------------------- kernels


@njit(cache=True, nogil=True, parallel=True)
def _block_average_kernel(x, b, out):
    """out[n, K, J] = (sum over the block in row-major order, in float64) / b^2."""
    n_cfg = x.shape[0]
    m = out.shape[1]
    bb = np.float64(b * b)
    for n in prange(n_cfg):
        for k in range(m):
            for j in range(m):
                acc = 0.0
                for dr in range(b):
                    for dc in range(b):
                        acc += x[n, k * b + dr, j * b + dc]
                out[n, k, j] = acc / bb


@njit(cache=True, nogil=True, parallel=True)
def _block_sign_kernel(x, b, out):
    """out[n, K, J] = sign of the block sum of int8 spins: +1, -1, or 0 for a tie."""
    n_cfg = x.shape[0]
    m = out.shape[1]
    for n in prange(n_cfg):
        for k in range(m):
            for j in range(m):
                acc = 0
                for dr in range(b):
                    for dc in range(b):
                        acc += np.int64(x[n, k * b + dr, j * b + dc])
                out[n, k, j] = 1 if acc > 0 else (-1 if acc < 0 else 0)


@njit(cache=True, nogil=True)
def _break_ties_kernel(flat, state):
    """Replace each 0 of `flat` (row-major over (n, K, J)) by +-1, one draw per tie, in
    order; +1 iff bit 63 of the draw is set. Sequential, so the order never depends on
    threads. Returns the number of ties."""
    s0, s1, s2, s3 = state[0], state[1], state[2], state[3]
    ties = 0
    for i in range(flat.size):
        if flat[i] == 0:
            r, s0, s1, s2, s3 = xoshiro_next(s0, s1, s2, s3)
            flat[i] = 1 if (r >> _U64(63)) != _U64(0) else -1
            ties += 1
    state[0] = s0
    state[1] = s1
    state[2] = s2
    state[3] = s3
    return ties


# ---------------------------------------------------------------- validation helpers


def max_levels(L: int, b: int) -> int:
    """How many b-blockings an L x L lattice supports (b must divide L at every level)."""
    if b < 2:
        raise UsageError(f"block size b must be >= 2, got {b}")
    n = 0
    while L >= b and L % b == 0:
        L //= b
        n += 1
    return n


def level_sizes(L: int, b: int, levels: int) -> list[int]:
    """Linear sizes [L, L/b, ..., L/b^levels]; UsageError if b does not divide L that often."""
    L, b, levels = int(L), int(b), int(levels)
    if L < 1:
        raise UsageError(f"lattice size L must be >= 1, got {L}")
    if levels < 1:
        raise UsageError(f"levels must be >= 1, got {levels}")
    most = max_levels(L, b)
    if levels > most:
        sizes = [L]
        while len(sizes) <= most:
            sizes.append(sizes[-1] // b)
        chain = " -> ".join(str(s) for s in sizes)
        if most == 0:
            raise UsageError(f"L={L} with b={b} supports no RG level: {b} does not divide {L}")
        raise UsageError(
            f"L={L} with b={b} supports at most {most} level{'s' if most > 1 else ''} "
            f"({chain}), asked for {levels}"
        )
    return [L // b**k for k in range(levels + 1)]


def _lattice(configs) -> np.ndarray:
    x = np.asarray(configs)
    if x.ndim < 2:
        raise UsageError(f"configurations must have shape (L, L) or (n, L, L), got {x.shape}")
    if x.shape[-1] != x.shape[-2]:
        raise UsageError(f"configurations must be square L x L lattices, got {x.shape[-2:]}")
    if x.dtype.kind not in "iuf":
        raise UsageError(f"configurations must be integer or float, got dtype {x.dtype}")
    return x


def _batch(x: np.ndarray, dtype) -> np.ndarray:
    """(..., L, L) -> C-contiguous (N, L, L) of `dtype` (a view when already so)."""
    L = x.shape[-1]
    return np.ascontiguousarray(x.reshape((-1, L, L)), dtype=dtype)


def is_spins(configs) -> bool:
    """True if every value is exactly +1 or -1."""
    x = np.asarray(configs)
    if x.dtype.kind not in "iuf":
        return False
    if x.dtype.kind == "u":
        return bool((x == 1).all())
    return bool(((x == 1) | (x == -1)).all())


def _as_spins(x: np.ndarray, rule: str) -> np.ndarray:
    if not is_spins(x):
        raise UsageError(f"{rule} needs +1/-1 spin configurations (values other than +-1 found)")
    return x if x.dtype == np.int8 else x.astype(np.int8)


def _check_b(L: int, b) -> int:
    b = int(b)
    if b < 2:
        raise UsageError(f"block size b must be >= 2, got {b}")
    level_sizes(L, b, 1)
    return b


def _check_state(state) -> np.ndarray:
    return check_state(state)


# ---------------------------------------------------------------- rules


def block_average(configs, b: int = 2) -> np.ndarray:
    """s'(K, J) = mean of the b x b block, float32, no re-binarisation.

    For +-1 input and b = 2 the values are in {-1, -1/2, 0, 1/2, 1}. Float input (earlier
    block averages) is accepted, so averages can be iterated. Sums run in float64 in row-major
    order inside the block, then are divided by b^2 and rounded once to float32.
    """
    x = _lattice(configs)
    L = x.shape[-1]
    b = _check_b(L, b)
    if x.dtype.kind == "f" and not np.isfinite(x).all():
        raise UsageError("configurations contain NaN or infinite values")
    dtype = x.dtype if x.dtype in (np.int8, np.float32, np.float64) else np.float64
    xb = _batch(x, dtype)
    m = L // b
    out = np.empty((xb.shape[0], m, m), dtype=np.float32)
    _block_average_kernel(xb, b, out)
    return out.reshape(x.shape[:-2] + (m, m))


def majority_rule(configs, b: int = 2, state=None) -> np.ndarray:
    """Sign of each b x b block sum of +-1 spins, int8.

    Ties (even b only) take +-1 from `state` (uint64[4], advanced in place): one `next_u64`
    per tied block in row-major order over (configuration, K, J); +1 iff bit 63 is set.
    `state` may be None only for odd b, which has no ties and consumes no random numbers.
    """
    return _majority(configs, b, state)[0]


def _majority(configs, b, state):
    x = _lattice(configs)
    L = x.shape[-1]
    b = _check_b(L, b)
    if b % 2 == 0:
        if state is None:
            raise UsageError(f"majority rule with even b={b} needs an RNG state for tie-breaks")
        state = _check_state(state)
    elif state is not None:
        _check_state(state)  # odd blocks never tie: the state is checked but never used
    xb = _batch(_as_spins(x, "majority rule"), np.int8)
    m = L // b
    out = np.empty((xb.shape[0], m, m), dtype=np.int8)
    _block_sign_kernel(xb, b, out)
    ties = _break_ties_kernel(out.reshape(-1), state) if b % 2 == 0 else 0
    return out.reshape(x.shape[:-2] + (m, m)), int(ties)


def decimation(configs, b: int = 2) -> np.ndarray:
    """Keep the top-left site (K*b, J*b) of each block; same dtype, C-contiguous copy."""
    x = _lattice(configs)
    _check_b(x.shape[-1], b)
    b = int(b)
    return np.ascontiguousarray(x[..., ::b, ::b])


def apply_rule(rule: str, configs, b: int = 2, state=None) -> np.ndarray:
    """One RG step with the named rule. Majority and decimation need +-1 input."""
    if rule == "average":
        return block_average(configs, b)
    if rule == "majority":
        return majority_rule(configs, b, state)
    if rule == "decimation":
        x = _lattice(configs)
        return decimation(_as_spins(x, "decimation"), b)
    raise UsageError(f"unknown RG rule {rule!r} (choose from {', '.join(RULES)})")


def hierarchy(configs, rule: str, b: int = 2, levels: int = 1, state=None) -> list[np.ndarray]:
    """Levels 1..levels, each the rule applied to the previous level (level 0 = input).

    "average" iterates block averages of the floats (64 -> 32 -> 16 -> 8 for b=2, levels=3);
    majority and decimation map +-1 spins to +-1 spins. All sizes are checked first.
    """
    if rule not in RULES:
        raise UsageError(f"unknown RG rule {rule!r} (choose from {', '.join(RULES)})")
    x = _lattice(configs)
    level_sizes(x.shape[-1], b, levels)
    if rule == "majority" and int(b) % 2 == 0 and state is None:
        raise UsageError(f"majority rule with even b={b} needs an RNG state for tie-breaks")
    if rule != "average":
        x = _as_spins(x, rule)
    out = []
    for _ in range(int(levels)):
        x = apply_rule(rule, x, b, state)
        out.append(x)
    return out


# ---------------------------------------------------------------- index maps


def block_of_site(L: int, b: int = 2) -> np.ndarray:
    """int64 (L*L,): visible index i = r*L + c -> block index a = (r//b)*(L/b) + c//b."""
    L = int(L)
    b = _check_b(L, b)
    r, c = np.divmod(np.arange(L * L, dtype=np.int64), L)
    return (r // b) * (L // b) + c // b


def block_sites(L: int, b: int, a: int) -> np.ndarray:
    """int64 (b*b,): visible indices of block a, row-major inside the block."""
    L = int(L)
    b = _check_b(L, b)
    m = L // b
    a = int(a)
    if not 0 <= a < m * m:
        raise UsageError(f"block index a={a} out of range 0..{m * m - 1} for L={L}, b={b}")
    k, j = divmod(a, m)
    rows = k * b + np.arange(b, dtype=np.int64)
    cols = j * b + np.arange(b, dtype=np.int64)
    return (rows[:, None] * L + cols[None, :]).ravel()
