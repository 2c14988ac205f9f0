"""The Frame a session shows, and the first one, taken without numba.

`rgflow` opens its window before numba has loaded (~0.3 s of a start, tui/driver.py): the
first frame it shows is `initial_frame(config)`, the lattice a new Session(config) starts
from, computed here with numpy and the pure-Python generator. The same lattice, bit for
bit, as rgflow.core.ising.random_spins draws from the session's "mc" stream.
"""

from dataclasses import dataclass, field

import numpy as np

from .config import SessionConfig
from .streams import PyXoshiro, new_states, seed_sequence

HISTORIES = ("energy", "abs_m", "acceptance", "recon_error", "pll", "fe_gap", "train_step",
             "flow_abs_m", "flow_energy")
# above this side the pure-Python draws (L²/64 of them) would outlast numba's loading
PREVIEW_MAX_L = 1024


@dataclass(frozen=True)
class Frame:
    """A read-only snapshot for display, published at chunk boundaries (Session.frame), or
    a preview: the state a new session starts from, taken before the session exists
    (initial_frame) and holding only its lattice and settings."""

    step: int
    sweeps: int
    L: int
    T: float
    h: float
    algorithm: str
    spins: np.ndarray
    energy_per_spin: float
    abs_m: float
    acceptance: float
    flips_per_s: float
    dataset_count: int
    heldout_count: int
    training: bool
    train_step: int
    rg_rule: str
    rg_levels: tuple
    histories: dict
    metrics: dict
    rbm: dict = field(default_factory=dict)  # v, hidden image, reconstruction, W (if any)
    flow_step: int = 0
    flow_v: np.ndarray | None = None
    unsaved: bool = False
    save_name: str | None = None
    # the dataset's spacing in sweeps (>= 2 tau_int, measured live), tau_int in sweeps (NaN
    # until measured) and the effective number of independent samples in the dataset
    sample_spacing: int = 0
    tau_int_sweeps: float = float("nan")
    independent_samples: float = float("nan")
    preview: bool = False


def initial_spins(L: int, state: np.ndarray) -> np.ndarray:
    """rgflow.core.ising.random_spins(L, state) without numba, for a valid L: site i is +1
    when bit i % 64 of draw i // 64 is set. Advances state (in place) by the same draws."""
    n = L * L
    generator = PyXoshiro(state)
    words = np.array([generator.next_u64() for _ in range(-(-n // 64))], dtype="<u8")
    state[:] = generator.state()
    bits = np.unpackbits(words.view(np.uint8), bitorder="little")[:n]
    return (2 * bits.astype(np.int8) - 1).reshape(L, L)


def initial_frame(config: SessionConfig) -> Frame | None:
    """The frame of Session(config) before its first step, with no RG levels, RBM or
    histories yet (preview=True); None for lattices above PREVIEW_MAX_L."""
    c = config.validated()
    if c.L > PREVIEW_MAX_L:
        return None
    spins = initial_spins(c.L, new_states(seed_sequence(c.seed, "mc")))
    spins.setflags(write=False)
    empty = np.zeros(0)
    empty.setflags(write=False)
    return Frame(step=0, sweeps=0, L=c.L, T=c.T, h=c.h, algorithm=c.algorithm, spins=spins,
                 energy_per_spin=float("nan"), abs_m=float("nan"), acceptance=float("nan"),
                 flips_per_s=0.0, dataset_count=0, heldout_count=0, training=c.train,
                 train_step=0, rg_rule=c.rg_rule, rg_levels=(),
                 histories=dict.fromkeys(HISTORIES, empty), metrics={},
                 sample_spacing=c.sample_spacing, preview=True)
