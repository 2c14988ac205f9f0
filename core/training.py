"""Headless RBM training on a fixed dataset: the driver behind `rgflow train`.

Plain Python around rgflow.core.rbm.Trainer (one minibatch per call) and rgflow.core.rbm_monitor.

Reproducibility: everything random derives from one seed through named streams
(rgflow.core.rng.seed_sequence): "init" (weights), "rbm" (the Trainer's Gibbs sampling), "holdout"
(the train / held-out split), "batches" (minibatch order), "monitor" (which configurations are
monitored, and the stochastic PLL). The minibatch of step s depends only on (seed, s, n_train,
batch): epoch e = s // (n_train // batch) uses the permutation drawn from the "batches" stream
spawned with key e, and the last partial batch of an epoch is dropped. So a run resumed from
a saved Trainer at step s sees exactly the batches an uninterrupted run would.
"""

import dataclasses
import math
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from .errors import DataFileError, UsageError
from .filekinds import DATASET, LEGACY_IDS, TRAINED_RBM, require_kind
from .npzio import atomic_write_npz, file_sha256, read_npz, versions
from .rng import new_states, seed_sequence

FORMAT = TRAINED_RBM  # (files with the older id "rgflow.trained_rbm" are read too)
SCHEMA = 2  # 2: meta "receptive_field" (absent in 1: the global RBM)
UNITS = ("spin", "binary")
DTYPES = ("float32", "float64")
RBM_MEMBERS = ("W", "visible_bias", "hidden_bias")
DEFAULT_MONITOR_SAMPLES = 256


# ----------------------------------------------------------------------------- dataset


def load_dataset(path, t_indices=None):
    """Read an `rgflow sample` file: `spins` (n_T, n, L, L) of ±1 (any integer dtype; a 3D
    (n, L, L) array counts as one temperature), `temperatures` (n_T,) (NaN if absent), `meta`.

    Returns (spins (n_sel * n, L, L) int8 C-contiguous, selected temperatures (n_sel,) float64,
    meta dict, sha256 hex of the file). t_indices None = every temperature, in file order;
    otherwise the listed ones (no repeats), concatenated in the given order.
    Every problem raises DataFileError(path, reason)."""
    p = Path(path)
    arrays, meta = read_npz(p)
    require_kind(p, meta, arrays, DATASET, "--data")
    if "spins" not in arrays:
        raise DataFileError(p, "missing member(s): spins")
    spins = arrays["spins"]
    if spins.dtype.kind not in "iu":
        raise DataFileError(p, f"member 'spins' has dtype {spins.dtype}; expected integer ±1 spins")
    if spins.ndim == 3:
        spins = spins[None]
    if spins.ndim != 4:
        raise DataFileError(
            p, f"member 'spins' has shape {spins.shape}; expected (n_T, n, L, L) or (n, L, L)"
        )
    n_t, n, rows, cols = spins.shape
    if min(spins.shape) == 0:
        raise DataFileError(p, f"member 'spins' is empty (shape {spins.shape})")
    if "temperatures" in arrays:
        temps = arrays["temperatures"]
        if temps.dtype.kind not in "iuf" or temps.shape != (n_t,):
            raise DataFileError(
                p, f"member 'temperatures' has shape {temps.shape} and dtype {temps.dtype}; "
                f"expected {n_t} numbers, one per temperature of 'spins'"
            )
        temps = temps.astype(np.float64)
    else:
        temps = np.full(n_t, np.nan)
    if t_indices is None:
        chosen = list(range(n_t))
    else:
        chosen = [int(i) for i in t_indices]
        for i in chosen:
            if not 0 <= i < n_t:
                raise DataFileError(
                    p, f"T-index {i} out of range: the file has {n_t} temperature(s), "
                    f"indices 0..{n_t - 1}"
                )
        if len(set(chosen)) != len(chosen):
            raise DataFileError(p, f"T-index repeated in {chosen}")
        if not chosen:
            raise DataFileError(p, "no T-index selected")
    for i in chosen:  # one temperature at a time: bounded temporaries
        block = spins[i]
        ok = (block == 1) | (block == -1)
        if not ok.all():
            bad = block[~ok].flat[0]
            raise DataFileError(
                p, f"member 'spins' holds the value {int(bad)} (T-index {i}); spins must be ±1"
            )
    selected = np.ascontiguousarray(spins[chosen].reshape(len(chosen) * n, rows, cols),
                                    dtype=np.int8)
    return selected, temps[chosen].copy(), meta, file_sha256(p)


