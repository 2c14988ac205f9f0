"""Running a preset: the output-directory check and the Pipeline (stages in order, cached
ones skipped, outputs written at the end)."""

import os
import time
from collections.abc import Callable
from pathlib import Path

from ..errors import UsageError
from .plan import STAGE_FUNCS, assign_keys, build_plan
from .presets import Preset, validate_preset
from .report import headline, write_outputs
from .stage import FORMAT, SCHEMA, Stage, StageContext, StageOutput, cache_hit, jsonable


def check_out_dir(out_dir, force: bool) -> Path:
    """DIR may be new, empty, or an earlier reproduce output; anything else needs force."""
    d = Path(out_dir)
    if d.exists() and not d.is_dir():
        raise UsageError(f"{d}: exists and is not a directory")
    if d.is_dir() and any(d.iterdir()) and not force:
        ours = (d / "cache").is_dir() or (d / "results.json").is_file()
        if not ours:
            raise UsageError(f"{d}: is a non-empty directory that is not a reproduce output "
                             "(use --force to write into it)")
    parent = d.parent if str(d.parent) else Path(".")
    if not d.exists() and not parent.is_dir():
        raise UsageError(f"{d}: parent directory {parent} does not exist")
    if not os.access(d if d.exists() else parent, os.W_OK | os.X_OK):
        raise UsageError(f"{d}: not writable")
    return d


class Pipeline:
    """Runs a preset's stages (skipping cached ones) and writes the outputs.

    report(event, stage, **info) is called with event "start" (cached, estimate_s),
    "progress" (done, total) and "done" (seconds, cached); stop() returning True ends the run
    with KeyboardInterrupt at the next check (finished stages stay cached).
    """

    def __init__(self, preset: Preset, out_dir, jobs: int | None = None, force: bool = False,
                 report: Callable | None = None, stop: Callable | None = None):
        self.preset = validate_preset(preset)
        self.out_dir = Path(out_dir)
        self.cache_dir = self.out_dir / "cache"
        self.jobs = max(1, int(jobs)) if jobs else default_threads()
        self.force = bool(force)
        self.report = report
        self.stop = stop
        self.stages = build_plan(self.preset, self.jobs)
        assign_keys(self.stages, self.cache_dir)
        self.by_name = {st.name: st for st in self.stages}

    def estimates(self) -> list:
        """[{name, title, kind, cached, estimate_s}] in run order (cached stages cost ~0)."""
        return [{"name": st.name, "title": st.title, "kind": st.kind,
                 "cached": (not self.force) and cache_hit(st.path, st.key),
                 "estimate_s": round(st.estimate_s, 1)} for st in self.stages]

    def run(self) -> dict:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.cache_dir.mkdir(exist_ok=True)
        set_threads(self.jobs)
        last_use = {}
        for i, st in enumerate(self.stages):
            for name in st.inputs:
                last_use[name] = i
        outputs: dict = {}
        ran = []
        t_start = time.perf_counter()
        for i, st in enumerate(self.stages):
            if self.stop is not None and self.stop():
                raise KeyboardInterrupt
            cached = (not self.force) and cache_hit(st.path, st.key)
            self._emit("start", st, cached=cached, estimate_s=st.estimate_s)
            t0 = time.perf_counter()
            if not cached:
                self._compute(st, outputs)
            outputs[st.name] = StageOutput(st.path)
            seconds = time.perf_counter() - t0
            ran.append({"name": st.name, "cached": cached, "seconds": round(seconds, 3),
                        "estimate_s": round(st.estimate_s, 1)})
            self._emit("done", st, seconds=seconds, cached=cached)
            for name, stage in outputs.items():  # free arrays nothing later needs
                if last_use.get(name, -1) <= i:
                    stage.release()
        files, results = write_outputs(self.preset, self.stages, outputs, self.out_dir)
        return {"out": str(self.out_dir), "preset": self.preset.name, "stages": ran,
                "seconds": round(time.perf_counter() - t_start, 3), "files": files,
                "headline": headline(results),
                "computed": sum(not r["cached"] for r in ran),
                "cached": sum(r["cached"] for r in ran)}

    def _emit(self, event, stage, **info):
        if self.report is not None:
            self.report(event, stage, **info)

    def _compute(self, st: Stage, outputs: dict) -> None:
        from ..npzio import atomic_write_npz, versions
        from ..rbm import blas_threads

        inputs = {name: outputs[name] for name in st.inputs}
        ctx = StageContext(st, inputs, self.jobs, self.report, self.stop)
        t0 = time.perf_counter()
        with blas_threads(1):  # float32 GEMMs round differently with other thread counts
            arrays, meta = STAGE_FUNCS[st.kind](ctx)
        meta = dict(meta)
        meta.update({"format": FORMAT + "-stage", "schema": SCHEMA, "stage": st.name,
                     "kind": st.kind, "title": st.title, "key": st.key,
                     "settings": st.settings,
                     "inputs": {n: self.by_name[n].key for n in st.inputs},
                     "seconds": round(time.perf_counter() - t0, 3), "versions": versions()})
        atomic_write_npz(st.path, arrays, jsonable(meta))


def default_threads() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (
        os.cpu_count() or 1)


def set_threads(jobs: int) -> None:
    import numba

    numba.set_num_threads(max(1, min(int(jobs), numba.config.NUMBA_NUM_THREADS)))
