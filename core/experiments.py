"""The paper's analyses (PAPER.md section 7) as one pipeline of cached stages: the engine
behind `rgflow reproduce`.

Presets ("tiny" for the test suite, "quick", "paper") are frozen dataclasses holding every
setting. A preset expands into stages (Monte Carlo datasets, RBM training runs, thermometers,
analyses). Each stage's output (arrays + a JSON `meta` member) is stored at

    DIR/cache/<stage>-<sha256 of (stage kind, settings, input keys, code version)>.npz

written atomically, so a re-run skips every finished stage and an interrupted run loses only
the stage in progress. The code version of a stage is the source of the core modules it uses,
a per-kind revision number for the logic in this file, and the numpy/numba versions.

Randomness: every stage draws from its own named stream of the preset's seed; BLAS is pinned to
one thread inside stages; Monte Carlo runs one stream per temperature. So the results do not
depend on --jobs.

Outputs (written by `Pipeline.run` after the stages): report.md, results.json,
correlators.npz, flow.npz and one PNG per experiment (when matplotlib is importable).

No rich, no textual: progress goes through callbacks.
"""

import dataclasses
import hashlib
import io
import json
import math
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from .errors import DataFileError, UsageError
from .exact import TC
from .npzio import atomic_write_bytes

FORMAT = "rgflow-reproduce"
SCHEMA = 1
Z_AGREE = 2.0  # |difference| <= Z_AGREE combined standard errors: "consistent"
DELTA_SIGMA_EXACT = 0.125
DELTA_EPSILON_EXACT = 1.0

# ---------------------------------------------------------------------------------------------
# Presets


def _grid(start: float, stop: float, count: int) -> tuple:
    return tuple(float(x) for x in np.linspace(start, stop, count).round(10))


PAPER_GRID = _grid(0.1, 6.0, 60)  # PAPER.md section 2 default


@dataclasses.dataclass(frozen=True)
class Preset:
    """Every setting of a reproduction run. Names follow the experiments of PAPER.md section 7."""

    name: str
    seed: int = 0
    # Monte Carlo data (all datasets)
    algorithm: str = "auto"           # rgflow.core.sampling: Wolff up to 1.3 Tc, Metropolis above
    symmetrize: bool = True           # flip each configuration's sign at random (*default*)
    # RBM training (PAPER.md section 4, the authors' settings)
    rbm_units: str = "spin"
    rbm_k: int = 1                    # PCD-1
    rbm_batch: int = 100
    rbm_chains: int = 100             # one persistent chain of batch size
    rbm_lr: float = 1e-3
    rbm_adam_eps: float = 1e-2
    rbm_weight_scale: float = 0.05
    rbm_holdout: float = 0.1          # held out for the free-energy gap only
    rbm_monitor_points: int = 4       # monitoring evaluations per run (besides the start)
    # experiment 1: <v h> maps, RG vs RBM at T = corr_T
    corr_sizes: tuple = (32,)         # L; n_hidden = L*L/4 (1024 -> 256 for L = 32)
    corr_T: float = TC
    corr_samples: int = 10_000
    rbm_steps: int = 10_000
    jackknife_blocks: int = 10
    # thermometers (experiments 2 and 3)
    grid: tuple = PAPER_GRID
    thermo_samples: int = 2000        # Monte Carlo configurations per grid T (levels of exp. 2)
    mlp_hidden: int = 64              # Iso et al.: N_v -> 64 -> n_T softmax
    mlp_epochs: int = 20
    mlp_batch: int = 100
    mlp_lr: float = 1e-3
    mlp_holdout: float = 0.2
    # experiment 2: RG flow of temperature under majority rule
    rgT_L: int = 64
    rgT_levels: int = 3
    rgT_start_T: tuple = (2.0, TC, 2.6)  # below, at, above Tc (*default*)
    rgT_samples: int = 5000
    # experiment 3: RBM flow on L = 10
    flow_L: int = 10
    flow_hidden: tuple = (81, 100)
    flow_train_sets: tuple = ("mixed", "tc", "high", "low")
    flow_grid_samples: int = 10_000   # per grid T at L = 10: thermometer and "mixed" data
    flow_tc_samples: int = 10_000
    flow_rbm_steps: int = 50_000
    flow_steps: int = 29
    flow_chains: int = 10_000
    flow_start_T: tuple = (1.0, 5.0)  # MC starts "low T", "high T" (*default*), plus random
    fit_r_min: float = 1.0            # power-law fit window r_min <= r < L/2
    # experiment 4: stacked RBMs next to the RG levels (None: skipped)
    stack_L: int | None = 64
    stack_levels: int = 3

    def settings(self) -> dict:
        return _jsonable(dataclasses.asdict(self))


PRESETS = {
    # Seconds: exercises every stage and output at toy sizes (test suite only).
    "tiny": Preset(
        name="tiny", corr_sizes=(8,), corr_samples=300, rbm_steps=40, rbm_monitor_points=1,
        grid=_grid(0.5, 4.0, 8), thermo_samples=30, mlp_epochs=3,
        rgT_L=8, rgT_levels=1, rgT_samples=100,
        flow_hidden=(81,), flow_grid_samples=40, flow_tc_samples=200, flow_rbm_steps=30,
        flow_steps=3, flow_chains=100, stack_L=8, stack_levels=2,
    ),
    # Minutes: experiment 1 at 1024 -> 256, RG temperature flow 32 -> 16 -> 8, RBM flows with
    # 100 -> 81 RBMs; fewer samples and updates than the paper, no stacked RBMs.
    "quick": Preset(
        name="quick", corr_sizes=(32,), corr_samples=10_000, rbm_steps=5000,
        thermo_samples=1000, mlp_epochs=10,
        rgT_L=32, rgT_levels=2, rgT_samples=1000,
        flow_hidden=(81,), flow_grid_samples=1000, flow_tc_samples=5000, flow_rbm_steps=10_000,
        flow_chains=1000, stack_L=None,
    ),
    # About half an hour on two cores: the authors' sizes and lengths.
    "paper": Preset(name="paper", corr_sizes=(32, 64, 16), rbm_monitor_points=10),
}


def get_preset(name: str) -> Preset:
    if name not in PRESETS:
        raise UsageError(f"unknown preset {name!r} (choose from {', '.join(PRESETS)})")
    return PRESETS[name]


def _jsonable(x):
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return _jsonable(x.tolist())
    if isinstance(x, np.integer | bool | np.bool_):
        return x.item() if isinstance(x, np.generic) else x
    if isinstance(x, float | np.floating):
        return float(x) if math.isfinite(x) else None
    return x


def validate_preset(p: Preset) -> Preset:
    """One UsageError for the first setting that cannot work."""
    from .sampling import validate_temperature

    def need(ok, msg):
        if not ok:
            raise UsageError(f"preset {p.name!r}: {msg}")

    for L in p.corr_sizes:
        need(L >= 8 and L % 2 == 0, f"correlator lattice L={L} must be even and >= 8")
    need(p.corr_samples >= max(p.rbm_batch * 2, p.jackknife_blocks),
         "corr_samples too small for one batch and the jackknife")
    need(p.jackknife_blocks >= 2, "jackknife_blocks must be >= 2")
    t = np.asarray(p.grid, dtype=float)
    need(t.size >= 2 and (np.diff(t) > 0).all() and t[0] > 0, "grid must be increasing, > 0")
    need(t[0] < TC < t[-1], "the grid must bracket Tc (high/low training sets)")
    for T in (*p.rgT_start_T, *p.flow_start_T, p.corr_T):
        validate_temperature(T)
    need(p.rgT_L % (2 ** p.rgT_levels) == 0 and p.rgT_L // 2 ** p.rgT_levels >= 4,
         "rgT_L / 2^rgT_levels must be a whole lattice of side >= 4")
    need(p.rgT_samples >= 2 and p.thermo_samples >= 2, "need >= 2 samples per temperature")
    need(p.flow_chains >= p.jackknife_blocks, "flow_chains must be >= jackknife_blocks")
    need(p.flow_L % 2 == 0 and p.flow_L >= 8, "flow_L must be even and >= 8")
    for name in p.flow_train_sets:
        need(name in TRAIN_SETS, f"unknown flow training set {name!r}")
        n = _train_set_size(p, name)
        usable = n - round(p.rbm_holdout * n)
        need(usable >= p.rbm_batch, f"flow training set {name!r} has {usable} configurations "
             f"after the hold-out, fewer than one batch ({p.rbm_batch})")
    if p.stack_L is not None:
        need(p.stack_L % (2 ** p.stack_levels) == 0 and p.stack_L // 2 ** p.stack_levels >= 2,
             "stack_L / 2^stack_levels must be >= 2")
        need(p.stack_levels >= 1, "stack_levels must be >= 1")
    return p


TRAIN_SETS = {
    "mixed": "every grid temperature (Iso et al.)",
    "tc": "T = Tc only (the authors' training files)",
    "high": "grid temperatures above Tc only (control)",
    "low": "grid temperatures below Tc only (control)",
}


def _train_set_indices(p: Preset, name: str):
    t = np.asarray(p.grid)
    if name == "mixed":
        return [int(i) for i in range(t.size)]
    if name == "high":
        return [int(i) for i in np.flatnonzero(t > TC)]
    if name == "low":
        return [int(i) for i in np.flatnonzero(t < TC)]
    return None  # tc: its own dataset


def _train_set_size(p: Preset, name: str) -> int:
    idx = _train_set_indices(p, name)
    return p.flow_tc_samples if idx is None else len(idx) * p.flow_grid_samples


# ---------------------------------------------------------------------------------------------
# Stages

# Revision of each stage kind's logic in this file: bump when a kind's computation changes.
KIND_REVISIONS = {"mc": 1, "rbm": 1, "hidden": 1, "thermometer": 1, "vh": 1,
                  "rg_temperature": 2, "flow": 2, "mc_reference": 2}
# Core modules whose source each kind depends on (hashed into the cache key).
KIND_MODULES = {
    "mc": ("sampling", "ising", "rng", "observables", "exact"),
    "rbm": ("rbm", "training", "rbm_monitor", "rng"),
    "hidden": ("rbm", "rng"),
    "thermometer": ("thermometer", "observables", "rng"),
    "vh": ("correlators", "rg", "rbm"),
    "rg_temperature": ("rg", "thermometer", "observables", "rng"),
    "flow": ("rbm", "thermometer", "observables", "correlators", "rng"),
    "mc_reference": ("thermometer", "observables", "correlators"),
}


@dataclasses.dataclass
class Stage:
    name: str
    kind: str
    title: str
    settings: dict
    inputs: tuple = ()
    estimate_s: float = 0.0
    key: str = ""
    path: Path | None = None


def code_version(kind: str) -> str:
    """sha256 of the kind's revision, the source of the core modules it uses and the
    numpy / numba versions."""
    from .npzio import versions

    h = hashlib.sha256()
    h.update(f"{kind}:{KIND_REVISIONS[kind]}".encode())
    here = Path(__file__).resolve().parent
    for mod in KIND_MODULES[kind]:
        h.update(mod.encode())
        h.update((here / f"{mod}.py").read_bytes())
    v = versions()
    h.update(f"numpy {v['numpy']} numba {v['numba']}".encode())
    return h.hexdigest()


def derived_seed(seed: int, name: str) -> int:
    """A 63-bit integer seed for the named stage, from the preset's seed."""
    from .rng import seed_sequence

    return int(seed_sequence(seed, f"reproduce/{name}").generate_state(1, np.uint64)[0] >> 1)


class StageOutput:
    """A finished stage's file: `meta` at once, `arrays` loaded on first use."""

    def __init__(self, path: Path):
        self.path = path
        self._arrays = None
        self.meta = read_meta(path)

    @property
    def arrays(self) -> dict:
        from .npzio import read_npz

        if self._arrays is None:
            self._arrays, _ = read_npz(self.path)
        return self._arrays

    def release(self) -> None:
        self._arrays = None


