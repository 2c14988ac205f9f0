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
from .filekinds import DATASET
from .rng import new_states, seed_sequence

ALGORITHM_CHOICES = ("metropolis", "heatbath", "wolff", "auto")
# auto: Wolff where clusters are large (below and around Tc, where local updates slow down
# critically and keep the magnetisation's sign), heat-bath in the hot phase. Not checkerboard
# Metropolis: at high T it flips almost every spin every sweep, a period-2 oscillation in
# which every second sample is nearly the same configuration (|overlap| -> 1 as T -> inf).
AUTO_WOLFF_MAX_T = 1.3 * TC
SITE_PROBES = 256  # sites whose spin autocorrelation is followed (all sites if fewer)
TAU_WINDOW_C = 5.0  # Sokal's window factor, as in rgflow.core.observables.tau_int
PILOT_BYTES = 32 << 20  # pilot configurations kept to choose the spacing (int8, per chain)
PILOT_MIN_KEPT = 400
PILOT_ORIGINS = 400  # pairs per lag when comparing overlaps in the pilot
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
    return "wolff" if (T <= AUTO_WOLFF_MAX_T and h == 0) else "heatbath"


@dataclass
class TemperatureReport:
    T: float
    algorithm: str
    thermalize_sweeps: int
    spacing_sweeps: int
    tau_int_sweeps: float  # pilot estimate, in sweeps: the largest of tau_int_by_observable
    tau_int_samples: float  # measured on the output series, in samples (largest observable)
    independent_samples: float
    # pilot tau_int in sweeps of E, |m|, signed m and the spins themselves (site-averaged
    # autocorrelation, i.e. the overlap of configurations t sweeps apart)
    tau_int_by_observable: dict = field(default_factory=dict)
    # mean |overlap| of consecutive samples and of pairs n/2 apart (+- standard error), and
    # what two independent random configurations give, sqrt(2 / (pi N))
    overlap: dict = field(default_factory=dict)
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
        """(E per spin, signed m per spin)."""
        from .observables import energy_and_magnetisation

        e, m = energy_and_magnetisation(self.spins)
        return e / self.N - self.h * m / self.N, m / self.N


def probe_sites(N: int) -> np.ndarray:
    """SITE_PROBES evenly spread flat site indices (all sites when N is smaller)."""
    return np.unique(np.linspace(0, N - 1, min(N, SITE_PROBES)).astype(np.int64))


def site_tau(spins_series) -> float:
    """tau_int of the spins themselves: Sokal's window on the site-averaged autocorrelation
    of (n, k) spin series, summing |rho(t)|. |rho| makes a period-2 oscillation (rho(1) ~ -1,
    rho(2) ~ +1: every second configuration the same) a long time, as it is, instead of
    letting the alternating terms cancel. A frozen series gives 0.5."""
    x = np.asarray(spins_series, dtype=np.float64)
    n = x.shape[0]
    d = x - x.mean(axis=0)
    size = 1 << (2 * n - 1).bit_length()
    f = np.fft.rfft(d, size, axis=0)
    acov = np.fft.irfft(f.real**2 + f.imag**2, size, axis=0)[:n].sum(axis=1)
    acov /= np.arange(n, 0, -1)
    if acov[0] <= 0:
        return 0.5
    taus = 0.5 + np.cumsum(np.abs(acov[1:] / acov[0]))
    ok = np.flatnonzero(np.arange(1, n) >= TAU_WINDOW_C * taus)
    return float(taus[ok[0]] if ok.size else taus[-1])


def series_taus(e, m, probes) -> dict:
    """tau_int of E, |m|, signed m (rgflow.core.observables.tau_int) and of the spins."""
    from .observables import tau_int

    def tau(x):
        return float(tau_int(x)[0]) if np.ptp(x) > 0 else 0.5

    return {"energy": round(tau(e), 3), "abs_m": round(tau(np.abs(m)), 3),
            "m": round(tau(m), 3), "spins": round(site_tau(probes), 3)}


