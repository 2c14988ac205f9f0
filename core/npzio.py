"""Atomic, pickle-free .npz files: every output of rgflow is written and read through here.

A file is either the complete new version or not there at all: it is written to a temporary
file in the same directory, flushed, fsynced and renamed over the target (then the directory
is fsynced), so Ctrl-C or kill -9 at any moment never leaves a partial or damaged file.
"""

import hashlib
import json
import os
import tempfile
import zipfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from .errors import DataFileError, UsageError


def _read_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _read_umask()  # read once: os.umask is process-wide and not thread-safe


def check_output_path(path, force: bool) -> Path:
    """Validate an output file before any work is done: refuse a directory, an existing file
    without force, or a folder that cannot be written (see ensure_output_dir)."""
    p = Path(path)
    if p.is_dir():
        raise UsageError(f"{p}: is a directory, not an output file")
    if p.exists() and not p.is_file():  # a device, a fifo: never replaced by a file
        raise UsageError(f"{p}: is not a regular file")
    if p.exists() and not force:
        raise UsageError(f"{p}: already exists (use --force to overwrite)")
    ensure_output_dir(p.parent if str(p.parent) else Path("."), p)
    return p


def ensure_output_dir(directory, label=None) -> Path:
    """The one rule for output folders, in every command: missing folders are created, and
    the folder must really accept a file. Writing a probe file is the only test that holds
    for root, read-only mounts, /proc and /sys (os.access says yes to root everywhere).
    Every failure is one UsageError naming `label` (default: the folder)."""
    d = Path(directory)
    label = Path(label) if label is not None else d
    ancestor = d
    while not ancestor.exists() and ancestor.parent != ancestor:
        ancestor = ancestor.parent
    if ancestor.exists() and not ancestor.is_dir():
        raise UsageError(f"{label}: {ancestor} is a file, not a directory")
    try:
        d.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".rgflow-probe.", dir=d)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise UsageError(f"{label}: cannot write in {d} ({exc.strerror or exc})") from None
    return d


def fallback_path(path) -> Path:
    """Where a finished result goes when its own path cannot be written: the temp folder."""
    p = Path(path)
    fd, name = tempfile.mkstemp(prefix=f"rgflow-{p.stem}-", suffix=p.suffix or ".npz")
    os.close(fd)
    return Path(name)


def write_or_fallback(path, write) -> Path:
    """write(path) for the result of a long run. If it fails with an OSError (disk full,
    folder removed or made read-only meanwhile), write(fallback in the temp folder) instead
    and raise a UsageError naming both, so no finished work is lost."""
    try:
        return write(path)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        try:
            spare = fallback_path(path)
            write(spare)
        except OSError as exc2:
            raise UsageError(f"{path}: cannot write ({reason}); the fallback in the temporary "
                             f"folder failed too ({exc2.strerror or exc2})") from None
        raise UsageError(f"{path}: cannot write ({reason}); the result was saved to {spare}") \
            from None


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextmanager
def atomic_file(path):
    """Open a temporary file beside `path` for writing; on success it is flushed, fsynced
    and renamed over `path` (then the directory is fsynced); on any error it is removed."""
    p = Path(path)
    directory = p.parent if str(p.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=directory)
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp makes 0600; outputs get the usual mode
        with os.fdopen(fd, "wb") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, p)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    _fsync_dir(directory)


def atomic_write_bytes(path, data: bytes) -> Path:
    """Write bytes (a report, a JSON file) atomically."""
    with atomic_file(path) as fh:
        fh.write(data)
    return Path(path)


def atomic_write_npz(path, arrays: dict, meta: dict | None = None, compress: bool = False) -> Path:
    """Write `arrays` (+ `meta` as a JSON string member) to `path` atomically."""
    members = {k: np.asarray(v) for k, v in arrays.items()}
    if meta is not None:
        members["meta"] = np.array(json.dumps(meta, sort_keys=True))
    with atomic_file(path) as fh:
        (np.savez_compressed if compress else np.savez)(fh, **members)
    return Path(path)


def file_sha256(path) -> str:
    """sha256 of a file's bytes, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def read_npz(path, required=(), error=DataFileError) -> tuple[dict, dict]:
    """Read every member of an npz without pickle. Returns (arrays, meta) where meta is the
    parsed `meta` JSON member ({} if absent). Any failure raises `error(path, reason)`."""
    p = Path(path)
    if not p.exists():
        raise error(p, "no such file")
    if p.is_dir():
        raise error(p, "is a directory")
    try:
        is_zip = zipfile.is_zipfile(p)
    except OSError as exc:
        raise error(p, f"cannot be read ({exc.strerror or exc})") from None
    if not is_zip:
        raise error(p, "not a valid npz file (not a zip archive)")
    try:
        with np.load(p, allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
    except (zipfile.BadZipFile, EOFError) as exc:
        raise error(p, f"not a valid npz file ({exc})") from None
    except ValueError as exc:
        if "pickle" in str(exc).lower():
            raise error(p, "contains an object (pickled) array, which is never loaded") from None
        raise error(p, f"not a valid npz file ({exc})") from None
    except (OSError, KeyError, zipfile.LargeZipFile) as exc:
        raise error(p, f"cannot be read ({exc})") from None
    except Exception as exc:  # zlib.error, struct.error, ... from damaged members
        raise error(p, f"damaged file ({type(exc).__name__}: {exc})") from None
    meta = {}
    if "meta" in arrays:
        raw = arrays.pop("meta")
        if raw.shape != () or raw.dtype.kind != "U":
            raise error(p, "member 'meta' is not a JSON string")
        try:
            meta = json.loads(str(raw))
        except json.JSONDecodeError as exc:
            raise error(p, f"member 'meta' is not valid JSON ({exc.msg})") from None
        if not isinstance(meta, dict):
            raise error(p, "member 'meta' is not a JSON object")
    missing = [name for name in required if name not in arrays]
    if missing:
        raise error(p, f"missing member(s): {', '.join(missing)}")
    return arrays, meta


def versions() -> dict:
    """Library versions recorded in every file rgflow writes (numba's is read from its
    metadata, so reading a save never pays for importing numba)."""
    from importlib.metadata import version

    from . import __version__

    return {"rgflow": __version__, "numpy": np.__version__, "numba": version("numba")}