class StageContext:
    """What a stage function sees: its settings, its inputs, progress and stop."""

    def __init__(self, stage: Stage, inputs: dict, threads: int, report, stop):
        self.stage = stage
        self.settings = stage.settings
        self.inputs = inputs
        self.threads = threads
        self._report = report
        self._stop = stop
        self._last = 0.0
        self._lock = threading.Lock()

    def progress(self, done, total, **fields) -> None:
        """Throttled to ~10 Hz (and always the final call)."""
        now = time.perf_counter()
        with self._lock:
            if done < total and now - self._last < 0.1:
                return
            self._last = now
        if self._report is not None:
            self._report("progress", self.stage, done=done, total=total, **fields)

    def stop(self) -> bool:
        return bool(self._stop is not None and self._stop())

    def check_stop(self) -> None:
        if self.stop():
            raise KeyboardInterrupt


# --------------------------------------------------------------------------- stage functions


def _run_mc(ctx: StageContext):
    from .sampling import SampleSpec, generate

    s = ctx.settings
    spec = SampleSpec(L=s["L"], temperatures=tuple(s["temperatures"]), n=s["n"],
                      algorithm=s["algorithm"], seed=s["seed"], symmetrize=s["symmetrize"],
                      threads=ctx.threads)
    total = s["n"] * len(s["temperatures"])
    lock = threading.Lock()
    done = [0]

    def progress(_i, new):
        with lock:
            done[0] += new
            d = done[0]
        ctx.progress(d, total)

    spins, temps, meta = generate(spec, progress=progress, stop=ctx.stop)
    return {"spins": spins, "temperatures": temps}, {"sampler": meta}


def _training_data(ctx: StageContext) -> np.ndarray:
    s = ctx.settings
    data = ctx.inputs[s["data"]].arrays["spins"]
    if data.ndim == 4:
        idx = s.get("t_indices")
        data = data if idx is None else data[idx]
        data = data.reshape(-1, data.shape[-2], data.shape[-1])
    return np.ascontiguousarray(data, dtype=np.int8)


