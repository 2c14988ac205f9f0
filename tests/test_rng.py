"""rgflow.core.rng: the one RNG-state validator, and every function taking a state uses it
(an all-zero state used to be accepted by rg and rbm_monitor, refused by ising and rbm)."""

import numpy as np
import pytest

from rgflow.core.errors import UsageError
from rgflow.core.rng import check_state, new_states


def test_check_state_accepts_fresh_states():
    s = new_states(1)
    assert check_state(s) is s
    b = new_states(1, n=3)
    assert check_state(b, rows=3) is b


@pytest.mark.parametrize("bad", [
    np.zeros(4, np.uint64),  # all zero: xoshiro stays at zero for ever
    np.arange(1, 5, dtype=np.int64),  # wrong dtype
    np.arange(1, 6, dtype=np.uint64),  # wrong shape
    np.arange(1, 9, dtype=np.uint64)[::2],  # not contiguous
    [1, 2, 3, 4],  # not an array
])
def test_check_state_refuses(bad):
    with pytest.raises(UsageError, match="RNG state"):
        check_state(bad)


def test_check_state_refuses_read_only_and_zero_rows():
    s = new_states(1)
    s.setflags(write=False)
    with pytest.raises(UsageError, match="writeable"):
        check_state(s)
    rows = new_states(2, n=3)
    rows[1] = 0
    with pytest.raises(UsageError, match="all zero"):
        check_state(rows, rows=3)


def _takers():
    from rgflow.core import ising, rbm, rbm_monitor, rg

    model = rbm.RBM.create(8, 3, units="spin", dtype=np.dtype("float64"),
                           seed_or_state=new_states(0))
    v = np.ones((2, 8))
    return {
        "ising.random_spins": lambda s: ising.random_spins(4, s),
        "rg.majority_rule": lambda s: rg.majority_rule(np.ones((1, 4, 4), np.int8), 2, s),
        "rbm.sample_hidden": lambda s: rbm.sample_hidden(model, v, s),
        "rbm_monitor.pseudo_log_likelihood":
            lambda s: rbm_monitor.pseudo_log_likelihood(model, v, s),
    }


@pytest.mark.parametrize("name", sorted(_takers()))
def test_every_taker_refuses_an_all_zero_state(name):
    with pytest.raises(UsageError, match="all zero"):
        _takers()[name](np.zeros(4, np.uint64))


def test_splitmix_at_is_splitmix64():
    """SplitMix64's published test vector (seed 1234567), and the kernel form against the
    pure-Python one on keys that make the counter wrap around 2**64."""
    from rgflow.core.rng import py_splitmix_at, splitmix_at

    published = [6457827717110365317, 3203168211198807973, 9817491932198370423,
                 4593380528125082431, 16408922859458223821]
    assert [py_splitmix_at(1234567, t) for t in range(5)] == published
    for key in (1234567, 2**64 - 1, 0x9E3779B97F4A7C15, 42):
        for t in (0, 1, 7, 10**6, 2**40):
            assert int(splitmix_at(np.uint64(key), np.uint64(t))) == py_splitmix_at(key, t)
