"""SessionDriver: the one thread that owns a core Session while the app shows it.

Threading: the driver's worker thread is the only thread that touches the Session. Between
steps it runs queued commands (key actions that change the session), steps it in ~30 ms
chunks while running (a chunk ends early as soon as a command is queued, so a key press is
handled within one step), and publishes an immutable rgflow.core.session.Frame plus a few
display extras at most `fps` times a second, or at once after a command. Heavy display-only
analysis (correlator maps, G(r)) runs on a second thread on copies of the data.

Each piece of shared state has one writer:
- the UI thread writes `running`, `view`, `selected_unit`, `rg_level_index`, `classifier`,
  the command queue (through submit) and publish requests;
- the worker writes `session`, `published`, `analysis`, the job and every counter it serves.

The driver never imports Textual: it tells its listener (the app, or a test's recorder)
what happened through plain method calls made on the worker thread.
"""

import dataclasses
import gc
import queue
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from rgflow.core.errors import RgflowError

if TYPE_CHECKING:
    from rgflow.core.session import Session

CHUNK_SECONDS = 0.03  # one worker chunk: 20-50 ms keeps pause/quit/save within a frame
IDLE_WAIT = 0.1  # worker's sleep when paused (woken at once by any command)
ANALYSIS_MIN_PERIOD = 2.0  # seconds between recomputations of a visible analysis ...
ANALYSIS_DUTY = 0.15  # ... and at most this fraction of one core
RBM_VIEW_DUTY = 0.05  # the RBM view (3 matrix-vector products): <= this share of the worker
RATE_WINDOW = 0.5  # seconds of running time per simulation-rate reading
COMPILING_SECONDS = 3.0  # a start-up step slower than this compiled kernels (~1 s when cached)
ANALYSIS_OF_VIEW = {"correlators": "corr", "plots": "gr"}  # computed only while shown

# a command runs on the worker with the Session; a returned string is shown as a notification
Command = Callable[["Session"], str | None]


def default_threads() -> int:
    """numba threads in the app: one core is left for the UI."""
    from rgflow.core.cpu import available_cores

    return max(1, available_cores() - 1)


def set_numba_threads(n: int) -> None:
    # numba's thread count is per calling thread: every thread that runs kernels sets it
    import numba

    numba.set_num_threads(max(1, min(int(n), numba.config.NUMBA_NUM_THREADS)))


def collector_on_if_compiling(started: float) -> None:
    """`rgflow` starts with the garbage collector off (tui/cli/app_cmds.py). A start-up step
    this slow means numba is compiling (a cold cache), which leaves much cyclic garbage
    (measured peak of a cold start: 258 MB with the collector, 337 MB without): turn it
    back on now."""
    if time.perf_counter() - started > COMPILING_SECONDS:
        gc.enable()


@dataclass(frozen=True)
class Opening:
    """A save to open: read and checked on the main thread (its errors are one line before
    the window opens), rebuilt into a Session on the worker."""

    build: Callable[[], "Session"]
    preview: object  # rgflow.core.frame.Frame (saved_frame)


@dataclass(frozen=True)
class Published:
    """What the worker hands to the UI: an immutable frame plus display extras."""

    seq: int
    frame: object  # rgflow.core.session.Frame
    extras: dict = field(default_factory=dict)
    commands: int = 0  # commands executed before this frame was taken


class DriverListener:
    """What the driver tells the UI. Every method is called on the worker thread and must
    not block it (the app posts a message and returns), live() excepted."""

    def frame_ready(self) -> None:
        """A new frame (or analysis result) was published."""

    def notify(self, message: str, severity: str = "information", timeout: float = 4) -> None:
        """A command's message or error, for a notification."""

    def progress(self, label: str, done: int, total: int) -> None:
        """Start-up progress ('' when done)."""

    def live(self) -> None:
        """The first frame (the preview of a new session, or the session's own) is
        published: show the live views. The one method that may block, briefly: the
        worker's next work (loading numba or the other kernels) can wait until that frame
        is on screen."""

    def kernels_ready(self) -> None:
        """Every kernel is compiled: enable the actions."""

    def crashed(self, message: str) -> None:
        """The worker stopped on an unexpected error (message says which)."""

    def call(self, fn: Callable[[], None]) -> None:
        """Run fn on the UI thread (a command's follow-up, e.g. exit after a save)."""


