"""Explicit random streams for numba kernels: xoshiro256** with its state in a uint64[4].

Kernels never touch numba's hidden global RNG (it cannot be saved and differs per thread).
A state is a C-contiguous uint64 array of shape (4,); a batch of replicas owns an (R, 4)
array, one independent stream per replica, so results never depend on the thread count.

Hot kernels copy the four words into locals, call `xoshiro_next` and write them back at
the end; `next_u64` / `next_double` are the convenient array-based forms.

Counter-based draws. Where one call needs many numbers that are independent of the order
they are used in (the RBM samplers), it takes one `next_u64` as a key and draws number t
as SplitMix64's output t: splitmix_at(key, t) = mix(key + (t + 1)·γ) (Steele, Lea, Flood,
"Fast splittable pseudorandom number generators", OOPSLA 2014; the mix is Stafford's
variant 13). Each number depends on (key, t) only, so a kernel may visit the entries in
any order (row- or column-major layouts) and the loop vectorises.
"""

import numpy as np
from numba import njit

# the numba-free half: seeding, validation and the pure-Python references
from .streams import (  # noqa: F401 (re-exported)
    DOUBLE_UNIT,
    MASK64,
    PyXoshiro,
    check_state,
    new_states,
    py_splitmix_at,
    seed_sequence,
)

_U64 = np.uint64


@njit(inline="always")
def _rotl(x, k):
    return (x << _U64(k)) | (x >> _U64(64 - k))


@njit(inline="always")
def xoshiro_next(s0, s1, s2, s3):
    """One xoshiro256** step on unpacked state: returns (output, s0, s1, s2, s3)."""
    result = _rotl(s1 * _U64(5), 7) * _U64(9)
    t = s1 << _U64(17)
    s2 ^= s0
    s3 ^= s1
    s1 ^= s2
    s0 ^= s3
    s2 ^= t
    s3 = _rotl(s3, 45)
    return result, s0, s1, s2, s3


@njit(inline="always")
def next_u64(state):
    """Next 64 random bits from a uint64[4] state (updated in place)."""
    r, a, b, c, d = xoshiro_next(state[0], state[1], state[2], state[3])
    state[0] = a
    state[1] = b
    state[2] = c
    state[3] = d
    return r


_GOLDEN_GAMMA = _U64(0x9E3779B97F4A7C15)
_MIX1 = _U64(0xBF58476D1CE4E5B9)
_MIX2 = _U64(0x94D049BB133111EB)


@njit(inline="always")
def splitmix_at(key, t):
    """Output t (t = 0, 1, ...) of the SplitMix64 sequence seeded with key (both uint64)."""
    x = key + (t + _U64(1)) * _GOLDEN_GAMMA
    x = (x ^ (x >> _U64(30))) * _MIX1
    x = (x ^ (x >> _U64(27))) * _MIX2
    return x ^ (x >> _U64(31))


@njit(inline="always")
def u64_to_double(x):
    """Top 53 bits as a double in [0, 1)."""
    return np.float64(x >> _U64(11)) * DOUBLE_UNIT


@njit(inline="always")
def next_double(state):
    """Uniform double in [0, 1) from a uint64[4] state (updated in place)."""
    return u64_to_double(next_u64(state))


@njit(cache=True, nogil=True)
def random_indices(state, n, upper):
    """n uniform integers in [0, upper) (53-bit resolution, bias < upper / 2**53)."""
    out = np.empty(n, dtype=np.int64)
    for i in range(n):
        out[i] = np.int64(u64_to_double(next_u64(state)) * upper)
    return out


@njit(cache=True, nogil=True)
def random_signs(state, n):
    """n random ±1 (int8), one draw each: +1 when the top bit is set."""
    out = np.empty(n, dtype=np.int8)
    for i in range(n):
        out[i] = 1 if (next_u64(state) >> _U64(63)) else -1
    return out
