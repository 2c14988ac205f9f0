"""Session save files: `saves/<name>.npz`, numeric arrays plus one JSON `meta` member.

meta holds the format id, schema version, library versions, and for every array its dtype,
shape and sha256, so damage is detected before anything is used. Files are written
atomically (rgflow.core.npzio) and read without pickle; every failure is one SaveFileError naming
the file and the reason. A newer schema is refused; older ones are upgraded explicitly.
"""

import hashlib
import os
import re
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
