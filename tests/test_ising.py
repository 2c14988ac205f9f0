"""Ising kernels: bit-exact against slow Python references that replay the documented random
stream, exact 4x4 physics within measured error bars, determinism and bad input."""

import collections
import math
import os
import subprocess
import sys

import numba
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rgflow.core import ising
from rgflow.core.errors import UsageError
from rgflow.core.rng import PyXoshiro, new_states

TC = 2.0 / math.log(1.0 + math.sqrt(2.0))
M32 = 0xFFFFFFFF
TWO32 = 2.0**32


# --------------------------------------------------------------------------------------
# Slow references: plain loops, exp() in float64, u / 2**32 < p
# --------------------------------------------------------------------------------------
def sublattice_sites(L, parity):
    return [(r, c) for r in range(L) for c in range(L) if (r + c) % 2 == parity]


def nn_sum(s, r, c):
    L = len(s)
    return s[(r - 1) % L][c] + s[(r + 1) % L][c] + s[r][(c - 1) % L] + s[r][(c + 1) % L]


def ref_local(algorithm, spins, beta, h, n_sweeps, state):
    """Checkerboard sweeps exactly as documented in rgflow.core.ising; returns
    (spins, count, state)."""
    rng = PyXoshiro(state)
    s = spins.astype(int).tolist()
    L = len(s)
    count = 0
    for _ in range(n_sweeps):
        for parity in (0, 1):
            sites = sublattice_sites(L, parity)
            us = []
            for _q in range(len(sites) // 2):
                x = rng.next_u64()
                us += [x & M32, x >> 32]
            assert len(us) == len(sites)
            for (r, c), u in zip(sites, us, strict=True):
                nn = nn_sum(s, r, c)
                if algorithm == "metropolis":
                    dE = 2.0 * s[r][c] * (nn + h)
                    p = 1.0 if dE <= 0 else math.exp(-min(beta * dE, 700.0))
                    if u / TWO32 < p:
                        s[r][c] = -s[r][c]
                        count += 1
                else:
                    x = min(max(2.0 * (beta * (nn + h)), -700.0), 700.0)
                    p = 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1 + math.exp(x))
                    new = 1 if u / TWO32 < p else -1
                    count += new != s[r][c]
                    s[r][c] = new
    return np.array(s, np.int8), count, rng.state()


def ref_wolff(spins, beta, n_steps, state):
    rng = PyXoshiro(state)
    s = spins.astype(int).tolist()
    L = len(s)
    p_add = 1.0 - math.exp(-2.0 * beta)
    total = 0
    for _ in range(n_steps):
        r, c = divmod(rng.next_u64() % (L * L), L)
        old = s[r][c]
        s[r][c] = -old
        queue = collections.deque([(r, c)])
        while queue:
            r, c = queue.popleft()
            total += 1
            w0, w1 = rng.next_u64(), rng.next_u64()
            us = [w0 & M32, w0 >> 32, w1 & M32, w1 >> 32]
            nbrs = [((r - 1) % L, c), ((r + 1) % L, c), (r, (c - 1) % L), (r, (c + 1) % L)]
            for (rn, cn), u in zip(nbrs, us, strict=True):
                if s[rn][cn] == old and u / TWO32 < p_add:
                    s[rn][cn] = -old
                    queue.append((rn, cn))
    return np.array(s, np.int8), total, rng.state()


def ref_random_spins(L, state):
    rng = PyXoshiro(state)
    out = np.empty(L * L, np.int8)
    word = 0
    for i in range(L * L):
        if i % 64 == 0:
            word = rng.next_u64()
        out[i] = 1 if (word >> (i % 64)) & 1 else -1
    return out.reshape(L, L), rng.state()


def start(L, seed):
    rng = np.random.default_rng(seed)
    return np.where(rng.random((L, L)) < 0.5, 1, -1).astype(np.int8)


LOCAL_CASES = [
    (L, T, h)
    for L in (4, 6, 8)
    for T in (1.0, TC, 3.5)
    for h in (0.0, 0.37)
] + [(8, TC, -2.0), (8, 1.0, 2.0), (6, 0.3, 4.0), (4, 0.05, -1.0), (4, 1e6, 0.5), (8, 2.0, 1e-9),
     (4, 1e-308, 0.0), (4, 1e-300, -3.0)]


