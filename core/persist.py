"""Session save files: `saves/<name>.npz`, numeric arrays plus one JSON `meta` member.

meta holds the format id, schema version, library versions, and for every array its dtype,
shape and sha256, so damage is detected before anything is used. Files are written
atomically (rgflow.core.npzio) and read without pickle; every failure is one SaveFileError naming
the file and the reason. A newer schema is refused; older ones are upgraded explicitly.
"""

import hashlib
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import SaveFileError, UsageError
from .filekinds import SESSION, require_kind
from .npzio import atomic_write_npz, read_npz, versions

FORMAT_ID = SESSION
SCHEMA_VERSION = 1
SAVES_ENV = "RGFLOW_SAVES"
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
# schema version -> function(arrays, meta) -> (arrays, meta) of the next version
UPGRADES: dict = {}


def saves_dir(override=None) -> Path:
    """--saves-dir, else $RGFLOW_SAVES, else ./saves (relative to the working directory)."""
    return Path(override or os.environ.get(SAVES_ENV) or "saves")


def resolve_save_path(name_or_path: str, directory=None) -> Path:
    """A plain name means saves/<name>.npz and cannot escape the saves directory; anything
    containing '/' or ending in '.npz' is a path used as given."""
    text = str(name_or_path)
    if "/" in text or text.endswith(".npz") or os.sep in text or Path(text).is_file():
        return Path(text)  # a name that exists as a file is that file
    if not _NAME_RE.match(text) or text in (".", ".."):
        raise UsageError(
            f"invalid save name {text!r}: use letters, digits, '.', '_' or '-' (or give a path)"
        )
    return saves_dir(directory) / f"{text}.npz"


def resolve_save_target(name_or_path: str, directory=None) -> Path:
    """Where a save is written: resolve_save_path, with a path's file name held to the rules
    of a save name too (it names the session) and given '.npz' when it has none."""
    path = resolve_save_path(name_or_path, directory)
    if path.suffix != ".npz":
        path = path.with_name(path.name + ".npz")
    if not _NAME_RE.match(path.stem):
        raise UsageError(f"invalid file name {path.name!r}: before .npz use letters, digits, "
                         "'.', '_' or '-'")
    return path


def _sha256(array: np.ndarray) -> str:
    return hashlib.sha256(np.asarray(array, order="C").tobytes()).hexdigest()


