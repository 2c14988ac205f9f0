"""`rgflow bench ising`: Monte Carlo kernel speed.

Cases (each the median of repeated runs after a warm-up that excludes compilation):

* metropolis / heatbath: ns per flip attempt at L = 32, 128, 512 at T = Tc, h = 0, on one
  thread (single-lattice kernel) and on all threads (batch kernel, one replica per thread;
  ns per attempt aggregated = wall time / total attempts).
* wolff: ns per flipped spin at Tc for L = 32, 64 on one thread, and independent |m| samples
  per second: steps/s / (2 tau_int), with tau_int of |m| in Wolff steps from a Sokal-windowed
  estimate on a series measured here.
* numpy-reference: a plain vectorised numpy checkerboard Metropolis (np.roll neighbour sums,
  np.random.Generator uniforms, a lookup table of Boltzmann factors) at the same L, timed the
  same way; every local case reports its speed-up over it (vs_numpy_reference).

Times are wall-clock (time.perf_counter); single-thread cases also report this thread's CPU
time per unit (ns_per_flip_cpu, ns_per_flipped_spin_cpu), which other work on a busy machine
disturbs less. The load average is recorded with each row.
"""

import math
import os
import sys
import time

import numpy as np

from . import print_results

TC = 2.0 / math.log(1.0 + math.sqrt(2.0))
LOCAL_SIZES = (32, 128, 512)
WOLFF_SIZES = (32, 64)


def _all_threads() -> int:
    import numba

    return int(numba.config.NUMBA_NUM_THREADS)


def _loadavg() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):  # pragma: no cover - not on every platform
        return None


def _timed(fn, repeats: int, cpu: list | None = None) -> list[float]:
    """Wall seconds of each repeat; CPU seconds of this thread appended to `cpu`."""
    times = []
    for _ in range(repeats):
        c0 = time.thread_time()
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
        if cpu is not None:
            cpu.append(time.thread_time() - c0)
    return times


def _summary(times: list[float], work: float) -> tuple[float, float, float]:
    """(median, min, max) of seconds per unit of work, in ns."""
    per = sorted(t / work * 1e9 for t in times)
    return float(np.median(per)), per[0], per[-1]


