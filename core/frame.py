"""The Frame a session shows, and the first one, taken without numba.

The app opens its window before numba has loaded (~0.3 s of a start, tui/driver.py). The
first frame it shows is a preview: for a new session, `initial_frame(config)`, the lattice
Session(config) starts from, computed here with numpy and the pure-Python generator (the
same lattice, bit for bit, as rgflow.core.ising.random_spins draws from the session's "mc"
stream); for an opened save, `saved_frame`, read from the save.
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
    a preview (preview=True): what a session starts from, shown before the session exists
    (initial_frame, saved_frame), without RG levels or RBM images."""

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
    flow_rbm_step: int | None = None  # the training step of the RBM the flow runs on
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
    empty = np.zeros(0)
    return _preview(c, spins, {"T": c.T, "h": c.h, "algorithm": c.algorithm,
                               "training": c.train, "rg_rule": c.rg_rule},
                    histories=dict.fromkeys(HISTORIES, empty), sample_spacing=c.sample_spacing)


def saved_frame(state, spins: np.ndarray, save_name: str) -> Frame:
    """The frame of a save opened in the app, before the session is rebuilt from it: its
    lattice, settings, counters and histories. state: the save as checked by
    rgflow.core.persist.validate_session_state."""
    counters = state.counters
    steps = np.asarray(state.rbm_arrays.get("steps_done", 0))
    # a malformed count is reported by the Session's own restore, not here
    train_step = int(steps) if steps.shape == () and steps.dtype.kind in "iu" else 0
    return _preview(state.config, np.array(spins, dtype=np.int8), state.live,
                    histories=dict(state.histories), step=counters["step"],
                    sweeps=counters["sweeps"], dataset_count=counters["dataset_count"],
                    train_step=train_step, flow_step=counters["flow_step"],
                    save_name=save_name, tau_int_sweeps=state.tau_sweeps)


def _preview(config: SessionConfig, spins: np.ndarray, live: dict, histories: dict,
             **fields) -> Frame:
    """A preview Frame; fields: counters and the like, where they differ from a new
    session's."""
    spins.setflags(write=False)
    for values in histories.values():
        values.setflags(write=False)
    values = {"step": 0, "sweeps": 0, "dataset_count": 0, "train_step": 0, **fields}
    return Frame(L=config.L, T=live["T"], h=live["h"], algorithm=live["algorithm"],
                 spins=spins, energy_per_spin=float("nan"), abs_m=float("nan"),
                 acceptance=float("nan"), flips_per_s=0.0, heldout_count=0,
                 training=live["training"], rg_rule=live["rg_rule"], rg_levels=(),
                 histories=histories, metrics={}, preview=True, **values)
