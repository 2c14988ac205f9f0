"""Stages and their cache files: what a stage is (kind, settings, inputs, content key), what
a stage function sees (StageContext), and a finished stage's file (StageOutput).

A stage's output (arrays + a JSON `meta` member) is stored at
DIR/cache/<stage>-<sha256 of (kind, settings, input keys, code version)>.npz, written
atomically (rgflow.core.npzio), so a finished file is always whole.
"""

import dataclasses
import json
import math
import threading
import time
from pathlib import Path

import numpy as np

from ..errors import DataFileError

FORMAT = "rgflow-reproduce"
SCHEMA = 1


def jsonable(x):
    """x with tuples as lists, numpy scalars and arrays as Python values, non-finite
    floats as None (JSON has no NaN)."""
    if isinstance(x, dict):
        return {str(k): jsonable(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return jsonable(x.tolist())
    if isinstance(x, np.integer | bool | np.bool_):
        return x.item() if isinstance(x, np.generic) else x
    if isinstance(x, float | np.floating):
        return float(x) if math.isfinite(x) else None
    return x


@dataclasses.dataclass
class Stage:
    """One node of the graph. `name` is unique in the plan: the experiment's name for the
    stage (`base`) with "-s<k>" appended when it depends on training seed k (`seed_index`;
    None for a stage shared by every seed)."""

    name: str
    kind: str
    title: str
    settings: dict
    inputs: tuple = ()
    estimate_s: float = 0.0
    key: str = ""
    path: Path | None = None
    base: str = ""
    seed_index: int | None = None


class SeedView:
    """Seed k's part of a run, under the experiments' own stage names: view["vh-L32"] is
    the output of "vh-L32-s<k>" (or of the shared "vh-L32"); `stages` lists seed k's stages
    and the shared ones."""

    def __init__(self, stages: list, outputs: dict, k: int):
        self.k = k
        self.stages = [st for st in stages if st.seed_index in (None, k)]
        self._actual = {st.base: st.name for st in self.stages}
        self._base = {st.name: st.base for st in self.stages}
        self._outputs = outputs

    def __getitem__(self, name: str):
        return self._outputs[self._actual.get(name, name)]

    def base_of(self, name: str) -> str:
        return self._base.get(name, name)


def derived_seed(seed: int, name: str) -> int:
    """A 63-bit integer seed for the named stage, from the preset's seed."""
    from ..rng import seed_sequence

    return int(seed_sequence(seed, f"reproduce/{name}").generate_state(1, np.uint64)[0] >> 1)


class StageOutput:
    """A finished stage's file: `meta` at once, `arrays` loaded on first use."""

    def __init__(self, path: Path):
        self.path = path
        self._arrays = None
        self.meta = read_meta(path)

    @property
    def arrays(self) -> dict:
        from ..npzio import read_npz

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


def stages_of_kind(stages, kind):
    return [st for st in stages if st.kind == kind]
