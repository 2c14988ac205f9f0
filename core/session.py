"""The Session: all state of one rgflow experiment, and the only thing that steps it.

The TUI and the headless CLI are thin drivers of a Session. Randomness comes from named
streams spawned from the config's seed (`mc`, `data`, `rbm`, `flow`), so training never
perturbs the Monte Carlo; anything computed only for display (RG majority ties, sampled
reconstructions) uses throw-away streams derived from the seed and the counters, so what is
shown, and how often, never changes the trajectory. Same seed + same calls => same arrays.
"""

import math
import time
from dataclasses import dataclass

import numpy as np

from .config import ALGORITHMS, RG_RULES, SessionConfig
from .errors import SaveFileError, UsageError
from .frame import HISTORIES, Frame
from .rng import new_states, random_indices, random_signs, seed_sequence
from .sampling import LIVE_TAU_REFRESH, effective_samples


class History:
    """A bounded series: the newest `capacity` values of one metric, cheap to append."""

    def __init__(self, capacity: int, values=None, total: int = 0):
        self.capacity = int(capacity)
        self._buf = np.zeros(self.capacity, dtype=np.float64)
        self.total = 0  # values ever appended
        if values is not None:
            values = np.asarray(values, dtype=np.float64)[-self.capacity:]
            self._buf[: len(values)] = values
            self.total = int(total)
            self._start_fix(len(values))

    def _start_fix(self, n):
        # re-lay a restored series so that append() continues the ring correctly
        if self.total > n:
            ordered = self._buf[:n].copy()
            self._buf[:] = 0
            pos = self.total % self.capacity
            idx = (np.arange(n) + pos - n) % self.capacity
            self._buf[idx] = ordered

    def append(self, value: float) -> None:
        self._buf[self.total % self.capacity] = value
        self.total += 1

    def extend(self, values: np.ndarray) -> None:
        """append() each of values, in order."""
        values = np.asarray(values, dtype=np.float64)
        keep = values[-self.capacity:]
        pos = (self.total + len(values) - len(keep)) % self.capacity
        first = min(len(keep), self.capacity - pos)
        self._buf[pos:pos + first] = keep[:first]
        self._buf[:len(keep) - first] = keep[first:]
        self.total += len(values)

    def values(self) -> np.ndarray:
        n = min(self.total, self.capacity)
        if self.total <= self.capacity:
            return self._buf[:n].copy()
        pos = self.total % self.capacity
        return np.concatenate([self._buf[pos:], self._buf[:pos]])

    def __len__(self):
        return min(self.total, self.capacity)


MONITOR_SAMPLES = 256
# the flow's frozen RBM in a save: dense weights and biases, the trainer's form (RBM.PARAMS)
FLOW_RBM_ARRAYS = ("W", "visible_bias", "hidden_bias")
RECON_EVERY = 10  # training steps between recorded batch reconstruction errors


@dataclass(frozen=True)
class SweepResult:
    sweeps: int
    changed: int
    energy_per_spin: float
    abs_m: float


@dataclass(frozen=True)
class StepReport:
    step: int
    sweep: SweepResult
    sampled: bool
    trained: bool
    train_step: int


