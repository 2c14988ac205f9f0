"""Random streams without numba: seeding the xoshiro256** states the kernels use
(rgflow.core.rng), validating them, and slow pure-Python references of the generators.

Kept free of numba so that code needing only a stream (the app's first frame,
rgflow.core.frame) does not wait for numba to load.
"""

import hashlib

import numpy as np

MASK64 = (1 << 64) - 1
DOUBLE_UNIT = 1.0 / 9007199254740992.0  # 2**-53


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