# --------------------------------------------------------------------------------------
# The plain numpy baseline
# --------------------------------------------------------------------------------------
class NumpyCheckerboard:
    """Checkerboard Metropolis the straightforward vectorised numpy way (timing baseline)."""

    def __init__(self, spins: np.ndarray, beta: float, seed: int = 0):
        self.s = spins.copy()
        L = spins.shape[0]
        r, c = np.indices((L, L))
        self.masks = [(r + c) % 2 == p for p in (0, 1)]
        # acceptance min(1, exp(-beta dE)) indexed by (s * nn + 4) // 2, dE = 2 s nn
        self.table = np.minimum(1.0, np.exp(-2.0 * beta * np.arange(-4, 5, 2)))
        self.rng = np.random.default_rng(seed)

    def sweeps(self, n: int) -> None:
        s = self.s
        for _ in range(n):
            for mask in self.masks:
                nn = np.roll(s, 1, 0) + np.roll(s, -1, 0) + np.roll(s, 1, 1) + np.roll(s, -1, 1)
                p = self.table[(s * nn + 4) // 2]
                flip = mask & (self.rng.random(s.shape) < p)
                s[flip] *= -1


# --------------------------------------------------------------------------------------
# Autocorrelation
# --------------------------------------------------------------------------------------
def tau_int_sokal(x: np.ndarray, c: float = 6.0) -> float:
    """Integrated autocorrelation time with Sokal's automatic window: the smallest W with
    W >= c * tau(W), tau(W) = 1/2 + sum_{t=1..W} rho(t)."""
    x = np.asarray(x, dtype=np.float64) - np.mean(x)
    n = len(x)
    var = float(np.dot(x, x)) / n
    if var == 0.0:
        return 0.5
    f = np.fft.rfft(x, n=2 * n)
    acf = np.fft.irfft(f * np.conj(f))[:n] / (n * var)
    tau = 0.5
    for w in range(1, n):
        tau += acf[w]
        if w >= c * tau:
            return float(tau)
    return float(tau)


# --------------------------------------------------------------------------------------
# Cases
# --------------------------------------------------------------------------------------
def _local_case(algorithm: str, L: int, threads: int, repeats: int, attempts: float) -> dict:
    from rgflow.core import ising
    from rgflow.core.rng import new_states

    beta = 1.0 / TC
    n = max(1, round(attempts / (L * L)))
    if threads == 1:
        state = new_states(1, name=f"bench/{algorithm}/{L}")
        spins = ising.random_spins(L, state)

        def step():
            ising.run_sweeps(algorithm, spins, beta, 0.0, n, state)
    else:
        states = new_states(1, threads, name=f"bench/{algorithm}/{L}")
        spins = ising.random_spins_batch(threads, L, states)
        betas = np.full(threads, beta)

        def step():
            ising.run_sweeps_batch(algorithm, spins, betas, 0.0, n, states)

    step()  # compile (or load from cache) and warm up
    cpu = []
    med, lo, hi = _summary(_timed(step, repeats, cpu), n * L * L * threads)
    out = {"case": algorithm, "L": L, "threads": threads, "ns_per_flip": med,
           "ns_per_flip_min": lo, "ns_per_flip_max": hi, "sweeps_per_repeat": n}
    if threads == 1:
        out["ns_per_flip_cpu"] = _summary(cpu, n * L * L)[0]
    return out


def _numpy_case(L: int, repeats: int, attempts: float) -> dict:
    from rgflow.core import ising
    from rgflow.core.rng import new_states

    ref = NumpyCheckerboard(ising.random_spins(L, new_states(2)), 1.0 / TC)
    n = max(1, round(attempts / (L * L)))
    ref.sweeps(1)
    cpu = []
    med, lo, hi = _summary(_timed(lambda: ref.sweeps(n), repeats, cpu), n * L * L)
    return {"case": "numpy-reference", "L": L, "threads": 1, "ns_per_flip": med,
            "ns_per_flip_min": lo, "ns_per_flip_max": hi, "sweeps_per_repeat": n,
            "ns_per_flip_cpu": _summary(cpu, n * L * L)[0]}


def _wolff_case(L: int, repeats: int, flips: float, series: int) -> dict:
    from rgflow.core import ising
    from rgflow.core.rng import new_states

    beta = 1.0 / TC
    state = new_states(3, name=f"bench/wolff/{L}")
    spins = ising.ordered_spins(L)
    ising.wolff_steps(spins, beta, 500, state)  # compile, equilibrate
    # |m| after every step: the autocorrelation series
    m = np.empty(series)
    for t in range(series):
        ising.wolff_steps(spins, beta, 1, state)
        m[t] = abs(int(spins.sum(dtype=np.int64))) / (L * L)
    tau = tau_int_sokal(m)
    mean_cluster = ising.wolff_steps(spins, beta, 200, state) / 200
    n = max(1, round(flips / mean_cluster))
    counts, cpu = [], []
    times = _timed(lambda: counts.append(ising.wolff_steps(spins, beta, n, state)), repeats,
                   cpu)
    per_flip = sorted(t / c * 1e9 for t, c in zip(times, counts, strict=True))
    per_flip_cpu = [t / c * 1e9 for t, c in zip(cpu, counts, strict=True)]
    steps_per_s = n / float(np.median(times))
    return {"case": "wolff", "L": L, "threads": 1,
            "ns_per_flipped_spin": float(np.median(per_flip)),
            "ns_per_flipped_spin_min": per_flip[0], "ns_per_flipped_spin_max": per_flip[-1],
            "ns_per_flipped_spin_cpu": float(np.median(per_flip_cpu)),
            "steps_per_s": steps_per_s, "mean_cluster": float(np.mean(counts) / n),
            "tau_int_steps": tau, "series_steps": series,
            "independent_samples_per_s": steps_per_s / (2.0 * tau),
            "steps_per_repeat": n}


def measure(quick: bool = False, repeats: int | None = None) -> list[dict]:
    """All cases as a list of result dicts (nothing printed)."""
    repeats = repeats or (3 if quick else 7)
    scale = 0.1 if quick else 1.0
    threads_all = _all_threads()
    results = []
    for L in LOCAL_SIZES:
        for algorithm in ("metropolis", "heatbath"):
            for threads in sorted({1, threads_all}):
                results.append(_local_case(algorithm, L, threads, repeats, 2e7 * scale))
        results.append(_numpy_case(L, repeats, 1e6 * scale))
    for L in WOLFF_SIZES:
        results.append(_wolff_case(L, repeats, 2e6 * scale, 2000 if quick else 20000))
    ref = {r["L"]: r["ns_per_flip"] for r in results if r["case"] == "numpy-reference"}
    load = _loadavg()
    for r in results:
        r["repeats"] = repeats
        r["loadavg"] = load
        if "ns_per_flip" in r:
            r["vs_numpy_reference"] = ref[r["L"]] / r["ns_per_flip"]
    return results


def format_table(results: list[dict]) -> str:
    reps = results[0]["repeats"]
    lines = [f"Ising kernels at T = Tc, h = 0: median of {reps} repeats "
             f"(min-max), load average {results[0]['loadavg']}",
             f"{'case':<16} {'L':>4} {'threads':>7} {'ns/attempt':>11} {'min-max':>13} "
             f"{'cpu ns':>7} {'x numpy':>8}"]
    for r in results:
        if "ns_per_flip" in r:
            cpu = f"{r['ns_per_flip_cpu']:>7.2f}" if "ns_per_flip_cpu" in r else f"{'-':>7}"
            lines.append(f"{r['case']:<16} {r['L']:>4d} {r['threads']:>7d} "
                         f"{r['ns_per_flip']:>11.2f} "
                         f"{r['ns_per_flip_min']:>6.2f}-{r['ns_per_flip_max']:<6.2f} "
                         f"{cpu} {r['vs_numpy_reference']:>8.1f}")
    lines.append("")
    lines.append(f"{'wolff':<6} {'L':>4} {'ns/flipped spin':>16} {'min-max':>13} "
                 f"{'cpu ns':>7} {'<cluster>/N':>11} {'tau_int(|m|)':>12} {'steps/s':>9} "
                 f"{'indep. samples/s':>17}")
    for r in results:
        if r["case"] == "wolff":
            lines.append(f"{'':<6} {r['L']:>4d} {r['ns_per_flipped_spin']:>16.2f} "
                         f"{r['ns_per_flipped_spin_min']:>6.2f}-"
                         f"{r['ns_per_flipped_spin_max']:<6.2f} "
                         f"{r['ns_per_flipped_spin_cpu']:>7.2f} "
                         f"{r['mean_cluster'] / r['L'] ** 2:>11.3f} "
                         f"{r['tau_int_steps']:>12.2f} {r['steps_per_s']:>9,.0f} "
                         f"{r['independent_samples_per_s']:>17,.0f}")
    return "\n".join(lines) + "\n"


def run(json_output: bool, quick: bool = False, repeats: int | None = None) -> list[dict]:
    """Measure, then print one JSON object per line (json_output) or a table, on stdout."""
    results = measure(quick=quick, repeats=repeats)
    return print_results(results, json_output, format_table)


if __name__ == "__main__":  # python -m rgflow.core.bench.ising [--json] [--quick]
    run("--json" in sys.argv[1:], quick="--quick" in sys.argv[1:])
