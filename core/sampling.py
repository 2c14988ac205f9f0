"""Ising dataset generation: thermalise, measure the autocorrelation time, then take
configurations spaced by it, one independent random stream per temperature.

Temperatures run in parallel threads (the kernels release the GIL); each temperature owns
its own stream, so the output is identical whatever the number of threads.
"""

import math
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field

import numpy as np

from .errors import UsageError
from .exact import TC
from .rng import new_states, seed_sequence

ALGORITHM_CHOICES = ("metropolis", "heatbath", "wolff", "auto")
# auto: Wolff where clusters are large (below and around Tc, where local updates slow down
# critically and keep the magnetisation's sign), Metropolis in the hot phase.
AUTO_WOLFF_MAX_T = 1.3 * TC
PILOT_SWEEPS = 2000
MIN_THERMALIZE = 200
WOLFF_WARMUP_SWEEPS = 50  # spins flipped, in units of N, before a Wolff sweep is calibrated
THERMALIZE_TAUS = 20
MAX_SAMPLES = 10_000_000


@dataclass(frozen=True)
class SampleSpec:
    L: int
    temperatures: tuple
    n: int
    algorithm: str = "auto"
    seed: int = 0
    symmetrize: bool = False
    thermalize: int | None = None  # sweeps; None = chosen from the measured tau_int
    spacing: int | None = None  # sweeps between samples; None = from tau_int
    h: float = 0.0
    threads: int | None = None

    def validated(self) -> "SampleSpec":
        from .ising import validate_lattice_size

        L = validate_lattice_size(self.L)
        temps = tuple(validate_temperature(t) for t in self.temperatures)
        if not temps:
            raise UsageError("give at least one temperature")
        if not isinstance(self.n, int | np.integer) or self.n <= 0:
            raise UsageError(f"the number of samples must be a positive integer, got {self.n}")
        if self.n * len(temps) > MAX_SAMPLES:
            raise UsageError(
                f"{self.n} samples x {len(temps)} temperatures is more than {MAX_SAMPLES:,}"
            )
        if self.algorithm not in ALGORITHM_CHOICES:
            raise UsageError(f"unknown algorithm {self.algorithm!r}; choose from "
                             + ", ".join(ALGORITHM_CHOICES))
        if not math.isfinite(self.h):
            raise UsageError(f"the field h must be finite, got {self.h}")
        if self.algorithm == "wolff" and self.h != 0:
            raise UsageError("the Wolff algorithm needs h = 0")
        for name in ("thermalize", "spacing"):
            value = getattr(self, name)
            if value is not None and value < (0 if name == "thermalize" else 1):
                raise UsageError(f"--{name} must be {'>= 0' if name == 'thermalize' else '>= 1'}")
        return SampleSpec(L, temps, int(self.n), self.algorithm, int(self.seed), self.symmetrize,
                          self.thermalize, self.spacing, float(self.h), self.threads)


