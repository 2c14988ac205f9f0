"""Presets: every setting of a reproduction run as a frozen dataclass ("tiny" for the test
suite, "quick", "paper"), their validation, and the flow's training sets."""

import dataclasses

import numpy as np

from ..errors import UsageError
from ..exact import TC
from .stage import jsonable


def _grid(start: float, stop: float, count: int) -> tuple:
    return tuple(float(x) for x in np.linspace(start, stop, count).round(10))


DEFAULT_GRID = _grid(0.1, 6.0, 60)  # 0.1 ... 6.0 (Iso et al. used 0 to 6; core/SCIENCE.md §6)


@dataclasses.dataclass(frozen=True)
class Preset:
    """Every setting of a reproduction run (the experiments of core/SCIENCE.md §4–§7)."""

    name: str
    seed: int = 0
    seeds: int = 5                    # training seeds: every seed-dependent number is an ensemble
    # Monte Carlo data (all datasets)
    algorithm: str = "auto"           # rgflow.core.sampling: Wolff up to 1.3 Tc, Metropolis above
    symmetrize: bool = True           # flip each configuration's sign at random (*default*)
    # RBM training (the authors' settings, core/SCIENCE.md §3)
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
    grid: tuple = DEFAULT_GRID
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
    # experiment 5: locally connected RBMs (receptive field R) beside global RBMs and RG at
    # T = corr_T on L = local_L (ensembles over `seeds`, like every experiment); and a mixed-T
    # local RBM's flow on L = local_flow_L
    local_L: int = 32
    local_fields: tuple = (1, 2, 4)
    local_steps: int = 10_000
    local_vh_configs: int | None = None  # <v h> maps from the first so many (None: all)
    local_flow_L: int = 16
    local_flow_R: int = 2
    # experiment 6: the mixed-T RBM flow's endpoint T* at each L (n_h = (L-1)^2, as 100 -> 81)
    # against the pseudo-critical temperature (specific-heat peak) on fss_peak_T
    fss_sizes: tuple = (8, 10, 16, 24)
    fss_rbm_steps: int = 20_000
    fss_flow_chains: int = 2000
    fss_peak_T: tuple = _grid(2.15, 2.65, 11)
    fss_peak_samples: int = 10_000

    def settings(self) -> dict:
        return jsonable(dataclasses.asdict(self))


PRESETS = {
    # Seconds: exercises every stage and output at toy sizes (test suite only).
    "tiny": Preset(
        name="tiny", seeds=2, corr_sizes=(8,), corr_samples=300, rbm_steps=40, rbm_monitor_points=1,
        grid=_grid(0.5, 4.0, 8), thermo_samples=30, mlp_epochs=3,
        rgT_L=8, rgT_levels=1, rgT_samples=100,
        flow_hidden=(81,), flow_grid_samples=40, flow_tc_samples=200, flow_rbm_steps=30,
        flow_steps=3, flow_chains=100, stack_L=8, stack_levels=2,
        local_L=8, local_fields=(1,), local_steps=30, local_flow_L=8,
        local_flow_R=1, fss_sizes=(8,), fss_rbm_steps=30, fss_flow_chains=100,
        fss_peak_T=_grid(2.1, 2.7, 5), fss_peak_samples=40,
    ),
    # Minutes: experiment 1 at 1024 -> 256, RG temperature flow 32 -> 16 -> 8, RBM flows with
    # 100 -> 81 RBMs; fewer samples and updates than the paper, no stacked RBMs.
    "quick": Preset(
        name="quick", seeds=3, corr_sizes=(32,), corr_samples=10_000, rbm_steps=5000,
        thermo_samples=1000, mlp_epochs=10,
        rgT_L=32, rgT_levels=2, rgT_samples=1000,
        flow_hidden=(81,), flow_grid_samples=1000, flow_tc_samples=5000, flow_rbm_steps=10_000,
        flow_chains=1000, stack_L=None,
        local_fields=(1, 2, 4), local_steps=2000, local_vh_configs=4000,
        fss_sizes=(8, 10, 16),
        fss_rbm_steps=3000, fss_flow_chains=400, fss_peak_samples=2000,
    ),
    # About half an hour on two cores: the authors' sizes and lengths.
    "paper": Preset(name="paper", corr_sizes=(32, 64, 16), rbm_monitor_points=10),
}


def get_preset(name: str) -> Preset:
    if name not in PRESETS:
        raise UsageError(f"unknown preset {name!r} (choose from {', '.join(PRESETS)})")
    return PRESETS[name]


def validate_preset(p: Preset) -> Preset:
    """One UsageError for the first setting that cannot work."""
    from ..sampling import validate_temperature

    def need(ok, msg):
        if not ok:
            raise UsageError(f"preset {p.name!r}: {msg}")

    need(isinstance(p.seeds, int) and p.seeds >= 1, "seeds must be a whole number >= 1")
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
        n = train_set_size(p, name)
        usable = n - round(p.rbm_holdout * n)
        need(usable >= p.rbm_batch, f"flow training set {name!r} has {usable} configurations "
             f"after the hold-out, fewer than one batch ({p.rbm_batch})")
    if p.stack_L is not None:
        need(p.stack_L % (2 ** p.stack_levels) == 0 and p.stack_L // 2 ** p.stack_levels >= 2,
             "stack_L / 2^stack_levels must be >= 2")
        need(p.stack_levels >= 1, "stack_levels must be >= 1")
    need(p.local_L % 2 == 0 and p.local_L >= 8, "local_L must be even and >= 8")
    need(p.local_flow_L % 2 == 0 and p.local_flow_L >= 8, "local_flow_L must be even, >= 8")
    need(all(isinstance(R, int) and R >= 0 for R in (*p.local_fields, p.local_flow_R)),
         "receptive fields must be whole numbers >= 0")
    need(p.local_vh_configs is None or p.local_vh_configs >= max(p.rbm_batch, p.jackknife_blocks),
         "local_vh_configs too small for the jackknife")
    need(all(L % 2 == 0 and L >= 8 for L in p.fss_sizes), "fss_sizes must be even and >= 8")
    need(len(p.fss_peak_T) >= 5 and (np.diff(p.fss_peak_T) > 0).all(),
         "fss_peak_T must be at least 5 increasing temperatures")
    need(p.fss_flow_chains <= p.flow_chains, "fss_flow_chains must be <= flow_chains")
    return p


TRAIN_SETS = {
    "mixed": "every grid temperature (Iso et al.)",
    "tc": "T = Tc only (the authors' training files)",
    "high": "grid temperatures above Tc only (control)",
    "low": "grid temperatures below Tc only (control)",
}


def train_set_indices(p: Preset, name: str):
    t = np.asarray(p.grid)
    if name == "mixed":
        return [int(i) for i in range(t.size)]
    if name == "high":
        return [int(i) for i in np.flatnonzero(t > TC)]
    if name == "low":
        return [int(i) for i in np.flatnonzero(t < TC)]
    return None  # tc: its own dataset


def train_set_size(p: Preset, name: str) -> int:
    idx = train_set_indices(p, name)
    return p.flow_tc_samples if idx is None else len(idx) * p.flow_grid_samples
