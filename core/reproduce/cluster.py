"""Running the stage graph on Dask (dask.distributed): one code path for a laptop and a cluster.

`connect` gives a Client: to a running scheduler (`--scheduler ADDRESS` or
DASK_SCHEDULER_ADDRESS: `dask scheduler` + `dask worker`, or dask-jobqueue on SLURM/PBS), or to
a new LocalCluster of single-threaded worker processes (numba and BLAS threads set in the
nanny's pre-spawn environment; the numba cache warmed once before they start, so they do not
race to write it). `run_on_dask` checks that every worker sees the output directory, submits
each stage whose cache file is missing as a future depending on its inputs' futures (tasks
return only their cache path; retries 2), and writes the outputs when all are done.

Results do not depend on the scheduler, the number of workers or the order stages finish:
each stage is single-threaded and deterministic, and reads only its inputs' files.
"""

import contextlib
import hashlib
import logging
import os
import signal
import tempfile
import time
import uuid
from pathlib import Path

from ..errors import UsageError
from .runner import StageFailed, compute_stage, default_threads, set_threads, worker_id
from .stage import StageOutput, cache_hit

RETRIES = 2
STATUS_EVERY_S = 5.0
# Test hook for faults inside a worker: "kill:STAGE:MARKER" makes the worker computing STAGE
# kill itself (SIGKILL) at the stage's first progress report, once (the marker file records
# that it happened); "raise:STAGE" makes STAGE raise RuntimeError.
FAULT_HOOK_ENV = "RGFLOW_TEST_STAGE_FAULT"


def worker_environment(threads: int = 1) -> dict:
    """Set before each worker process starts: numba and BLAS thread pools of `threads`."""
    n = str(max(1, int(threads)))
    return {"NUMBA_NUM_THREADS": n, "OMP_NUM_THREADS": n, "OPENBLAS_NUM_THREADS": n,
            "MKL_NUM_THREADS": n}


@contextlib.contextmanager
def connect(workers: int | None = None, scheduler: str | None = None,
            dashboard: bool = False, threads: int = 1):
    """A dask.distributed Client, closed (with its LocalCluster) on exit."""
    import dask
    from distributed import Client, LocalCluster

    address = scheduler or os.environ.get("DASK_SCHEDULER_ADDRESS")
    if address:
        try:
            client = Client(address, timeout="10s")
        except (OSError, TimeoutError) as exc:
            raise UsageError(f"cannot reach the Dask scheduler at {address} "
                             f"({' '.join(str(exc).split())})") from None
        with client:
            yield client
        return
    warm_numba_cache()
    env = dict(dask.config.get("distributed.nanny.pre-spawn-environ", {}))
    env.update(worker_environment(threads))
    with dask.config.set({"distributed.nanny.pre-spawn-environ": env,
                          "distributed.worker.daemon": False}):
        # The scheduler serves HTTP (health, and the dashboard if asked) on a free port: the
        # usual 8787 may be taken by another cluster on this machine.
        cluster = LocalCluster(n_workers=workers or default_threads(), threads_per_worker=1,
                               processes=True, host="127.0.0.1",
                               dashboard_address="127.0.0.1:0" if dashboard else None,
                               scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
                               silence_logs=logging.ERROR)
    try:
        with Client(cluster) as client:
            yield client
    finally:
        cluster.close()


def check_shared_dir(client, directory: Path, timeout_s: float = 60.0) -> None:
    """Every worker writes a probe file into `directory` and this process reads it back;
    UsageError (one line) naming the first worker whose file does not arrive."""
    try:
        client.wait_for_workers(1, timeout=timeout_s)
    except (TimeoutError, OSError):
        raise UsageError(f"no Dask worker joined the scheduler at {client.scheduler.address} "
                         f"within {timeout_s:g} s") from None
    token = uuid.uuid4().hex
    written = client.run(_write_probe, str(directory), token, on_error="return")
    problem = None
    for address, path in sorted(written.items()):
        if isinstance(path, BaseException):
            problem = problem or (address, f"it cannot write there ({type(path).__name__})")
            continue
        probe = Path(path)
        try:
            seen = probe.read_text() == token
            probe.unlink()
        except OSError:
            seen = False
        if not seen:
            problem = problem or (address, "its probe file did not appear here")
    if problem:
        raise UsageError(f"{directory.parent}: not shared with Dask worker {problem[0]} "
                         f"({problem[1]}); the output directory must be on a filesystem every "
                         "worker sees")


def _write_probe(directory: str, token: str) -> str:
    path = Path(directory) / f".probe-{token}-{os.getpid()}"
    path.write_text(token)
    return str(path)


def run_stage_task(st, force: bool, threads: int, *input_paths) -> str:
    """A Dask task: compute stage `st` from its inputs' files unless its file is already
    valid (an earlier attempt finished it); returns only the cache path."""
    if force or not cache_hit(st.path, st.key):
        set_threads(threads)
        inputs = {name: StageOutput(Path(p)) for name, p in zip(st.inputs, input_paths,
                                                                  strict=True)}
        compute_stage(st, inputs, threads, report=_fault_hook(st.name))
    return str(st.path)


