"""Running a preset: the output-directory check, `compute_stage` (one stage from its inputs'
files to its own file, wherever it runs) and the Pipeline (the plan, cache look-ups, the
in-process run, and the outputs). Running on Dask workers is rgflow.core.reproduce.cluster.
"""

import os
import socket
import time
from collections.abc import Callable
from pathlib import Path

from ..errors import RgflowError, UsageError
from .plan import STAGE_FUNCS, assign_keys, build_plan
from .presets import Preset, validate_preset
from .report import headline, write_outputs
from .stage import FORMAT, SCHEMA, Stage, StageContext, StageOutput, cache_hit, jsonable


class StageFailed(RgflowError):
    """A stage raised: the message names it (finished stages stay cached)."""

    def __init__(self, stage: str, exc: BaseException):
        self.stage = stage
        text = " ".join(str(exc).split()) or type(exc).__name__
        super().__init__(f"stage {stage} failed: {type(exc).__name__}: {text}")


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


def worker_id() -> str:
    """"host:pid" of this process: the stage file records who computed it."""
    return f"{socket.gethostname()}:{os.getpid()}"


def compute_stage(st: Stage, inputs: dict, threads: int = 1, report=None, stop=None) -> Path:
    """Run one stage on its inputs ({name: StageOutput}) and write its cache file atomically.
    BLAS runs on one thread (float32 GEMMs round differently with other thread counts), so
    the file's arrays do not depend on where or beside what the stage ran."""
    from ..blas import blas_threads
    from ..npzio import atomic_write_npz, versions

    ctx = StageContext(st, inputs, threads, report, stop)
    t0 = time.perf_counter()
    with blas_threads(1):
        arrays, meta = STAGE_FUNCS[st.kind](ctx)
    meta = dict(meta)
    meta.update({"format": FORMAT + "-stage", "schema": SCHEMA, "stage": st.name,
                 "kind": st.kind, "title": st.title, "key": st.key, "settings": st.settings,
                 "inputs": {n: inputs[n].meta["key"] for n in st.inputs},
                 "seconds": round(time.perf_counter() - t0, 3), "worker": worker_id(),
                 "versions": versions()})
    atomic_write_npz(st.path, arrays, jsonable(meta))
    return st.path


class Pipeline:
    """A preset's stages (keys, cache paths) and the run: `run()` computes the missing stages
    in this process one after another (the app's way: stop() is honoured between checks);
    rgflow.core.reproduce.cluster.run_on_dask runs them on Dask workers. Both end in
    `finish`, which writes the outputs.

    report(event, stage, **info) is called with event "start" (cached, estimate_s),
    "progress" (done, total) and "done" (seconds, cached, worker); stop() returning True ends
    the run with KeyboardInterrupt at the next check (finished stages stay cached).
    """

    def __init__(self, preset: Preset, out_dir, jobs: int | None = None, force: bool = False,
                 report: Callable | None = None, stop: Callable | None = None):
        self.preset = validate_preset(preset)
        self.out_dir = Path(out_dir)
        # absolute: workers may run elsewhere, in another working directory
        self.cache_dir = Path(os.path.abspath(self.out_dir / "cache"))
        self.jobs = max(1, int(jobs)) if jobs else default_threads()
        self.force = bool(force)
        self.report = report
        self.stop = stop
        self.stages = build_plan(self.preset, self.jobs)
        assign_keys(self.stages, self.cache_dir)
        self.by_name = {st.name: st for st in self.stages}

    def is_cached(self, st: Stage) -> bool:
        return (not self.force) and cache_hit(st.path, st.key)

    def estimates(self) -> list:
        """[{name, title, kind, cached, estimate_s}] in run order (cached stages cost ~0)."""
        return [{"name": st.name, "title": st.title, "kind": st.kind,
                 "cached": self.is_cached(st), "estimate_s": round(st.estimate_s, 1)}
                for st in self.stages]

    def prepare(self) -> None:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.cache_dir.mkdir(exist_ok=True)

    def run(self) -> dict:
        return self.finish(*self.run_stages())

    def run_stages(self) -> tuple[dict, list, float]:
        """Compute the missing stages here, in order: (outputs, stage records, start time)."""
        self.prepare()
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
            cached = self.is_cached(st)
            self._emit("start", st, cached=cached, estimate_s=st.estimate_s)
            t0 = time.perf_counter()
            if not cached:
                inputs = {name: outputs[name] for name in st.inputs}
                try:
                    compute_stage(st, inputs, self.jobs, self.report, self.stop)
                except (KeyboardInterrupt, RgflowError):
                    raise
                except Exception as exc:
                    raise StageFailed(st.name, exc) from exc
            outputs[st.name] = StageOutput(st.path)
            seconds = time.perf_counter() - t0
            ran.append({"name": st.name, "cached": cached, "seconds": round(seconds, 3),
                        "estimate_s": round(st.estimate_s, 1)})
            self._emit("done", st, seconds=seconds, cached=cached,
                       worker=outputs[st.name].meta.get("worker"))
            for name, stage in outputs.items():  # free arrays nothing later needs
                if last_use.get(name, -1) <= i:
                    stage.release()
        return outputs, ran, t_start

    def finish(self, outputs: dict, ran: list, t_start: float) -> dict:
        """Write the outputs from the finished stages; the run's JSON summary."""
        files, results = write_outputs(self.preset, self.stages, outputs, self.out_dir)
        return {"out": str(self.out_dir), "preset": self.preset.name,
                "seeds": self.preset.seeds, "stages": ran,
                "seconds": round(time.perf_counter() - t_start, 3), "files": files,
                "headline": headline(results),
                "computed": sum(not r["cached"] for r in ran),
                "cached": sum(r["cached"] for r in ran)}

    def _emit(self, event, stage, **info):
        if self.report is not None:
            self.report(event, stage, **info)


def default_threads() -> int:
    from ..cpu import available_cores

    return available_cores()


def set_threads(jobs: int) -> None:
    import numba

    numba.set_num_threads(max(1, min(int(jobs), numba.config.NUMBA_NUM_THREADS)))