# --------------------------------------------------------------------------------------
# Bit-exact kernels
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("algorithm", ["metropolis", "heatbath"])
@pytest.mark.parametrize(("L", "T", "h"), LOCAL_CASES)
def test_local_kernels_match_reference(algorithm, L, T, h):
    spins = start(L, seed=L)
    state = new_states(11, name=f"{algorithm}{L}{T}{h}")
    want, want_count, want_state = ref_local(algorithm, spins, 1.0 / T, h, 3, state)
    got = spins.copy()
    count = ising.run_sweeps(algorithm, got, 1.0 / T, h, 3, state)
    np.testing.assert_array_equal(got, want)
    assert count == want_count
    np.testing.assert_array_equal(state, want_state)


@settings(max_examples=30, deadline=None)
@given(
    algorithm=st.sampled_from(["metropolis", "heatbath"]),
    L=st.sampled_from([4, 6]),
    T=st.floats(0.01, 100.0),
    h=st.one_of(st.sampled_from([0.0, 2.0, -4.0]), st.floats(-6.0, 6.0)),
    seed=st.integers(0, 2**32),
)
def test_local_kernels_match_reference_anywhere(algorithm, L, T, h, seed):
    spins = start(L, seed)
    state = new_states(seed)
    want, want_count, want_state = ref_local(algorithm, spins, 1.0 / T, h, 2, state)
    got = spins.copy()
    assert ising.run_sweeps(algorithm, got, 1.0 / T, h, 2, state) == want_count
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(state, want_state)


@pytest.mark.parametrize(
    ("L", "T"), [(4, 1.5), (6, TC), (8, TC), (8, 3.5), (6, 1e5), (4, 0.1), (4, 1e-308)]
)
def test_wolff_matches_reference(L, T):
    spins = start(L, seed=3 * L)
    state = new_states(5, name=f"wolff{L}{T}")
    want, want_total, want_state = ref_wolff(spins, 1.0 / T, 7, state)
    got = spins.copy()
    total = ising.wolff_steps(got, 1.0 / T, 7, state)
    np.testing.assert_array_equal(got, want)
    assert total == want_total
    np.testing.assert_array_equal(state, want_state)


@pytest.mark.parametrize("L", [4, 6, 8, 10])
def test_random_spins_match_reference(L):
    state = new_states(9, name=str(L))
    want, want_state = ref_random_spins(L, state)
    np.testing.assert_array_equal(ising.random_spins(L, state), want)
    np.testing.assert_array_equal(state, want_state)


def test_random_and_ordered_spins_shapes():
    spins = ising.random_spins(64, new_states(1))
    assert spins.dtype == np.int8 and spins.flags.c_contiguous and spins.shape == (64, 64)
    assert abs(spins.mean()) < 5 / 64  # 5 sigma of a fair coin
    assert (ising.ordered_spins(8) == 1).all()
    down = ising.ordered_spins(8, sign=-1)
    assert down.dtype == np.int8 and (down == -1).all()
    batch = ising.random_spins_batch(3, 8, new_states(2, 3))
    again = np.stack([ising.random_spins(8, s) for s in new_states(2, 3)])
    np.testing.assert_array_equal(batch, again)


# --------------------------------------------------------------------------------------
# Determinism: chunking, batches, threads
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("algorithm", ising.ALGORITHMS)
def test_chunking_does_not_change_the_stream(algorithm):
    a = start(16, 1)
    b = a.copy()
    sa, sb = new_states(4), new_states(4)
    total = ising.run_sweeps(algorithm, a, 1 / TC, 0.0, 6, sa)
    parts = sum(ising.run_sweeps(algorithm, b, 1 / TC, 0.0, n, sb) for n in (1, 2, 0, 3))
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(sa, sb)
    assert total == parts


@pytest.mark.parametrize(("per_step", "n", "first", "every"),
                         [(1, 9, 2, 3), (2, 5, 0, 1), (1, 6, -1, 2), (3, 4, 7, 2), (1, 7, 6, 4)])