def _fault_hook(name: str):
    fault, _, rest = os.environ.get(FAULT_HOOK_ENV, "").partition(":")
    stage, _, marker = rest.partition(":")
    if stage != name or fault not in ("kill", "raise"):
        return None

    def report(event, _stage, **_info):
        if event != "progress":
            return
        if fault == "raise":
            raise RuntimeError(f"fault injected by {FAULT_HOOK_ENV}")
        if not os.path.exists(marker):
            Path(marker).write_text(worker_id())
            os.kill(os.getpid(), signal.SIGKILL)

    return report


def run_on_dask(pipe, client, check_dir: bool = True) -> dict:
    """Run the pipeline's missing stages on the client's workers; the run's summary.

    A stage that raises ends the run with StageFailed naming it, after the stages that do
    not need it have finished (their files stay cached). KeyboardInterrupt (or stop())
    cancels what has not run; finished stages stay cached."""
    from distributed import wait

    pipe.prepare()
    if check_dir:
        check_shared_dir(client, pipe.cache_dir)
    t_start = time.perf_counter()
    sources, pending, ran = {}, {}, []
    threads = pipe.jobs
    for st in pipe.stages:
        if pipe.is_cached(st):
            sources[st.name] = str(st.path)
            pipe._emit("start", st, cached=True, estimate_s=st.estimate_s)
            ran.append({"name": st.name, "cached": True, "seconds": 0.0,
                        "estimate_s": round(st.estimate_s, 1)})
            continue
        fut = client.submit(run_stage_task, st, pipe.force, threads,
                            *[sources[n] for n in st.inputs],
                            key=f"rgflow-{st.name}-{st.key[:16]}", retries=RETRIES)
        sources[st.name] = fut
        pending[fut] = st
    failed: dict = {}
    last_status = time.monotonic()
    try:
        while pending:
            if pipe.stop is not None and pipe.stop():
                raise KeyboardInterrupt
            try:
                done = wait(list(pending), timeout=0.5, return_when="FIRST_COMPLETED").done
            except TimeoutError:
                done = ()
            for fut in done:
                st = pending.pop(fut)
                if fut.status == "finished":
                    meta = StageOutput(st.path).meta
                    ran.append({"name": st.name, "cached": False, "seconds": meta["seconds"],
                                "estimate_s": round(st.estimate_s, 1),
                                "worker": meta.get("worker")})
                    pipe._emit("done", st, cached=False, seconds=meta["seconds"],
                               worker=meta.get("worker"))
                else:
                    failed[st.name] = fut.exception() if fut.status == "error" else (
                        RuntimeError(f"task {fut.status}"))
            if time.monotonic() - last_status >= STATUS_EVERY_S and pending:
                last_status = time.monotonic()
                running = _running_stages(client, pending)
                pipe._emit("status", None, done=len(ran), total=len(pipe.stages),
                           running=running)
    finally:
        if pending:
            client.cancel(list(pending))
    if failed:
        root = next(name for name in failed
                    if not any(i in failed for i in pipe.by_name[name].inputs))
        raise StageFailed(root, failed[root])
    outputs = {st.name: StageOutput(st.path) for st in pipe.stages}
    return pipe.finish(outputs, ran, t_start)


def _running_stages(client, pending: dict) -> list:
    """Names of the pending stages some worker is computing now."""
    try:
        keys = {k for ks in client.run(_executing).values() for k in ks}
    except Exception:  # a worker is busy starting or gone: skip this status line's detail
        return []
    return [st.name for fut, st in pending.items() if fut.key in keys]


def _executing(dask_worker) -> list:
    return [ts.key for ts in dask_worker.state.executing]


def warm_numba_cache() -> None:
    """Compile (or load) every cached numba kernel the stages use, once, in this process,
    by running the tiny preset with one seed in a scratch directory. Skipped when a stamp
    for this code and these numba/numpy versions exists beside the numba cache."""
    import dataclasses

    from ..npzio import versions
    from .presets import get_preset
    from .runner import Pipeline

    here = Path(__file__).resolve().parent.parent
    h = hashlib.sha256(repr(sorted(versions().items())).encode())
    for path in sorted(here.glob("*.py")):
        h.update(path.read_bytes())
    cache_dir = Path(os.environ.get("NUMBA_CACHE_DIR") or here / "__pycache__")
    stamp = cache_dir / f"rgflow-numba-warm-{h.hexdigest()[:16]}"
    if stamp.exists():
        return
    import numba

    threads = numba.get_num_threads()
    try:
        with tempfile.TemporaryDirectory(prefix="rgflow-warm-") as tmp:
            tiny = dataclasses.replace(get_preset("tiny"), seeds=1)
            Pipeline(tiny, Path(tmp) / "out", jobs=1).run_stages()
    finally:
        set_threads(threads)
    with contextlib.suppress(OSError):
        cache_dir.mkdir(parents=True, exist_ok=True)
        stamp.write_text("numba kernels of rgflow reproduce compiled and cached\n")