def write_save(path, arrays: dict, meta: dict) -> Path:
    """Write a session save atomically; meta gets format, schema, versions, array table."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {k: np.asarray(v, order="C") for k, v in arrays.items()}  # keeps 0-d arrays 0-d
    for name, a in arrays.items():
        if a.dtype.hasobject:
            raise ValueError(f"array {name!r} has object dtype")  # a bug, never user input
    full_meta = dict(meta)
    full_meta.update(
        format=FORMAT_ID,
        schema=SCHEMA_VERSION,
        versions=versions(),
        arrays={
            name: {"dtype": a.dtype.str, "shape": list(a.shape), "sha256": _sha256(a)}
            for name, a in sorted(arrays.items())
        },
    )
    return atomic_write_npz(path, arrays, full_meta)


def read_save(path) -> tuple[dict, dict]:
    """Read and verify a save. Returns (arrays, meta) at the current schema version."""
    path = Path(path)
    arrays, meta = read_npz(path, error=SaveFileError)
    try:
        require_kind(path, meta, arrays, SESSION, "this command")
    except SaveFileError:
        raise
    except Exception as exc:  # DataFileError: the same message, as a SaveFileError
        raise SaveFileError(path, exc.reason) from None
    if not meta:
        raise SaveFileError(path, "no 'meta' member: not an rgflow session save")
    if meta.get("format") != FORMAT_ID:
        raise SaveFileError(path, f"format is {meta.get('format')!r}, expected {FORMAT_ID!r}")
    schema = meta.get("schema")
    if not isinstance(schema, int) or schema < 1:
        raise SaveFileError(path, f"invalid schema version {schema!r}")
    if schema > SCHEMA_VERSION:
        raise SaveFileError(
            path, f"schema version {schema} is newer than this rgflow supports "
            f"({SCHEMA_VERSION}); upgrade rgflow to open it"
        )
    table = meta.get("arrays")
    if not isinstance(table, dict):
        raise SaveFileError(path, "meta has no array table")
    missing = sorted(set(table) - set(arrays))
    extra = sorted(set(arrays) - set(table))
    if missing:
        raise SaveFileError(path, f"missing member(s): {', '.join(missing)}")
    if extra:
        raise SaveFileError(path, f"unexpected member(s): {', '.join(extra)}")
    for name, spec in table.items():
        a = arrays[name]
        try:
            dtype_ok = a.dtype.str == spec["dtype"]
            shape_ok = list(a.shape) == list(spec["shape"])
            digest = spec["sha256"]
        except (KeyError, TypeError):
            raise SaveFileError(path, f"array table entry for {name!r} is malformed") from None
        if not dtype_ok:
            raise SaveFileError(path, f"member {name!r} has dtype {a.dtype.str}, "
                                f"expected {spec['dtype']}")
        if not shape_ok:
            raise SaveFileError(path, f"member {name!r} has shape {list(a.shape)}, "
                                f"expected {spec['shape']}")
        if _sha256(a) != digest:
            raise SaveFileError(path, f"member {name!r} fails its checksum (file damaged)")
    while meta["schema"] < SCHEMA_VERSION:
        arrays, meta = UPGRADES[meta["schema"]](arrays, meta)
    return arrays, meta


def version_warnings(meta: dict) -> list[str]:
    """Differences between the libraries that wrote a save and the running ones: bit-exact
    continuation is only promised on the same numpy/numba versions."""
    saved = meta.get("versions", {})
    now = versions()
    return [
        f"saved with {lib} {saved.get(lib)}, running {now[lib]}: continuation may not be "
        "bit-identical"
        for lib in ("numpy", "numba")
        if saved.get(lib) != now[lib]
    ]


def list_saves(directory=None) -> list[tuple[Path, dict | None, str | None]]:
    """(path, meta, error) for every .npz in the saves directory, newest first."""
    d = saves_dir(directory)
    if not d.is_dir():
        return []
    out = []
    files = sorted(d.glob("*.npz"), key=lambda p: p.stat().st_mtime, reverse=True)
    for p in files:
        try:
            _, meta = read_save(p)
            out.append((p, meta, None))
        except SaveFileError as exc:
            out.append((p, None, exc.reason))
    return out


class BackgroundSaver:
    """Writes checkpoints on a helper thread so that stepping goes on meanwhile (hashing,
    writing and fsync take tens of ms; the caller only pays for a snapshot copy).
    One write at a time; an error is re-raised by the next submit() or wait()."""

    def __init__(self):
        self._thread = None
        self._error: BaseException | None = None

    def busy(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def submit(self, path, arrays: dict, meta: dict) -> None:
        import threading

        self.wait()

        def write():
            try:
                write_save(path, arrays, meta)
            except BaseException as exc:  # reported to the stepping thread
                self._error = exc

        self._thread = threading.Thread(target=write, name="rgflow-checkpoint", daemon=False)
        self._thread.start()

    def wait(self) -> None:
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._error is not None:
            error, self._error = self._error, None
            raise error


# ----------------------------------------------------------------------------- session state

COUNTERS = ("step", "sweeps", "attempts", "changed", "sweeps_since_sample", "samples_taken",
            "dataset_count", "heldout_count", "flow_step")


@dataclass(frozen=True)
class SessionState:
    """What validate_session_state checked, ready for Session.from_state to use."""

    config: object  # SessionConfig
    live: dict  # T, h, algorithm, rg_rule, training
    counters: dict
    totals: dict
    histories: dict  # name -> 1-D float array
    rbm_arrays: dict  # Trainer.state_arrays() names -> arrays
    flow_v: np.ndarray | None
    metrics: dict
    tau_sweeps: float
    flow_rbm_step: int | None = None  # the flow's frozen RBM: its training step ...
    flow_rbm_params: dict | None = None  # ... and its dense arrays (W and biases)


def validate_session_state(arrays: dict, meta: dict, path, histories) -> SessionState:
    """Check a session's (arrays, meta) before anything is built from them: config, live
    settings, counters, member shapes and dtypes, ±1 spins, finite RBM arrays, histories.
    Every problem is one SaveFileError naming the file."""
    from .config import ALGORITHMS, RG_RULES, SessionConfig

    def bad(reason):
        return SaveFileError(path, reason)

    try:
        config = SessionConfig.from_dict(meta["config"])
        raw_live = meta["live"]
        counters = {k: int(v) for k, v in meta["counters"].items()}
        totals = {k: int(v) for k, v in meta["history_totals"].items()}
    except UsageError as exc:
        raise bad(f"invalid config ({exc})") from None
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise bad(f"meta is incomplete or malformed ({exc})") from None
    missing = [name for name in COUNTERS if name not in counters]
    if missing:
        raise bad(f"counter {missing[0]!r} missing")
    L = config.L
    expected = {
        "spins": ((L, L), np.int8),
        "dataset": ((config.dataset_capacity, L, L), np.int8),
        "heldout": ((max(1, config.dataset_capacity // config.holdout_every), L, L), np.int8),
    }
    for name in ("mc", "data", "flow"):
        expected[f"rng_{name}"] = ((4,), np.uint64)
    for name, (shape, dtype) in expected.items():
        a = arrays.get(name)
        if a is None:
            raise bad(f"missing member {name!r}")
        if a.shape != shape or a.dtype != dtype:
            raise bad(f"member {name!r} has shape {a.shape} {a.dtype}, expected {shape} "
                      f"{np.dtype(dtype)}")
    if not np.isin(arrays["spins"], (-1, 1)).all():
        raise bad("spins hold values other than ±1")
    try:
        live = {"T": float(raw_live["T"]), "h": float(raw_live["h"]),
                "algorithm": str(raw_live["algorithm"]), "rg_rule": str(raw_live["rg_rule"]),
                "training": bool(raw_live["training"])}
    except (KeyError, TypeError, ValueError) as exc:
        raise bad(f"meta 'live' is malformed ({exc})") from None
    if not (math.isfinite(live["T"]) and live["T"] > 0) or live["algorithm"] not in ALGORITHMS \
            or live["rg_rule"] not in RG_RULES or not math.isfinite(live["h"]):
        raise bad("meta 'live' holds invalid values")
    n_data = min(counters["dataset_count"], config.dataset_capacity)
    n_held = min(counters["heldout_count"], len(arrays["heldout"]))
    if not np.isin(arrays["dataset"][:n_data], (-1, 1)).all() or \
            not np.isin(arrays["heldout"][:n_held], (-1, 1)).all():
        raise bad("dataset holds values other than ±1")
    rbm_arrays = {k[4:]: v for k, v in arrays.items() if k.startswith("rbm_")}
    for k, v in rbm_arrays.items():
        if v.dtype.kind == "f" and not np.isfinite(v).all():
            raise bad(f"member 'rbm_{k}' holds NaN or infinite values")
    series = {}
    for name in histories:
        values = arrays.get(f"history_{name}")
        if values is None or values.ndim != 1:
            raise bad(f"missing or malformed history {name!r}")
        series[name] = values
    flow_v = arrays.get("flow_v")
    if flow_v is not None and flow_v.shape[1:] != (config.n_visible,):
        raise bad("flow chains have the wrong shape")
    metrics = meta.get("metrics", {})
    tau = meta.get("tau_sweeps")
    tau_sweeps = float(tau) if isinstance(tau, int | float) else float("nan")
    if counters.get("live_spacing", config.sample_spacing) < config.sample_spacing \
            or (tau is not None and not (math.isfinite(tau_sweeps) and tau_sweeps > 0)):
        raise bad("meta holds an invalid live spacing or tau_int")
    flow_rbm_step = meta.get("flow_rbm_step")
    flow_rbm_params = {k[9:]: v for k, v in arrays.items() if k.startswith("flow_rbm_")}
    if flow_rbm_step is not None and (
            isinstance(flow_rbm_step, bool) or not isinstance(flow_rbm_step, int)
            or flow_rbm_step < 0 or flow_v is None or not flow_rbm_params):
        raise bad("meta 'flow_rbm_step' does not describe a frozen flow RBM")
    for k, v in flow_rbm_params.items():
        if v.dtype.kind != "f" or not np.isfinite(v).all():
            raise bad(f"member 'flow_rbm_{k}' is not finite floats")
    return SessionState(config, live, counters, totals, series, rbm_arrays, flow_v,
                        metrics if isinstance(metrics, dict) else {}, tau_sweeps,
                        flow_rbm_step, flow_rbm_params or None)