class SessionDriver:
    def __init__(self, session=None, *, config=None, opening: "Opening | None" = None,
                 fps: float = 12.0, threads: int | None = None, warm_up: bool = True,
                 listener: DriverListener | None = None) -> None:
        """session: a core Session; or None to build one on the worker, so the window
        appears before numba is even imported: from `opening` (a save), else
        Session(config). Either way a preview of its lattice is shown first."""
        self.session = session  # written only by the worker once it has started
        self.config = config
        self.opening = opening
        self.start_error: RgflowError | None = None  # building the session failed on it
        self.fps = max(1.0, float(fps))
        self.threads = int(threads) if threads else default_threads()
        self.warm_up_needed = warm_up
        self.listener = listener or DriverListener()
        # UI-thread state, read by the worker
        self.running = False
        self.view = "dashboard"
        self.selected_unit = 0
        self.rg_level_index = 0
        # the classifier thermometer's calibration (replaced, never changed, so either
        # thread may hold a reference)
        self.classifier: dict | None = None
        self.commands_submitted = 0
        self._pub_want = 0  # publish requests from the UI
        # worker <-> UI
        self._commands: queue.SimpleQueue = queue.SimpleQueue()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # worker state, read by the UI
        self.published: Published | None = None
        self.commands_done = 0
        self._pub_done = 0
        self.job: Iterator | None = None
        self.job_progress: tuple[int, int] | None = None
        self.analysis: dict[str, dict] = {}  # each value immutable
        self.analysis_version = 0
        self.generation = 0  # bumped when the session is replaced or resized
        self.stopped_by_error = False
        # worker-only state
        self._seq = 0
        self._publish_due = 0.0  # when the next periodic frame is due (perf_counter)
        self._rate_acc = [0.0, 0.0]  # spin updates, seconds (current window)
        self._rate = float("nan")
        self._thermometer = None
        self._flow_history: list[tuple[int, float]] = []
        self._flow_reading: dict | None = None
        self._flow_key = None
        self._classifier_key = None
        self._classifier_reading: dict | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._rbm_view: dict | None = None  # newest RBM part of a frame, and its cost
        self._rbm_time = 0.0
        self._rbm_cost = 0.0
        self._futures: dict[str, tuple[Future, float, tuple]] = {}
        self._analysis_due: dict[str, tuple] = {}
        self._analysis_cost: dict[str, float] = {}
        self._analysis_time: dict[str, float] = {}

    # ---- UI thread ----------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self.run, name="rgflow-session", daemon=True)
        self._thread.start()

    def stop(self, join: float | None = None) -> None:
        """Ask the worker to stop after its current step; join waits up to that long."""
        self._stop.set()
        self._wake.set()
        if join is not None and self._thread is not None \
                and self._thread is not threading.current_thread():
            self._thread.join(join)

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def submit(self, command: Command) -> int:
        """Queue a change of the session for the worker (runs before the next step).
        Returns the command's number: frames with .commands >= it show its effect."""
        self.commands_submitted += 1
        self._commands.put(command)
        self._wake.set()
        return self.commands_submitted

    def set_running(self, on: bool) -> None:
        self.running = bool(on)
        self._wake.set()

    def request_publish(self) -> None:
        """Ask the worker for a fresh frame (e.g. another unit's weights)."""
        self._pub_want += 1
        self._wake.set()

    def wake(self) -> None:
        self._wake.set()

    @property
    def publish_requested(self) -> bool:
        return self._pub_want != self._pub_done

    @property
    def caught_up(self) -> bool:
        """Every submitted command has run and a frame was published after it."""
        pub = self.published
        return (pub is not None and not pub.frame.preview and self.job is None
                and pub.commands >= self.commands_submitted and not self.publish_requested)

    # ---- worker thread ------------------------------------------------------------------
    def stopping(self) -> bool:
        return self._stop.is_set()

    def run(self) -> None:
        """The worker thread's body. Errors end in listener.crashed, never silently."""
        try:
            self._start_up()
            self.main_loop()
        except Exception as exc:
            gc.enable()  # off during start-up (tui/cli/app_cmds.py), which ends here
            self.stopped_by_error = True
            if self.session is None and isinstance(exc, RgflowError):
                self.start_error = exc  # e.g. a save whose RBM cannot be rebuilt
            self.listener.crashed(f"{type(exc).__name__}: {exc}")
        finally:
            if self._executor is not None:
                self._executor.shutdown(wait=False, cancel_futures=True)

    def _start_up(self) -> None:
        listener = self.listener
        total = 2 + (len(WARM_UP_LABELS) if self.warm_up_needed else 0)
        started = time.perf_counter()
        shown = False  # listener.live() called
        if self.session is None:
            shown = self._publish_preview()
            if self.opening is not None:
                listener.progress("Opening the save", 0, total)
                self.session = self.opening.build()
            else:
                listener.progress("Creating the session", 0, total)
                from rgflow.core.session import Session

                self.session = Session(self.config)
        collector_on_if_compiling(started)
        set_numba_threads(self.threads)
        stages = self.warm_up_stages() if self.warm_up_needed else []
        total = 2 + len(stages)
        listener.progress("Loading the display kernels", 1, total)
        self.publish(force=True)
        if not shown:
            listener.live()
        # OpenBLAS's threads, left out of the start when numpy was imported by `rgflow`
        # (rgflow.core.blas): back before any GEMM whose result is kept or shown
        from rgflow.core.blas import restore_default_threads

        restore_default_threads()
        for i, (label, fn) in enumerate(stages):
            if self.stopping():
                return
            listener.progress(f"Loading {label}", 2 + i, total)
            started = time.perf_counter()
            fn()
            collector_on_if_compiling(started)
        listener.progress("", total, total)
        listener.kernels_ready()
        self._executor = ThreadPoolExecutor(
            1, thread_name_prefix="rgflow-analysis",
            initializer=set_numba_threads, initargs=(self.threads,))

    def _publish_preview(self) -> bool:
        """Publish the lattice the session will start from (core/frame.py: no numba needed)
        and wait until it is on screen: the window shows the lattice ~0.35 s sooner than if
        it waited for numba to load and the session to be built. False: no preview (a new
        lattice too big to draw without numba)."""
        if self.opening is not None:
            frame = self.opening.preview
        else:
            from rgflow.core.config import SessionConfig
            from rgflow.core.frame import initial_frame

            frame = initial_frame(self.config or SessionConfig())
        if frame is None:
            return False
        extras = {"rate": float("nan"), "generation": self.generation}
        self._seq += 1
        self.published = Published(self._seq, frame, extras, self.commands_done)
        self.listener.frame_ready()
        self.listener.live()
        return True

    def warm_up_stages(self) -> list[tuple[str, Callable[[], object]]]:
        """Compile (or load from numba's cache) every kernel on a tiny session, so no key
        press later waits for a compilation."""
        from rgflow.core.config import SessionConfig
        from rgflow.core.session import Session

        tiny_box: list = []
        base = self.session.config if self.session is not None else self.config

        def tiny():
            if not tiny_box:
                kwargs = {} if base is None else {"dtype": base.dtype, "units": base.units}
                tiny_box.append(Session(SessionConfig(
                    L=4, batch=2, chains=2, dataset_capacity=8, sample_spacing=1,
                    flow_chains=2, monitor_every=1, **kwargs)))
            return tiny_box[0]

        def monte_carlo():
            t = tiny()
            for algorithm in ("metropolis", "heatbath", "wolff"):
                t.set_algorithm(algorithm)
                t.sweep(1)
            t.set_algorithm("metropolis")

        def training():
            t = tiny()
            for _ in range(4):
                t.step()

        def rg_and_flow():
            t = tiny()
            from rgflow.core.config import RG_RULES

            for rule in RG_RULES:
                t.rg_levels(rule)
            t.flow_step()

        return list(zip(WARM_UP_LABELS, (monte_carlo, training, rg_and_flow), strict=True))

    def main_loop(self) -> None:
        while not self.stopping():
            self.cycle()

    def cycle(self, idle_wait: float = IDLE_WAIT) -> None:
        """One pass of the worker loop (tests call it directly, without a thread)."""
        self._wake.clear()
        ran = self._drain_commands()
        if ran or self._collect_analysis() or self.publish_requested:
            self.publish(force=True)  # a key's effect is on screen before more steps
        busy = self.running or self.job is not None
        if busy:
            self._chunk()
            self.publish()  # at most fps frames a second
        self._schedule_analysis()
        if not busy and not ran:
            self._wake.wait(idle_wait)

    def _interrupted(self) -> bool:
        return (not self._commands.empty()) or self.publish_requested or self.stopping()

    def _chunk(self) -> None:
        """One time slice: simulation steps and/or a queued job. Ends early when a command
        arrives, so key presses wait for at most one step."""
        clock = time.perf_counter
        start = clock()
        # end in time for the next frame, however long a chunk may be
        deadline = min(start + CHUNK_SECONDS, max(start, self._publish_due))
        if self.job is not None:
            job_deadline = start + (CHUNK_SECONDS / 2 if self.running else CHUNK_SECONDS)
            self._run_job(lambda: clock() >= job_deadline or self._interrupted())
        if self.running:
            s = self.session
            sweeps0, steps0, t0 = s.sweeps, s.step_count, clock()

            def stop() -> bool:
                # a key press still ends the chunk before any step; a frame that is already
                # due (a loaded machine) does not: every chunk takes one step at least
                if not self.running or self._interrupted():
                    return True
                return s.step_count > steps0 and clock() >= deadline

            s.run_steps(1 << 60, stop=stop)
            self._count_rate((s.sweeps - sweeps0) * s.config.L ** 2, clock() - t0)

    def _count_rate(self, updates: float, seconds: float) -> None:
        acc = self._rate_acc
        acc[0] += updates
        acc[1] += seconds
        if acc[1] >= RATE_WINDOW:
            self._rate = acc[0] / acc[1]
            acc[0] = acc[1] = 0.0

    def start_job(self, job: Iterator[tuple[int, int]], total: int) -> None:
        """Worker (inside a command): run job's steps in slices between chunks."""
        self.job = job
        self.job_progress = (0, total)

    def cancel_job(self) -> tuple[int, int] | None:
        """Worker (inside a command): drop the job; returns its last progress."""
        done = self.job_progress if self.job is not None else None
        self.job = None
        self.job_progress = None
        return done

    def _run_job(self, stop: Callable[[], bool]) -> None:
        while not stop():
            try:
                self.job_progress = next(self.job)
            except StopIteration:
                self.cancel_job()
                self._pub_done -= 1  # publish once more: the job's end is on screen
                return
            except RgflowError as exc:
                self.cancel_job()
                self.listener.notify(str(exc), severity="error", timeout=6)
                return

    def _drain_commands(self) -> bool:
        ran = False
        while True:
            try:
                command = self._commands.get_nowait()
            except queue.Empty:
                return ran
            self._execute(command)
            ran = True

    def _execute(self, command: Command) -> None:
        try:
            message = command(self.session)
        except RgflowError as exc:
            self.listener.notify(str(exc), severity="error", timeout=6)
        except Exception as exc:  # never let one bad command kill the worker
            self.listener.notify(f"{type(exc).__name__}: {exc}", severity="error", timeout=8)
        else:
            if message:
                self.listener.notify(message, timeout=3)
        finally:
            self.commands_done += 1

    def replace_session(self, session) -> None:
        """Worker (inside a command): show another session (open); drops everything
        derived from the old one."""
        self.cancel_job()
        self.session = session
        self.session_changed()

    def session_changed(self) -> None:
        """Worker: after open / a new L, drop everything derived from the old session."""
        self.generation += 1
        self._rbm_view = None
        self.analysis = {}
        self.analysis_version += 1
        self._analysis_due.clear()
        self._flow_history = []
        self._flow_key = None
        self._classifier_key = None
        self._rate_acc = [0.0, 0.0]

    def publish(self, force: bool = False) -> None:
        now = time.perf_counter()
        if not force and now < self._publish_due:
            return
        want, done = self._pub_want, self.commands_done
        s = self.session
        # the RBM view costs ~90 ms for 16384 -> 4096: refresh it less often when it is big
        fresh_rbm = self._rbm_view is None or (
            self.view in ("dashboard", "rbm")
            and now - self._rbm_time >= self._rbm_cost / RBM_VIEW_DUTY)
        t0 = time.perf_counter()
        frame = s.frame(with_weights=False, with_rbm=fresh_rbm)
        if fresh_rbm:
            self._rbm_view, self._rbm_time = frame.rbm, now
            self._rbm_cost = time.perf_counter() - t0
        else:
            frame = dataclasses.replace(frame, rbm=self._rbm_view)
        n_hidden = s.config.n_hidden
        unit = min(self.selected_unit, n_hidden - 1)
        weights, unit_field = unit_weights(s.trainer.rbm, unit, s.config.L)
        extras = {
            "unit": unit,
            "weights": weights,
            "field": unit_field,  # the unit's receptive field (L, L) bool; None: every site
            "receptive_field": s.config.field_radius,
            "rate": self._rate if self.running else float("nan"),
            "job": self.job_progress,
            "flow": self._read_flow(frame),
            "classifier": self._read_classifier(frame),
            "flow_history": tuple(self._flow_history),
            "generation": self.generation,
            "monitor_every": s.config.monitor_every,
            "rg_b": s.config.rg_b,
            "hidden": n_hidden,
        }
        self._seq += 1
        self.published = Published(self._seq, frame, extras, done)
        self._pub_done = want
        # a fixed cadence: a chunk's last kernel call overshooting a little does not push
        # every later frame back (which would draw fewer than fps frames a second)
        period = 1.0 / self.fps
        self._publish_due = max(self._publish_due + period, now + period / 2)
        self.listener.frame_ready()

    def _read_flow(self, frame) -> dict | None:
        """Temperature reading of the flow chains (cheap; only when they changed)."""
        if frame.flow_v is None:
            self._flow_history = []
            self._flow_reading = None
            return None
        key = (self.generation, frame.flow_step, frame.flow_v.shape)
        if key == self._flow_key:
            return self._flow_reading
        from rgflow.core.live_analysis import FlowThermometer

        if self._thermometer is None or self._thermometer.L != frame.L:
            self._thermometer = FlowThermometer(frame.L)
        reading = self._thermometer.read(frame.flow_v)
        if self._flow_history and frame.flow_step <= self._flow_history[-1][0]:
            self._flow_history = []  # the flow was reset
        self._flow_history.append((frame.flow_step, reading["T"]))
        self._flow_key = key
        self._flow_reading = reading
        return reading

    def _read_classifier(self, frame) -> dict | None:
        """The classifier thermometer's reading of the flow chains (when calibrated for
        this L; recomputed only when the chains or the calibration change)."""
        cal = self.classifier
        if frame.flow_v is None or cal is None or cal["L"] != frame.L:
            return None
        key = (self.generation, frame.flow_step, frame.flow_v.shape, id(cal))
        if key != self._classifier_key:
            from rgflow.core.live_analysis import classifier_reading

            self._classifier_reading = classifier_reading(cal, frame.flow_v)
            self._classifier_key = key
        return self._classifier_reading

    # analysis on a second thread, on copies of the data, only for the visible view
    def _schedule_analysis(self) -> None:
        if self._executor is None:
            return
        wanted = ANALYSIS_OF_VIEW.get(self.view)
        if wanted is None or wanted in self._futures:
            return
        s = self.session
        key = self._analysis_key(wanted)
        period = max(ANALYSIS_MIN_PERIOD,
                     self._analysis_cost.get(wanted, 0.0) / ANALYSIS_DUTY)
        last = self._analysis_time.get(wanted, -1e9)
        if key == self._analysis_due.get(wanted) or time.perf_counter() - last < period:
            return
        from rgflow.core import live_analysis as analysis

        if wanted == "corr":
            data = s.training_data()[-analysis.CORRELATOR_SAMPLES:].copy()
            if len(data) < 10:
                return
            args = (analysis.correlators, data, s.trainer.rbm.copy(), s.config.rg_b)
        else:
            data = s.training_data()[-analysis.TWO_POINT_SAMPLES:].copy()
            if len(data) < 2:
                return
            level = min(self.rg_level_index + 1, s.config.effective_rg_levels)
            args = (analysis.two_point, data, s.trainer.rbm.copy(), s.rg_rule,
                    s.config.rg_b, level, s.config.seed, s.sweeps)
        self._analysis_due[wanted] = key
        self._analysis_time[wanted] = time.perf_counter()
        future = self._executor.submit(_timed, *args)
        self._futures[wanted] = (future, time.perf_counter(), key)

    def _analysis_key(self, kind: str) -> tuple:
        s = self.session
        key = (self.generation, s.dataset_count, s.trainer.steps_done)
        if kind == "gr":
            key += (s.rg_rule, self.rg_level_index)
        return key

    def _collect_analysis(self) -> bool:
        collected = False
        for kind, (future, _, key) in list(self._futures.items()):
            if not future.done():
                continue
            del self._futures[kind]
            try:
                result, cost = future.result()
            except Exception as exc:
                self.listener.notify(f"{kind} analysis failed: {type(exc).__name__}: {exc}",
                                     severity="warning", timeout=6)
                continue
            self._analysis_cost[kind] = cost
            if key[0] != self.generation:
                continue  # computed for a session that has since been replaced
            result["train_step"] = key[2]
            self.analysis = {**self.analysis, kind: result}
            self.analysis_version += 1
            collected = True
        return collected


WARM_UP_LABELS = ("Monte Carlo kernels", "RBM training kernels", "RG and RBM flow kernels")


def _timed(fn, *args):
    start = time.perf_counter()
    result = fn(*args)
    return result, time.perf_counter() - start


def unit_weights(rbm, unit: int, L: int):
    """(weights (L, L) float64, receptive field (L, L) bool or None) of one hidden unit,
    read-only; a locally connected RBM's column is built from its patch alone."""
    from rgflow.core.rbm_local import LocalRBM

    if isinstance(rbm, LocalRBM):
        column, sites = rbm.unit_weights(unit)
        sites = sites.reshape(L, L)
        sites.setflags(write=False)
    else:
        column, sites = rbm.W[:, unit], None
    weights = np.array(column, dtype=np.float64).reshape(L, L)
    weights.setflags(write=False)
    return weights, sites