def _pilot(chain: _Chain) -> tuple[dict, np.ndarray]:
    """A PILOT_SWEEPS pilot series: tau_int in sweeps of each observable (for Wolff, signed
    ones with the global sign fixed), and the configurations of every sweep (int8 (n, N);
    fewer rows for very large lattices)."""
    n = PILOT_SWEEPS
    e = np.empty(n)
    m = np.empty(n)
    sites = probe_sites(chain.N)
    probes = np.empty((n, sites.size), dtype=np.int8)
    keep = int(min(n, max(PILOT_MIN_KEPT, PILOT_BYTES // chain.N)))
    configs = np.empty((keep, chain.N), dtype=np.int8)
    for i in range(n):
        chain.sweep(1)
        e[i], m[i] = chain.measure()
        flat = chain.spins.reshape(-1)
        probes[i] = flat[sites]
        if i < keep:
            configs[i] = flat
    return _algorithm_taus(chain.algorithm, e, m, probes), configs


def _algorithm_taus(algorithm: str, e, m, probes) -> dict:
    """series_taus; for Wolff with the global sign fixed. A cluster as large as the lattice
    (the ordered phase) flips the global sign every sweep: a period-2 sign that no spacing
    removes and that no configuration differs by (|q| ignores it too). Whether the sign
    itself is sampled is reported separately (sign_persistence)."""
    if algorithm == "wolff":
        sign = np.where(m < 0, -1, 1)
        m = m * sign
        probes = probes * sign[:, None].astype(np.int8)
    return series_taus(e, m, probes)


def sign_persistence(m) -> float:
    """Mean of sign(m_k) sign(m_k+1) over consecutive samples: ~0 when the global sign is
    sampled, +1 when it stays, -1 when it alternates."""
    sign = np.where(np.asarray(m) < 0, -1.0, 1.0)
    return float(np.mean(sign[1:] * sign[:-1])) if sign.size > 1 else 0.0


def _mean_abs_overlap(configs, lag: int, origins: np.ndarray) -> tuple[float, float]:
    a = configs[origins].astype(np.float32)
    b = configs[origins + lag].astype(np.float32)
    q = np.abs(np.einsum("ij,ij->i", a, b)) / configs.shape[1]
    return float(q.mean()), float(q.std(ddof=1) / math.sqrt(q.size))


def spacing_from_overlap(configs, start: int) -> tuple[int, bool]:
    """The smallest spacing >= start (sweeps) at which configurations that far apart overlap
    no more than far-apart ones do, within two combined standard errors, measured on the
    pilot's configurations (one per sweep). Returns (spacing, found); when no lag up to a
    quarter of the pilot qualifies, (that lag, False)."""
    n = len(configs)
    far = n // 2
    count = min(PILOT_ORIGINS, n - far)
    origins = np.linspace(0, n - far - 1, count).astype(np.int64)
    far_q, far_err = _mean_abs_overlap(configs, far, origins)
    lag = max(1, start)
    while True:
        if lag * 4 >= n:  # too long to measure on this pilot
            return lag, False
        near = np.linspace(0, n - lag - 1, min(PILOT_ORIGINS, n - lag)).astype(np.int64)
        q, err = _mean_abs_overlap(configs, lag, near)
        if q - far_q <= 2.0 * math.hypot(err, far_err):
            return lag, True
        lag = max(lag + 1, math.ceil(lag * 1.2))


def overlap_report(configs, chunk: int = 256) -> dict:
    """Mean |q| of consecutive configurations and of pairs n // 2 apart, q = (1/N) sum s s',
    each with its standard error (pairs treated as independent), and the random-pair value
    sqrt(2 / (pi N)). Independent samples give consecutive ~ far; correlated ones more."""
    x = np.asarray(configs).reshape(len(configs), -1)
    n, N = x.shape
    out = {"random": round(math.sqrt(2.0 / (math.pi * N)), 5), "pairs": int(max(n - 1, 0))}
    for name, lag in (("consecutive", 1), ("far", n // 2)):
        if lag < 1 or n - lag < 2:
            out[name] = out[f"{name}_error"] = None
            continue
        q = np.empty(n - lag)
        for k in range(0, n - lag, chunk):
            a = x[k:min(k + chunk, n - lag)].astype(np.float32)
            b = x[k + lag:k + lag + len(a)].astype(np.float32)
            q[k:k + len(a)] = np.abs(np.einsum("ij,ij->i", a, b)) / N
        out[name] = round(float(q.mean()), 5)
        out[f"{name}_error"] = round(float(q.std(ddof=1) / math.sqrt(q.size)), 5)
    return out


def _run_temperature(spec: SampleSpec, index: int, out: np.ndarray, progress,
                     stop) -> TemperatureReport:
    t0 = time.perf_counter()
    chain = _Chain(spec, index)
    report_notes = []
    if chain.algorithm == "wolff":
        chain.calibrate_wolff()
    chain.sweep(MIN_THERMALIZE)
    pilot, configs = ({}, None) if spec.thermalize is not None and spec.spacing is not None \
        else _pilot(chain)
    tau = max(pilot.values()) if pilot else float("nan")
    if tau == tau and tau * 10 > PILOT_SWEEPS:
        report_notes.append(f"tau_int ~ {tau:.0f} sweeps is long compared with the "
                            f"{PILOT_SWEEPS}-sweep pilot; the estimate is rough")
    thermalize = (spec.thermalize if spec.thermalize is not None
                  else max(MIN_THERMALIZE, math.ceil(THERMALIZE_TAUS * tau)))
    spacing = spec.spacing
    if spacing is None:
        # at least 2 tau_int of the slowest observable (the spins themselves included), and
        # far enough that consecutive samples overlap no more than far-apart ones
        spacing, found = spacing_from_overlap(configs, max(1, math.ceil(2 * tau)))
        if not found:
            report_notes.append(f"configurations {spacing} sweeps apart still overlap more "
                                "than far-apart ones in the pilot; samples are correlated")
    del configs
    chain.sweep(thermalize)
    e = np.empty(spec.n)
    m = np.empty(spec.n)
    chunk = max(1, 20_000_000 // max(1, spacing * chain.N * chain.steps_per_sweep))
    done = 0
    while done < spec.n:
        if stop is not None and stop():
            raise KeyboardInterrupt
        upto = min(spec.n, done + chunk)
        for k in range(done, upto):
            chain.sweep(spacing)
            out[k] = chain.spins
            e[k], m[k] = chain.measure()
        if progress is not None:
            progress(index, upto - done)
        done = upto
    # measured on the chain's own output, before any symmetrisation
    overlap = overlap_report(out)
    output_taus = (_algorithm_taus(chain.algorithm, e, m,
                                   out.reshape(spec.n, -1)[:, probe_sites(chain.N)])
                   if spec.n >= 20 else {})
    persistence = sign_persistence(m)
    if chain.algorithm == "wolff" and abs(persistence) > 0.5 and not spec.symmetrize:
        report_notes.append(f"the global sign is not sampled (consecutive samples keep or "
                            f"swap it: {persistence:+.2f}); use --symmetrize for sign-"
                            "symmetric data")
    tau_s = max([0.5, *output_taus.values()])
    if spec.symmetrize:
        flip_state = np.random.default_rng(seed_sequence(spec.seed, f"symmetrize/{index}"))
        signs = np.where(flip_state.random(spec.n) < 0.5, -1, 1).astype(np.int8)
        out *= signs[:, None, None]
    return TemperatureReport(
        T=chain.T,
        algorithm=chain.algorithm,
        thermalize_sweeps=int(thermalize),
        spacing_sweeps=int(spacing),
        tau_int_sweeps=round(tau, 3) if tau == tau else None,
        tau_int_samples=round(float(tau_s), 3),
        independent_samples=round(spec.n / (2 * tau_s), 1),
        tau_int_by_observable=pilot,
        overlap=overlap,
        wolff_steps_per_sweep=chain.steps_per_sweep if chain.algorithm == "wolff" else None,
        acceptance=(round(chain.accepted / chain.attempts, 4) if chain.attempts else None),
        seconds=round(time.perf_counter() - t0, 3),
        notes=report_notes,
    )


LIVE_TAU_MIN_POINTS = 200  # steps of history needed before the live spacing follows tau
LIVE_TAU_MAX_POINTS = 2000  # the newest steps used
LIVE_TAU_REFRESH = 20  # the live spacing is re-measured every this many stored samples


def live_spacing(energy, abs_m, sweeps_per_step: int, minimum: int):
    """The app's dataset spacing from its own recent history (one value per step of
    sweeps_per_step sweeps): (max(minimum, ceil(2 tau_int)), tau_int in sweeps), tau_int
    the larger of E's and |m|'s; None while there are fewer than LIVE_TAU_MIN_POINTS."""
    from .observables import tau_int

    e = np.asarray(energy, dtype=np.float64)[-LIVE_TAU_MAX_POINTS:]
    m = np.asarray(abs_m, dtype=np.float64)[-LIVE_TAU_MAX_POINTS:]
    if min(len(e), len(m)) < LIVE_TAU_MIN_POINTS:
        return None
    tau_steps = max(float(tau_int(x)[0]) if np.ptp(x) > 0 else 0.5 for x in (e, m))
    tau = max(0.5, tau_steps) * sweeps_per_step
    return max(int(minimum), math.ceil(2 * tau)), tau


def effective_samples(n: int, spacing: float, tau_sweeps: float) -> float:
    """Independent samples among n taken `spacing` sweeps apart: n / (2 tau) with tau in
    samples, max(1/2, tau_sweeps / spacing); n itself when tau is not known."""
    if not (tau_sweeps == tau_sweeps and tau_sweeps > 0):
        return float(n)
    return n / (2.0 * max(0.5, tau_sweeps / spacing))


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
        "format": DATASET,
        "version": 1,
        "L": spec.L,
        "n": spec.n,
        "h": spec.h,
        "seed": spec.seed,
        "symmetrized": spec.symmetrize,
        "algorithm_requested": spec.algorithm,
        "auto_rule": f"wolff up to T = {AUTO_WOLFF_MAX_T:.4f} (1.3 Tc) at h = 0, else heatbath",
        "temperatures": list(spec.temperatures),
        "per_temperature": [asdict(r) for r in reports],
        "seconds": round(time.perf_counter() - t0, 3),
        "versions": versions(),
    }
    return spins, np.asarray(spec.temperatures, dtype=np.float64), meta


def _default_threads() -> int:
    from .cpu import available_cores

    return available_cores()