def validate_temperature(t) -> float:
    try:
        value = float(t)
    except (TypeError, ValueError):
        raise UsageError(f"temperature must be a number, got {t!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise UsageError(f"temperature must be a positive finite number, got {t}")
    return value


def parse_temperatures(items) -> tuple:
    """Each item is a temperature ('2.269', 'tc') or an inclusive range 'START:STOP:COUNT'."""
    temps = []
    for item in items:
        text = str(item).strip().lower()
        if ":" in text:
            parts = text.split(":")
            if len(parts) != 3:
                raise UsageError(f"a temperature range is START:STOP:COUNT, got {item!r}")
            start, stop = (validate_temperature(_tc_or(p)) for p in parts[:2])
            try:
                count = int(parts[2])
            except ValueError:
                raise UsageError(f"range count must be a whole number, got {parts[2]!r}") from None
            if count < 1 or count > 10_000:
                raise UsageError(f"range count must be between 1 and 10000, got {count}")
            temps.extend(np.linspace(start, stop, count).round(12).tolist())
        else:
            temps.append(validate_temperature(_tc_or(text)))
    return tuple(temps)


def _tc_or(text: str):
    return TC if text.strip() == "tc" else text


def auto_algorithm(T: float, h: float) -> str:
    return "wolff" if (T <= AUTO_WOLFF_MAX_T and h == 0) else "metropolis"


@dataclass
class TemperatureReport:
    T: float
    algorithm: str
    thermalize_sweeps: int
    spacing_sweeps: int
    tau_int_sweeps: float  # pilot estimate, in sweeps (max over |m| and E)
    tau_int_samples: float  # measured on the output series of |m|, in samples
    independent_samples: float
    wolff_steps_per_sweep: int | None = None
    acceptance: float | None = None
    seconds: float = 0.0
    notes: list = field(default_factory=list)


class _Chain:
    """One temperature's lattice, stream and sweep unit."""

    def __init__(self, spec: SampleSpec, index: int):
        from .ising import random_spins

        self.T = spec.temperatures[index]
        self.beta = 1.0 / self.T
        self.h = spec.h
        self.algorithm = (auto_algorithm(self.T, spec.h) if spec.algorithm == "auto"
                          else spec.algorithm)
        self.state = new_states(seed_sequence(spec.seed, f"sample/{index}"))
        self.spins = random_spins(spec.L, self.state)
        self.N = spec.L * spec.L
        self.steps_per_sweep = 1
        self.attempts = 0
        self.accepted = 0

    def sweep(self, n: int) -> None:
        from .ising import run_sweeps

        count = n * self.steps_per_sweep
        changed = run_sweeps(self.algorithm, self.spins, self.beta, self.h, count, self.state)
        if self.algorithm != "wolff":
            self.attempts += count * self.N
            self.accepted += changed

    def calibrate_wolff(self, steps: int = 200) -> None:
        """A Wolff 'sweep' is as many cluster flips as flip N spins on average. The mean
        cluster is measured after WOLFF_WARMUP_SWEEPS x N flipped spins: from the random start
        the first clusters are tiny, and counting those made a 'sweep' at Tc and L = 128
        up to ~1000 times too long."""
        from .ising import run_sweeps

        flipped = 0
        while flipped < WOLFF_WARMUP_SWEEPS * self.N:
            flipped += run_sweeps("wolff", self.spins, self.beta, 0.0, steps, self.state)
        flipped = run_sweeps("wolff", self.spins, self.beta, 0.0, steps, self.state)
        mean_cluster = max(flipped / steps, 1.0)
        self.steps_per_sweep = max(1, round(self.N / mean_cluster))

    def measure(self) -> tuple[float, float]:
        from .observables import energy_and_magnetisation

        e, m = energy_and_magnetisation(self.spins)
        return e / self.N - self.h * m / self.N, abs(m) / self.N


def _pilot_tau(chain: _Chain) -> float:
    """tau_int in sweeps, the larger of |m|'s and E's, from a pilot series."""
    from .observables import tau_int

    n = PILOT_SWEEPS
    e = np.empty(n)
    m = np.empty(n)
    for i in range(n):
        chain.sweep(1)
        e[i], m[i] = chain.measure()
    taus = [tau_int(x)[0] if np.ptp(x) > 0 else 0.5 for x in (e, m)]
    return float(max(taus))


def _run_temperature(spec: SampleSpec, index: int, out: np.ndarray, progress,
                     stop) -> TemperatureReport:
    from .observables import tau_int

    t0 = time.perf_counter()
    chain = _Chain(spec, index)
    report_notes = []
    if chain.algorithm == "wolff":
        chain.calibrate_wolff()
    chain.sweep(MIN_THERMALIZE)
    tau = _pilot_tau(chain) if (spec.thermalize is None or spec.spacing is None) else float("nan")
    if tau == tau and tau * 10 > PILOT_SWEEPS:
        report_notes.append(f"tau_int ~ {tau:.0f} sweeps is long compared with the "
                            f"{PILOT_SWEEPS}-sweep pilot; the estimate is rough")
    thermalize = (spec.thermalize if spec.thermalize is not None
                  else max(MIN_THERMALIZE, math.ceil(THERMALIZE_TAUS * tau)))
    spacing = spec.spacing if spec.spacing is not None else max(1, math.ceil(2 * tau))
    chain.sweep(thermalize)
    abs_m = np.empty(spec.n)
    chunk = max(1, 20_000_000 // max(1, spacing * chain.N * chain.steps_per_sweep))
    done = 0
    while done < spec.n:
        if stop is not None and stop():
            raise KeyboardInterrupt
        upto = min(spec.n, done + chunk)
        for k in range(done, upto):
            chain.sweep(spacing)
            out[k] = chain.spins
            abs_m[k] = chain.measure()[1]
        if progress is not None:
            progress(index, upto - done)
        done = upto
    if spec.symmetrize:
        flip_state = np.random.default_rng(seed_sequence(spec.seed, f"symmetrize/{index}"))
        signs = np.where(flip_state.random(spec.n) < 0.5, -1, 1).astype(np.int8)
        out *= signs[:, None, None]
    tau_s = tau_int(abs_m)[0] if spec.n >= 20 and np.ptp(abs_m) > 0 else 0.5
    tau_s = max(tau_s, 0.5)
    return TemperatureReport(
        T=chain.T,
        algorithm=chain.algorithm,
        thermalize_sweeps=int(thermalize),
        spacing_sweeps=int(spacing),
        tau_int_sweeps=round(tau, 3) if tau == tau else None,
        tau_int_samples=round(float(tau_s), 3),
        independent_samples=round(spec.n / (2 * tau_s), 1),
        wolff_steps_per_sweep=chain.steps_per_sweep if chain.algorithm == "wolff" else None,
        acceptance=(round(chain.accepted / chain.attempts, 4) if chain.attempts else None),
        seconds=round(time.perf_counter() - t0, 3),
        notes=report_notes,
    )


def generate(spec: SampleSpec, progress=None, stop=None):
    """Run the sampler. Returns (spins int8 (n_T, n, L, L), temperatures, meta dict).

    progress(t_index, n_new_samples) is called from worker threads after each chunk;
    stop() returning True aborts with KeyboardInterrupt at the next chunk."""
    from .npzio import versions

    spec = spec.validated()
    n_t = len(spec.temperatures)
    spins = np.empty((n_t, spec.n, spec.L, spec.L), dtype=np.int8)
    threads = max(1, min(spec.threads or _default_threads(), n_t))
    cancel = threading.Event()

    def should_stop():
        return cancel.is_set() or (stop is not None and stop())

    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=threads) as pool:
        futures = [pool.submit(_run_temperature, spec, i, spins[i], progress, should_stop)
                   for i in range(n_t)]
        try:
            reports = [f.result() for f in futures]
        except BaseException:
            cancel.set()
            raise
    meta = {
        "format": "rgflow-ising-samples",
        "version": 1,
        "L": spec.L,
        "n": spec.n,
        "h": spec.h,
        "seed": spec.seed,
        "symmetrized": spec.symmetrize,
        "algorithm_requested": spec.algorithm,
        "temperatures": list(spec.temperatures),
        "per_temperature": [asdict(r) for r in reports],
        "seconds": round(time.perf_counter() - t0, 3),
        "versions": versions(),
    }
    return spins, np.asarray(spec.temperatures, dtype=np.float64), meta


def _default_threads() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