def _run_rbm(ctx: StageContext):
    from .rbm import TrainConfig
    from .training import train

    s = ctx.settings
    data = _training_data(ctx)
    cfg = TrainConfig(k=s["k"], persistent=True, n_chains=s["chains"], optimizer="adam",
                      lr=s["lr"], adam_eps=s["adam_eps"], batch=s["batch"])
    steps = s["steps"]
    monitor_every = max(1, steps // max(1, s["monitor_points"]))

    def progress(step, metrics):
        ctx.progress(step, steps)

    res = train(cfg, data, steps, n_hidden=s["n_hidden"], units=s["units"],
                holdout_fraction=s["holdout"], seed=s["seed"], monitor_every=monitor_every,
                weight_scale=s["weight_scale"], progress=progress, stop=ctx.stop)
    if res.stopped is not None:
        raise KeyboardInterrupt
    rbm = res.trainer.rbm
    arrays = {"W": rbm.W, "visible_bias": rbm.visible_bias, "hidden_bias": rbm.hidden_bias}
    meta = {"history": res.history, "n_train": res.n_train, "n_heldout": res.n_heldout,
            "train_seconds": res.train_seconds, "monitor_seconds": res.monitor_seconds,
            "samples_per_s": res.samples_per_s, "n_visible": rbm.n_visible,
            "n_hidden": rbm.n_hidden, "units": rbm.units}
    return arrays, meta


def load_rbm_arrays(arrays, units="spin"):
    from .rbm import RBM

    return RBM(arrays["W"], arrays["visible_bias"], arrays["hidden_bias"], units)


def _run_hidden(ctx: StageContext):
    """Sampled ±1 hidden units of an RBM given its training data: the next layer's data."""
    from .rbm import sample_hidden, spins_to_visible
    from .rng import new_states

    s = ctx.settings
    rbm = load_rbm_arrays(ctx.inputs[s["rbm"]].arrays, s["units"])
    data = _training_data(ctx)
    state = new_states(s["seed"])
    out = np.empty((data.shape[0], rbm.n_hidden), dtype=np.int8)
    for start in range(0, data.shape[0], 2048):
        ctx.check_stop()
        v = spins_to_visible(data[start:start + 2048], rbm.units, rbm.dtype)
        h = sample_hidden(rbm, v, state)
        out[start:start + len(h)] = np.where(h > 0, 1, -1)
        ctx.progress(start + len(h), data.shape[0])
    return {"spins": out}, {"n": int(out.shape[0]), "n_hidden": rbm.n_hidden}


def _reference_from_spins(spins) -> dict:
    """Monte Carlo reference curves (as rgflow.core.thermometer.reference_curves) from a grid dataset."""
    from .thermometer import reference_from_spins

    ref = reference_from_spins(spins)
    return {k: ref[k] for k in ("e_mean", "e_err", "m_mean", "m_err")}


def _run_thermometer(ctx: StageContext):
    from .thermometer import MLPThermometer, grouped_dataset

    s = ctx.settings
    src = ctx.inputs[s["data"]].arrays
    spins, temps = src["spins"], src["temperatures"]
    ref = _reference_from_spins(spins)
    x, y = grouped_dataset(spins, temps)
    mlp = MLPThermometer(n_hidden=s["hidden"])
    epochs = s["epochs"]
    fit = mlp.fit(x, y, temps, epochs=epochs, batch=s["batch"], lr=s["lr"],
                  holdout_fraction=s["holdout"], seed=s["seed"],
                  progress=lambda e, loss: (ctx.check_stop(), ctx.progress(e, epochs)))
    arrays = {f"mlp_{k}": v for k, v in mlp.state_arrays().items()}
    arrays.update({f"ref_{k}": v for k, v in ref.items()})
    arrays["ref_temperatures"] = temps
    arrays["confusion"] = np.asarray(fit.pop("confusion"), dtype=np.int64)
    return arrays, {"fit": fit, "L": int(spins.shape[-1])}


def load_thermometers(arrays):
    """(MLPThermometer, ObservableThermometer) from a thermometer stage's arrays."""
    from .thermometer import MLPThermometer, ObservableThermometer

    mlp = MLPThermometer.from_state_arrays(
        {k[4:]: v for k, v in arrays.items() if k.startswith("mlp_")})
    t = arrays["ref_temperatures"]
    obs = ObservableThermometer.from_monte_carlo(
        t, arrays["ref_e_mean"], arrays["ref_e_err"], arrays["ref_m_mean"], arrays["ref_m_err"],
        L=int(mlp.n_inputs ** 0.5 + 0.5))
    return mlp, obs


def _grid_edges(t) -> np.ndarray:
    t = np.asarray(t, dtype=float)
    mid = 0.5 * (t[1:] + t[:-1])
    return np.concatenate([[t[0] - (mid[0] - t[0])], mid, [t[-1] + (t[-1] - mid[-1])]])


def measure_temperature(configs, mlp, obs) -> dict:
    """Both thermometers on one configuration set: histograms over the grid, mean assigned
    temperatures with errors, <|m|>."""
    from .thermometer import energy_and_abs_m

    x = np.ascontiguousarray(configs, dtype=np.int8)
    n = x.shape[0]
    t = mlp.temperatures
    t_mlp = mlp.predict_temperature(x)
    hist_mlp = np.bincount(np.searchsorted(t, t_mlp), minlength=t.size)
    est = obs.estimate(x)
    t_obs_each = obs.per_configuration(x)
    hist_obs = np.histogram(t_obs_each, _grid_edges(obs.temperatures))[0]
    _, am = energy_and_abs_m(x)
    return {
        "T_obs_bound": obs_bound(est),
        "hist_mlp": hist_mlp.astype(np.int64),
        "hist_obs": hist_obs.astype(np.int64),
        "T_mlp": float(t_mlp.mean()),
        "T_mlp_err": float(t_mlp.std(ddof=1) / math.sqrt(n)),
        "T_obs": est["T"],
        "T_obs_err": est["T_err"],
        "abs_m": float(am.mean()),
        "abs_m_err": float(am.std(ddof=1) / math.sqrt(n)),
        "obs": est,
    }


def obs_bound(est: dict) -> int:
    """+1 when the observable thermometer's T is only a lower bound (every observable it uses
    lies above the reference range: T was clipped to the grid's top), -1 for an upper bound,
    0 for a measurement."""
    ranges = [est["energy_range"]] + ([est["abs_m_range"]]
                                      if "abs_m" in est["combined_from"] else [])
    if "inside" in ranges or est["energy_range"] == "inside":
        return 0
    return 1 if est["energy_range"] == "above" else -1


def _jk_blocks(n: int, n_blocks: int) -> list:
    edges = np.linspace(0, n, n_blocks + 1).round().astype(np.int64)
    return [np.arange(edges[i], edges[i + 1]) for i in range(n_blocks)]


def _jk_error(samples) -> np.ndarray:
    s = np.asarray(samples, dtype=float)
    nb = s.shape[0]
    return np.sqrt((nb - 1) / nb * np.sum((s - s.mean(axis=0)) ** 2, axis=0))


def scaling_fit(configs, n_blocks: int = 10, r_min: float = 1.0, r_max=None) -> dict:
    """Same numbers as rgflow.core.correlators.scaling_dimensions(configs, r_min, r_max, n_blocks)
    (paper convention, G_sigma not connected, G_eps with the subset's mean subtracted), computed
    from per-block sums instead of recomputing every leave-one-out subset (about 4x faster):
    G_sigma and the raw <eps eps>, <(eps+1)(eps+1)> and sum(eps) are linear in the configurations,
    so each leave-one-out correlator is an exact weighted combination of the blocks'."""
    from .correlators import fit_power_law
    from .observables import correlation_paper, energy_operator_field

    x = np.asarray(configs)
    n = x.shape[0]
    blocks = _jk_blocks(n, n_blocks)
    gs, cc, dd, es, counts = [], [], [], [], []
    for blk in blocks:
        xb = x[blk]
        r_s, g = correlation_paper(xb, r_max=r_max)
        eps = energy_operator_field(xb)
        r_e, c = correlation_paper(eps, r_max=r_max)
        _, d = correlation_paper(eps + 1.0, r_max=r_max)
        gs.append(g)
        cc.append(c)
        dd.append(d)
        es.append(float(eps.sum()))
        counts.append(len(blk))
    gs, cc, dd = np.array(gs), np.array(cc), np.array(dd)
    es, w = np.array(es), np.array(counts, dtype=float)
    site_count = w * x.shape[1] * x.shape[2]

    def combine(mask):
        ww = w[mask]
        g_sig = ww @ gs[mask] / ww.sum()
        c = ww @ cc[mask] / ww.sum()
        a = ww @ dd[mask] / ww.sum() - c - 1.0  # mean over pairs of eps_x + eps_y
        mu = es[mask].sum() / site_count[mask].sum()
        return g_sig, c - mu * a + mu * mu

    full = combine(np.ones(n_blocks, bool))
    loo = [combine(np.arange(n_blocks) != k) for k in range(n_blocks)]
    out = {"n_configs": int(n), "n_blocks": int(n_blocks), "convention": "paper"}
    for i, (name, r) in enumerate((("sigma", r_s), ("epsilon", r_e))):
        g = full[i]
        jk = np.array([lo[i] for lo in loo])
        g_err = _jk_error(jk)
        fit = fit_power_law(r, g, g_err, r_min=r_min, r_max=r_max)
        exps = np.array([fit_power_law(r, gk, g_err, r_min=r_min, r_max=r_max)["exponent"]
                         for gk in jk])
        ok = np.isfinite(exps).all() and np.isfinite(fit["exponent"])
        out[f"delta_{name}"] = fit["exponent"] / 2.0
        out[f"delta_{name}_err"] = float(_jk_error(exps)) / 2.0 if ok else float("nan")
        out[f"fit_{name}"] = fit
        out[f"r_{name}"] = r
        out[f"G_{name}"] = g
        out[f"G_{name}_err"] = g_err
    return out


def _locality_numbers(maps, b: int) -> dict:
    """Scalar locality numbers of a map set: means over units (finite values) and the spread
    (standard deviation over units) of the own-block fractions."""
    from .correlators import locality

    loc = locality(maps, b)
    n_blocks = (maps.shape[1] // b) ** 2

    def finite(x):
        x = np.asarray(x, dtype=float)
        return x[np.isfinite(x)]

    def mean(x):
        x = finite(x)
        return float(x.mean()) if x.size else float("nan")

    def spread(x):
        x = finite(x)
        return float(x.std(ddof=1)) if x.size > 1 else 0.0

    out = {
        "best_own_block_fraction": mean(loc["best_own_block_fraction"]),
        "best_peak_to_far": mean(loc["best_peak_to_far"]),
        "best_block_unique_fraction": float(loc["best_block_unique"].mean()),
        "blocks_claimed_fraction": float(np.unique(loc["best_block"]).size / n_blocks),
        "spread_best_own_block_fraction": spread(loc["best_own_block_fraction"]),
        "spread_best_peak_to_far": spread(loc["best_peak_to_far"]),
    }
    if "rg_own_block_fraction" in loc:
        out["rg_own_block_fraction"] = mean(loc["rg_own_block_fraction"])
        out["rg_peak_to_far"] = mean(loc["rg_peak_to_far"])
        out["spread_rg_own_block_fraction"] = spread(loc["rg_own_block_fraction"])
        out["spread_rg_peak_to_far"] = spread(loc["rg_peak_to_far"])
    return out


def _vh_with_jackknife(v, h_of, n_blocks: int, ctx, label, step0, steps_total):
    """<v h> maps (n_hidden, L, L) of configurations v (n, L, L) with hidden values h_of(chunk)
    and the leave-one-block-out maps, yielded one at a time (bounded memory)."""
    from .correlators import vh_correlator

    n, L, _ = v.shape
    blocks = _jk_blocks(n, n_blocks)
    sums = []
    for i, blk in enumerate(blocks):
        ctx.check_stop()
        sums.append(vh_correlator(v[blk], h_of(v[blk])) * len(blk))
        ctx.progress(step0 + i + 1, steps_total)
    total = np.sum(sums, axis=0)
    full = total / n
    loo = ((total - s) / (n - len(blk)) for s, blk in zip(sums, blocks, strict=True))
    return full, loo


def _run_vh(ctx: StageContext):
    """<v h> maps of RG (block averages, iterated) and of an RBM stack (hidden means,
    propagated) for levels 1..K, with locality numbers and their jackknife errors."""
    from .correlators import locality_summary
    from .rbm import hidden_mean, spins_to_visible
    from .rg import block_average

    s = ctx.settings
    v = ctx.inputs[s["data"]].arrays["spins"][0]
    n, L, _ = v.shape
    rbms = [load_rbm_arrays(ctx.inputs[name].arrays, s["units"]) for name in s["rbms"]]
    levels = len(rbms)
    nb = s["jackknife_blocks"]
    total_steps = 2 * nb * levels
    arrays, meta = {}, {"levels": []}
    for k in range(1, levels + 1):
        b = 2 ** k

        def h_rg(x, k=k):
            h = x.astype(np.float32)
            for _ in range(k):
                h = block_average(h, 2)
            return h.reshape(h.shape[0], -1)

        def h_rbm(x, k=k):
            h = spins_to_visible(x, rbms[0].units, rbms[0].dtype)
            for r in rbms[:k]:
                h = hidden_mean(r, h)
            return h

        level = {"level": k, "b": b, "L": L, "n_hidden": (L // b) ** 2, "n_configs": n}
        for side, h_of in (("rg", h_rg), ("rbm", h_rbm)):
            step0 = (2 * (k - 1) + (side == "rbm")) * nb
            full, loo = _vh_with_jackknife(v, h_of, nb, ctx, side, step0, total_steps)
            numbers = _locality_numbers(full, b)
            jk = [_locality_numbers(m, b) for m in loo]
            errors = {key: float(_jk_error([j[key] for j in jk]))
                      for key in numbers if "spread" not in key}
            level[side] = {"numbers": numbers, "jackknife_errors": errors,
                           "summary": locality_summary(full, b)}
            arrays[f"{side}_vh_level{k}"] = full
        meta["levels"].append(level)
    return arrays, meta


def _run_rg_temperature(ctx: StageContext):
    from .rg import majority_rule
    from .rng import new_states

    s = ctx.settings
    src = ctx.inputs[s["data"]].arrays
    spins, temps = src["spins"], src["temperatures"]
    therms = [load_thermometers(ctx.inputs[name].arrays) for name in s["thermometers"]]
    levels = len(therms) - 1
    n_s = spins.shape[0]
    n_t = therms[0][0].temperatures.size
    keys = ("T_mlp", "T_mlp_err", "T_obs", "T_obs_err", "abs_m", "abs_m_err")
    out = {k: np.full((n_s, levels + 1), np.nan) for k in keys}
    out["hist_mlp"] = np.zeros((n_s, levels + 1, n_t), np.int64)
    out["hist_obs"] = np.zeros((n_s, levels + 1, n_t), np.int64)
    out["T_obs_bound"] = np.zeros((n_s, levels + 1), np.int8)
    state = new_states(s["seed"])
    details = []
    for i in range(n_s):
        x = spins[i]
        row = []
        for k in range(levels + 1):
            ctx.check_stop()
            if k > 0:
                x = majority_rule(x, 2, state)
            mlp, obs = therms[k]
            m = measure_temperature(x, mlp, obs)
            for key in keys:
                out[key][i, k] = m[key]
            out["hist_mlp"][i, k] = m["hist_mlp"]
            out["hist_obs"][i, k] = m["hist_obs"]
            out["T_obs_bound"][i, k] = m["T_obs_bound"]
            row.append(m["obs"])
            ctx.progress(i * (levels + 1) + k + 1, n_s * (levels + 1))
        details.append(row)
    out["start_T"] = temps
    out["level_L"] = np.array([spins.shape[-1] // 2 ** k for k in range(levels + 1)])
    return out, {"observable_estimates": details}


def _flow_measure(configs, mlp, obs, mc_T, mc_m, n_blocks, r_min) -> dict:
    m = measure_temperature(configs, mlp, obs)
    sd = scaling_fit(configs, n_blocks=n_blocks, r_min=r_min)
    m.update({k: sd[k] for k in ("delta_sigma", "delta_sigma_err", "delta_epsilon",
                                 "delta_epsilon_err", "G_sigma", "G_sigma_err", "r_sigma",
                                 "G_epsilon", "G_epsilon_err", "r_epsilon")})
    m["chi2_sigma"] = sd["fit_sigma"]["chi2_dof"]
    m["chi2_epsilon"] = sd["fit_epsilon"]["chi2_dof"]
    # <|m|> of Monte Carlo at the temperature the classifier assigned (Iso et al.'s check).
    m["mc_abs_m_at_T_mlp"] = float(np.interp(m["T_mlp"], mc_T, mc_m))
    return m


FLOW_SCALARS = ("T_mlp", "T_mlp_err", "T_obs", "T_obs_err", "abs_m", "abs_m_err",
                "delta_sigma", "delta_sigma_err", "delta_epsilon", "delta_epsilon_err",
                "chi2_sigma", "chi2_epsilon", "mc_abs_m_at_T_mlp")
FLOW_STARTS = ("low", "high", "random")


def _run_flow(ctx: StageContext):
    from .rbm import rbm_flow, spins_to_visible, uniforms
    from .rng import new_states

    s = ctx.settings
    rbm = load_rbm_arrays(ctx.inputs[s["rbm"]].arrays, s["units"])
    th = ctx.inputs[s["thermometer"]].arrays
    mlp, obs = load_thermometers(th)
    mc_T, mc_m = th["ref_temperatures"], th["ref_m_mean"]
    starts = ctx.inputs[s["starts"]].arrays["spins"]  # (2, n, L, L): low, high
    n, L = s["chains"], starts.shape[-1]
    state = new_states(s["seed"])
    v0s = [spins_to_visible(starts[0][:n], rbm.units, rbm.dtype),
           spins_to_visible(starts[1][:n], rbm.units, rbm.dtype)]
    u = uniforms(state, (n, L * L))
    v0s.append(np.where(u < 0.5, -1.0, 1.0).astype(rbm.dtype))
    n_steps = s["steps"]
    n_t = mlp.temperatures.size
    shape = (len(FLOW_STARTS), n_steps + 1)
    out = {k: np.full(shape, np.nan) for k in FLOW_SCALARS}
    out["hist_mlp"] = np.zeros(shape + (n_t,), np.int64)
    out["hist_obs"] = np.zeros(shape + (n_t,), np.int64)
    out["T_obs_bound"] = np.zeros(shape, np.int8)
    obs_details = []
    for i, v0 in enumerate(v0s):
        ctx.check_stop()
        flow = rbm_flow(rbm, v0, n_steps, state)
        rows = []
        for step in range(n_steps + 1):
            ctx.check_stop()
            x = np.where(flow[step] > 0, 1, -1).astype(np.int8).reshape(n, L, L)
            m = _flow_measure(x, mlp, obs, mc_T, mc_m, s["jackknife_blocks"], s["r_min"])
            for k in FLOW_SCALARS:
                out[k][i, step] = m[k]
            out["hist_mlp"][i, step] = m["hist_mlp"]
            out["hist_obs"][i, step] = m["hist_obs"]
            out["T_obs_bound"][i, step] = m["T_obs_bound"]
            for g in ("G_sigma", "G_sigma_err", "G_epsilon", "G_epsilon_err"):
                if g not in out:
                    out[g] = np.full(shape + (m[g].size,), np.nan)
                out[g][i, step] = m[g]
            out["r_sigma"], out["r_epsilon"] = m["r_sigma"], m["r_epsilon"]
            rows.append({k: m["obs"][k] for k in ("energy_range", "abs_m_range",
                                                  "disagreement_sigma")})
            ctx.progress(i * (n_steps + 1) + step + 1, len(v0s) * (n_steps + 1))
        obs_details.append(rows)
    return out, {"observable_ranges": obs_details}


def _run_mc_reference(ctx: StageContext):
    """What the L = 10 instruments read for genuine Monte Carlo configurations at Tc and at
    the flow's start temperatures: the reference the flow is compared with."""
    s = ctx.settings
    mlp, obs = load_thermometers(ctx.inputs[s["thermometer"]].arrays)
    tc = ctx.inputs[s["tc"]].arrays["spins"][0]
    starts = ctx.inputs[s["starts"]].arrays
    th = ctx.inputs[s["thermometer"]].arrays
    sets = [("tc", tc[: s["chains"]])] + [
        (name, starts["spins"][i][: s["chains"]]) for i, name in enumerate(("low", "high"))]
    out, meta = {}, {}
    for j, (name, x) in enumerate(sets):
        ctx.check_stop()
        m = _flow_measure(x, mlp, obs, th["ref_temperatures"], th["ref_m_mean"],
                          s["jackknife_blocks"], s["r_min"])
        for k in FLOW_SCALARS:
            out[f"{name}_{k}"] = np.array(m[k])
        for g in ("G_sigma", "G_sigma_err", "G_epsilon", "G_epsilon_err", "hist_mlp",
                  "hist_obs", "T_obs_bound"):
            out[f"{name}_{g}"] = m[g]
        meta[name] = {"n": int(x.shape[0]), "obs": m["obs"]}
        ctx.progress(j + 1, len(sets))
    meta["T"] = {"tc": TC, "low": float(starts["temperatures"][0]),
                 "high": float(starts["temperatures"][1])}
    return out, meta


STAGE_FUNCS = {"mc": _run_mc, "rbm": _run_rbm, "hidden": _run_hidden,
               "thermometer": _run_thermometer, "vh": _run_vh,
               "rg_temperature": _run_rg_temperature, "flow": _run_flow,
               "mc_reference": _run_mc_reference}


# ---------------------------------------------------------------------------------------------
# Cache files


def read_meta(path: Path) -> dict:
    """The `meta` member of a stage file only; DataFileError if it is unreadable."""
    import zipfile

    try:
        with np.load(path, allow_pickle=False) as npz:
            raw = npz["meta"]
        meta = json.loads(str(raw))
    except (OSError, KeyError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise DataFileError(path, f"unreadable stage file ({exc})") from None
    if not isinstance(meta, dict):
        raise DataFileError(path, "stage meta is not a JSON object")
    return meta


def cache_hit(path: Path, key: str) -> bool:
    """A finished, intact stage file with this key (every member's CRC is checked)."""
    import zipfile

    if not path.is_file():
        return False
    try:
        with zipfile.ZipFile(path) as zf:
            if zf.testzip() is not None:
                return False
        return read_meta(path).get("key") == key
    except (OSError, zipfile.BadZipFile, DataFileError):
        return False


# ---------------------------------------------------------------------------------------------
# Time estimates: static per-unit costs measured on the development machine (2 cores shared
# with other work, numba caches warm). Expect +-50%; the report records the actual seconds.

COST_MC_PER_T = 0.3              # s per temperature: pilot run, thermalisation, bookkeeping
COST_MC_PER_SITE_SAMPLE = 1.6e-8  # s per site per stored sample (spacing ~ a few sweeps)
# RBM costs fitted to the quick preset's two training sizes (1024 -> 256 and 100 -> 81).
COST_RBM_STEP = 1.7e-4           # s per update, fixed part
COST_RBM_MAC = 8.3e-11           # s per (row x n_visible x n_hidden), rows = batch + chains
COST_MONITOR = 0.02              # s per monitoring evaluation, fixed part
COST_MONITOR_MAC = 2.6e-9        # s per (monitored configuration x n_visible x n_hidden)
COST_MLP_MAC = 4e-10             # s per (configuration x input x hidden unit) per epoch
COST_VH_MAC = 5e-10              # s per (configuration x visible x hidden) of <v h>
COST_MEASURE = 0.01              # s per flow-step measurement, fixed part
COST_MEASURE_CONFIG = 3.5e-5     # s per configuration per flow-step measurement


def _est_mc(L, n_t, n, threads):
    return n_t * (COST_MC_PER_T + COST_MC_PER_SITE_SAMPLE * L * L * n) / max(1, min(threads,
                                                                                  n_t))


def _est_rbm(p: Preset, n_v, n_h, steps):
    rows = p.rbm_batch + p.rbm_chains
    monitor = (p.rbm_monitor_points + 2) * (COST_MONITOR + COST_MONITOR_MAC * 256 * n_v * n_h)
    return steps * (COST_RBM_STEP + COST_RBM_MAC * rows * n_v * n_h) + monitor


# ---------------------------------------------------------------------------------------------
# The plan


def build_plan(p: Preset, threads: int = 1) -> list:
    """The preset's stages in dependency order (names are unique; equal names share work)."""
    validate_preset(p)
    plan: dict = {}
    units = p.rbm_units

    def add(name, kind, title, settings, inputs=(), estimate=0.0):
        settings = _jsonable(settings)
        if name in plan:
            if plan[name].settings != settings:
                raise UsageError(f"preset {p.name!r}: stage {name} would be built twice "
                                 "with different settings")
            return name
        plan[name] = Stage(name, kind, title, settings, tuple(inputs), float(estimate))
        return name

    def mc(label, L, temps, n, title):
        name = f"mc-{label}-L{L}"
        return add(name, "mc", title,
                   {"L": L, "temperatures": list(temps), "n": n, "algorithm": p.algorithm,
                    "symmetrize": p.symmetrize, "seed": derived_seed(p.seed, name)},
                   estimate=_est_mc(L, len(temps), n, threads))

    def rbm(name, data, n_v, n_h, steps, t_indices, title):
        return add(name, "rbm", title,
                   {"data": data, "t_indices": t_indices, "n_hidden": n_h, "steps": steps,
                    "k": p.rbm_k, "chains": p.rbm_chains, "lr": p.rbm_lr,
                    "adam_eps": p.rbm_adam_eps, "batch": p.rbm_batch, "units": units,
                    "holdout": p.rbm_holdout, "weight_scale": p.rbm_weight_scale,
                    "monitor_points": p.rbm_monitor_points, "seed": derived_seed(p.seed, name)},
                   (data,), _est_rbm(p, n_v, n_h, steps))

    def thermometer(L):
        n = p.flow_grid_samples if L == p.flow_L else p.thermo_samples
        data = mc("grid", L, p.grid, n, f"Monte Carlo on the {len(p.grid)}-temperature grid, "
                  f"L={L}")
        name = f"thermometer-L{L}"
        cost = p.mlp_epochs * len(p.grid) * n * L * L * p.mlp_hidden * COST_MLP_MAC
        return add(name, "thermometer", f"thermometers at L={L} (MLP + reference curves)",
                   {"data": data, "hidden": p.mlp_hidden, "epochs": p.mlp_epochs,
                    "batch": p.mlp_batch, "lr": p.mlp_lr, "holdout": p.mlp_holdout,
                    "seed": derived_seed(p.seed, name)}, (data,), cost + 1.0)

    def vh(name, data, rbms, L, n, title):
        cost = sum(3 * n * L * L * (L * L // 4 ** k) * COST_VH_MAC
                   for k in range(1, len(rbms) + 1)) * 2 + 2.0 * len(rbms)
        return add(name, "vh", title, {"data": data, "rbms": list(rbms), "units": units,
                                       "jackknife_blocks": p.jackknife_blocks},
                   (data, *rbms), cost)

    # Experiment 1: <v h> maps at T = corr_T.
    for L in p.corr_sizes:
        d = mc("tc", L, [p.corr_T], p.corr_samples, f"Monte Carlo at T={p.corr_T:.4f}, L={L}")
        n_v = L * L
        r = rbm(f"rbm-L{L}-h{n_v // 4}", d, n_v, n_v // 4, p.rbm_steps, None,
                f"RBM {n_v} -> {n_v // 4} on T={p.corr_T:.4f}")
        vh(f"vh-L{L}", d, [r], L, p.corr_samples, f"<v h> maps RG vs RBM, L={L}")

    # Experiment 2: RG flow of temperature.
    starts = mc("rgstart", p.rgT_L, p.rgT_start_T, p.rgT_samples,
                f"Monte Carlo at the RG start temperatures, L={p.rgT_L}")
    therms = [thermometer(p.rgT_L // 2 ** k) for k in range(p.rgT_levels + 1)]
    add("rg-temperature", "rg_temperature", "thermometers on majority-rule levels",
        {"data": starts, "thermometers": therms, "seed": derived_seed(p.seed, "rg-temperature")},
        (starts, *therms), len(p.rgT_start_T) * (p.rgT_levels + 1) * 0.3)

    # Experiment 3: RBM flow on L = flow_L.
    Lf = p.flow_L
    grid_f = mc("grid", Lf, p.grid, p.flow_grid_samples,
                f"Monte Carlo on the {len(p.grid)}-temperature grid, L={Lf}")
    tc_f = mc("flowtc", Lf, [TC], p.flow_tc_samples, f"Monte Carlo at Tc, L={Lf}")
    th_f = thermometer(Lf)
    fstarts = mc("flowstart", Lf, p.flow_start_T, p.flow_chains,
                 f"Monte Carlo flow starts (T={p.flow_start_T[0]:g}, {p.flow_start_T[1]:g}), "
                 f"L={Lf}")
    flow_cost = 3 * (p.flow_steps + 1) * (COST_MEASURE + COST_MEASURE_CONFIG * p.flow_chains
                                          * (Lf * Lf / 100))
    add("mcref-flow", "mc_reference", f"thermometer and fit readings of Monte Carlo, L={Lf}",
        {"thermometer": th_f, "tc": tc_f, "starts": fstarts,
         "chains": min(p.flow_chains, p.flow_tc_samples), "jackknife_blocks": p.jackknife_blocks,
         "r_min": p.fit_r_min}, (th_f, tc_f, fstarts), flow_cost / (p.flow_steps + 1))
    for nh in p.flow_hidden:
        for ts in p.flow_train_sets:
            idx = _train_set_indices(p, ts)
            data = tc_f if idx is None else grid_f
            r = rbm(f"rbm-flow-{ts}-h{nh}", data, Lf * Lf, nh, p.flow_rbm_steps, idx,
                    f"RBM {Lf * Lf} -> {nh} on {ts} data")
            name = f"flow-{ts}-h{nh}"
            add(name, "flow", f"RBM flow {Lf * Lf} -> {nh} ({ts})",
                {"rbm": r, "thermometer": th_f, "starts": fstarts, "chains": p.flow_chains,
                 "steps": p.flow_steps, "jackknife_blocks": p.jackknife_blocks,
                 "r_min": p.fit_r_min, "units": units, "seed": derived_seed(p.seed, name)},
                (r, th_f, fstarts), flow_cost)

    # Experiment 4: stacked RBMs next to the RG levels.
    if p.stack_L is not None:
        L = p.stack_L
        d = mc("tc", L, [p.corr_T], p.corr_samples, f"Monte Carlo at T={p.corr_T:.4f}, L={L}")
        n_v = L * L
        layers = [rbm(f"rbm-L{L}-h{n_v // 4}", d, n_v, n_v // 4, p.rbm_steps, None,
                      f"RBM {n_v} -> {n_v // 4} on T={p.corr_T:.4f}")]
        data = d
        for k in range(2, p.stack_levels + 1):
            n_in = n_v // 4 ** (k - 1)
            hid = add(f"hidden-L{L}-l{k - 1}", "hidden", f"hidden samples of layer {k - 1}",
                      {"rbm": layers[-1], "data": data, "units": units,
                       "seed": derived_seed(p.seed, f"hidden-L{L}-l{k - 1}")},
                      (layers[-1], data), p.corr_samples * n_in * 4 * COST_VH_MAC + 0.5)
            layers.append(rbm(f"rbm-stack-L{L}-l{k}", hid, n_in, n_in // 4, p.rbm_steps, None,
                              f"stacked RBM layer {k}: {n_in} -> {n_in // 4}"))
            data = hid
        vh(f"vh-stack-L{L}", d, layers, L, p.corr_samples,
           f"<v h> of {p.stack_levels} RG levels vs stacked RBMs, L={L}")
    return list(plan.values())


def assign_keys(stages: list, cache_dir: Path) -> None:
    keys: dict = {}
    versions: dict = {}
    for st in stages:
        if st.kind not in versions:
            versions[st.kind] = code_version(st.kind)
        blob = json.dumps({"format": FORMAT, "kind": st.kind, "settings": st.settings,
                           "inputs": [keys[i] for i in st.inputs],
                           "code": versions[st.kind]}, sort_keys=True)
        st.key = hashlib.sha256(blob.encode()).hexdigest()
        st.path = cache_dir / f"{st.name}-{st.key}.npz"
        keys[st.name] = st.key


# ---------------------------------------------------------------------------------------------
# The pipeline

OUTPUT_FILES = ("report.md", "results.json", "correlators.npz", "flow.npz")


def check_out_dir(out_dir, force: bool) -> Path:
    """DIR may be new, empty, or an earlier reproduce output; anything else needs force."""
    d = Path(out_dir)
    if d.exists() and not d.is_dir():
        raise UsageError(f"{d}: exists and is not a directory")
    if d.is_dir() and any(d.iterdir()) and not force:
        ours = (d / "cache").is_dir() or (d / "results.json").is_file()
        if not ours:
            raise UsageError(f"{d}: is a non-empty directory that is not a reproduce output "
                             "(use --force to write into it)")
    parent = d.parent if str(d.parent) else Path(".")
    if not d.exists() and not parent.is_dir():
        raise UsageError(f"{d}: parent directory {parent} does not exist")
    if not os.access(d if d.exists() else parent, os.W_OK | os.X_OK):
        raise UsageError(f"{d}: not writable")
    return d


class Pipeline:
    """Runs a preset's stages (skipping cached ones) and writes the outputs.

    report(event, stage, **info) is called with event "start" (cached, estimate_s),
    "progress" (done, total) and "done" (seconds, cached); stop() returning True ends the run
    with KeyboardInterrupt at the next check (finished stages stay cached).
    """

    def __init__(self, preset: Preset, out_dir, jobs: int | None = None, force: bool = False,
                 report: Callable | None = None, stop: Callable | None = None):
        self.preset = validate_preset(preset)
        self.out_dir = Path(out_dir)
        self.cache_dir = self.out_dir / "cache"
        self.jobs = max(1, int(jobs)) if jobs else _default_threads()
        self.force = bool(force)
        self.report = report
        self.stop = stop
        self.stages = build_plan(self.preset, self.jobs)
        assign_keys(self.stages, self.cache_dir)
        self.by_name = {st.name: st for st in self.stages}

    def estimates(self) -> list:
        """[{name, title, kind, cached, estimate_s}] in run order (cached stages cost ~0)."""
        return [{"name": st.name, "title": st.title, "kind": st.kind,
                 "cached": (not self.force) and cache_hit(st.path, st.key),
                 "estimate_s": round(st.estimate_s, 1)} for st in self.stages]

    def run(self) -> dict:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.cache_dir.mkdir(exist_ok=True)
        _set_threads(self.jobs)
        last_use = {}
        for i, st in enumerate(self.stages):
            for name in st.inputs:
                last_use[name] = i
        outputs: dict = {}
        ran = []
        t_start = time.perf_counter()
        for i, st in enumerate(self.stages):
            if self.stop is not None and self.stop():
                raise KeyboardInterrupt
            cached = (not self.force) and cache_hit(st.path, st.key)
            self._emit("start", st, cached=cached, estimate_s=st.estimate_s)
            t0 = time.perf_counter()
            if not cached:
                self._compute(st, outputs)
            outputs[st.name] = StageOutput(st.path)
            seconds = time.perf_counter() - t0
            ran.append({"name": st.name, "cached": cached, "seconds": round(seconds, 3),
                        "estimate_s": round(st.estimate_s, 1)})
            self._emit("done", st, seconds=seconds, cached=cached)
            for name, stage in outputs.items():  # free arrays nothing later needs
                if last_use.get(name, -1) <= i:
                    stage.release()
        files, results = write_outputs(self.preset, self.stages, outputs, self.out_dir)
        return {"out": str(self.out_dir), "preset": self.preset.name, "stages": ran,
                "seconds": round(time.perf_counter() - t_start, 3), "files": files,
                "headline": headline(results),
                "computed": sum(not r["cached"] for r in ran),
                "cached": sum(r["cached"] for r in ran)}

    def _emit(self, event, stage, **info):
        if self.report is not None:
            self.report(event, stage, **info)

    def _compute(self, st: Stage, outputs: dict) -> None:
        from .npzio import atomic_write_npz, versions
        from .rbm import blas_threads

        inputs = {name: outputs[name] for name in st.inputs}
        ctx = StageContext(st, inputs, self.jobs, self.report, self.stop)
        t0 = time.perf_counter()
        with blas_threads(1):  # float32 GEMMs round differently with other thread counts
            arrays, meta = STAGE_FUNCS[st.kind](ctx)
        meta = dict(meta)
        meta.update({"format": FORMAT + "-stage", "schema": SCHEMA, "stage": st.name,
                     "kind": st.kind, "title": st.title, "key": st.key,
                     "settings": st.settings,
                     "inputs": {n: self.by_name[n].key for n in st.inputs},
                     "seconds": round(time.perf_counter() - t0, 3), "versions": versions()})
        atomic_write_npz(st.path, arrays, _jsonable(meta))


def _default_threads() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (
        os.cpu_count() or 1)


def _set_threads(jobs: int) -> None:
    import numba

    numba.set_num_threads(max(1, min(int(jobs), numba.config.NUMBA_NUM_THREADS)))


# ---------------------------------------------------------------------------------------------
# Numbers with error bars, comparisons


def meas(value, error, bound=None, **extra) -> dict:
    """A measured number: {"value", "error"} (+ details); non-finite -> None.

    bound: None for a measurement; "lower" when the true value is only known to be >= value
    (a reading clipped at the top of a thermometer's range), "upper" for <= value."""
    out = {"value": _num(value), "error": _num(error)}
    if bound is not None:
        out["bound"] = bound
    out.update({k: _num(v) if isinstance(v, float | np.floating) else v
                for k, v in extra.items() if v is not None})
    if out["value"] is None:
        out["error"] = None
    elif out["error"] is None:  # no error bar (e.g. a fit failed on a jackknife subset)
        out["estimate_without_error"] = out["value"]
        out["value"] = None
    return out


def _bound_of(flag) -> str | None:
    return {1: "lower", -1: "upper"}.get(int(flag))


def _num(x):
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


_FLIP = {"lower": "upper", "upper": "lower"}


def compare(a: dict, b: dict, z_max: float = Z_AGREE) -> dict:
    """a - b with the combined error; verdict "consistent" (|z| <= z_max), "higher", "lower",
    or "undetermined" (a value or error missing, or bounds that leave the answer open: when
    a is a lower bound, a - b is a lower bound and only "higher" can be concluded)."""
    undetermined = {"difference": meas(None, None), "z": None, "verdict": "undetermined"}
    if a["value"] is None or b["value"] is None or a["error"] is None or b["error"] is None:
        return undetermined
    kinds = {a.get("bound"), _FLIP.get(b.get("bound"))} - {None}
    if len(kinds) > 1:
        return undetermined
    bound = kinds.pop() if kinds else None
    d = a["value"] - b["value"]
    e = math.hypot(a["error"], b["error"])
    if e > 0:
        z = d / e
    else:
        z = 0.0 if d == 0 else math.copysign(math.inf, d)
    verdict = "consistent" if abs(z) <= z_max else ("higher" if d > 0 else "lower")
    if (bound == "lower" and verdict != "higher") or (bound == "upper" and verdict != "lower"):
        verdict = "undetermined"
    return {"difference": meas(d, e, bound), "z": _num(z) if math.isfinite(z) else None,
            "verdict": verdict}


def _exact(x) -> dict:
    return meas(x, 0.0)


def _binomial(p, n) -> dict:
    if p is None or not n:
        return meas(None, None)
    return meas(p, math.sqrt(max(p * (1 - p), 0.0) / n), n=int(n))


# ---------------------------------------------------------------------------------------------
# Results


def _stage_by_kind(stages, kind):
    return [st for st in stages if st.kind == kind]


def _thermometer_results(stages, outputs) -> dict:
    out = {}
    for st in _stage_by_kind(stages, "thermometer"):
        fit = outputs[st.name].meta["fit"]
        L = outputs[st.name].meta["L"]
        out[f"L{L}"] = {
            "settings": {"L": L, "stage": st.name, "n_train": fit["n_train"],
                         "n_heldout": fit["n_heldout"], "chance": fit["chance"],
                         "epochs": st.settings["epochs"], "hidden": st.settings["hidden"]},
            "mlp_train_accuracy": _binomial(fit["train_accuracy"], fit["n_train"]),
            "mlp_heldout_accuracy": _binomial(fit["heldout_accuracy"], fit["n_heldout"]),
            "mlp_heldout_within_one": _binomial(fit["heldout_within_one"], fit["n_heldout"]),
        }
    return out


def _level_results(level: dict) -> dict:
    """RG vs RBM locality numbers of one level of a vh stage."""
    n_units = level["n_hidden"]
    b, L = level["b"], level["L"]

    def get(side, key, spread_key=None):
        nums, errs = level[side]["numbers"], level[side]["jackknife_errors"]
        v, jk = nums.get(key), errs.get(key)
        sp = nums.get(spread_key) if spread_key else None
        if v is None or jk is None:
            return meas(None, None)
        err = math.hypot(jk, sp / math.sqrt(n_units)) if sp is not None else jk
        return meas(v, err, jackknife_error=jk, spread_over_units=sp)

    rg = {
        "own_block_fraction": get("rg", "rg_own_block_fraction", "spread_rg_own_block_fraction"),
        "peak_to_far": get("rg", "rg_peak_to_far", "spread_rg_peak_to_far"),
        "best_block_unique_fraction": get("rg", "best_block_unique_fraction"),
        "blocks_claimed_fraction": get("rg", "blocks_claimed_fraction"),
    }
    rbm = {
        "own_block_fraction": get("rbm", "best_own_block_fraction",
                                  "spread_best_own_block_fraction"),
        "peak_to_far": get("rbm", "best_peak_to_far", "spread_best_peak_to_far"),
        "best_block_unique_fraction": get("rbm", "best_block_unique_fraction"),
        "blocks_claimed_fraction": get("rbm", "blocks_claimed_fraction"),
    }
    uniform = b * b / (L * L)
    return {
        "settings": {"L": L, "b": b, "n_hidden": n_units, "n_configs": level["n_configs"],
                     "level": level["level"], "uniform_own_block_fraction": uniform,
                     "rg_convention": "RG unit a vs its own block a",
                     "rbm_convention": "RBM unit vs the block holding most of its |map| "
                                       "(RBM hidden units have no assigned block)"},
        "rg": rg,
        "rbm": rbm,
        "comparison": {k: compare(rbm[k], rg[k]) for k in rg},
        "rbm_vs_uniform_own_block_fraction": compare(rbm["own_block_fraction"],
                                                     _exact(uniform)),
    }


def _rbm_diagnostics(outputs, name) -> dict:
    meta = outputs[name].meta
    last = meta["history"][-1] if meta["history"] else {}
    return {k: last.get(k) for k in ("step", "reconstruction_error", "pll", "free_energy_gap")
            if k in last} | {"n_train": meta["n_train"], "train_seconds": meta["train_seconds"]}


def _exp1_results(p, stages, outputs) -> dict:
    out = {}
    for L in p.corr_sizes:
        st = f"vh-L{L}"
        level = outputs[st].meta["levels"][0]
        r = _level_results(level)
        r["settings"].update({"T": p.corr_T, "rbm_steps": p.rbm_steps,
                              "rbm_stage": outputs[st].meta["settings"]["rbms"][0]})
        out[f"L{L}"] = r
    return out


def _direction(m0: dict, m1: dict, side: str) -> dict:
    """How a temperature reading changed between two levels/steps, relative to Tc."""
    c = compare(m1, m0)
    if c["verdict"] == "undetermined":
        word = "undetermined"
    elif c["verdict"] == "consistent":
        word = "no significant change"
    elif side == "at":
        word = "moves up" if c["verdict"] == "higher" else "moves down"
    else:
        up = c["verdict"] == "higher"
        word = "moves away from Tc" if (up == (side == "above")) else "moves toward Tc"
    return {"change": c, "verdict": word}


def _side_of_tc(T) -> str:
    if abs(T - TC) < 1e-6:
        return "at"
    return "below" if T < TC else "above"


def _exp2_results(p, outputs) -> dict:
    a = outputs["rg-temperature"].arrays
    out = {"settings": {"L0": p.rgT_L, "levels": p.rgT_levels, "rule": "majority, b=2",
                        "n_configs": p.rgT_samples,
                        "level_L": [int(x) for x in a["level_L"]]}, "starts": []}
    for i, T in enumerate(a["start_T"]):
        side = _side_of_tc(float(T))
        lv = []
        for k in range(a["level_L"].size):
            lv.append({"settings": {"level": k, "L": int(a["level_L"][k])},
                       "T_mlp": meas(a["T_mlp"][i, k], a["T_mlp_err"][i, k]),
                       "T_obs": meas(a["T_obs"][i, k], a["T_obs_err"][i, k],
                                     _bound_of(a["T_obs_bound"][i, k])),
                       "abs_m": meas(a["abs_m"][i, k], a["abs_m_err"][i, k])})
        first, last = lv[0], lv[-1]
        out["starts"].append({
            "settings": {"T_start": float(T), "side": side},
            "levels": lv,
            "obs_flow": _direction(first["T_obs"], last["T_obs"], side),
            "mlp_flow": _direction(first["T_mlp"], last["T_mlp"], side),
            "calibration_obs_level0": compare(first["T_obs"], _exact(float(T))),
            "calibration_mlp_level0": compare(first["T_mlp"], _exact(float(T))),
        })
    return out


def _distance(m: dict, ref: dict) -> dict:
    """|m - ref| with the combined error; a bound on m stays a bound if it points away."""
    if m["value"] is None or ref["value"] is None or m["error"] is None or ref["error"] is None:
        return meas(None, None)
    d = m["value"] - ref["value"]
    bound = m.get("bound")
    if bound is not None and (d >= 0) != (bound == "lower"):
        return meas(None, None)  # the true value may lie on either side of ref
    return meas(abs(d), math.hypot(m["error"], ref["error"]),
                "lower" if bound is not None else None)


def _toward(m0: dict, m1: dict, ref: dict) -> dict:
    """Did the distance |T - T_ref| shrink from m0 to m1? (errors combined in quadrature)
    A flow that ends significantly on the other side of T_ref "crossed Tc" instead."""
    d0, d1 = _distance(m0, ref), _distance(m1, ref)
    c = compare(d1, d0)
    word = {"lower": "toward Tc", "higher": "away from Tc",
            "consistent": "no significant change"}.get(c["verdict"], "undetermined")
    side0, side1 = compare(m0, ref)["verdict"], compare(m1, ref)["verdict"]
    if {side0, side1} == {"higher", "lower"}:
        word = "crossed Tc, ends " + ("below" if side1 == "lower" else "above")
    return {"distance_start": d0, "distance_final": d1, "change": c["difference"],
            "z": c["z"], "verdict": word}


def _mc_m_at(th_arrays, T: dict) -> dict:
    """Monte Carlo <|m|>(T) at a measured temperature, error from the curve and from T."""
    if T["value"] is None:
        return meas(None, None)
    t, m, me = th_arrays["ref_temperatures"], th_arrays["ref_m_mean"], th_arrays["ref_m_err"]
    v = float(np.interp(T["value"], t, m))
    slope = float(np.interp(T["value"], 0.5 * (t[1:] + t[:-1]), np.diff(m) / np.diff(t)))
    return meas(v, math.hypot(float(np.interp(T["value"], t, me)), slope * (T["error"] or 0)))


def _exp3_results(p, stages, outputs) -> dict:
    ref = outputs["mcref-flow"].arrays
    th = outputs[f"thermometer-L{p.flow_L}"].arrays

    def r(prefix, k):
        bound = _bound_of(ref[f"{prefix}_T_obs_bound"]) if k == "T_obs" else None
        return meas(ref[f"{prefix}_{k}"], ref[f"{prefix}_{k}_err"], bound)

    reference = {}
    for name, T in (("tc", TC), *zip(("low", "high"), p.flow_start_T, strict=True)):
        reference[name] = {
            "settings": {"T": T, "n_configs": outputs["mcref-flow"].meta[name]["n"]},
            "T_obs": r(name, "T_obs"), "T_mlp": r(name, "T_mlp"), "abs_m": r(name, "abs_m"),
            "delta_sigma": r(name, "delta_sigma"), "delta_epsilon": r(name, "delta_epsilon"),
        }
    ref_tc = reference["tc"]
    rbms = {}
    N = p.flow_steps
    for st in _stage_by_kind(stages, "flow"):
        a = outputs[st.name].arrays
        label = st.name.removeprefix("flow-")
        starts = {}
        for i, start in enumerate(FLOW_STARTS):
            def m(k, step, i=i, a=a):
                bound = _bound_of(a["T_obs_bound"][i, step]) if k == "T_obs" else None
                return meas(a[k][i, step], a[f"{k}_err"][i, step], bound)

            finals = {k: m(k, N) for k in ("T_obs", "T_mlp", "abs_m", "delta_sigma",
                                           "delta_epsilon")}
            mc_m = _mc_m_at(th, finals["T_mlp"])
            starts[start] = {
                "settings": {"start": start, "T_start": (p.flow_start_T[i] if i < 2
                                                         else "random spins"),
                             "chi2_dof_sigma_final": _num(a["chi2_sigma"][i, N]),
                             "chi2_dof_epsilon_final": _num(a["chi2_epsilon"][i, N])},
                "T_obs": {"step0": m("T_obs", 0), "step1": m("T_obs", 1),
                          "final": finals["T_obs"]},
                "T_mlp": {"step0": m("T_mlp", 0), "step1": m("T_mlp", 1),
                          "final": finals["T_mlp"]},
                "abs_m_final": finals["abs_m"],
                "delta_sigma_final": finals["delta_sigma"],
                "delta_epsilon_final": finals["delta_epsilon"],
                "obs_final_vs_mc_tc": compare(finals["T_obs"], ref_tc["T_obs"]),
                "mlp_final_vs_mc_tc": compare(finals["T_mlp"], ref_tc["T_mlp"]),
                "obs_toward_tc": _toward(m("T_obs", 0), finals["T_obs"], ref_tc["T_obs"]),
                "mlp_toward_tc": _toward(m("T_mlp", 0), finals["T_mlp"], ref_tc["T_mlp"]),
                "obs_toward_tc_after_step1": _toward(m("T_obs", 1), finals["T_obs"],
                                                     ref_tc["T_obs"]),
                "obs_stationary": compare(finals["T_obs"], m("T_obs", max(1, N // 2))),
                "obs_energy_vs_abs_m_final": _agreement(
                    outputs[st.name].meta["observable_ranges"][i][N]["disagreement_sigma"]),
                "abs_m_vs_mc_at_T_mlp": compare(finals["abs_m"], mc_m),
                "delta_sigma_vs_mc_tc": compare(finals["delta_sigma"], ref_tc["delta_sigma"]),
                "delta_epsilon_vs_mc_tc": compare(finals["delta_epsilon"],
                                                  ref_tc["delta_epsilon"]),
                "delta_sigma_vs_exact": compare(finals["delta_sigma"], _exact(DELTA_SIGMA_EXACT)),
                "delta_epsilon_vs_exact": compare(finals["delta_epsilon"],
                                                  _exact(DELTA_EPSILON_EXACT)),
            }
        rbms[label] = {
            "settings": {"train_set": st.settings["rbm"], "description":
                         TRAIN_SETS[label.split("-h")[0]], "n_hidden": int(label.split("-h")[1]),
                         "rbm_stage": st.settings["rbm"]},
            "starts": starts,
            "common_endpoint_obs": _common([starts[s]["T_obs"]["final"] for s in FLOW_STARTS]),
            "common_endpoint_mlp": _common([starts[s]["T_mlp"]["final"] for s in FLOW_STARTS]),
        }
    return {"settings": {"L": p.flow_L, "steps": N, "chains": p.flow_chains,
                         "fit_window": f"{p.fit_r_min:g} <= r < L/2",
                         "starts": list(FLOW_STARTS)},
            "mc_reference": reference, "rbms": rbms}


def _agreement(z) -> dict:
    """The observable thermometer's two readings (from E/N and from <|m|>) side by side:
    z = (T_E - T_|m|) / its error, as rgflow.core.thermometer reports it."""
    z = _num(z)
    if z is None:
        return {"z": None, "verdict": "undetermined"}
    return {"z": z, "verdict": "consistent" if abs(z) <= Z_AGREE else
            ("energy higher" if z > 0 else "energy lower")}


def _common(ms: list) -> dict:
    """Do several readings agree? Weighted mean and the largest pairwise |z|."""
    ok = [m for m in ms if m["value"] is not None and m["error"] and "bound" not in m]
    if len(ok) < 2:
        return {"verdict": "undetermined"}
    zs = [compare(a, b)["z"] for i, a in enumerate(ok) for b in ok[i + 1:]]
    zmax = max(abs(z) for z in zs if z is not None) if any(z is not None for z in zs) else None
    w = np.array([1 / m["error"] ** 2 for m in ok])
    v = np.array([m["value"] for m in ok])
    mean = meas(float(w @ v / w.sum()), float(1 / math.sqrt(w.sum())))
    agree = zmax is not None and zmax <= Z_AGREE
    return {"weighted_mean": mean, "max_pairwise_z": _num(zmax),
            "verdict": "common endpoint" if agree else "different endpoints"}


def _exp4_results(p, outputs) -> dict:
    if p.stack_L is None:
        return {"skipped": f"the {p.name} preset does not run stacked RBMs"}
    meta = outputs[f"vh-stack-L{p.stack_L}"].meta
    return {"settings": {"L": p.stack_L, "levels": p.stack_levels,
                         "rbm_input": "layer k is trained on sampled ±1 hidden units of "
                                      "layer k-1; maps use hidden means propagated up"},
            "levels": [_level_results(level) for level in meta["levels"]]}


def build_results(p: Preset, stages, outputs) -> dict:
    from .npzio import versions

    return {
        "format": FORMAT + "-results",
        "schema": SCHEMA,
        "preset": p.settings(),
        "constants": {"Tc": TC, "z_agree": Z_AGREE, "delta_sigma_exact": DELTA_SIGMA_EXACT,
                      "delta_epsilon_exact": DELTA_EPSILON_EXACT},
        "versions": versions(),
        "stages": [{"name": st.name, "kind": st.kind, "key": st.key,
                    "seconds": outputs[st.name].meta.get("seconds")} for st in stages],
        "thermometers": _thermometer_results(stages, outputs),
        # Monitoring values of the training runs: one evaluation each, no error bars.
        "diagnostics": {"rbm_training": {st.name: _rbm_diagnostics(outputs, st.name)
                                         for st in _stage_by_kind(stages, "rbm")}},
        "experiments": {
            "1_correlators": _exp1_results(p, stages, outputs),
            "2_rg_temperature": _exp2_results(p, outputs),
            "3_rbm_flow": _exp3_results(p, stages, outputs),
            "4_stacked": _exp4_results(p, outputs),
        },
    }


# ---------------------------------------------------------------------------------------------
# Report


def _pm(m) -> str:
    """value ± error with the error to two significant digits; bounds as >= / <=."""
    if isinstance(m, dict) and m.get("estimate_without_error") is not None:
        return f"{m['estimate_without_error']:.4g} (no error bar)"
    if not isinstance(m, dict) or m.get("value") is None:
        return "n/a"
    v, e = m["value"], m.get("error")
    if "bound" in m:
        return ("≥ " if m["bound"] == "lower" else "≤ ") + f"{v:.4g} (range end)"
    if e is not None and e <= 1e-9 * max(abs(v), 1.0):
        return f"{0.0 if abs(v) < 1e-12 else v:.4g} ± 0"
    if not e:
        return f"{v:.4g}"
    d = min(8, max(0, 1 - int(math.floor(math.log10(e)))))
    return f"{v:.{d}f} ± {e:.{d}f}"


def _zs(c: dict) -> str:
    z = c.get("z")
    return "n/a" if z is None else f"{z:+.1f}σ"


def _md_table(header, rows) -> list:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(x) for x in row) + " |" for row in rows]
    return lines + [""]


def _verdict_words(c: dict, higher: str, lower: str, same: str) -> str:
    return {"higher": higher, "lower": lower, "consistent": same}.get(c["verdict"],
                                                                      "undetermined")


def _report_exp1_level(r: dict, title: str, diagnostics: dict | None = None) -> list:
    s = r["settings"]
    rows = []
    names = {"own_block_fraction": "own-block fraction of |⟨v h⟩|",
             "peak_to_far": "peak-to-far contrast",
             "best_block_unique_fraction": "units whose best block is unique",
             "blocks_claimed_fraction": "fraction of blocks claimed by some unit"}
    for k, label in names.items():
        c = r["comparison"][k]
        rows.append([label, _pm(r["rg"][k]), _pm(r["rbm"][k]), _pm(c["difference"]), _zs(c),
                     c["verdict"]])
    lines = [f"### {title}", ""]
    lines += _md_table(["quantity", "RG (block average)", "RBM (E[h|v])", "RBM − RG", "z",
                        "verdict"], rows)
    own = r["comparison"]["own_block_fraction"]
    uni = r["rbm_vs_uniform_own_block_fraction"]
    b = s["b"]
    lines.append("As measured:")
    lines.append("- " + _verdict_words(
        own,
        f"The RBM's units concentrate MORE of their |⟨v h⟩| on one {b}×{b} block than RG's "
        f"units do on their own block",
        f"The RBM's units concentrate LESS of their |⟨v h⟩| on one {b}×{b} block than RG's "
        f"units do on their own block",
        f"RBM and RG put the same share of |⟨v h⟩| on one {b}×{b} block, within errors")
        + f": {_pm(r['rbm']['own_block_fraction'])} vs {_pm(r['rg']['own_block_fraction'])} "
        f"(z = {_zs(own)}).")
    lines.append("- " + _verdict_words(
        uni, "The RBM maps are more local than a uniform map",
        "The RBM maps are less concentrated than a uniform map",
        "The RBM maps are no more local than a uniform map, within errors")
        + f" (uniform: {s['uniform_own_block_fraction']:.4g}; z = {_zs(uni)}).")
    pf = r["comparison"]["peak_to_far"]
    lines.append("- Peak-to-far contrast: " + _verdict_words(
        pf, "higher for the RBM than for RG", "lower for the RBM than for RG",
        "RBM and RG agree within errors") + f" (z = {_zs(pf)}).")
    lines.append(f"- {_pm(r['rbm']['best_block_unique_fraction'])} of the RBM's "
                 f"{s['n_hidden']} units have a best block that no other unit shares, and "
                 f"{_pm(r['rbm']['blocks_claimed_fraction'])} of the blocks are some unit's "
                 "best block (RG: 1 and 1 by construction).")
    diag = (diagnostics or {}).get(r["settings"].get("rbm_stage"))
    if diag:
        lines.append("- Training diagnostics at the last monitoring point (one evaluation on "
                     "256 configurations, no error bar): " + ", ".join(
                         f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                         for k, v in diag.items() if v is not None) + ".")
    return lines + [""]


def _report_exp2(e2: dict) -> list:
    s = e2["settings"]
    lines = ["## Experiment 2: the RG flow of temperature", "",
             f"Majority rule (b = 2, random tie-breaks) applied {s['levels']} times to "
             f"{s['n_configs']} Monte Carlo configurations of L = {s['L0']} at each start "
             "temperature; level k is read by thermometers calibrated at L/2^k (classifier "
             "trained on that size; observable matching against Monte Carlo curves of that "
             "size).", ""]
    for st in e2["starts"]:
        T = st["settings"]["T_start"]
        lines.append(f"### Start T = {T:.4f} ({st['settings']['side']} Tc = {TC:.4f})")
        lines.append("")
        rows = [[lv["settings"]["level"], lv["settings"]["L"], _pm(lv["T_obs"]),
                 _pm(lv["T_mlp"]), _pm(lv["abs_m"])] for lv in st["levels"]]
        lines += _md_table(["level", "L", "T (observables)", "T (classifier, mean)",
                            "⟨|m|⟩"], rows)
        for name, key in (("observable thermometer", "obs_flow"),
                          ("classifier", "mlp_flow")):
            f = st[key]
            c = f["change"]
            lines.append(f"- {name}: level 0 → {len(st['levels']) - 1}: change "
                         f"{_pm(c['difference'])} (z = {_zs(c)}): **{f['verdict']}**.")
        for name, key in (("observable thermometer", "calibration_obs_level0"),
                          ("classifier", "calibration_mlp_level0")):
            c = st[key]
            lines.append(f"- calibration, {name} at level 0 vs the sampled T: "
                         f"{_pm(c['difference'])} (z = {_zs(c)}, {c['verdict']}).")
        lines.append("")
    return lines


def _report_exp3(e3: dict) -> list:
    s = e3["settings"]
    lines = ["## Experiment 3: the RBM flow", "",
             f"L = {s['L']}; {s['chains']} chains per start; v⁰ from Monte Carlo at low T, "
             f"high T, or random spins; then {s['steps']} steps h ~ P(h|v), v ~ P(v|h). "
             f"Power-law fits over {s['fit_window']} (paper convention, G_σ not connected); "
             "Δ errors are jackknife errors over configuration blocks. Per-step histograms, "
             "G_σ(r), G_ε(r) are in flow.npz.", "",
             "Reference: the same instruments on Monte Carlo configurations (same L):", ""]
    rows = []
    for name, r in e3["mc_reference"].items():
        rows.append([name, f"{r['settings']['T']:.4f}", _pm(r["T_obs"]), _pm(r["T_mlp"]),
                     _pm(r["abs_m"]), _pm(r["delta_sigma"]), _pm(r["delta_epsilon"])])
    lines += _md_table(["Monte Carlo", "T", "T (observables)", "T (classifier)", "⟨|m|⟩",
                        "Δσ", "Δε"], rows)
    lines.append(f"Exact 2D Ising: Δσ = {DELTA_SIGMA_EXACT}, Δε = {DELTA_EPSILON_EXACT} "
                 "(finite L and a short fit window shift the fitted values, hence the Monte "
                 "Carlo reference at Tc).")
    lines.append("")
    for rb in e3["rbms"].values():
        lines.append(f"### RBM {s['L'] ** 2} → {rb['settings']['n_hidden']} trained on "
                     f"{rb['settings']['description']}")
        lines.append("")
        rows = []
        for start, st in rb["starts"].items():
            rows.append([start, _pm(st["T_obs"]["step0"]), _pm(st["T_obs"]["step1"]),
                         _pm(st["T_obs"]["final"]), _pm(st["T_mlp"]["step1"]),
                         _pm(st["T_mlp"]["final"]), _pm(st["abs_m_final"]),
                         _pm(st["delta_sigma_final"]), _pm(st["delta_epsilon_final"])])
        lines += _md_table(["start", "T_obs n=0", "T_obs n=1", f"T_obs n={s['steps']}",
                            "T_mlp n=1", f"T_mlp n={s['steps']}", "⟨|m|⟩ final",
                            "Δσ final", "Δε final"], rows)
        lines.append("As measured:")
        for start, st in rb["starts"].items():
            tw = st["obs_toward_tc"]
            c = st["obs_final_vs_mc_tc"]
            cm = st["mlp_final_vs_mc_tc"]
            t1 = st["obs_toward_tc_after_step1"]
            lines.append(
                f"- from {start}: observable T from v⁰ to step {s['steps']}: "
                f"**{tw['verdict']}** (distance to the Monte Carlo Tc reading "
                f"{_pm(tw.get('distance_start'))} → {_pm(tw.get('distance_final'))}); from "
                f"step 1 on: {t1['verdict']}; final T vs the Tc reading: {c['verdict']} "
                f"(z = {_zs(c)}); classifier: {st['mlp_toward_tc']['verdict']}, final vs its "
                f"Tc reading {cm['verdict']} (z = {_zs(cm)}).")
        for key, name in (("common_endpoint_obs", "observable"),
                          ("common_endpoint_mlp", "classifier")):
            ce = rb[key]
            if ce["verdict"] == "undetermined":
                lines.append(f"- endpoints ({name} T): undetermined.")
            else:
                lines.append(f"- endpoints ({name} T) of the three starts: **{ce['verdict']}** "
                             f"(largest pairwise |z| = {ce['max_pairwise_z']:.1f}; weighted "
                             f"mean {_pm(ce['weighted_mean'])}).")
        for start, st in rb["starts"].items():
            sta, ag = st["obs_stationary"], st["obs_energy_vs_abs_m_final"]
            lines.append(f"- from {start}: observable T at step {s['steps']} vs step "
                         f"{max(1, s['steps'] // 2)}: {sta['verdict']} (z = {_zs(sta)}); at "
                         f"the last step T from E/N vs T from ⟨|m|⟩: {ag['verdict']} "
                         f"(z = {_zs(ag)}).")
        for start, st in rb["starts"].items():
            ds, de = st["delta_sigma_vs_mc_tc"], st["delta_epsilon_vs_mc_tc"]
            dm = st["abs_m_vs_mc_at_T_mlp"]
            lines.append(f"- from {start}, final step: Δσ vs Monte Carlo at Tc {ds['verdict']} "
                         f"(z = {_zs(ds)}), Δε vs Monte Carlo at Tc {de['verdict']} "
                         f"(z = {_zs(de)}); ⟨|m|⟩ vs Monte Carlo ⟨|m|⟩ at the classifier's T: "
                         f"{dm['verdict']} (z = {_zs(dm)}).")
        lines.append("")
    return lines


def _report_exp4(e4: dict) -> list:
    lines = ["## Experiment 4: stacked RBMs next to the RG levels", ""]
    if "skipped" in e4:
        return lines + [f"Skipped: {e4['skipped']}.", ""]
    s = e4["settings"]
    lines += [f"L = {s['L']}, {s['levels']} levels; {s['rbm_input']}. Level k of RG is the "
              f"2^k × 2^k block average; locality is measured with b = 2^k.", ""]
    for r in e4["levels"]:
        st = r["settings"]
        lines += _report_exp1_level(
            r, f"Level {st['level']}: {st['L'] ** 2} → {st['n_hidden']} (b = {st['b']})")
    return lines


def build_report(p: Preset, results: dict, figure_notes: list) -> str:
    lines = [f"# Reproduction report: preset `{p.name}`", "",
             "Is Deep Learning a Renormalization Group Flow? (de Mello Koch, de Mello Koch, "
             "Cheng, arXiv:1906.05212): the analyses of PAPER.md §7 as measured by rgflow.",
             "",
             "Every number is value ± one standard error. A comparison reports the "
             "difference, its combined error and z = difference / error; |z| ≤ "
             f"{Z_AGREE:g} is called consistent, otherwise higher/lower. Conclusions below "
             "are generated from these numbers, not written in advance.", ""]
    lines += ["## Settings", ""]
    lines += _md_table(["setting", "value"], [[k, f"`{v}`"] for k, v in p.settings().items()])
    lines += ["## Thermometers", "",
              "Classifier: MLP N_v → 64 → n_T softmax trained on labelled Monte Carlo "
              "configurations of the grid (its held-out accuracy is per grid point; "
              "'within one' counts neighbours as right). Observable matching: E/N and ⟨|m|⟩ "
              "inverted through Monte Carlo curves of the same L (no training).", ""]
    rows = [[k, _pm(t["mlp_heldout_accuracy"]), _pm(t["mlp_heldout_within_one"]),
             f"{t['settings']['chance']:.4f}", t["settings"]["n_train"]]
            for k, t in results["thermometers"].items()]
    lines += _md_table(["L", "held-out accuracy", "held-out within one step", "chance",
                        "training configurations"], rows)
    lines += ["## Experiment 1: ⟨v h⟩ maps, RG vs RBM", "",
              "RG: h = block average of v (hidden unit a ↔ block a). RBM: h = E[h|v] = "
              "tanh(b + vW). Own-block fraction: share of Σ|⟨v_i h_a⟩| on the block's own "
              "sites (RG: block a; RBM: the block holding most of the unit's |map|). Errors: "
              f"jackknife over {p.jackknife_blocks} configuration blocks combined with the "
              "spread over units / "
              "√n_units. The RBM's training seed is one draw: its variation is not in the "
              "error bar.", ""]
    for r in results["experiments"]["1_correlators"].values():
        s = r["settings"]
        lines += _report_exp1_level(
            r, f"{s['L'] ** 2} → {s['n_hidden']} at T = {s['T']:.4f} ({s['n_configs']} "
               f"configurations, {s['rbm_steps']} RBM updates)",
            results["diagnostics"]["rbm_training"])
    lines += _report_exp2(results["experiments"]["2_rg_temperature"])
    lines += _report_exp3(results["experiments"]["3_rbm_flow"])
    lines += _report_exp4(results["experiments"]["4_stacked"])
    lines += ["## Stages", "", "Cached in `cache/<stage>-<key>.npz`; seconds are those of the "
              "run that computed the stage.", ""]
    lines += _md_table(["stage", "key", "seconds"],
                       [[s["name"], s["key"][:16], s["seconds"]] for s in results["stages"]])
    lines += ["## Figures", ""] + [f"- {n}" for n in figure_notes] + [""]
    lines += ["## Versions", "", ", ".join(f"{k} {v}" for k, v in results["versions"].items()),
              ""]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# Array outputs


def _correlator_arrays(p: Preset, outputs) -> dict:
    out = {}
    for i, L in enumerate(p.corr_sizes):
        a = outputs[f"vh-L{L}"].arrays
        if i == 0:
            out["rg_vh"], out["rbm_vh"] = a["rg_vh_level1"], a["rbm_vh_level1"]
        out[f"rg_vh_L{L}"], out[f"rbm_vh_L{L}"] = a["rg_vh_level1"], a["rbm_vh_level1"]
    if p.stack_L is not None:
        a = outputs[f"vh-stack-L{p.stack_L}"].arrays
        for k in range(1, p.stack_levels + 1):
            out[f"rg_vh_stack_level{k}"] = a[f"rg_vh_level{k}"]
            out[f"rbm_vh_stack_level{k}"] = a[f"rbm_vh_level{k}"]
    return out


def _flow_arrays(p: Preset, stages, outputs) -> dict:
    flows = _stage_by_kind(stages, "flow")
    keys = FLOW_SCALARS + ("hist_mlp", "hist_obs", "G_sigma", "G_sigma_err", "G_epsilon",
                           "G_epsilon_err")
    out = {k: np.stack([outputs[st.name].arrays[k] for st in flows]) for k in keys}
    first = outputs[flows[0].name].arrays
    th = outputs[f"thermometer-L{p.flow_L}"].arrays
    ref = outputs["mcref-flow"].arrays
    out.update({
        "rbm_labels": np.array([st.name.removeprefix("flow-") for st in flows]),
        "start_labels": np.array(FLOW_STARTS),
        "steps": np.arange(p.flow_steps + 1),
        "temperatures": th["ref_temperatures"],
        "r_sigma": first["r_sigma"], "r_epsilon": first["r_epsilon"],
        "mc_T": th["ref_temperatures"], "mc_abs_m": th["ref_m_mean"],
        "mc_abs_m_err": th["ref_m_err"], "mc_energy": th["ref_e_mean"],
        "mc_energy_err": th["ref_e_err"],
    })
    for k in ("T_obs", "T_obs_err", "T_mlp", "T_mlp_err", "delta_sigma", "delta_sigma_err",
              "delta_epsilon", "delta_epsilon_err", "G_sigma", "G_epsilon", "abs_m"):
        out[f"mc_tc_{k}"] = ref[f"tc_{k}"]
    return out


# ---------------------------------------------------------------------------------------------
# Figures (matplotlib, optional; object API with the Agg canvas: no global backend state)


def _new_figure(w, h):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(w, h), dpi=90)
    FigureCanvasAgg(fig)
    return fig


def _save_png(fig, path) -> None:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    atomic_write_bytes(path, buf.getvalue())


def _fig_exp1(p, results, outputs, path):
    L = p.corr_sizes[0]
    a = outputs[f"vh-L{L}"].arrays
    maps = {"RG": a["rg_vh_level1"], "RBM": a["rbm_vh_level1"]}
    n_h = maps["RG"].shape[0]
    units = np.linspace(0, n_h - 1, 6).round().astype(int)
    fig = _new_figure(13, 7)
    gs = fig.add_gridspec(3, 6, height_ratios=[1, 1, 1.2])
    for row, (name, m) in enumerate(maps.items()):
        vmax = float(np.abs(m).max()) or 1.0
        for j, u in enumerate(units):
            ax = fig.add_subplot(gs[row, j])
            im = ax.imshow(m[u], cmap="RdBu_r", vmin=-vmax, vmax=vmax)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(f"{name} unit {u}", fontsize=8)
        fig.colorbar(im, ax=ax, fraction=0.046)
    ax = fig.add_subplot(gs[2, :])
    level = outputs[f"vh-L{L}"].meta["levels"][0]
    for side, key, lab in (("rg", "rg_block", "RG, own block"),
                           ("rbm", "best_block", "RBM, best block")):
        summ = level[side]["summary"]
        prof = summ[key]["radial_profile"]
        r = np.array(summ["radial_r"])
        err = np.array([np.nan if e is None else e for e in prof["sem"]])
        ax.errorbar(r, prof["mean"], yerr=err, marker="o", ms=3, label=lab)
    ax.set_xlabel("periodic distance from the block centre")
    ax.set_ylabel("mean |⟨v h⟩|")
    ax.legend()
    fig.suptitle(f"Experiment 1: ⟨v_i h_a⟩ maps, {L * L} → {n_h}, T = {p.corr_T:.4f}")
    fig.subplots_adjust(left=0.05, right=0.97, bottom=0.08, top=0.9, hspace=0.3)
    _save_png(fig, path)


def _fig_exp2(p, results, outputs, path):
    a = outputs["rg-temperature"].arrays
    fig = _new_figure(11, 4.2)
    for j, (key, lab) in enumerate((("T_obs", "observable matching"),
                                    ("T_mlp", "classifier (mean)"))):
        ax = fig.add_subplot(1, 2, j + 1)
        x = np.arange(a["level_L"].size)
        for i, T in enumerate(a["start_T"]):
            ax.errorbar(x, a[key][i], yerr=a[f"{key}_err"][i], marker="o",
                        label=f"start T = {T:.3f}")
        ax.axhline(TC, color="k", ls="--", lw=1, label="Tc")
        ax.set_xticks(x)
        ax.set_xticklabels([f"{k}\nL={L}" for k, L in enumerate(a["level_L"])])
        ax.set_xlabel("majority-rule level")
        ax.set_ylabel("assigned T")
        ax.set_title(lab)
        ax.legend(fontsize=8)
    fig.suptitle("Experiment 2: RG flow of temperature")
    fig.subplots_adjust(left=0.07, right=0.98, bottom=0.17, top=0.88, wspace=0.2)
    _save_png(fig, path)


def _fig_exp3(p, results, stages, outputs, path):
    flows = _stage_by_kind(stages, "flow")
    th = outputs[f"thermometer-L{p.flow_L}"].arrays
    ref = outputs["mcref-flow"].arrays
    R = len(flows)
    fig = _new_figure(17, 2.8 * R + 0.8)
    steps = np.arange(p.flow_steps + 1)
    cols = (("T_obs", "T (observables)"), ("T_mlp", "T (classifier)"),
            ("delta_sigma", "Δσ"), ("delta_epsilon", "Δε"))
    for r, st in enumerate(flows):
        a = outputs[st.name].arrays
        for c, (key, lab) in enumerate(cols):
            ax = fig.add_subplot(R, 5, r * 5 + c + 1)
            for i, start in enumerate(FLOW_STARTS):
                ax.errorbar(steps, a[key][i], yerr=a[f"{key}_err"][i], ms=2, marker="o",
                            lw=1, label=start)
            refv = float(ref[f"tc_{key}"])
            ax.axhline(refv, color="k", ls="--", lw=1, label="MC at Tc")
            ax.set_ylabel(lab)
            if r == R - 1:
                ax.set_xlabel("flow step n")
            if c == 0:
                ax.set_title(st.name.removeprefix("flow-"), fontsize=9, loc="left")
                ax.legend(fontsize=7)
        ax = fig.add_subplot(R, 5, r * 5 + 5)
        ax.plot(th["ref_temperatures"], th["ref_m_mean"], "k-", lw=1, label="MC")
        for i, start in enumerate(FLOW_STARTS):
            ax.errorbar(a["T_mlp"][i, 1:], a["abs_m"][i, 1:], xerr=a["T_mlp_err"][i, 1:],
                        yerr=a["abs_m_err"][i, 1:], ls="none", marker=".", label=start)
        ax.set_xlabel("T (classifier)")
        ax.set_ylabel("⟨|m|⟩")
    fig.suptitle(f"Experiment 3: RBM flow on L = {p.flow_L}")
    fig.subplots_adjust(left=0.05, right=0.98, top=1 - 0.5 / fig.get_figheight(),
                        bottom=0.45 / fig.get_figheight(), wspace=0.35, hspace=0.3)
    _save_png(fig, path)


def _fig_exp4(p, results, outputs, path):
    a = outputs[f"vh-stack-L{p.stack_L}"].arrays
    K = p.stack_levels
    fig = _new_figure(3.2 * K + 4, 6.5)
    for k in range(1, K + 1):
        for row, side in enumerate(("rg", "rbm")):
            m = a[f"{side}_vh_level{k}"]
            unit = m.shape[0] // 2
            ax = fig.add_subplot(2, K + 1, row * (K + 1) + k)
            vmax = float(np.abs(m[unit]).max()) or 1.0
            ax.imshow(m[unit], cmap="RdBu_r", vmin=-vmax, vmax=vmax)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(f"{side.upper()} level {k}, unit {unit}", fontsize=8)
    ax = fig.add_subplot(1, K + 1, K + 1)
    lv = results["experiments"]["4_stacked"]["levels"]
    x = np.arange(1, K + 1)
    for side in ("rg", "rbm"):
        v = [np.nan if r[side]["own_block_fraction"]["value"] is None
             else r[side]["own_block_fraction"]["value"] for r in lv]
        e = [np.nan if r[side]["own_block_fraction"]["error"] is None
             else r[side]["own_block_fraction"]["error"] for r in lv]
        ax.errorbar(x, v, yerr=e, marker="o", label=side.upper())
    ax.set_xlabel("level")
    ax.set_ylabel("own-block fraction")
    ax.legend()
    fig.suptitle("Experiment 4: stacked RBMs vs RG levels")
    fig.subplots_adjust(left=0.04, right=0.97, bottom=0.1, top=0.88, wspace=0.3)
    _save_png(fig, path)


def write_figures(p, results, stages, outputs, out_dir: Path) -> tuple[list, list]:
    """PNG per experiment; (files, notes). Without matplotlib: no files and a note."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return [], ["matplotlib is not installed: no PNG figures were written "
                    "(install matplotlib to get them)."]
    jobs = [("exp1_correlators.png", lambda f: _fig_exp1(p, results, outputs, f),
             "⟨v h⟩ maps (RG top, RBM middle) and radial profiles"),
            ("exp2_rg_temperature.png", lambda f: _fig_exp2(p, results, outputs, f),
             "assigned temperature per majority-rule level"),
            ("exp3_rbm_flow.png", lambda f: _fig_exp3(p, results, stages, outputs, f),
             "temperatures, Δσ, Δε per flow step; ⟨|m|⟩ vs classifier T with Monte Carlo")]
    if p.stack_L is not None:
        jobs.append(("exp4_stacked.png", lambda f: _fig_exp4(p, results, outputs, f),
                     "stacked RBM maps vs RG levels, own-block fraction per level"))
    files, notes = [], []
    for name, draw, what in jobs:
        draw(out_dir / name)
        files.append(name)
        notes.append(f"`{name}`: {what}")
    return files, notes


def write_outputs(p: Preset, stages, outputs, out_dir: Path) -> tuple[list, dict]:
    """report.md, results.json, correlators.npz, flow.npz and the figures, atomically."""
    from .npzio import atomic_write_npz

    results = build_results(p, stages, outputs)
    meta = {"format": FORMAT, "schema": SCHEMA, "preset": p.name}
    atomic_write_npz(out_dir / "correlators.npz", _correlator_arrays(p, outputs), meta)
    atomic_write_npz(out_dir / "flow.npz", _flow_arrays(p, stages, outputs), meta)
    figs, notes = write_figures(p, results, stages, outputs, out_dir)
    atomic_write_bytes(out_dir / "results.json",
                       (json.dumps(_jsonable(results), indent=1, sort_keys=True) + "\n").encode())
    atomic_write_bytes(out_dir / "report.md", build_report(p, results, notes).encode())
    return list(OUTPUT_FILES) + figs, results


def headline(results: dict) -> dict:
    """The key numbers and verdicts, compact (for the CLI's JSON summary)."""
    ex = results["experiments"]
    out: dict = {"1_correlators": {}, "2_rg_temperature": {}, "3_rbm_flow": {}}
    for key, r in ex["1_correlators"].items():
        c = r["comparison"]["own_block_fraction"]
        out["1_correlators"][key] = {
            "own_block_fraction_rg": _pm(r["rg"]["own_block_fraction"]),
            "own_block_fraction_rbm": _pm(r["rbm"]["own_block_fraction"]),
            "rbm_vs_rg": f"{c['verdict']} (z = {_zs(c)})"}
    for st in ex["2_rg_temperature"]["starts"]:
        lv = st["levels"]
        out["2_rg_temperature"][f"T={st['settings']['T_start']:.4f}"] = {
            "T_obs_by_level": [_pm(x["T_obs"]) for x in lv],
            "T_mlp_by_level": [_pm(x["T_mlp"]) for x in lv],
            "obs": st["obs_flow"]["verdict"], "mlp": st["mlp_flow"]["verdict"]}
    for label, rb in ex["3_rbm_flow"]["rbms"].items():
        out["3_rbm_flow"][label] = {
            start: {"T_obs_final": _pm(s["T_obs"]["final"]),
                    "T_mlp_final": _pm(s["T_mlp"]["final"]),
                    "obs": s["obs_toward_tc"]["verdict"],
                    "delta_sigma_final": _pm(s["delta_sigma_final"])}
            for start, s in rb["starts"].items()}
        out["3_rbm_flow"][label]["endpoints_obs"] = rb["common_endpoint_obs"]["verdict"]
    out["3_rbm_flow"]["mc_tc_reference_T_obs"] = _pm(
        ex["3_rbm_flow"]["mc_reference"]["tc"]["T_obs"])
    if "levels" in ex["4_stacked"]:
        out["4_stacked"] = [
            {"level": r["settings"]["level"], "rg": _pm(r["rg"]["own_block_fraction"]),
             "rbm": _pm(r["rbm"]["own_block_fraction"]),
             "verdict": r["comparison"]["own_block_fraction"]["verdict"]}
            for r in ex["4_stacked"]["levels"]]
    return out