def test_measured_sampled_steps_equal_single_calls(per_step, n, first, every):
    a = start(8, 3)
    b = a.copy()
    sa, sb = new_states(5), new_states(5)
    changed, bond_e, mag, samples = ising.local_steps_sampled(
        "metropolis", a, 1 / TC, 0.2, per_step, n, sa, first, every)
    kept = []
    for i in range(n):
        assert changed[i] == ising.run_sweeps("metropolis", b, 1 / TC, 0.2, per_step, sb)
        assert (bond_e[i], mag[i]) == ising.energy_and_magnetisation(b)
        if first >= 0 and i >= first and (i - first) % every == 0:
            kept.append(b.copy())
    assert len(samples) == len(kept) == ising.sample_count(n, first, every)
    for got, want in zip(samples, kept, strict=True):
        np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(sa, sb)


def test_same_seed_same_arrays():
    runs = []
    for _ in range(2):
        state = new_states(123, name="mc")
        spins = ising.random_spins(12, state)
        ising.metropolis_sweeps(spins, 0.4, 0.1, 5, state)
        ising.heatbath_sweeps(spins, 0.4, 0.0, 5, state)
        ising.wolff_steps(spins, 0.4, 5, state)
        runs.append((spins, state))
    np.testing.assert_array_equal(runs[0][0], runs[1][0])
    np.testing.assert_array_equal(runs[0][1], runs[1][1])


@pytest.mark.parametrize("algorithm", ising.ALGORITHMS)
def test_batch_replica_equals_single_kernel(algorithm):
    R, L = 5, 12
    betas = np.linspace(0.3, 0.6, R)
    h = 0.0 if algorithm == "wolff" else 0.2
    spins = np.stack([start(L, i) for i in range(R)])
    states = new_states(8, R)
    singles = spins.copy()
    single_states = states.copy()
    counts = ising.run_sweeps_batch(algorithm, spins, betas, h, 4, states)
    assert counts.dtype == np.int64 and counts.shape == (R,)
    for i in range(R):
        c = ising.run_sweeps(algorithm, singles[i], betas[i], h, 4, single_states[i])
        assert c == counts[i]
    np.testing.assert_array_equal(spins, singles)
    np.testing.assert_array_equal(states, single_states)


@pytest.mark.parametrize("algorithm", ising.ALGORITHMS)
def test_batch_is_identical_on_one_and_two_threads(algorithm):
    R, L = 6, 16
    spins0 = np.stack([start(L, 10 + i) for i in range(R)])
    results = []
    before = numba.get_num_threads()
    try:
        for threads in (1, min(2, numba.config.NUMBA_NUM_THREADS)):
            numba.set_num_threads(threads)
            spins, states = spins0.copy(), new_states(3, R)
            counts = ising.run_sweeps_batch(algorithm, spins, np.full(R, 1 / TC), 0.0, 5, states)
            results.append((spins, states, counts))
    finally:
        numba.set_num_threads(before)
    for a, b in zip(results[0], results[1], strict=True):
        np.testing.assert_array_equal(a, b)