class Session:
    """Owns lattice, dataset buffer, RBM trainer, flow chains, RNG streams, histories."""

    def __init__(self, config: SessionConfig | None = None):
        self.config = (config or SessionConfig()).validated()
        self.save_name: str | None = None
        self.unsaved = False
        self._reset_all()

    # ---- construction -------------------------------------------------------------------
    def _stream(self, name: str) -> np.ndarray:
        return new_states(seed_sequence(self.config.seed, name))

    def _reset_all(self) -> None:
        from .ising import random_spins

        c = self.config
        self.T = c.T
        self.h = c.h
        self.algorithm = c.algorithm
        self.rg_rule = c.rg_rule
        self.training = c.train
        self.rng = {name: self._stream(name) for name in ("mc", "data", "flow")}
        self.spins = random_spins(c.L, self.rng["mc"])
        self.step_count = 0
        self.sweeps = 0
        self.attempts = 0
        self.changed = 0
        self.sweeps_since_sample = 0
        self.samples_taken = 0
        self._reset_dataset()
        self._reset_rbm()
        self.histories = {name: History(c.history) for name in HISTORIES}
        self.live_spacing = c.sample_spacing  # follows tau_int (_refresh_spacing)
        self.tau_sweeps = float("nan")
        self._tau_since = 0  # history position where the current T, h, algorithm began
        self.metrics: dict = {}
        self._rate = (0.0, 0.0)  # (flips, seconds) of the last run_for chunk

    def _reset_dataset(self) -> None:
        c = self.config
        self.dataset = np.zeros((c.dataset_capacity, c.L, c.L), dtype=np.int8)
        self.dataset_count = 0  # stored so far (ring buffer when full)
        n_held = max(1, c.dataset_capacity // c.holdout_every)
        self.heldout = np.zeros((n_held, c.L, c.L), dtype=np.int8)
        self.heldout_count = 0

    def _trainer_config(self):
        from .rbm import TrainConfig

        c = self.config
        return TrainConfig(k=c.k, persistent=c.pcd, n_chains=c.chains,
                           fresh_chain_field=c.fresh_chain_field, optimizer=c.optimizer,
                           lr=c.lr, momentum=c.momentum, l1=c.l1, l2=c.l2, batch=c.batch)

    def _reset_rbm(self) -> None:
        from .rbm_local import make_rbm, trainer_for

        c = self.config
        rbm = make_rbm(c.n_visible, c.n_hidden, c.field_radius, units=c.units,
                       dtype=np.dtype(c.dtype), seed_or_state=self._stream("rbm-init"))
        self.trainer = trainer_for(rbm, self._trainer_config(), self._stream("rbm"))
        self.flow_v = None
        self.flow_step_count = 0
        self._unfreeze_flow()

    def _unfreeze_flow(self) -> None:
        """The flow's next step freezes the RBM as it is then (flow_step)."""
        self.flow_rbm = None  # the RBM the flow runs on: a copy, kept while training goes on
        self.flow_rbm_step: int | None = None  # the training step it was taken at

    # ---- live controls ------------------------------------------------------------------
    def set_temperature(self, T: float) -> None:
        if not (math.isfinite(T) and T > 0):
            raise UsageError(f"temperature must be positive, got {T}")
        self.T = float(T)
        self._restart_tau()
        self.unsaved = True

    def _restart_tau(self) -> None:
        """The dynamics changed: tau_int is measured afresh from here on."""
        self._tau_since = self.histories["energy"].total

    def _refresh_spacing(self) -> None:
        """Spacing >= 2 tau_int of the dynamics since it last changed (sampling.live_spacing).
        Called after every LIVE_TAU_REFRESH-th stored sample, at the same sweep whatever
        the chunking (_batch_plan ends a batch there), so runs stay reproducible."""
        from .sampling import live_spacing

        n = self.histories["energy"].total - self._tau_since
        if n <= 0:
            return
        measured = live_spacing(self.histories["energy"].values()[-n:],
                                self.histories["abs_m"].values()[-n:],
                                self.config.sweeps_per_step, self.config.sample_spacing)
        if measured is not None:
            self.live_spacing, self.tau_sweeps = measured

    def set_algorithm(self, name: str) -> None:
        if name not in ALGORITHMS:
            raise UsageError(f"unknown algorithm {name!r}")
        if name == "wolff" and self.h != 0:
            raise UsageError("the Wolff algorithm needs h = 0")
        self.algorithm = name
        self._restart_tau()
        self.unsaved = True

    def cycle_algorithm(self) -> str:
        options = [a for a in ALGORITHMS if a != "wolff" or self.h == 0]
        self.set_algorithm(options[(options.index(self.algorithm) + 1) % len(options)])
        return self.algorithm

    def set_rg_rule(self, rule: str) -> None:
        if rule not in RG_RULES:
            raise UsageError(f"unknown RG rule {rule!r}")
        self.rg_rule = rule
        self.unsaved = True

    def cycle_rg_rule(self) -> str:
        self.set_rg_rule(RG_RULES[(RG_RULES.index(self.rg_rule) + 1) % len(RG_RULES)])
        return self.rg_rule

    def set_training(self, on: bool) -> None:
        self.training = bool(on)
        self.unsaved = True

    def reconfigure(self, **changes) -> None:
        """Change settings; the parts they affect are rebuilt (a new L resets everything)."""
        new = self.config.replace(**changes)
        old = self.config
        self.config = new
        lattice_keys = {"L", "seed"}
        rbm_keys = {"hidden", "units", "dtype", "receptive_field"}  # a new RBM
        # same weights, fresh optimiser state and chains
        optimiser_keys = {"k", "pcd", "chains", "fresh_chain_field", "optimizer", "lr",
                          "momentum", "l1", "l2", "batch"}
        if any(getattr(old, k) != getattr(new, k) for k in lattice_keys):
            self._reset_all()
        else:
            if any(getattr(old, k) != getattr(new, k)
                   for k in ("dataset_capacity", "holdout_every")):
                self._reset_dataset()
            if any(getattr(old, k) != getattr(new, k) for k in rbm_keys):
                self._reset_rbm()
            elif any(getattr(old, k) != getattr(new, k) for k in optimiser_keys):
                from .rbm_local import trainer_for

                self.trainer = trainer_for(self.trainer.rbm, self._trainer_config(),
                                           self.trainer.state)
            if old.history != new.history:
                self.histories = {n: History(new.history, h.values(), h.total)
                                  for n, h in self.histories.items()}
            for key in ("T", "h", "algorithm", "rg_rule"):
                if getattr(old, key) != getattr(new, key):
                    setattr(self, key, getattr(new, key))
                    if key != "rg_rule":
                        self._restart_tau()
            if old.sample_spacing != new.sample_spacing:
                self.live_spacing = new.sample_spacing
                self._refresh_spacing()
            if old.train != new.train:
                self.training = new.train
        self.unsaved = True

    # ---- the parts of a step ------------------------------------------------------------
    def sweep(self, n: int = 1) -> SweepResult:
        """n Monte Carlo sweeps of the live lattice (for Wolff: n*L*L/<cluster> flips)."""
        from .ising import run_sweeps
        from .observables import energy_and_magnetisation

        count = n
        N = self.config.L ** 2
        if self.algorithm == "wolff":
            count = n * max(1, round(N / max(self._wolff_cluster_estimate(), 1.0)))
        changed = run_sweeps(self.algorithm, self.spins, 1.0 / self.T, self.h, count,
                             self.rng["mc"])
        self.sweeps += n
        self.sweeps_since_sample += n
        if self.algorithm != "wolff":
            self.attempts += count * N
            self.changed += changed
        e, m = energy_and_magnetisation(self.spins)
        result = SweepResult(n, int(changed), e / N - self.h * m / N, abs(m) / N)
        self.histories["energy"].append(result.energy_per_spin)
        self.histories["abs_m"].append(result.abs_m)
        self.histories["acceptance"].append(self.acceptance)
        self.unsaved = True
        return result

    def _wolff_cluster_estimate(self) -> float:
        # mean Wolff cluster ~ susceptibility-like; use the current |m| as a cheap proxy so
        # that the number of cluster flips per "sweep" is a pure function of the state
        N = self.config.L ** 2
        m = self.histories["abs_m"].values()[-1:] if len(self.histories["abs_m"]) else [0.0]
        return max(1.0, float(m[0]) ** 2 * N)

    @property
    def acceptance(self) -> float:
        return self.changed / self.attempts if self.attempts else float("nan")

    def sample(self) -> None:
        """Store the current lattice in the dataset (every holdout_every-th in held-out)."""
        self._store_samples(self.spins[None])

    def _store_samples(self, configs: np.ndarray) -> None:
        """Store configurations taken in this order, as that many sample() calls would (one
        sign drawn per configuration when symmetrising). No more than fit in each ring
        buffer at once: a slot written twice would keep an arbitrary one of the two."""
        c = self.config
        n = len(configs)
        if c.symmetrize:
            configs = configs * random_signs(self.rng["data"], n)[:, None, None]
        else:
            configs = configs.copy()
        held = (self.samples_taken + np.arange(n)) % c.holdout_every == c.holdout_every - 1
        to_held, to_data = configs[held], configs[~held]
        self.heldout[(self.heldout_count + np.arange(len(to_held))) % len(self.heldout)] = \
            to_held
        self.dataset[(self.dataset_count + np.arange(len(to_data))) % c.dataset_capacity] = \
            to_data
        self.heldout_count += len(to_held)
        self.dataset_count += len(to_data)
        before = self.samples_taken
        self.samples_taken += n
        self.sweeps_since_sample = 0
        self.unsaved = True
        if before // LIVE_TAU_REFRESH != self.samples_taken // LIVE_TAU_REFRESH:
            self._refresh_spacing()

    @property
    def dataset_size(self) -> int:
        return min(self.dataset_count, self.config.dataset_capacity)

    def training_data(self) -> np.ndarray:
        return self.dataset[: self.dataset_size]

    def heldout_data(self) -> np.ndarray:
        return self.heldout[: min(self.heldout_count, len(self.heldout))]

    def can_train(self) -> bool:
        return self.dataset_size >= self.config.batch

    def train(self):
        """One RBM update on a minibatch drawn (with replacement) from the dataset."""
        from .rbm import spins_to_visible

        if not self.can_train():
            raise UsageError(f"training needs at least {self.config.batch} stored samples "
                             f"(have {self.dataset_size})")
        idx = random_indices(self.rng["data"], self.config.batch, self.dataset_size)
        rbm = self.trainer.rbm
        batch = spins_to_visible(self.dataset[idx], rbm.units, rbm.dtype)
        # the batch reconstruction error costs a fifth of a step: record it every few steps
        recorded = (self.trainer.steps_done + 1) % RECON_EVERY == 0
        result = self.trainer.step(batch, reconstruction=recorded)
        if recorded:
            self.histories["recon_error"].append(result.reconstruction_error)
            self.histories["train_step"].append(result.step)
        if result.step % self.config.monitor_every == 0:
            self.measure_training()
        self.unsaved = True
        return result

    def measure_training(self) -> dict:
        """Monitoring numbers on the newest stored data and the held-out set (bounded cost:
        exact PLL on a fixed subset, exact log-likelihood only for small models)."""
        from .rbm import spins_to_visible
        from .rbm_monitor import monitor

        rbm = self.trainer.rbm
        if self.dataset_size == 0:
            return {}
        train = spins_to_visible(self.training_data()[-MONITOR_SAMPLES:], rbm.units, rbm.dtype)
        held_spins = self.heldout_data()[-MONITOR_SAMPLES:]
        held = spins_to_visible(held_spins, rbm.units, rbm.dtype) if len(held_spins) else None
        numbers = monitor(rbm, train, held, pll_exact_budget=2**23)
        self.metrics = {"train_step": self.trainer.steps_done}
        for key in ("reconstruction_error", "pll", "free_energy_gap", "exact_ll",
                    "exact_ll_heldout"):
            if numbers.get(key) is not None:
                self.metrics[key] = float(numbers[key])
        self.histories["pll"].append(self.metrics["pll"])
        self.histories["fe_gap"].append(self.metrics.get("free_energy_gap", float("nan")))
        return self.metrics

    def _batch_plan(self, limit: int) -> tuple[int, int, int]:
        """(n, first, every): the coming n <= limit steps can run as one kernel call; steps
        first, first + every, ... of them end with a sample (first = -1: none do). Only for
        a local algorithm, and only while no training step is due among them."""
        c = self.config
        if self.algorithm == "wolff" or (self.training and self.can_train()):
            return 0, -1, 1
        s, S = c.sweeps_per_step, self.live_spacing
        quiet = max(0, (S - 1 - self.sweeps_since_sample) // s)  # steps before a sample
        # about two million spin updates (a few ms) per kernel call keeps stop() responsive
        n = min(limit, max(1, 2_000_000 // (s * c.L ** 2)))
        if self.training:  # a sample could make training due: stop before it
            return min(n, quiet), -1, 1
        every = -(-S // s)
        # no ring slot may be written twice in one batch (_store_samples), and a batch ends
        # at the sample after which the spacing is re-measured (as step() by step would)
        max_samples = min(c.dataset_capacity, len(self.heldout) * c.holdout_every,
                          LIVE_TAU_REFRESH - self.samples_taken % LIVE_TAU_REFRESH)
        return min(n, quiet + (max_samples - 1) * every + 1), quiet, every

    def _sweep_steps(self, n: int, first: int = -1, every: int = 1) -> None:
        """n steps in one kernel call, sampling after steps first, first + every, ...;
        identical to n calls of step() (which must not train)."""
        from .ising import local_steps_sampled

        c = self.config
        N = c.L ** 2
        changed, bond_e, mag, samples = local_steps_sampled(
            self.algorithm, self.spins, 1.0 / self.T, self.h, c.sweeps_per_step, n,
            self.rng["mc"], first, every)
        energy = bond_e / N - self.h * mag / N
        abs_m = np.abs(mag) / N
        acceptance = (self.changed + np.cumsum(changed)) / \
            (self.attempts + c.sweeps_per_step * N * np.arange(1, n + 1))
        self.histories["energy"].extend(energy)
        self.histories["abs_m"].extend(abs_m)
        self.histories["acceptance"].extend(acceptance)
        self.changed += int(changed.sum())
        self.attempts += n * c.sweeps_per_step * N
        self.sweeps += n * c.sweeps_per_step
        self.step_count += n
        if len(samples):
            self._store_samples(samples)
            last = first + (len(samples) - 1) * every
            self.sweeps_since_sample = (n - 1 - last) * c.sweeps_per_step
        else:
            self.sweeps_since_sample += n * c.sweeps_per_step
        self.unsaved = True

    def _advance(self, limit: int) -> int:
        """At most `limit` steps: a batch of steps in one kernel call when several can run
        that way, else one ordinary step. Returns the number of steps done."""
        n, first, every = self._batch_plan(limit)
        if n >= 2:
            self._sweep_steps(n, first, every)
            return n
        self.step()
        return 1

    def step(self) -> StepReport:
        """What one tick of 'run' does: sweeps, sampling at the spacing, one RBM update."""
        sweep = self.sweep(self.config.sweeps_per_step)
        sampled = trained = False
        if self.sweeps_since_sample >= self.live_spacing:
            self.sample()
            sampled = True
        if self.training and self.can_train():
            self.train()
            trained = True
        self.step_count += 1
        return StepReport(self.step_count, sweep, sampled, trained, self.trainer.steps_done)

    def run_steps(self, n: int, stop=None) -> int:
        """Up to n steps; stop() returning True ends early. Returns steps done."""
        done = 0
        t0 = time.perf_counter()
        flips0 = self.sweeps
        while done < n and not (stop is not None and stop()):
            done += self._advance(n - done)
        dt = time.perf_counter() - t0
        if dt > 0:
            self._rate = ((self.sweeps - flips0) * self.config.L ** 2, dt)
        return done

    def run_for(self, seconds: float, max_steps: int | None = None) -> int:
        """Steps until `seconds` have passed (one step at least): a TUI chunk."""
        done = 0
        t0 = time.perf_counter()
        sweeps0 = self.sweeps
        while True:
            done += self._advance(max_steps - done if max_steps else 1 << 62)
            if time.perf_counter() - t0 >= seconds or (max_steps and done >= max_steps):
                break
        self._rate = ((self.sweeps - sweeps0) * self.config.L ** 2, time.perf_counter() - t0)
        return done

    # ---- RG and flow --------------------------------------------------------------------
    def rg_levels(self, rule: str | None = None) -> list:
        """RG levels of the current lattice. Majority ties use a stream derived from the
        sweep counter, so looking at RG never changes the session's own streams."""
        from .rg import hierarchy

        c = self.config
        state = new_states(seed_sequence(c.seed, f"rg-view/{self.sweeps}"))
        return hierarchy(self.spins, rule or self.rg_rule, c.rg_b, c.effective_rg_levels, state)

    def flow_reset(self, source: str = "data") -> None:
        """Start the RBM flow chains from stored data, the live lattice, or random spins."""
        from .rbm import spins_to_visible

        c = self.config
        rbm = self.trainer.rbm
        if source == "data" and self.dataset_size:
            idx = random_indices(self.rng["flow"], c.flow_chains, self.dataset_size)
            spins = self.dataset[idx]
        elif source in ("data", "lattice"):
            spins = np.broadcast_to(self.spins, (c.flow_chains, c.L, c.L))
        elif source == "random":
            spins = random_signs(self.rng["flow"], c.flow_chains * c.n_visible)
            spins = spins.reshape(c.flow_chains, c.L, c.L)
        else:
            raise UsageError(f"unknown flow source {source!r}")
        self.flow_v = spins_to_visible(np.ascontiguousarray(spins), rbm.units, rbm.dtype)
        self.flow_step_count = 0
        self._unfreeze_flow()
        self._record_flow()
        self.unsaved = True

    def flow_step(self) -> int:
        """One RBM flow step v -> h -> v on every flow chain (core/SCIENCE.md §7), on a copy
        of the RBM frozen at the flow's first step, so that one flow uses one model while
        training goes on."""
        from .rbm import sample_hidden, sample_visible

        if self.flow_v is None:
            self.flow_reset()
        if self.flow_rbm is None:
            if self.flow_step_count:  # chains restored without their model (older saves):
                self.flow_step_count = 0  # a new flow starts from them
            self.flow_rbm = self.trainer.rbm.copy()
            self.flow_rbm_step = self.trainer.steps_done
        rbm = self.flow_rbm
        h = sample_hidden(rbm, self.flow_v, self.rng["flow"])
        self.flow_v = sample_visible(rbm, h, self.rng["flow"])
        self.flow_step_count += 1
        self._record_flow()
        self.unsaved = True
        return self.flow_step_count

    def flow_spins(self) -> np.ndarray:
        """The flow chains as ±1 lattices (n_chains, L, L)."""
        L = self.config.L
        v = self.flow_v
        s = np.where(v > (0 if self.trainer.rbm.units == "spin" else 0.5), 1, -1)
        return s.astype(np.int8).reshape(len(v), L, L)

    def _record_flow(self) -> None:
        from .observables import energy_per_spin, magnetisation

        spins = self.flow_spins()
        self.histories["flow_abs_m"].append(float(np.abs(magnetisation(spins)).mean()))
        self.histories["flow_energy"].append(float(np.mean(energy_per_spin(spins))))

    # ---- display ------------------------------------------------------------------------
    def frame(self, with_weights: bool = True, with_rbm: bool = True) -> Frame:
        """An immutable snapshot. Pure: consumes nothing from the session's streams.
        with_rbm=False leaves `rbm` empty: its three matrix-vector products dominate the
        cost for big RBMs (~90 ms at 16384 -> 4096), so a live view can take them less
        often than the lattice."""
        from .rbm import hidden_mean, sample_visible, spins_to_visible, visible_mean

        c = self.config
        L = c.L
        rbm = self.trainer.rbm
        rbm_view = {}
        if with_rbm:
            v = spins_to_visible(self.spins[None], rbm.units, rbm.dtype)
            h = hidden_mean(rbm, v)
            recon = visible_mean(rbm, h)
            view_state = new_states(seed_sequence(c.seed, f"frame/{self.sweeps}"))
            recon_sample = sample_visible(rbm, h, view_state)
            rbm_view = {
                "v": self.spins.copy(),
                "hidden": h[0].copy(),
                "reconstruction": recon[0].reshape(L, L).copy(),
                "reconstruction_sample": recon_sample[0].reshape(L, L).copy(),
            }
            if with_weights:
                rbm_view["W"] = rbm.W.copy()
        flips, secs = self._rate
        e_hist = self.histories["energy"]
        m_hist = self.histories["abs_m"]
        frame = Frame(
            step=self.step_count,
            sweeps=self.sweeps,
            L=L,
            T=self.T,
            h=self.h,
            algorithm=self.algorithm,
            spins=self.spins.copy(),
            energy_per_spin=float(e_hist.values()[-1]) if len(e_hist) else float("nan"),
            abs_m=float(m_hist.values()[-1]) if len(m_hist) else float("nan"),
            acceptance=self.acceptance,
            flips_per_s=flips / secs if secs else 0.0,
            dataset_count=self.dataset_size,
            heldout_count=min(self.heldout_count, len(self.heldout)),
            training=self.training,
            train_step=self.trainer.steps_done,
            rg_rule=self.rg_rule,
            rg_levels=tuple(self.rg_levels()),
            histories={name: h.values() for name, h in self.histories.items()},
            metrics=dict(self.metrics),
            rbm=rbm_view,
            flow_step=self.flow_step_count,
            flow_v=None if self.flow_v is None else self.flow_spins(),
            flow_rbm_step=self.flow_rbm_step,
            unsaved=self.unsaved,
            save_name=self.save_name,
            sample_spacing=self.live_spacing,
            tau_int_sweeps=self.tau_sweeps,
            independent_samples=effective_samples(self.dataset_size, self.live_spacing,
                                                  self.tau_sweeps),
        )
        for a in (frame.spins, *frame.rbm.values(), *frame.histories.values()):
            a.setflags(write=False)
        return frame

    def summary(self) -> dict:
        """Small JSON-able description (counters and latest metrics)."""
        e = self.histories["energy"].values()
        m = self.histories["abs_m"].values()
        return {
            "L": self.config.L,
            "T": self.T,
            "h": self.h,
            "algorithm": self.algorithm,
            "steps": self.step_count,
            "sweeps": self.sweeps,
            "acceptance": None if math.isnan(self.acceptance) else round(self.acceptance, 5),
            "energy_per_spin": float(e[-1]) if len(e) else None,
            "abs_m": float(m[-1]) if len(m) else None,
            "dataset": self.dataset_size,
            "heldout": min(self.heldout_count, len(self.heldout)),
            "training": self.training,
            "train_steps": self.trainer.steps_done,
            "n_visible": self.config.n_visible,
            "n_hidden": self.config.n_hidden,
            "flow_steps": self.flow_step_count,
            "sample_spacing": self.live_spacing,
            "tau_int_sweeps": None if math.isnan(self.tau_sweeps) else round(self.tau_sweeps, 3),
            "metrics": self.metrics,
        }

    # ---- persistence --------------------------------------------------------------------
    def state(self) -> tuple[dict, dict]:
        """(arrays, meta) that restore this session exactly."""
        arrays = {
            "spins": self.spins,
            "dataset": self.dataset,
            "heldout": self.heldout,
        }
        for name, s in self.rng.items():
            arrays[f"rng_{name}"] = s
        for name, a in self.trainer.state_arrays().items():
            arrays[f"rbm_{name}"] = a
        for name, hist in self.histories.items():
            arrays[f"history_{name}"] = hist.values()
        if self.flow_v is not None:
            arrays["flow_v"] = self.flow_v
        if self.flow_rbm is not None:  # dense, as the trainer saves its RBM
            for name in FLOW_RBM_ARRAYS:
                arrays[f"flow_rbm_{name}"] = getattr(self.flow_rbm, name)
        meta = {
            "config": self.config.to_dict(),
            "live": {"T": self.T, "h": self.h, "algorithm": self.algorithm,
                     "rg_rule": self.rg_rule, "training": self.training},
            "counters": {
                "step": self.step_count, "sweeps": self.sweeps, "attempts": self.attempts,
                "changed": self.changed, "sweeps_since_sample": self.sweeps_since_sample,
                "samples_taken": self.samples_taken, "dataset_count": self.dataset_count,
                "heldout_count": self.heldout_count, "flow_step": self.flow_step_count,
                "live_spacing": self.live_spacing, "tau_since": self._tau_since,
            },
            "tau_sweeps": None if math.isnan(self.tau_sweeps) else self.tau_sweeps,
            "flow_rbm_step": self.flow_rbm_step,
            "history_totals": {n: h.total for n, h in self.histories.items()},
            "metrics": self.metrics,
            "summary": self.summary(),
        }
        return arrays, meta

    def snapshot(self) -> tuple[dict, dict]:
        """state() with every array copied: safe to write while the session steps on."""
        import copy

        arrays, meta = self.state()
        return {k: np.array(v, copy=True) for k, v in arrays.items()}, copy.deepcopy(meta)

    def save(self, path) -> None:
        from .persist import write_save

        arrays, meta = self.state()
        write_save(path, arrays, meta)
        self.unsaved = False

    @classmethod
    def from_state(cls, arrays: dict, meta: dict, path="<state>", checked=None) -> "Session":
        """Rebuild a session from (arrays, meta); any inconsistency is a SaveFileError
        (the checks are rgflow.core.persist.validate_session_state; checked: their result
        for these arrays, when the caller has made them already)."""
        from .persist import validate_session_state
        from .rbm_local import rbm_from_dense, restore_trainer

        v = checked or validate_session_state(arrays, meta, path, HISTORIES)
        config = v.config
        session = cls.__new__(cls)
        session.config = config
        session.save_name = None
        session.unsaved = False
        for key, value in v.live.items():  # T, h, algorithm, rg_rule, training
            setattr(session, key, value)
        session.spins = arrays["spins"].copy()
        session.dataset = arrays["dataset"].copy()
        session.heldout = arrays["heldout"].copy()
        session.rng = {n: arrays[f"rng_{n}"].copy() for n in ("mc", "data", "flow")}
        try:
            session.trainer = restore_trainer(v.rbm_arrays, session._trainer_config(),
                                              config.units, config.field_radius)
        except (KeyError, ValueError, TypeError, UsageError) as exc:
            raise SaveFileError(path, f"RBM state is invalid ({exc})") from None
        rbm = session.trainer.rbm
        if rbm.W.shape != (config.n_visible, config.n_hidden):
            raise SaveFileError(path, f"RBM weights have shape {rbm.W.shape}, config says "
                                f"({config.n_visible}, {config.n_hidden})")
        c = v.counters
        session.step_count, session.sweeps = c["step"], c["sweeps"]
        session.attempts, session.changed = c["attempts"], c["changed"]
        session.sweeps_since_sample, session.samples_taken = \
            c["sweeps_since_sample"], c["samples_taken"]
        session.dataset_count, session.heldout_count = c["dataset_count"], c["heldout_count"]
        session.flow_step_count = c["flow_step"]
        session.histories = {name: History(config.history, values, v.totals.get(name,
                                                                                  len(values)))
                             for name, values in v.histories.items()}
        session.flow_v = None if v.flow_v is None else v.flow_v.copy()
        session._unfreeze_flow()
        if v.flow_rbm_step is not None:
            params = v.flow_rbm_params
            try:
                session.flow_rbm = rbm_from_dense(*(params[n] for n in FLOW_RBM_ARRAYS),
                                                  config.units, config.field_radius)
            except KeyError as exc:
                raise SaveFileError(path, f"the flow's frozen RBM lacks {exc.args[0]!r}") \
                    from None
            except (ValueError, TypeError, UsageError) as exc:
                raise SaveFileError(path, f"the flow's frozen RBM is invalid ({exc})") from None
            flow_shape = (session.flow_rbm.n_visible, session.flow_rbm.n_hidden)
            if flow_shape != (config.n_visible, config.n_hidden):
                raise SaveFileError(path, "the flow's frozen RBM does not fit the session's")
            session.flow_rbm_step = v.flow_rbm_step
        session.metrics = v.metrics
        session._rate = (0.0, 0.0)
        # saves from before the live spacing: the configured one, tau measured afresh
        session.live_spacing = c.get("live_spacing", config.sample_spacing)
        session._tau_since = c.get("tau_since", session.histories["energy"].total)
        session.tau_sweeps = v.tau_sweeps
        return session

    @classmethod
    def load(cls, path) -> "Session":
        from .persist import read_save

        arrays, meta = read_save(path)
        session = cls.from_state(arrays, meta, path)
        return session
