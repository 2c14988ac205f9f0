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

import hashlib

import numpy as np
from numba import njit

MASK64 = (1 << 64) - 1
_U64 = np.uint64
DOUBLE_UNIT = 1.0 / 9007199254740992.0  # 2**-53


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


def seed_sequence(seed: int, name: str = "") -> np.random.SeedSequence:
    """A SeedSequence for the named stream of a seed: streams never overlap or interact."""
    if not name:
        return np.random.SeedSequence(int(seed))
    key = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "little")
    return np.random.SeedSequence(int(seed), spawn_key=(key,))


def new_states(seed, n: int | None = None, name: str = "") -> np.ndarray:
    """Fresh xoshiro states: shape (4,) if n is None, else (n, 4), from an int seed or a
    SeedSequence. Never all-zero (the one state xoshiro cannot leave)."""
    ss = seed if isinstance(seed, np.random.SeedSequence) else seed_sequence(seed, name)
    count = 1 if n is None else int(n)
    words = ss.generate_state(4 * count, dtype=np.uint64).reshape(count, 4)
    zero_rows = ~words.any(axis=1)
    words[zero_rows, 0] = 1
    words = np.ascontiguousarray(words)
    return words[0].copy() if n is None else words


def check_state(state, rows: int | None = None) -> np.ndarray:
    """The one validator of RNG states, used by every module that takes one: a writeable
    C-contiguous uint64 array of shape (4,), or (rows, 4) for a batch of replicas, with no
    all-zero row (the one state xoshiro256** cannot leave). Raises UsageError."""
    from .errors import UsageError

    shape = (4,) if rows is None else (rows, 4)
    if not (isinstance(state, np.ndarray) and state.dtype == np.uint64 and state.shape == shape
            and state.flags.c_contiguous and state.flags.writeable):
        raise UsageError(f"the RNG state must be a writeable C-contiguous uint64 array of "
                         f"shape {shape} (see rgflow.core.rng.new_states)")
    if not state.reshape(-1, 4).any(axis=1).all():
        raise UsageError("an RNG state is all zero, which xoshiro256** cannot leave")
    return state


class PyXoshiro:
    """Slow pure-Python xoshiro256**, the reference the kernels are tested against."""

    def __init__(self, state):
        self.s = [int(x) for x in np.asarray(state, dtype=np.uint64)]

    @staticmethod
    def _rotl(x, k):
        return ((x << k) | (x >> (64 - k))) & MASK64

    def next_u64(self) -> int:
        s = self.s
        result = (self._rotl((s[1] * 5) & MASK64, 7) * 9) & MASK64
        t = (s[1] << 17) & MASK64
        s[2] ^= s[0]
        s[3] ^= s[1]
        s[1] ^= s[2]
        s[0] ^= s[3]
        s[2] ^= t
        s[3] = self._rotl(s[3], 45)
        return result

    def next_double(self) -> float:
        return (self.next_u64() >> 11) * DOUBLE_UNIT

    def state(self) -> np.ndarray:
        return np.array(self.s, dtype=np.uint64)


def py_splitmix_at(key: int, t: int) -> int:
    """Slow pure-Python splitmix_at, the reference for the counter-based draws."""
    x = (int(key) + (int(t) + 1) * 0x9E3779B97F4A7C15) & MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & MASK64
    return x ^ (x >> 31)


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