def test_import_compiles_nothing():
    code = (
        "import rgflow.core.ising as m\n"
        "from numba.core.registry import CPUDispatcher\n"
        "ds = [v for v in vars(m).values() if isinstance(v, CPUDispatcher)]\n"
        "assert len(ds) >= 8, len(ds)\n"
        "compiled = [d.py_func.__name__ for d in ds if d.signatures]\n"
        "assert not compiled, compiled\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_kernels_stay_in_bounds(request):
    """The kernels index with unchecked unsigned offsets and write queue slots speculatively:
    rerun them with numba's bounds checking on, including full-lattice clusters. The checked
    builds get their own numba cache (pytest's cache directory), never mixed with the
    unchecked ones; numba recompiles them whenever core/ising.py changes."""
    code = (
        "from rgflow.core import ising\n"
        "from rgflow.core.rng import new_states\n"
        "st = new_states(0)\n"
        "for L in (4, 6):\n"
        "    for T in (0.05, 2.27, 50.0):\n"
        "        s = ising.random_spins(L, st)\n"
        "        for h in (0.0, 0.5):\n"
        "            ising.metropolis_sweeps(s, 1 / T, h, 3, st)\n"
        "            ising.heatbath_sweeps(s, 1 / T, h, 3, st)\n"
        "        n = ising.wolff_steps(s, 1 / T, 20, st)\n"
        "        s = ising.ordered_spins(L)\n"
        "        n = ising.wolff_steps(s, 1 / T, 20, st)\n"
        "        assert T > 1 or n == 20 * L * L, n  # cold: every cluster is the lattice\n"
        "print('ok')\n"
    )
    cache_dir = request.config.cache.mkdir("numba-boundscheck")
    env = {**os.environ, "NUMBA_BOUNDSCHECK": "1", "NUMBA_CACHE_DIR": str(cache_dir)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300, env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


# --------------------------------------------------------------------------------------
# Physics: exact enumeration of the 4x4 lattice
# --------------------------------------------------------------------------------------
def enumerate_4x4():
    """Coupling energy E and magnetisation M of all 2**16 configurations, vectorised."""
    L = 4
    codes = np.arange(2**16, dtype=np.uint32)
    bits = (codes[:, None] >> np.arange(16, dtype=np.uint32)) & 1
    s = (2 * bits.astype(np.int64) - 1).reshape(-1, L, L)
    E = -(s * np.roll(s, 1, axis=1) + s * np.roll(s, 1, axis=2)).sum(axis=(1, 2))
    return E, s.sum(axis=(1, 2))


def exact_4x4(T, h=0.0):
    """e = <E - h M>/N, m = <|M|>/N, mh = <M>/N and C = N (<e^2> - <e>^2) / T^2."""
    E, M = enumerate_4x4()
    H = E - h * M
    w = np.exp(-(H - H.min()) / T)
    w /= w.sum()
    N = 16
    e = (w * H).sum() / N
    e2 = (w * H**2).sum() / N**2
    return {"e": e, "m": (w * np.abs(M)).sum() / N, "mh": (w * M).sum() / N,
            "c": N * (e2 - e * e) / T**2}


def test_exact_4x4_matches_known_limits():
    assert exact_4x4(0.2)["e"] == pytest.approx(-2.0, abs=1e-12)
    assert exact_4x4(0.2)["m"] == pytest.approx(1.0, abs=1e-12)
    assert exact_4x4(0.2)["mh"] == pytest.approx(0.0, abs=1e-12)
    # two ground states split by the field: <M>/N = tanh(N h / T) up to e^(-8/T) excitations
    assert exact_4x4(0.2, h=0.1)["mh"] == pytest.approx(math.tanh(16 * 0.1 / 0.2), abs=1e-12)
    hot = exact_4x4(1e6)
    assert abs(hot["e"]) < 1e-5 and hot["c"] < 1e-9


def sample_series(algorithm, T, R, n_meas, every, seed, h=0.0):
    """(R, n_meas) series of e = (E - h M)/N, |m| and m for 4x4 replicas, run through the
    batch kernels (on one thread: thousands of tiny parallel calls only measure scheduler
    noise)."""
    before = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        return _series(algorithm, T, h, R, n_meas, every, seed)
    finally:
        numba.set_num_threads(before)


def _series(algorithm, T, h, R, n_meas, every, seed):
    L, N = 4, 16
    states = new_states(seed, R, name=f"{algorithm}{T}{h}")
    spins = ising.random_spins_batch(R, L, states)
    betas = np.full(R, 1.0 / T)
    ising.run_sweeps_batch(algorithm, spins, betas, h, 200 * every, states)  # equilibrate
    series = {key: np.empty((R, n_meas)) for key in ("e", "m", "mh")}
    for t in range(n_meas):
        ising.run_sweeps_batch(algorithm, spins, betas, h, every, states)
        s = spins.astype(np.int64)
        E = -(s * np.roll(s, 1, axis=1) + s * np.roll(s, 1, axis=2)).sum(axis=(1, 2))
        M = s.sum(axis=(1, 2))
        series["e"][:, t] = (E - h * M) / N
        series["m"][:, t] = np.abs(M) / N
        series["mh"][:, t] = M / N
    return series


def binned_estimates(series, T, n_bins_per_replica):
    """Means with error bars over bins much longer than tau_int, the specific heat by
    jackknife over the same bins."""
    R, n = series["e"].shape
    b = n // n_bins_per_replica
    bins = {key: x[:, : b * n_bins_per_replica].reshape(R * n_bins_per_replica, b)
            for key, x in series.items()}
    n_bins = R * n_bins_per_replica
    out = {}
    for key, x in bins.items():
        means = x.mean(axis=1)
        out[key] = (means.mean(), means.std(ddof=1) / math.sqrt(n_bins))
    # specific heat C = N (<e^2> - <e>^2) / T^2
    e_mean, e2_mean = bins["e"].mean(axis=1), (bins["e"] ** 2).mean(axis=1)
    tot_e, tot_e2 = e_mean.sum(), e2_mean.sum()
    jk_e = (tot_e - e_mean) / (n_bins - 1)
    jk_e2 = (tot_e2 - e2_mean) / (n_bins - 1)
    jk_c = 16 * (jk_e2 - jk_e**2) / T**2
    full_c = 16 * (tot_e2 / n_bins - (tot_e / n_bins) ** 2) / T**2
    err_c = math.sqrt((n_bins - 1) / n_bins * ((jk_c - jk_c.mean()) ** 2).sum())
    out["c"] = (full_c, err_c)
    return out


def assert_matches_exact(est, exact, keys):
    for key in keys:
        mean, err = est[key]
        assert err > 0
        assert abs(mean - exact[key]) < 5 * err, (key, mean, err, exact[key])
        # the error bars must be small enough for the test to mean something
        assert err < 0.05 * max(abs(exact[key]), 0.1), (key, err)


@pytest.mark.parametrize("algorithm", ising.ALGORITHMS)
@pytest.mark.parametrize("T", [1.5, TC, 3.5])
def test_4x4_observables_match_exact_enumeration(algorithm, T):
    # Wolff steps flip few spins at high T, so it measures after a few steps.
    every = {"wolff": 4 if T > 3 else 2}.get(algorithm, 1)
    series = sample_series(algorithm, T, R=16, n_meas=3000, every=every, seed=2024)
    est = binned_estimates(series, T, n_bins_per_replica=10)  # bins of 300 measurements
    assert_matches_exact(est, exact_4x4(T), ("e", "m", "c"))


@pytest.mark.parametrize("algorithm", ["metropolis", "heatbath"])
@pytest.mark.parametrize(("T", "h"), [(TC, 0.3), (3.5, -0.5)])
def test_4x4_in_a_field_matches_exact_enumeration(algorithm, T, h):
    series = sample_series(algorithm, T, R=16, n_meas=2000, every=1, seed=7, h=h)
    est = binned_estimates(series, T, n_bins_per_replica=10)
    assert_matches_exact(est, exact_4x4(T, h), ("e", "mh", "c"))


# --------------------------------------------------------------------------------------
# Bad input
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("L", [3, 5, 2, 0, -4, 4098, 10**6, 4.0, "8", True, None])
def test_bad_lattice_sizes_are_refused(L):
    with pytest.raises(UsageError):
        ising.validate_lattice_size(L)


def test_odd_size_message_explains_checkerboard():
    with pytest.raises(UsageError, match="even.*checkerboard"):
        ising.validate_lattice_size(7)
    assert ising.validate_lattice_size(np.int64(8)) == 8


@pytest.mark.parametrize("beta", [0.0, -1.0, float("nan"), float("inf"), "x", None])
@pytest.mark.parametrize("algorithm", ising.ALGORITHMS)
def test_bad_temperatures_are_refused(algorithm, beta):
    spins, state = ising.ordered_spins(4), new_states(0)
    with pytest.raises(UsageError):
        ising.run_sweeps(algorithm, spins, beta, 0.0, 1, state)
    assert (spins == 1).all()


def test_bad_batch_betas_are_refused():
    spins, states = np.ones((2, 4, 4), np.int8), new_states(0, 2)
    with pytest.raises(UsageError):
        ising.metropolis_sweeps_batch(spins, [0.4, float("nan")], 0.0, 1, states)
    with pytest.raises(UsageError):
        ising.wolff_steps_batch(spins, [0.4], 1, states)


@pytest.mark.parametrize(
    "spins",
    [
        np.ones((4, 4), np.int64),  # wrong dtype: refused, never silently copied
        np.ones((8, 8), np.int8)[:, ::2],  # not contiguous
        np.ones((4, 6), np.int8),  # not square
        np.ones((5, 5), np.int8),  # odd
        np.zeros((4, 4), np.int8),  # not +-1
        np.full((4, 4), -128, np.int8),
        [[1, 1], [1, 1]],
        np.ones(16, np.int8),
    ],
)
def test_bad_spins_are_refused(spins):
    with pytest.raises(UsageError):
        ising.metropolis_sweeps(spins, 0.4, 0.0, 1, new_states(0))


def test_read_only_spins_and_bad_states_are_refused():
    spins = np.ones((4, 4), np.int8)
    spins.setflags(write=False)
    with pytest.raises(UsageError, match="writeable"):
        ising.heatbath_sweeps(spins, 0.4, 0.0, 1, new_states(0))
    good = np.ones((4, 4), np.int8)
    for state in (np.zeros(4, np.uint64), np.ones(4, np.int64), np.ones(3, np.uint64),
                  [1, 2, 3, 4]):
        with pytest.raises(UsageError):
            ising.metropolis_sweeps(good, 0.4, 0.0, 1, state)
    assert (good == 1).all()


def test_bad_counts_fields_and_algorithms_are_refused():
    spins, state = np.ones((4, 4), np.int8), new_states(0)
    for n in (-1, 1.5, True, "3"):
        with pytest.raises(UsageError):
            ising.metropolis_sweeps(spins, 0.4, 0.0, n, state)
    for h in (float("nan"), float("inf"), "up"):
        with pytest.raises(UsageError):
            ising.metropolis_sweeps(spins, 0.4, h, 1, state)
    with pytest.raises(UsageError, match="Wolff"):
        ising.run_sweeps("wolff", spins, 0.4, 0.1, 1, state)
    with pytest.raises(UsageError, match="unknown algorithm"):
        ising.run_sweeps("glauber", spins, 0.4, 0.0, 1, state)
    with pytest.raises(UsageError):
        ising.ordered_spins(4, sign=0)
    assert ising.metropolis_sweeps(spins, 0.4, 0.0, 0, state) == 0
    np.testing.assert_array_equal(state, new_states(0))


def test_threshold_rule_is_the_float_comparison():
    """u <= ceil(p 2^32) - 1  <=>  u / 2^32 < p, checked at the boundary integers."""
    rng = np.random.default_rng(0)
    for p in list(rng.random(200)) + [1.0, 0.5, 2.0**-32, 2.0**-33, 1 - 2.0**-40, 1e-300]:
        c = ising._threshold(p)
        assert 0 <= c < 2**32
        for u in (c - 1, c, c + 1):
            if 0 <= u < 2**32:
                assert (u <= c) == (u / TWO32 < p)


# --------------------------------------------------------------------------------------
# The benchmark's own estimators
# --------------------------------------------------------------------------------------
def test_bench_tau_int_on_an_ar1_process():
    """AR(1) with coefficient phi has tau_int = (1 + phi) / (2 (1 - phi))."""
    from rgflow.core.bench.ising import tau_int_sokal

    phi, n = 0.8, 200_000
    rng = np.random.default_rng(7)
    noise = rng.standard_normal(n)
    x = np.empty(n)
    x[0] = noise[0]
    for t in range(1, n):
        x[t] = phi * x[t - 1] + noise[t]
    exact = (1 + phi) / (2 * (1 - phi))
    # Sokal's error estimate: sigma(tau) ~ tau sqrt(2 (2W + 1) / n), W ~ 6 tau
    err = exact * math.sqrt(2 * (12 * exact + 1) / n)
    assert abs(tau_int_sokal(x) - exact) < 5 * err
    assert tau_int_sokal(rng.standard_normal(10_000)) == pytest.approx(0.5, abs=0.05)


def test_bench_numpy_reference_is_a_valid_metropolis():
    """The baseline must do real work: at high T it decorrelates an ordered lattice."""
    from rgflow.core.bench.ising import NumpyCheckerboard

    ref = NumpyCheckerboard(np.ones((16, 16), np.int8), beta=0.1)
    ref.sweeps(20)
    assert abs(ref.s.astype(int).mean()) < 0.3
    assert set(np.unique(ref.s)) <= {-1, 1}