# ----------------------------------------------------------------------------- the run


def split_holdout(n: int, holdout_fraction: float, seed: int):
    """(train_indices, heldout_indices): a random round(f * n) configurations held out,
    from the seed's "holdout" stream; both sorted."""
    if not (math.isfinite(holdout_fraction) and 0.0 <= holdout_fraction < 1.0):
        raise UsageError(f"holdout fraction must be in [0, 1), got {holdout_fraction}")
    n_held = int(round(holdout_fraction * n))
    perm = np.random.default_rng(seed_sequence(seed, "holdout")).permutation(n)
    return np.sort(perm[n_held:]), np.sort(perm[:n_held])


def _child(ss: np.random.SeedSequence, key: int) -> np.random.SeedSequence:
    return np.random.SeedSequence(ss.entropy, spawn_key=tuple(ss.spawn_key) + (int(key),))


MONITOR_BUDGET = 0.10  # full monitoring may take at most this share of the training time
CHEAP_METRIC_SECONDS = 0.5  # the minibatch reconstruction error is refreshed this often


def default_monitor_every(steps: int) -> int:
    """About 20 evaluations per run, at most one per 100 steps: one evaluation costs about
    as much as 50-100 training steps at 1024 -> 256, so monitoring stays a small share."""
    return max(1, min(steps, max(100, steps // 20)))


def _clean(x):
    """JSON-safe metric value: non-finite floats become None."""
    if isinstance(x, float | np.floating):
        return float(x) if math.isfinite(x) else None
    return x


class TrainingRun:
    """Steps a Trainer through minibatches of `spins` (int8 (n, L, L) or (n, N), ±1),
    monitors and keeps the metric history (list of dicts).

    Monitoring runs every `monitor_every` steps, or, with monitor_every=None, on a time
    budget: an evaluation starts only while all of them (its measured cost counted twice,
    keeping room for the final one) stay within MONITOR_BUDGET of the training time. The
    steps monitored then depend on the machine's speed; the metrics at a given step do
    not. The minibatch reconstruction error, a by-product of the update, is refreshed every
    CHEAP_METRIC_SECONDS (`latest`), so progress is never stale.

    The batch of step s is a pure function of (seed, s, n_train, batch), see the module
    docstring, so a TrainingRun built around a resumed Trainer continues identically."""

    def __init__(self, trainer, spins_train, spins_heldout=None, *, seed: int = 0,
                 monitor_every: int | None = 100,
                 monitor_samples: int = DEFAULT_MONITOR_SAMPLES,
                 history=None, elapsed_s: float = 0.0, clock=time.perf_counter):
        from .rbm import spins_to_visible

        self.trainer = trainer
        self.rbm = trainer.rbm
        self.seed = int(seed)
        self.batch = int(trainer.config.batch)
        self.spins_train = spins_train
        self.n_train = len(spins_train)
        if self.n_train < self.batch:
            raise UsageError(
                f"batch {self.batch} is larger than the {self.n_train} training configurations"
            )
        if monitor_every is not None and int(monitor_every) < 1:
            raise UsageError(f"monitor_every must be >= 1, got {monitor_every}")
        self.monitor_every = None if monitor_every is None else int(monitor_every)
        self.clock = clock
        self.last_monitor_cost = 0.0
        self._cheap_due = 0.0  # clock time of the next minibatch reconstruction error
        self.latest: dict = {}  # newest cheap metric: {batch_step, batch_reconstruction_error}
        self.batches_per_epoch = self.n_train // self.batch
        self._batch_ss = seed_sequence(self.seed, "batches")
        self._epoch = -1
        self._perm = None
        # Fixed monitoring subsets, converted once.
        self._monitor_ss = seed_sequence(self.seed, "monitor")
        pick = np.random.default_rng(self._monitor_ss)
        n_mon = min(int(monitor_samples), self.n_train)
        tr = np.sort(pick.choice(self.n_train, n_mon, replace=False))
        self.v_monitor = spins_to_visible(spins_train[tr], self.rbm.units, self.rbm.dtype)
        held = spins_heldout if spins_heldout is not None else spins_train[:0]
        self.n_heldout = len(held)
        if self.n_heldout:
            hd = np.sort(pick.choice(self.n_heldout, min(int(monitor_samples), self.n_heldout),
                                     replace=False))
            self.v_heldout = spins_to_visible(held[hd], self.rbm.units, self.rbm.dtype)
        else:
            self.v_heldout = None
        self._to_visible = spins_to_visible
        self.history = list(history or [])
        self.elapsed_before = float(elapsed_s)
        self.train_seconds = 0.0
        self.monitor_seconds = 0.0
        self.steps_this_run = 0
        self.last_step_result = None

    @property
    def steps_done(self) -> int:
        return int(self.trainer.steps_done)

    @property
    def elapsed_s(self) -> float:
        return self.elapsed_before + self.train_seconds + self.monitor_seconds

    def batch_indices(self, step: int) -> np.ndarray:
        """Indices into the training set of the minibatch of (0-based) step `step`."""
        epoch, pos = divmod(int(step), self.batches_per_epoch)
        if epoch != self._epoch:
            rng = np.random.default_rng(_child(self._batch_ss, epoch))
            self._perm = rng.permutation(self.n_train)
            self._epoch = epoch
        return self._perm[pos * self.batch:(pos + 1) * self.batch]

    def step(self):
        """One Trainer update on the next minibatch; returns its StepResult."""
        t0 = self.clock()
        idx = self.batch_indices(self.steps_done)
        batch = self._to_visible(self.spins_train[idx], self.rbm.units, self.rbm.dtype)
        # The batch reconstruction error costs a GEMM; compute it where it is recorded and
        # every CHEAP_METRIC_SECONDS for the progress line.
        cheap = t0 >= self._cheap_due
        recorded = self.monitor_every is not None \
            and (self.steps_done + 1) % self.monitor_every == 0
        result = self.trainer.step(batch, reconstruction=recorded or cheap)
        t1 = self.clock()
        self.train_seconds += t1 - t0
        self.steps_this_run += 1
        self.last_step_result = result
        if cheap:
            self._cheap_due = t1 + CHEAP_METRIC_SECONDS
            self.latest = {"batch_step": self.steps_done, "batch_reconstruction_error":
                           _clean(float(result.reconstruction_error))}
        return result

    def monitor_due(self) -> bool:
        """Is a full evaluation due after the step just taken?"""
        if self.monitor_every is not None:
            return self.steps_done % self.monitor_every == 0
        return self.monitor_seconds + 2 * self.last_monitor_cost \
            <= MONITOR_BUDGET * self.train_seconds

    def measure(self) -> dict:
        """Monitor now and append {step, elapsed_s, metrics...} to the history."""
        from .rbm_monitor import monitor

        t0 = self.clock()
        step = self.steps_done
        pll_state = new_states(_child(self._monitor_ss, step))
        metrics = monitor(self.rbm, self.v_monitor, self.v_heldout, pll_state)
        self.last_monitor_cost = self.clock() - t0
        self.monitor_seconds += self.last_monitor_cost
        entry = {"step": step, **{k: _clean(v) for k, v in metrics.items()}}
        if self.last_step_result is not None:
            entry["batch_reconstruction_error"] = _clean(
                float(self.last_step_result.reconstruction_error))
            entry["lr"] = _clean(float(self.last_step_result.lr))
        entry["elapsed_s"] = round(self.elapsed_s, 6)
        if self.history and self.history[-1]["step"] == step:
            self.history[-1] = entry
        else:
            self.history.append(entry)
        return entry

    def run(self, until_step: int, progress: Callable | None = None,
            stop: Callable | None = None) -> str | None:
        """Step until steps_done == until_step. Monitors at the start (if nothing is recorded
        yet), when due (monitor_due) and at the end. After each complete step calls
        progress(step, metrics) (the last evaluation's metrics, updated with the newest
        minibatch reconstruction error) and then stop(); returns None when finished, "stop"
        when stop() returned True, "interrupt" when either callback raised KeyboardInterrupt.
        Either way the Trainer holds the state after its last complete step.
        """
        reason = None
        if not self.history:
            self.measure()
        in_step = False
        try:
            while self.steps_done < until_step:
                in_step = True
                self.step()
                in_step = False
                if self.monitor_due():
                    self.measure()
                if progress is not None:
                    progress(self.steps_done, {**self.history[-1], **self.latest})
                if stop is not None and stop():
                    reason = "stop"
                    break
        except KeyboardInterrupt:
            # Between steps the Trainer is consistent; an interrupt inside Trainer.step may
            # leave it half-updated, so that one propagates (the CLI defers SIGINT/SIGTERM
            # to between steps, so it never happens there).
            if in_step:
                raise
            reason = "interrupt"
        if self.history[-1]["step"] != self.steps_done:
            self.measure()
        return reason

    def samples_per_s(self) -> float:
        return self.steps_this_run * self.batch / self.train_seconds if self.train_seconds else 0.0


@dataclasses.dataclass
class TrainResult:
    trainer: object
    run: TrainingRun
    history: list
    steps_done: int
    steps_requested: int
    stopped: str | None  # None (finished), "stop", "interrupt"
    n_train: int
    n_heldout: int
    train_seconds: float
    monitor_seconds: float
    samples_per_s: float


def make_trainer(n_visible: int, n_hidden: int, config, *, units: str = "spin",
                 dtype="float32", seed: int = 0, weight_scale: float = 0.05,
                 receptive_field: int | None = None):
    """A fresh RBM (W ~ N(0, weight_scale²), biases 0; with a receptive_field R, the locally
    connected RBM of rgflow.core.rbm_local) and its Trainer, from the seed's "init" and "rbm"
    streams."""
    from .rbm_local import make_rbm, trainer_for

    validate_model(n_visible, n_hidden, units, dtype)
    rbm = make_rbm(n_visible, n_hidden, receptive_field, units=units, dtype=np.dtype(dtype),
                   seed_or_state=new_states(seed, name="init"), weight_scale=weight_scale)
    return trainer_for(rbm, config, new_states(seed, name="rbm"))


def validate_model(n_visible, n_hidden, units, dtype) -> None:
    if int(n_visible) < 1:
        raise UsageError(f"the data have no visible units (n_visible = {n_visible})")
    if int(n_hidden) < 1:
        raise UsageError(f"hidden units must be >= 1, got {n_hidden}")
    if units not in UNITS:
        raise UsageError(f"units must be one of {', '.join(UNITS)}, got {units!r}")
    if np.dtype(dtype).name not in DTYPES:
        raise UsageError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype}")


def train(config, data, steps: int, *, n_hidden: int | None = None, units: str = "spin",
          dtype="float32", holdout_fraction: float = 0.1, seed: int = 0,
          monitor_every: int | None = None, monitor_samples: int = DEFAULT_MONITOR_SAMPLES,
          weight_scale: float = 0.05, receptive_field: int | None = None, trainer=None,
          history=None, elapsed_s: float = 0.0, progress=None, stop=None) -> TrainResult:
    """Train an RBM (rgflow.core.rbm.TrainConfig `config`) on `data`, ±1 int8 spins (n, L, L) or
    (n, N), until `steps` total updates (a resumed `trainer` continues from its steps_done;
    pass the saved `history` and `elapsed_s` along to continue those too).

    holdout_fraction of the configurations (chosen by the seed) are held out for the
    free-energy gap. n_hidden defaults to n_visible // 4 (core/SCIENCE.md §3).
    monitor_every=None monitors on a time budget (TrainingRun). receptive_field R (a new RBM
    only): each hidden unit sees the sites within distance R of its 2×2 block
    (rgflow.core.rbm_local; needs L×L data and n_hidden = n_visible / 4). progress(step,
    metrics) is called after every step; stop() returning True, or KeyboardInterrupt raised
    by either callback, ends the run after the last complete step (see TrainingRun.run).
    """
    data = np.asarray(data)
    if data.ndim not in (2, 3) or data.shape[0] == 0:
        raise UsageError(f"data: expected spins (n, L, L) or (n, N), got shape {data.shape}")
    if int(steps) < 0:
        raise UsageError(f"steps must be >= 0, got {steps}")
    n_visible = int(np.prod(data.shape[1:]))
    if n_hidden is None:
        n_hidden = max(1, n_visible // 4)
    validate_model(n_visible, n_hidden, units, dtype)
    train_idx, held_idx = split_holdout(len(data), holdout_fraction, seed)
    if len(train_idx) < config.batch:
        raise UsageError(
            f"batch {config.batch} is larger than the {len(train_idx)} training configurations "
            f"({len(data)} minus {len(held_idx)} held out)"
        )
    if trainer is None:
        trainer = make_trainer(n_visible, n_hidden, config, units=units, dtype=dtype,
                               seed=seed, weight_scale=weight_scale,
                               receptive_field=receptive_field)
    elif trainer.rbm.n_visible != n_visible:
        raise UsageError(f"the RBM has {trainer.rbm.n_visible} visible units, "
                         f"the data {n_visible}")
    spins = np.ascontiguousarray(data, dtype=np.int8)
    run = TrainingRun(trainer, spins[train_idx], spins[held_idx], seed=seed,
                      monitor_every=monitor_every, monitor_samples=monitor_samples,
                      history=history, elapsed_s=elapsed_s)
    stopped = run.run(int(steps), progress=progress, stop=stop)
    return TrainResult(
        trainer=trainer, run=run, history=run.history, steps_done=run.steps_done,
        steps_requested=int(steps), stopped=stopped, n_train=len(train_idx),
        n_heldout=len(held_idx), train_seconds=run.train_seconds,
        monitor_seconds=run.monitor_seconds, samples_per_s=run.samples_per_s(),
    )


# ----------------------------------------------------------------------------- files


def config_to_json(config) -> dict:
    return {k: (list(v) if isinstance(v, tuple) else v)
            for k, v in dataclasses.asdict(config).items()}


def config_from_json(cfg: dict, path=None):
    from .rbm import TrainConfig

    if not isinstance(cfg, dict):
        raise DataFileError(path, "meta 'config' is not an object")
    names = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(cfg) - names)
    if unknown:
        raise DataFileError(path, f"meta 'config' has unknown field(s): {', '.join(unknown)}")
    try:
        return TrainConfig(**{k: (tuple(v) if isinstance(v, list) else v)
                              for k, v in cfg.items()})
    except (TypeError, ValueError, UsageError) as exc:
        raise DataFileError(path, f"meta 'config' is invalid ({exc})") from None


def save_trained(path, trainer, meta: dict | None = None) -> Path:
    """Write the Trainer's complete state (Trainer.state_arrays(): W (n_visible, n_hidden),
    visible_bias, hidden_bias, persistent chains, optimiser moments, RNG state, step) and a
    `meta` JSON member (format, schema, units, sizes, dtype, TrainConfig, steps_done,
    versions, receptive_field (None: global), plus the caller's `meta`: data file + sha256,
    T indices, history, ...) atomically to `path`. A locally connected RBM's weights are
    written dense, exact zeros outside the field."""
    from .rbm_local import receptive_field_of

    arrays = dict(trainer.state_arrays())
    missing = [m for m in RBM_MEMBERS if m not in arrays]
    if missing:
        raise UsageError(f"Trainer.state_arrays() lacks {', '.join(missing)}")
    rbm = trainer.rbm
    full = dict(meta or {})
    full.update({
        "format": FORMAT,
        "schema": SCHEMA,
        "units": rbm.units,
        "n_visible": int(rbm.n_visible),
        "n_hidden": int(rbm.n_hidden),
        "dtype": np.dtype(rbm.dtype).name,
        "receptive_field": receptive_field_of(rbm),
        "config": config_to_json(trainer.config),
        "steps_done": int(trainer.steps_done),
        "versions": versions(),
    })
    return atomic_write_npz(path, arrays, full)


def load_trained(path):
    """Read a save_trained file back: (Trainer, meta). The Trainer resumes bit-exactly
    (trainer.rbm is the RBM). Any problem raises DataFileError(path, reason)."""
    from .rbm_local import check_receptive_field, restore_trainer

    p = Path(path)
    arrays, meta = read_npz(p)
    require_kind(p, meta, arrays, TRAINED_RBM, "this command")
    missing = [m for m in RBM_MEMBERS if m not in arrays]
    if missing:
        raise DataFileError(p, f"missing member(s): {', '.join(missing)}")
    if LEGACY_IDS.get(meta.get("format"), meta.get("format")) != FORMAT:
        raise DataFileError(p, f"not a trained-RBM file (format {meta.get('format')!r})")
    schema = meta.get("schema")
    if not isinstance(schema, int) or schema < 1:
        raise DataFileError(p, f"bad schema {schema!r}")
    if schema > SCHEMA:
        raise DataFileError(p, f"schema {schema} is newer than this rgflow reads ({SCHEMA})")
    units = meta.get("units")
    if units not in UNITS:
        raise DataFileError(p, f"unknown units {units!r}")
    W, a, b = (arrays[m] for m in RBM_MEMBERS)
    if W.ndim != 2 or a.shape != (W.shape[0],) or b.shape != (W.shape[1],):
        raise DataFileError(p, f"inconsistent shapes: W {W.shape}, visible_bias {a.shape}, "
                            f"hidden_bias {b.shape}")
    for name, x in zip(RBM_MEMBERS, (W, a, b), strict=True):
        if x.dtype.name not in DTYPES:
            raise DataFileError(p, f"member {name!r} has dtype {x.dtype}; expected float32/64")
        if not np.all(np.isfinite(x)):
            raise DataFileError(p, f"member {name!r} holds non-finite values")
    if (meta.get("n_visible"), meta.get("n_hidden")) != W.shape:
        raise DataFileError(p, f"meta sizes {meta.get('n_visible')} x {meta.get('n_hidden')} "
                            f"do not match W {W.shape}")
    config = config_from_json(meta.get("config"), p)
    try:
        field = check_receptive_field(meta.get("receptive_field"))
        trainer = restore_trainer(arrays, config, units, field)
    except (KeyError, ValueError, TypeError, UsageError) as exc:
        raise DataFileError(p, f"cannot restore the training state ({exc})") from None
    return trainer, meta


def load_rbm(path):
    """(RBM, meta) from a save_trained file."""
    trainer, meta = load_trained(path)
    return trainer.rbm, meta
