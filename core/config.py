"""SessionConfig: every setting of a session, validated and frozen.

Built from defaults, a named preset, a TOML file and `key=value` overrides, in that order.
"""

import dataclasses
import math
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path

from .errors import UsageError
from .exact import TC

ALGORITHMS = ("metropolis", "heatbath", "wolff")
RG_RULES = ("average", "majority", "decimation")
MAX_DATASET_SPINS = 2**31  # 2 GiB of int8 configurations
MAX_WEIGHTS = 2**27


@dataclass(frozen=True)
class SessionConfig:
    seed: int = 0
    # live lattice
    L: int = 32
    T: float = TC
    h: float = 0.0
    algorithm: str = "metropolis"
    sweeps_per_step: int = 1
    # dataset buffer
    sample_spacing: int = 10  # sweeps between stored configurations
    dataset_capacity: int = 2000
    holdout_every: int = 10  # every n-th stored configuration goes to the held-out set
    symmetrize: bool = True  # flip each stored configuration's sign at random
    # RG view
    rg_rule: str = "average"
    rg_b: int = 2
    rg_levels: int = 3
    # RBM (core/SCIENCE.md §3: spin units, PCD-1, Adam lr 1e-3 eps 1e-2, batch 100)
    hidden: int = 0  # 0 = n_visible / 4
    # hidden unit a sees only the sites within periodic Chebyshev distance R of its 2x2
    # block (rgflow.core.rbm_local); -1 = every site (the paper's global RBM)
    receptive_field: int = -1
    units: str = "spin"
    k: int = 1
    pcd: bool = True
    chains: int = 100
    fresh_chain_field: bool = False  # PCD: recompute the chains' hidden field every step
    optimizer: str = "adam"
    lr: float = 1e-3
    momentum: float = 0.9
    l1: float = 0.0
    l2: float = 0.0
    batch: int = 100
    train: bool = True
    # training steps between monitoring evaluations (~0.3 s each at 1024 -> 256)
    monitor_every: int = 500
    dtype: str = "float32"
    # RBM flow
    flow_chains: int = 100
    # bounded histories
    history: int = 5000

    @property
    def n_visible(self) -> int:
        return self.L * self.L

    @property
    def n_hidden(self) -> int:
        return self.hidden or max(1, self.n_visible // 4)

    @property
    def field_radius(self) -> int | None:
        """The receptive field R, or None for the global RBM."""
        return None if self.receptive_field < 0 else self.receptive_field

    @property
    def effective_rg_levels(self) -> int:
        """rg_levels, capped at what L and rg_b allow (L=12, b=2: 2 levels)."""
        levels, size = 0, self.L
        while levels < self.rg_levels and size % self.rg_b == 0 and size >= self.rg_b:
            size //= self.rg_b
            levels += 1
        return levels

    def validated(self) -> "SessionConfig":
        _check(self.L % 2 == 0 and 4 <= self.L <= 1024, f"L must be even, 4..1024 (got {self.L})")
        _check(math.isfinite(self.T) and self.T > 0, f"T must be positive (got {self.T})")
        _check(math.isfinite(self.h), f"h must be finite (got {self.h})")
        _check(self.algorithm in ALGORITHMS, f"algorithm must be one of {', '.join(ALGORITHMS)}")
        _check(self.algorithm != "wolff" or self.h == 0, "the Wolff algorithm needs h = 0")
        _check(self.rg_rule in RG_RULES, f"rg_rule must be one of {', '.join(RG_RULES)}")
        for name in ("sweeps_per_step", "sample_spacing", "dataset_capacity", "holdout_every",
                     "rg_b", "rg_levels", "k", "chains", "batch", "monitor_every",
                     "flow_chains", "history"):
            _check(getattr(self, name) >= 1, f"{name} must be >= 1 (got {getattr(self, name)})")
        _check(self.hidden >= 0, f"hidden must be >= 0 (0 = L*L/4), got {self.hidden}")
        _check(self.receptive_field >= -1,
               f"receptive_field must be >= 0, or -1 for global (got {self.receptive_field})")
        _check(self.receptive_field < 0 or self.n_hidden == self.n_visible // 4,
               f"a receptive field needs one hidden unit per 2x2 block (hidden = "
               f"{self.n_visible // 4} or 0), got hidden = {self.hidden}")
        _check(self.L % self.rg_b == 0,
               f"rg_b={self.rg_b} must divide L={self.L} for at least one RG level")
        _check(self.units in ("spin", "binary"), "units must be 'spin' or 'binary'")
        _check(self.optimizer in ("adam", "sgd"), "optimizer must be 'adam' or 'sgd'")
        _check(math.isfinite(self.lr) and self.lr > 0, f"lr must be positive (got {self.lr})")
        _check(0 <= self.momentum < 1, f"momentum must be in [0, 1) (got {self.momentum})")
        _check(self.l1 >= 0 and self.l2 >= 0, "l1 and l2 must be >= 0")
        _check(self.dtype in ("float32", "float64"), "dtype must be float32 or float64")
        _check(self.dataset_capacity * self.n_visible <= MAX_DATASET_SPINS,
               f"dataset_capacity x L² must be <= {MAX_DATASET_SPINS:,} spins")
        _check(self.n_visible * self.n_hidden <= MAX_WEIGHTS,
               f"the RBM would have more than {MAX_WEIGHTS:,} weights")
        _check(max(self.chains, self.flow_chains, self.batch) <= 100_000,
               "chains, flow_chains and batch must be <= 100000")
        _check(self.history <= 1_000_000, "history must be <= 1000000")
        _check(self.batch <= self.dataset_capacity,
               f"batch ({self.batch}) cannot exceed dataset_capacity ({self.dataset_capacity})")
        return self

    def replace(self, **changes) -> "SessionConfig":
        return dataclasses.replace(self, **changes).validated()

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "SessionConfig":
        if not isinstance(data, dict):
            raise UsageError("config must be a table of key = value settings")
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise UsageError("; ".join(unknown_key_message(k) for k in unknown)
                             + " (rgflow run --help lists every setting)")
        values = {name: _coerce(known[name], value) for name, value in data.items()}
        return cls(**values).validated()


def unknown_key_message(key: str) -> str:
    import difflib

    close = difflib.get_close_matches(key, [f.name for f in fields(SessionConfig)], n=1)
    return f"unknown setting {key!r}" + (f" (did you mean {close[0]!r}?)" if close else "")


def settings_help() -> str:
    """Every setting with its default, for `rgflow run --help`."""
    return ", ".join(f"{f.name}={f.default:g}" if isinstance(f.default, float)
                     else f"{f.name}={f.default}" for f in fields(SessionConfig))


SESSION_PRESETS = {  # named starting points of a session (not the reproduce presets)
    # the paper's correlator setting at a size that runs live (1024 -> 256)
    "default": {},
    "quick": {"L": 16, "dataset_capacity": 500, "history": 2000},
    # RBM flow study (core/SCIENCE.md §7): L = 10, 100 -> 81
    "flow": {"L": 10, "hidden": 81, "rg_levels": 1},
    # input of the three-level hierarchy 64 -> 32 -> 16 -> 8, 4096 -> 1024
    "hierarchy": {"L": 64, "rg_levels": 3},
    # a large lattice for watching the Monte Carlo
    "big": {"L": 128, "train": False, "rg_levels": 4},
}


def build_config(preset=None, toml_path=None, overrides=()) -> SessionConfig:
    """Defaults, then a preset, then a TOML file, then key=value overrides."""
    data: dict = {}
    if preset is not None:
        if preset not in SESSION_PRESETS:
            raise UsageError(f"unknown preset {preset!r}; choose from "
                             f"{', '.join(SESSION_PRESETS)}")
        data.update(SESSION_PRESETS[preset])
    if toml_path is not None:
        path = Path(toml_path)
        try:
            with path.open("rb") as fh:
                data.update(tomllib.load(fh))
        except FileNotFoundError:
            raise UsageError(f"{path}: no such config file") from None
        except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise UsageError(f"{path}: cannot read config ({exc})") from None
    for item in overrides:
        key, sep, value = str(item).partition("=")
        if not sep or not key.strip():
            raise UsageError(f"expected key=value, got {item!r}")
        data[key.strip()] = value.strip()
    return SessionConfig.from_dict(data)


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise UsageError(message)


def _coerce(field, value):
    """Convert a TOML or command-line value to the field's type, refusing lossy input."""
    kind = field.type if isinstance(field.type, type) else {"int": int, "float": float,
                                                             "bool": bool, "str": str}[field.type]
    name = field.name
    if isinstance(value, str) and kind is not str:
        text = value.strip().lower()
        if kind is bool:
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off"):
                return False
            raise UsageError(f"{name} must be true or false, got {value!r}")
        if kind is float and text == "tc":
            return TC
        try:
            value = float(text) if kind is float else int(text)
        except ValueError:
            what = "a number" if kind is float else "a whole number"
            raise UsageError(f"{name} must be {what}, got {value!r}") from None
    if kind is bool:
        if not isinstance(value, bool):
            raise UsageError(f"{name} must be true or false, got {value!r}")
        return value
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, int | float) \
                or not math.isfinite(value) or value != int(value):
            raise UsageError(f"{name} must be a whole number, got {value!r}")
        return int(value)
    if kind is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise UsageError(f"{name} must be a number, got {value!r}")
        return float(value)
    if not isinstance(value, str):
        raise UsageError(f"{name} must be a string, got {value!r}")
    return value
