"""The Textual app: a thin, live driver of one core Session.

Threading (DESIGN.md principle 6): one exclusive thread worker owns the Session. Between
steps it runs queued commands (key actions that change the session), steps it in ~30 ms
chunks while running (a chunk ends early as soon as a command is queued, so a key press
is handled within one step), and publishes an immutable rgflow.core.session.Frame plus a few
display extras at most `fps` times a second, or at once after a command. Heavy display-only
analysis (correlator maps, G(r)) runs on a second thread on copies of the data. The UI thread
only draws the newest published frame. Widgets are touched only on the UI thread; the
Session only on the worker thread.
"""

import dataclasses
import gc
import os
import queue
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from textual import events
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Grid, Vertical
from textual.message import Message
from textual.reactive import reactive
from textual.screen import Screen
from textual.widgets import ContentSwitcher, Footer, LoadingIndicator, ProgressBar, Static

from rgflow.core.errors import RgflowError, UsageError
from rgflow.core.exact import TC

from .cli.common import format_seconds
from .widgets.heatmap import HeatMap, HeatMapGrid
from .widgets.lattice import LatticeView
from .widgets.plot import PlotView

if TYPE_CHECKING:
    from rgflow.core.session import Session

VIEWS = ("dashboard", "rbm", "correlators", "plots", "flow")
VIEW_TITLES = {
    "dashboard": "Lattice · RG · RBM",
    "rbm": "RBM",
    "correlators": "⟨v h⟩ correlators",
    "plots": "Plots",
    "flow": "RBM flow",
}
# The panes of each view, in reading order. Wide terminals show a whole view at once; in
# smaller ones a view is split into pages of 2 (or 1) panes that v / tab step through.
PANES = {
    "dashboard": ("lattice", "rg-pane", "dash-recon", "dash-plot"),
    "rbm": ("rbm-v", "rbm-hidden", "rbm-recon", "rbm-recon-sample", "rbm-weights", "rbm-info"),
    "correlators": ("corr-rg", "corr-rbm", "corr-info", "corr-grid"),
    "plots": ("plot-energy", "plot-m", "plot-gr", "plot-train", "plot-flow-m", "plot-flow-t"),
    "flow": ("flow-0", "flow-1", "flow-2", "flow-info", "flow-hist"),
}
PANES_PER_PAGE = {"wide": None, "compact": 2, "tiny": 1}
WIDE_MIN = (110, 30)  # columns, rows for whole views
TINY_MAX = (60, 18)  # below either: one pane per page, no borders

CHUNK_SECONDS = 0.03  # one worker chunk: 20-50 ms keeps pause/quit/save within a frame
IDLE_WAIT = 0.1  # worker's sleep when paused (woken at once by any command)
ANALYSIS_MIN_PERIOD = 2.0  # seconds between recomputations of a visible analysis ...
ANALYSIS_DUTY = 0.15  # ... and at most this fraction of one core
RBM_VIEW_DUTY = 0.05  # the RBM view (3 matrix-vector products): <= this share of the worker
RATE_WINDOW = 0.5  # seconds of running time per simulation-rate reading
SWITCH_INTERVAL = 0.001  # seconds (Python's default is 0.005)
BIG_LATTICE = 64  # from this L on, maps beside the lattice refresh at most SLOW_PANE_HZ
SLOW_PANE_HZ = 4.0
WARM_UP_STAGES = 3  # Monte Carlo, training, RG + flow (see _warm_up_stages)
# the loading spinner appears only if loading lasts this long (a cold numba cache): on a warm
# one the live lattice comes first, and animating the spinner would take the UI thread's
# share of the GIL from the start-up work
SPINNER_DELAY = 1.5  # seconds after mount
COMPILING_SECONDS = 3.0  # a start-up step slower than this compiled kernels (~1 s when cached)

# a command runs on the worker with the Session; a returned string is shown as a notification
Command = Callable[["Session"], str | None]


def default_threads() -> int:
    """numba threads in the app: one core is left for the UI (DESIGN.md)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, (cores or 1) - 1)


def _set_numba_threads(n: int) -> None:
    # numba's thread count is per calling thread: every thread that runs kernels sets it
    import numba

    numba.set_num_threads(max(1, min(int(n), numba.config.NUMBA_NUM_THREADS)))


class FrameReady(Message):
    """The worker published a new frame (or analysis result): draw it now."""


class UiCall(Message):
    """Run a callable on the UI thread (posted from other threads, never blocking them)."""

    def __init__(self, fn: Callable[[], None]) -> None:
        super().__init__()
        self.fn = fn


@dataclass(frozen=True)
class Published:
    """What the worker hands to the UI: an immutable frame plus display extras."""

    seq: int
    frame: object  # rgflow.core.session.Frame
    extras: dict = field(default_factory=dict)
    commands: int = 0  # commands executed before this frame was taken


class RgflowApp(App):
    CSS_PATH = "app.tcss"
    TITLE = "rgflow"
    ENABLE_COMMAND_PALETTE = True

    BINDINGS = [
        Binding("space", "toggle_run", "Run/Pause", id="run"),
        Binding("n", "step", "Step", id="step"),
        Binding("equals_sign", "temperature(0.01)", "T +0.01", show=False, id="t-up"),
        Binding("plus,shift+equals_sign", "temperature(0.1)", "T +0.1", key_display="+/-",
                id="t-up-big"),
        Binding("minus", "temperature(-0.01)", "T -0.01", show=False, id="t-down"),
        Binding("underscore,shift+minus", "temperature(-0.1)", "T -0.1", show=False,
                id="t-down-big"),
        Binding("a", "cycle_algorithm", "Algorithm", id="algorithm"),
        Binding("r", "cycle_rg_rule", "RG rule", show=False, id="rg-rule"),
        Binding("left_square_bracket", "rg_level(-1)", "RG level -", show=False, id="rg-down"),
        Binding("right_square_bracket", "rg_level(1)", "RG level +", show=False, id="rg-up"),
        Binding("t", "toggle_training", "Train", id="train"),
        Binding("f", "flow_step", "Flow", id="flow"),
        Binding("up,k", "select_unit(0,-1)", "Unit up", show=False, id="unit-up"),
        Binding("down,j", "select_unit(0,1)", "Unit down", show=False, id="unit-down"),
        Binding("left,h", "select_unit(-1,0)", "Unit left", show=False, id="unit-left"),
        Binding("right,l", "select_unit(1,0)", "Unit right", show=False, id="unit-right"),
        Binding("v,tab", "next_view", "View", id="view"),
        Binding("shift+tab", "next_view(-1)", "Previous view", show=False, id="view-back"),
        *[Binding(str(i + 1), f"show_view('{name}')", f"View: {VIEW_TITLES[name]}", show=False,
                  id=f"view-{name}") for i, name in enumerate(VIEWS)],
        Binding("s", "save", "Save", id="save"),
        Binding("o", "open", "Open", show=False, id="open"),
        Binding("question_mark,f1", "help", "Help", key_display="?", id="help"),
        Binding("q", "quit_app", "Quit", id="quit"),
        Binding("ctrl+q", "quit_now", "Quit at once (autosave)", show=False, priority=True,
                id="quit-now"),
    ]

    # actions that touch the session: greyed out until the kernels are compiled
    NEEDS_KERNELS = {"toggle_run", "step", "temperature", "cycle_algorithm", "cycle_rg_rule",
                     "toggle_training", "flow_step", "save", "save_as", "open"}

    view = reactive("dashboard")
    page = reactive(0)
    selected_unit = reactive(0)
    rg_level_index = reactive(0)

    def __init__(self, session=None, *, fps: float = 12.0, saves_dir=None,
                 warm_up: bool = True, save_path: Path | None = None,
                 autorun: bool | None = None, threads: int | None = None,
                 config=None) -> None:
        """session: a core Session, or None to build Session(config) on the worker (so the
        window appears before numba is even imported). autorun: start running once ready
        (default: yes for a new session, no for an opened save)."""
        super().__init__()
        self.session = session  # touched only by the worker once it has started
        self._config = config
        self.fps = max(1.0, float(fps))
        self.saves_dir = saves_dir
        # signals autosave, periodic autosaves, a dropped session offered (tui/lifecycle.py)
        self.guard_session = False
        self.autosave_seconds: float | None = None
        self.save_path = Path(save_path) if save_path is not None else None
        self.autorun = (save_path is None) if autorun is None else bool(autorun)
        self.threads = int(threads) if threads else default_threads()
        self._warm_up_needed = warm_up
        self.ready = False  # every kernel compiled, actions enabled
        self.live = False  # first frame published, live views shown
        self.running = False
        self.layout_mode = "wide"
        # worker <-> UI
        self._commands: queue.SimpleQueue = queue.SimpleQueue()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._pub_want = 0  # publish requests from the UI (UI thread writes)
        self._pub_done = 0  # ... the newest one served (worker writes)
        self._published: Published | None = None
        self._seq = 0
        self.commands_submitted = 0
        self.commands_done = 0
        # worker-only state
        self._publish_due = 0.0  # when the next periodic frame is due (perf_counter)
        self._job: Iterator | None = None
        self._job_progress: tuple[int, int] | None = None
        self._rate_acc = [0.0, 0.0]  # spin updates, seconds (current window)
        self._rate = float("nan")
        self._generation = 0  # bumped when the session is replaced or resized
        self._thermometer = None
        self._flow_history: list[tuple[int, float]] = []
        self._flow_reading: dict | None = None
        self._flow_key = None
        self._executor: ThreadPoolExecutor | None = None
        self._sim_worker = None
        self._rbm_view: dict | None = None  # newest RBM part of a frame, and its cost
        self._rbm_time = 0.0
        self._rbm_cost = 0.0
        self._futures: dict[str, tuple[Future, float, tuple]] = {}
        self._analysis_due: dict[str, tuple] = {}
        self._analysis_cost: dict[str, float] = {}
        self._analysis_time: dict[str, float] = {}
        # analysis results (written by the worker, read by the UI; each value immutable)
        self.analysis: dict[str, dict] = {}
        self.analysis_version = 0
        # UI-only state
        self._widgets: dict = {}
        self._main: Screen | None = None
        self._drawn_key = None
        self._drawn_seq = -1
        self._slow_time = 0.0
        self._texts: dict[str, str] = {}
        self._status_first = False
        self._pending_T: tuple[float, int] | None = None  # (T asked for, its command number)
        self._slow_stale = False
        self._draw_times: list[float] = []
        self.measured_fps = 0.0
        self.frames_drawn = 0
        self.loading_text = ""
        self.loading_log: list[str] = []
        # `rgflow reproduce` in its own thread (the session worker keeps running)
        self._reproduce_stop = threading.Event()
        self.reproduce_status = ""  # status-line field while a run is going
        self.reproduce_log: list[str] = []  # every status field shown, oldest first
        self.reproduce_result: dict | None = None  # the last run's summary, or its error
        # classifier thermometer: fitted on its own thread, then read by the worker (the dict
        # is replaced, never changed, so either thread may hold a reference)
        self.classifier: dict | None = None
        self.calibrating = False
        self._calibrate_stop = threading.Event()
        self._classifier_key = None
        self._classifier_reading: dict | None = None

    # ---- layout -------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield Static("", id="status", markup=False)
        with ContentSwitcher(initial="loading", id="views"):
            with Vertical(id="loading"):
                yield LoadingIndicator(id="loading-spinner")
                yield Static("Starting…", id="loading-text")
                yield ProgressBar(total=1, show_eta=False, id="loading-progress")
            with Grid(id="dashboard", classes="view"):
                yield LatticeView(title="spins", id="lattice")
                with ContentSwitcher(initial="rg-map", id="rg-pane"):
                    yield HeatMap(title="RG level", id="rg-map")
                    yield LatticeView(title="RG level", id="rg-spins")
                yield HeatMap(title="RBM reconstruction ⟨v'⟩", id="dash-recon")
                yield PlotView(title="E/N and |m| (· Onsager)", id="dash-plot", background=True)
            with Grid(id="rbm", classes="view"):
                yield LatticeView(title="input v", id="rbm-v")
                yield HeatMap(title="hidden ⟨h⟩", id="rbm-hidden")
                yield HeatMap(title="reconstruction ⟨v'⟩", id="rbm-recon")
                yield LatticeView(title="reconstruction sample v'", id="rbm-recon-sample")
                yield HeatMap(title="weights of unit", id="rbm-weights")
                yield Static("", id="rbm-info", classes="info", markup=False)
            with Grid(id="correlators", classes="view"):
                yield HeatMap(title="RG ⟨v h_a⟩", id="corr-rg")
                yield HeatMap(title="RBM ⟨v h_a⟩", id="corr-rbm")
                yield Static("Collecting data…", id="corr-info", classes="info", markup=False)
                yield HeatMapGrid(title="RBM ⟨v h⟩ of nearby units", id="corr-grid")
            with Grid(id="plots", classes="view"):
                yield PlotView(title="E/N (· Onsager)", id="plot-energy", background=True)
                yield PlotView(title="|m| (· Onsager)", id="plot-m", background=True)
                yield PlotView(title="G(r)", id="plot-gr", background=True)
                yield PlotView(title="training", id="plot-train", background=True)
                yield PlotView(title="flow ⟨|m|⟩ per step", id="plot-flow-m", background=True)
                yield PlotView(title="flow temperature", id="plot-flow-t", background=True)
            with Grid(id="flow", classes="view"):
                yield LatticeView(title="flow chain 1", id="flow-0")
                yield LatticeView(title="flow chain 2", id="flow-1")
                yield LatticeView(title="flow chain 3", id="flow-2")
                yield Static("", id="flow-info", classes="info", markup=False)
                yield PlotView(title="flow T per chain", id="flow-hist", background=True)
        yield Footer()

    def on_mount(self) -> None:
        # The UI thread holds the GIL while it composes a frame; a shorter switch interval
        # lets the simulation thread back in sooner (measured: ~1.5x more steps/s in-app
        # for L=128 at 20 fps on 2 cores).
        sys.setswitchinterval(SWITCH_INTERVAL)
        self._main = self.screen
        self._widgets = {w.id: w for w in self._main.query("*") if w.id}
        self._apply_layout(self.size.width, self.size.height)
        self.run_worker(self._sim_loop_guarded, thread=True, exclusive=True, group="sim",
                        name="simulation", exit_on_error=False)
        if self.guard_session:  # the real app (tui/cli/app_cmds.py), not a test's
            from .lifecycle import attach
            from .screens.recover import offer_dropped_session

            self.lifecycle = attach(self)
            if self.save_path is None:
                offer_dropped_session(self, self.open_save)
        # catches up after modal screens close; new frames are also drawn on FrameReady
        self.set_interval(1.0 / self.fps, self._draw)
        self.set_timer(SPINNER_DELAY, self._show_spinner)

    def _show_spinner(self) -> None:
        if not self.live:
            self.w("loading-spinner").display = True

    def w(self, widget_id: str):
        """A widget of the main screen by id (valid while a modal screen is on top)."""
        return self._widgets[widget_id]

    def on_resize(self, event: events.Resize) -> None:
        self._apply_layout(event.size.width, event.size.height)

    def _apply_layout(self, width: int, height: int) -> None:
        if width >= WIDE_MIN[0] and height >= WIDE_MIN[1]:
            mode = "wide"
        elif width < TINY_MAX[0] or height < TINY_MAX[1]:
            mode = "tiny"
        else:
            mode = "compact"
        screen = self._main or self.screen
        for name in PANES_PER_PAGE:
            screen.set_class(name == mode, f"-{name}")
        if mode != self.layout_mode:
            self.layout_mode = mode
            self.page = min(self.page, self.pages_of(self.view) - 1)
        self._show_page()

    def pages_of(self, view: str) -> int:
        per = PANES_PER_PAGE[self.layout_mode]
        return 1 if per is None else -(-len(PANES[view]) // per)

    def _page_list(self) -> list[tuple[str, int]]:
        return [(v, p) for v in VIEWS for p in range(self.pages_of(v))]

    def _show_page(self) -> None:
        if not self._widgets:
            return
        per = PANES_PER_PAGE[self.layout_mode]
        for view, panes in PANES.items():
            for i, pane in enumerate(panes):
                visible = per is None or (view == self.view and i // per == self.page)
                self.w(pane).display = visible
        self._drawn_key = None

    # ---- worker side --------------------------------------------------------------------
    def submit(self, command: Command) -> None:
        """Queue a change of the session for the worker (runs before the next step)."""
        self.commands_submitted += 1
        self._commands.put(command)
        self._wake.set()

    @property
    def _publish_requested(self) -> bool:
        return self._pub_want != self._pub_done

    def _request_publish(self) -> None:
        """UI thread: ask the worker for a fresh frame (e.g. another unit's weights)."""
        self._pub_want += 1
        self._wake.set()

    @property
    def settled(self) -> bool:
        """Every submitted command has run, a frame published after it, and (unless a
        dialog is on top) drawn. Tests wait for this instead of sleeping."""
        pub = self._published
        if pub is None or not self.live or self._job is not None:
            return False
        if pub.commands < self.commands_submitted or self._publish_requested:
            return False
        return not self.main_screen_active or self._drawn_seq == pub.seq

    def _later(self, fn: Callable, *args, **kwargs) -> None:
        """Run fn on the UI thread without blocking this thread."""
        self.post_message(UiCall(lambda: fn(*args, **kwargs)))

    def _notify_later(self, message: str, severity: str = "information",
                      timeout: float = 4) -> None:
        self._later(self.notify, message, severity=severity, timeout=timeout)

    def _sim_loop_guarded(self) -> None:
        try:
            self._sim_loop()
        except Exception as exc:  # report, never die silently or with a traceback
            gc.enable()  # off during start-up (tui/cli/app_cmds.py), which ends here
            self.running = False
            self._later(self._loading, f"The simulation stopped: {type(exc).__name__}: {exc}")
            self._notify_later(f"simulation stopped: {type(exc).__name__}: {exc}",
                               severity="error", timeout=30)
        finally:
            if self._executor is not None:
                self._executor.shutdown(wait=False, cancel_futures=True)

    def _stopping(self) -> bool:
        """Quit asked for, or the app is shutting down (after a crash too)."""
        worker = self._sim_worker
        return self._stop.is_set() or (worker is not None and worker.is_cancelled)

    def _sim_loop(self) -> None:
        from textual.worker import get_current_worker

        self._sim_worker = get_current_worker()
        total = 2 + (WARM_UP_STAGES if self._warm_up_needed else 0)
        started = time.perf_counter()
        if self.session is None:
            self._progress("Creating the session", 0, total)
            from rgflow.core.session import Session

            self.session = Session(self._config)
        self._collector_on_if_compiling(started)
        _set_numba_threads(self.threads)
        stages = self._warm_up_stages() if self._warm_up_needed else []
        total = 2 + len(stages)
        self._progress("Compiling the display kernels", 1, total)
        self._publish(force=True)
        self._later(self._show_live)
        for i, (label, fn) in enumerate(stages):
            if self._stopping():
                return
            self._progress(f"Compiling {label}", 2 + i, total)
            started = time.perf_counter()
            fn()
            self._collector_on_if_compiling(started)
        self._progress("", total, total)
        self._later(self._kernels_ready)
        self._executor = ThreadPoolExecutor(
            1, thread_name_prefix="rgflow-analysis",
            initializer=_set_numba_threads, initargs=(self.threads,))
        self._sim_main()

    @staticmethod
    def _collector_on_if_compiling(started: float) -> None:
        """`rgflow` starts with the garbage collector off (tui/cli/app_cmds.py). A start-up
        step this slow means numba is compiling (a cold cache), which leaves much cyclic
        garbage (measured peak of a cold start: 258 MB with the collector, 337 MB without):
        turn it back on now."""
        if time.perf_counter() - started > COMPILING_SECONDS:
            gc.enable()

    def _warm_up_stages(self) -> list[tuple[str, Callable[[], object]]]:
        """Compile (or load from numba's cache) every kernel on a tiny session, so no key
        press later waits for a compilation."""
        from rgflow.core.config import SessionConfig
        from rgflow.core.session import Session

        tiny_box: list = []
        base = self.session.config if self.session is not None else self._config

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
            for rule in ("average", "majority", "decimation"):
                t.rg_levels(rule)
            t.flow_step()

        return [("Monte Carlo kernels", monte_carlo), ("RBM training kernels", training),
                ("RG and RBM flow kernels", rg_and_flow)]

    def _progress(self, label: str, done: int, total: int) -> None:
        self._later(self._loading, label, done, total)

    def _sim_main(self) -> None:
        while not self._stopping():
            self._wake.clear()
            ran = self._drain_commands()
            if ran or self._collect_analysis() or self._publish_requested:
                self._publish(force=True)  # a key's effect is on screen before more steps
            busy = self.running or self._job is not None
            if busy:
                self._chunk()
                self._publish()  # at most fps frames a second
            self._schedule_analysis()
            if not busy and not ran:
                self._wake.wait(IDLE_WAIT)

    def _interrupted(self) -> bool:
        return (not self._commands.empty()) or self._publish_requested or self._stopping()

    def _chunk(self) -> None:
        """One time slice: simulation steps and/or a queued training job. Ends early when a
        command arrives, so key presses wait for at most one step."""
        clock = time.perf_counter
        start = clock()
        # end in time for the next frame, however long a chunk may be
        deadline = min(start + CHUNK_SECONDS, max(start, self._publish_due))
        if self._job is not None:
            job_deadline = start + (CHUNK_SECONDS / 2 if self.running else CHUNK_SECONDS)
            self._run_job(lambda: clock() >= job_deadline or self._interrupted())
        if self.running:
            s = self.session
            sweeps0, t0 = s.sweeps, clock()
            s.run_steps(1 << 60, stop=lambda: clock() >= deadline or not self.running
                        or self._interrupted())
            self._count_rate((s.sweeps - sweeps0) * s.config.L ** 2, clock() - t0)

    def _count_rate(self, updates: float, seconds: float) -> None:
        acc = self._rate_acc
        acc[0] += updates
        acc[1] += seconds
        if acc[1] >= RATE_WINDOW:
            self._rate = acc[0] / acc[1]
            acc[0] = acc[1] = 0.0

    def _run_job(self, stop: Callable[[], bool]) -> None:
        while not stop():
            try:
                self._job_progress = next(self._job)
            except StopIteration:
                self._job = None
                self._job_progress = None
                self._request_publish()
                return
            except RgflowError as exc:
                self._job = None
                self._job_progress = None
                self._notify_later(str(exc), severity="error", timeout=6)
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
            self._notify_later(str(exc), severity="error", timeout=6)
        except Exception as exc:  # never let one bad command kill the worker
            self._notify_later(f"{type(exc).__name__}: {exc}", severity="error", timeout=8)
        else:
            if message:
                self._notify_later(message, timeout=3)
        finally:
            self.commands_done += 1

    def _publish(self, force: bool = False) -> None:
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
        weights = np.array(s.trainer.rbm.W[:, unit], dtype=np.float64).reshape(s.config.L,
                                                                                 s.config.L)
        extras = {
            "unit": unit,
            "weights": weights,
            "rate": self._rate if self.running else float("nan"),
            "job": self._job_progress,
            "flow": self._read_flow(frame),
            "classifier": self._read_classifier(frame),
            "flow_history": tuple(self._flow_history),
            "generation": self._generation,
            "monitor_every": s.config.monitor_every,
            "rg_b": s.config.rg_b,
            "hidden": n_hidden,
        }
        for a in (weights,):
            a.setflags(write=False)
        self._seq += 1
        self._published = Published(self._seq, frame, extras, done)
        self._pub_done = want
        # a fixed cadence: a chunk's last kernel call overshooting a little does not push
        # every later frame back (which would draw fewer than fps frames a second)
        period = 1.0 / self.fps
        self._publish_due = max(self._publish_due + period, now + period / 2)
        self.post_message(FrameReady())

    def _read_flow(self, frame) -> dict | None:
        """Temperature reading of the flow chains (cheap; only when they changed)."""
        if frame.flow_v is None:
            self._flow_history = []
            self._flow_reading = None
            return None
        key = (self._generation, frame.flow_step, frame.flow_v.shape)
        if key == self._flow_key:
            return self._flow_reading
        from .analysis import FlowThermometer

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
        key = (self._generation, frame.flow_step, frame.flow_v.shape, id(cal))
        if key != self._classifier_key:
            from .analysis import classifier_reading

            self._classifier_reading = classifier_reading(cal, frame.flow_v)
            self._classifier_key = key
        return self._classifier_reading

    # analysis on a second thread, on copies of the data, only for the visible view
    def _schedule_analysis(self) -> None:
        if self._executor is None:
            return
        wanted = {"correlators": "corr", "plots": "gr"}.get(self.view)
        if wanted is None or wanted in self._futures:
            return
        s = self.session
        key = self._analysis_key(wanted)
        period = max(ANALYSIS_MIN_PERIOD,
                     self._analysis_cost.get(wanted, 0.0) / ANALYSIS_DUTY)
        last = self._analysis_time.get(wanted, -1e9)
        if key == self._analysis_due.get(wanted) or time.perf_counter() - last < period:
            return
        from . import analysis

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
        key = (self._generation, s.dataset_count, s.trainer.steps_done)
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
                self._notify_later(f"{kind} analysis failed: {type(exc).__name__}: {exc}",
                                   severity="warning", timeout=6)
                continue
            self._analysis_cost[kind] = cost
            if key[0] != self._generation:
                continue  # computed for a session that has since been replaced
            result["train_step"] = key[2]
            self.analysis = {**self.analysis, kind: result}
            self.analysis_version += 1
            collected = True
        return collected

    def _session_replaced(self) -> None:
        """Worker side: after open / a new L, drop everything derived from the old one."""
        self._generation += 1
        self._rbm_view = None
        self.analysis = {}
        self.analysis_version += 1
        self._analysis_due.clear()
        self._flow_history = []
        self._flow_key = None
        self._classifier_key = None
        self._rate_acc = [0.0, 0.0]

    # ---- UI side ------------------------------------------------------------------------
    @property
    def main_screen_active(self) -> bool:
        """No dialog, help or palette on top (False while shutting down)."""
        stack = self.screen_stack
        return bool(stack) and stack[-1] is self._main

    def on_ui_call(self, message: UiCall) -> None:
        if self.screen_stack:  # not while shutting down
            message.fn()

    def on_frame_ready(self, _message: FrameReady) -> None:
        self._draw()

    def _loading(self, text: str, done: int | None = None, total: int | None = None) -> None:
        self.loading_text = text
        self.loading_log.append(text)
        self.w("loading-text").update(text or "Ready")
        if done is not None:
            bar = self.w("loading-progress")
            bar.update(total=total, progress=done)
        if self.live:
            self._draw(force=True)

    def _show_live(self) -> None:
        self.live = True
        self.w("views").current = self.view
        self._draw(force=True)

    def _kernels_ready(self) -> None:
        # Everything imported and compiled so far lives as long as the app: out of the
        # collector's sight, a full collection takes ~20 ms instead of ~180 ms (numba, numpy
        # and Textual make a few hundred thousand objects), a pause any key press would wait
        # out. `rgflow` starts with the collector off (tui/cli/app_cmds.py); on from here.
        gc.collect()
        gc.freeze()
        gc.enable()
        self.ready = True
        self.loading_text = ""
        self.refresh_bindings()
        if self.autorun:
            self.running = True
            self._wake.set()
        self._draw(force=True)

    def watch_view(self, view: str) -> None:
        if self.live:
            self.w("views").current = view
        self._show_page()
        self._wake.set()  # the worker schedules the new view's analysis
        self._draw(force=True)

    def watch_page(self, _page: int) -> None:
        self._show_page()
        self._draw(force=True)

    def _draw(self, force: bool = False) -> None:
        pub = self._published
        if pub is None or not self.live or not self.main_screen_active:
            return  # drawing pauses behind modal screens
        if self._status_first:
            return  # a key's feedback goes out alone first; _status_shown draws then
        key = (pub.seq, self.view, self.page, self.layout_mode, self.selected_unit,
               self.rg_level_index, self.analysis_version, self.running, self.ready)
        f = pub.frame
        now = time.monotonic()
        # big lattices: the derived maps beside the lattice refresh at most SLOW_PANE_HZ
        slow = force or f.L < BIG_LATTICE or now - self._slow_time >= 1.0 / SLOW_PANE_HZ
        if key == self._drawn_key and not force:
            if not (self._slow_stale and slow):
                return
        else:
            self._drawn_key = key
            self._drawn_seq = pub.seq
            self._draw_times = [t for t in self._draw_times if now - t < 1.0] + [now]
            self.measured_fps = len(self._draw_times)
            self.frames_drawn += 1
            self.set_text("status", self.status_text(f, pub.extras, self.size.width))
        if slow:
            self._slow_time = now
        self._slow_stale = not slow
        getattr(self, f"_draw_{self.view}")(f, pub.extras, slow)

    def set_text(self, widget_id: str, text: str) -> None:
        """Update a fixed-size Static only when its text changes, without a layout pass
        (a layout pass makes Textual recompose the whole screen)."""
        if self._texts.get(widget_id) != text:
            self._texts[widget_id] = text
            self.w(widget_id).update(text, layout=False)

    def _update_status(self, first: bool = False) -> None:
        """Redraw just the status line. first=True (a key press): the next screen update
        carries only this line (~1 ms to compose), frames are drawn right after it."""
        pub = self._published
        if pub is not None and self.live and self.main_screen_active:
            self.set_text("status", self.status_text(pub.frame, pub.extras, self.size.width))
            if first and not self._status_first:
                self._status_first = True
                self.screen.call_after_refresh(self._status_shown)

    def _status_shown(self) -> None:
        self._status_first = False
        self._draw()

    def status_text(self, f, extras: dict, width: int) -> str:
        """The status line. Fields are dropped, least important first, until it fits."""
        if not self.ready:
            state = f"⧗ {self.loading_text or 'starting'}"
        else:
            state = "▶ running" if self.running else "⏸ paused"
        T, arrow = f.T, ""
        pending = self._pending_T
        if pending is not None:
            if self._published is not None and self._published.commands >= pending[1]:
                self._pending_T = None  # the session has it: frames show it from now on
            else:
                T, arrow = pending[0], "→"
        tc = " (Tc)" if abs(T - TC) < 5e-5 else ""
        acc = "–" if np.isnan(f.acceptance) else f"{f.acceptance:.3f}"
        rate = extras.get("rate", float("nan"))
        rate_text = "–" if not np.isfinite(rate) else _si(rate)
        job = extras.get("job")
        train = f"train {f.train_step}" + ("" if f.training else " off")
        if job:
            train += f" job {job[0]}/{job[1]}"
        name = (f.save_name or "unsaved") + (" *" if f.unsaved else "")
        pages = self.pages_of(self.view)
        page = f" {self.page + 1}/{pages}" if pages > 1 else ""
        view = f"{VIEWS.index(self.view) + 1}/{len(VIEWS)} {VIEW_TITLES[self.view]}{page}"
        # in paged layouts where you are matters more than the rest: a short form, kept
        paged = self.layout_mode != "wide"
        if paged:
            view = f"view {VIEWS.index(self.view) + 1}/{len(VIEWS)}" + (
                f" page {self.page + 1}/{pages}" if pages > 1 else "")
        # (priority, text): lower numbers survive longer
        fields = [(0, state), (0, f"T{arrow or '='}{T:.4f}{tc}"), (1, f"L={f.L} {f.algorithm}"),
                  (4, f"sweeps {f.sweeps}"), (6, f"acc {acc}"),
                  (3, f"{rate_text} flips/s"), (2, train), (7, f"{self.measured_fps:.0f} fps"),
                  (2, name), (1 if paged else 5, view)]
        if self.reproduce_status:
            fields.append((3, self.reproduce_status))
        for limit in range(8, -1, -1):
            parts = [text for prio, text in fields if prio <= limit]
            line = " " + " │ ".join(parts)
            if len(line) <= width:
                return line
        return line[:max(0, width)]

    # -- views
    def _rg_level(self, f) -> tuple[int, np.ndarray | None]:
        if not f.rg_levels:
            return 0, None
        index = min(self.rg_level_index, len(f.rg_levels) - 1)
        return index, f.rg_levels[index]

    def _draw_dashboard(self, f, extras: dict, slow: bool = True) -> None:
        self.w("lattice").set_spins(f.spins)
        if slow:
            self._draw_rg(f)
            self.w("dash-recon").set_data(f.rbm["reconstruction"], -1.0, 1.0)
        self._plot_thermo(self.w("dash-plot"), f, ("energy", "abs_m"))

    def _draw_rg(self, f) -> None:
        index, level = self._rg_level(f)
        pane = self.w("rg-pane")
        if level is None:
            return
        title = (f"RG {f.rg_rule} level {index + 1}/{len(f.rg_levels)} "
                 f"({level.shape[0]}×{level.shape[1]})  [ ]")
        if f.rg_rule == "average":
            pane.current = "rg-map"
            widget = self.w("rg-map")
            widget.set_data(level, vmin=-1.0, vmax=1.0)
        else:
            pane.current = "rg-spins"
            widget = self.w("rg-spins")
            widget.set_spins(level)
        widget.border_title = title

    def _plot_thermo(self, plot: PlotView, f, names: tuple[str, ...]) -> None:
        if not plot.display:
            return
        from rgflow.core.exact import onsager_energy_per_spin, onsager_magnetisation

        labels = {"energy": "E/N", "abs_m": "|m|"}
        for name in names:
            y = f.histories[name]
            plot.set_series(labels[name], np.arange(len(y)) - len(y) + 1.0, y)
        if "energy" in names:
            plot.set_reference("Onsager E/N", float(onsager_energy_per_spin(f.T)))
        if "abs_m" in names:
            plot.set_reference("Onsager m", float(onsager_magnetisation(f.T)))
        plot.set_labels(xlabel="sweeps ago")

    def _unit_side(self, n: int) -> int:
        side = int(round(np.sqrt(n)))
        return side if side * side == n else 0

    def _draw_rbm(self, f, extras: dict, slow: bool = True) -> None:
        L = f.L
        self.w("rbm-v").set_spins(f.rbm["v"])
        if not slow:
            return
        hidden = f.rbm["hidden"]
        side = self._unit_side(len(hidden))
        image = hidden.reshape(side, side) if side else hidden[None, :]
        unit = extras["unit"]
        hidden_map = self.w("rbm-hidden")
        hidden_map.border_title = (f"hidden ⟨h⟩ {image.shape[0]}×{image.shape[1]}")
        hidden_map.set_data(image, -1.0, 1.0)
        self.w("rbm-recon").set_data(f.rbm["reconstruction"], -1.0, 1.0)
        self.w("rbm-recon-sample").set_spins(
            np.where(f.rbm["reconstruction_sample"] > (0 if f.rbm["reconstruction_sample"].min()
                                                        < 0 else 0.5), 1, -1))
        weights = self.w("rbm-weights")
        row, col = divmod(unit, side) if side else (0, unit)
        weights.border_title = f"weights of hidden unit {unit} (row {row}, col {col})"
        weights.set_data(extras["weights"])
        m = f.metrics
        lines = [f"RBM {L * L} → {len(hidden)} visible → hidden",
                 f"train step {f.train_step}  ({'on' if f.training else 'off'}, t)",
                 f"data {f.dataset_count} stored, {f.heldout_count} held out",
                 f"unit {unit}: ⟨h⟩ = {hidden[unit]:+.3f}  (arrows / hjkl)",
                 f"|W_unit| max {np.abs(extras['weights']).max():.3g}"]
        names = {"reconstruction_error": "recon. error", "pll": "pseudo-LL",
                 "free_energy_gap": "free-energy gap", "exact_ll": "exact LL",
                 "exact_ll_heldout": "exact LL held out"}
        for key, label in names.items():
            if key in m:
                lines.append(f"{label}: {m[key]:.5g}")
        self.set_text("rbm-info", "\n".join(lines))

    def _draw_correlators(self, f, extras: dict, slow: bool = True) -> None:
        c = self.analysis.get("corr")
        if c is None:
            self.set_text("corr-info", f"Collecting data… {f.dataset_count} configurations "
                          "stored (the maps need at least 10; recomputed every few seconds "
                          "while shown)")
            return
        n_rbm = c["rbm"].shape[0]
        unit = min(extras["unit"], n_rbm - 1)
        rg_unit = min(unit, c["rg"].shape[0] - 1)
        lim = float(max(np.abs(c["rg"][rg_unit]).max(), np.abs(c["rbm"][unit]).max(), 1e-9))
        rg_map = self.w("corr-rg")
        rg_map.border_title = f"RG ⟨v h_{rg_unit}⟩ (block average)"
        rg_map.set_data(c["rg"][rg_unit], -lim, lim)
        rbm_map = self.w("corr-rbm")
        rbm_map.border_title = f"RBM ⟨v h_{unit}⟩"
        rbm_map.set_data(c["rbm"][unit], -lim, lim)
        page = 16
        start = (unit // page) * page
        grid = self.w("corr-grid")
        grid.border_title = f"RBM ⟨v h⟩ units {start}–{min(start + page, n_rbm) - 1}"
        grid.set_maps(c["rbm"][start:start + page], per_map=True)
        lines = [f"{c['n']} configurations, RBM train step {c['train_step']}",
                 f"unit {unit}  (b={c['b']}, uniform map: {c['uniform_own_block_fraction']:.4f})"]
        if "rg_own" in c:
            lines += [
                "",
                f"{'':<10}{'RG':>10}{'RBM':>10}",
                f"{'own-block':<10}{_fmt(c['rg_own'][rg_unit]):>10}{_fmt(c['rbm_own'][unit]):>10}",
                f"{'peak/far':<10}{_fmt(c['rg_ptf'][rg_unit]):>10}{_fmt(c['rbm_ptf'][unit]):>10}",
                "mean over units",
                f"{'own-block':<10}{_fmt(c['rg_own_stats']['mean']):>10}"
                f"{_fmt(c['rbm_own_stats']['mean']):>10}",
                f"{'peak/far':<10}{_fmt(c['rg_ptf_stats']['median']):>10}"
                f"{_fmt(c['rbm_ptf_stats']['median']):>10}  (median)",
                "",
                f"RBM unit {unit}: best block {int(c['rbm_block'][unit])}",
                f"RBM: {c['rbm_blocks_claimed']}/{c['n_blocks']} blocks claimed, "
                f"{100 * c['rbm_unique']:.0f}% units unique",
            ]
        elif "locality_error" in c:
            lines.append(f"locality: {c['locality_error']}")
        self.set_text("corr-info", "\n".join(lines))

    def _draw_plots(self, f, extras: dict, slow: bool = True) -> None:
        if self.w("plot-energy").display:
            self._plot_thermo(self.w("plot-energy"), f, ("energy",))
        if self.w("plot-m").display:
            self._plot_thermo(self.w("plot-m"), f, ("abs_m",))
        gr = self.w("plot-gr")
        result = self.analysis.get("gr")
        if gr.display and result is not None:
            gr.set_series("data", *result["data"])
            if "rg" in result:
                gr.set_series(f"RG {result['rg_size']}² (coarse r)", *result["rg"])
            gr.set_series("RBM recon.", *result["rbm"])
            gr.set_labels(xlabel="r", title=f"G(r), {result['n']} configs")
        train = self.w("plot-train")
        if train.display:
            steps = f.histories["train_step"]
            recon = f.histories["recon_error"]
            n = min(len(steps), len(recon))
            train.set_series("recon. error", steps[-n:], recon[-n:])
            every = extras["monitor_every"]
            for name, label in (("pll", "pseudo-LL / N"), ("fe_gap", "F gap")):
                y = f.histories[name]
                if len(y):
                    x = f.train_step - every * (np.arange(len(y))[::-1])
                    train.set_series(label, x, y)
            train.set_labels(xlabel="training step")
        self._plot_flow_m(self.w("plot-flow-m"), f)
        self._plot_flow_t(self.w("plot-flow-t"), f, extras)

    def _plot_flow_m(self, plot: PlotView, f) -> None:
        if not plot.display:
            return
        y = f.histories["flow_abs_m"]
        if f.flow_v is not None and len(y):
            y = y[-(f.flow_step + 1):]
            plot.set_series("flow ⟨|m|⟩", np.arange(len(y)) + f.flow_step - len(y) + 1.0, y)
            m = f.histories["abs_m"]
            if len(m):
                plot.set_reference("data ⟨|m|⟩", float(np.mean(m[-500:])))
            plot.set_labels(xlabel="flow step")

    def _plot_flow_t(self, plot: PlotView, f, extras: dict) -> None:
        if not plot.display:
            return
        history = extras["flow_history"]
        if history:
            x, y = zip(*history, strict=True)
            plot.set_series("flow T (Onsager E)", np.array(x, float), np.array(y, float))
            plot.set_reference(f"T = {f.T:.3f}", f.T)
            plot.set_reference("Tc", TC)
            plot.set_labels(xlabel="flow step")

    def _draw_flow(self, f, extras: dict, slow: bool = True) -> None:
        chains = f.flow_v
        for i in range(3):
            view = self.w(f"flow-{i}")
            if chains is not None and i < len(chains):
                view.set_spins(chains[i])
        reading = extras["flow"]
        m = f.histories["flow_abs_m"]
        if chains is None or reading is None:
            text = ("Press f for one RBM flow step v → h → v, starting from stored data "
                    "(palette: reset the flow from data or from random spins).")
        else:
            err = reading["T_err"]
            err_text = f" ± {err:.3f}" if np.isfinite(err) else ""
            text = (f"flow step {f.flow_step} of {len(chains)} chains (f: one more)\n"
                    f"⟨|m|⟩ = {m[-1]:.4f}\n"
                    f"T from E/N (Onsager): {reading['T']:.3f}{err_text}\n"
                    f"{self._classifier_text(f, extras.get('classifier'))}\n"
                    f"lattice T = {f.T:.4f}, Tc = {TC:.4f}")
        self.set_text("flow-info", text)
        hist = self.w("flow-hist")
        if hist.display and reading is not None:
            from .analysis import histogram

            x, y = histogram(reading["per_chain"])
            if len(x):
                hist.set_series("chains", x, y)
                top = float(y.max())
                hist.set_reference("T", (np.array([f.T, f.T]), np.array([0.0, top])))
                hist.set_reference("Tc", (np.array([TC, TC]), np.array([0.0, top])))
                hist.set_labels(xlabel="T per chain (from E/N)")

    def _classifier_text(self, f, reading: dict | None) -> str:
        """Short lines: the info pane is narrow in the wide layout."""
        cal = self.classifier
        if self.calibrating:
            return "T (classifier): calibrating…"
        if cal is None:
            return "T (classifier): not calibrated\n  palette: Calibrate classifier…"
        if cal["L"] != f.L:
            return f"T (classifier): fitted for L={cal['L']}\n  palette: calibrate again"
        if reading is None:
            return "T (classifier): –"
        err = reading["T_err"]
        err_text = f" ± {err:.3f}" if np.isfinite(err) else ""
        return (f"T (classifier): {reading['T']:.3f}{err_text}\n"
                f"  held-out accuracy {cal['heldout_accuracy']:.2f}")

    # ---- actions ------------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple) -> bool | None:
        if action in MAIN_SCREEN_ACTIONS and self._main is not None \
                and not self.main_screen_active:
            return False  # keys meant for the main screen do nothing behind a dialog
        if action in self.NEEDS_KERNELS and not self.ready:
            return None  # shown greyed out until the kernels are compiled
        return True

    def action_focus_next(self) -> None:
        # tab is bound by Screen to focus_next: on the main screen it cycles views instead
        if self.main_screen_active:
            self.action_next_view(1)
        else:
            super().action_focus_next()

    def action_focus_previous(self) -> None:
        if self.main_screen_active:
            self.action_next_view(-1)
        else:
            super().action_focus_previous()

    def action_toggle_run(self) -> None:
        self.running = not self.running
        self._wake.set()
        self._update_status(first=True)

    def action_step(self) -> None:
        self.submit(lambda s: s.step() and None)

    def action_temperature(self, delta: float) -> None:
        pub = self._published
        if pub is None:
            return
        pending = self._pending_T
        base = pending[0] if pending is not None else pub.frame.T
        target = round(max(0.01, base + delta), 6)
        self.submit(lambda s: s.set_temperature(target))
        # shown at once; the status line marks it "→" until a frame taken after the change
        self._pending_T = (target, self.commands_submitted)
        self._update_status(first=True)

    def action_cycle_algorithm(self) -> None:
        self.submit(lambda s: f"algorithm: {s.cycle_algorithm()}")

    def action_cycle_rg_rule(self) -> None:
        self.submit(lambda s: f"RG rule: {s.cycle_rg_rule()}")

    def action_rg_level(self, delta: int) -> None:
        pub = self._published
        levels = max(1, len(pub.frame.rg_levels)) if pub is not None else 1
        self.rg_level_index = int(np.clip(self.rg_level_index + delta, 0, levels - 1))
        self._wake.set()

    def watch_rg_level_index(self, _value: int) -> None:
        self._draw()

    def action_toggle_training(self) -> None:
        def toggle(s):
            s.set_training(not s.training)
            return f"training {'on' if s.training else 'off'}"
        self.submit(toggle)

    def action_flow_step(self) -> None:
        self.submit(lambda s: s.flow_step() and None)

    def action_select_unit(self, dx: int, dy: int) -> None:
        pub = self._published
        if pub is None:
            return
        n = pub.extras["hidden"]
        side = self._unit_side(n) or n
        row, col = divmod(min(self.selected_unit, n - 1), side)
        row = int(np.clip(row + dy, 0, max(0, (n - 1) // side)))
        col = int(np.clip(col + dx, 0, side - 1))
        self.selected_unit = min(n - 1, row * side + col)
        self._request_publish()  # the worker sends that unit's weights

    def action_next_view(self, step: int = 1) -> None:
        pages = self._page_list()
        index = pages.index((self.view, min(self.page, self.pages_of(self.view) - 1)))
        view, page = pages[(index + step) % len(pages)]
        self.page = page
        self.view = view

    def action_show_view(self, view: str) -> None:
        self.page = 0
        self.view = view

    def action_help(self) -> None:
        from .screens.help import HelpScreen

        self.push_screen(HelpScreen())

    def action_save(self) -> None:
        if self.save_path is None:
            self.action_save_as()
        else:
            self._save_to(self.save_path)

    def action_save_as(self) -> None:
        from .screens.dialogs import SaveDialog

        def chosen(name: str | None) -> None:
            if name:
                try:
                    self._save_to(self._resolve(name))
                except RgflowError as exc:
                    self.notify(str(exc), severity="error")

        default = self.save_path.stem if self.save_path is not None else ""
        self.push_screen(SaveDialog(self._list_saves, default), chosen)

    def _list_saves(self):
        from rgflow.core.persist import list_saves

        return list_saves(self.saves_dir)

    def _resolve(self, name: str) -> Path:
        from rgflow.core.persist import resolve_save_path

        return resolve_save_path(name, self.saves_dir)

    def _save_to(self, path: Path, then: Callable[[], None] | None = None) -> None:
        def save(s):
            s.save(path)
            s.save_name = path.stem
            self.save_path = path
            if then is not None:
                self._later(then)
            return f"saved {path}"
        self.submit(save)

    def action_open(self) -> None:
        from .screens.dialogs import SaveBrowser

        def chosen(path: Path | None) -> None:
            if path is not None:
                self.open_save(path)

        self.push_screen(SaveBrowser(self._list_saves, "Open a saved session"), chosen)

    def open_save(self, path: Path) -> None:
        """Load a save in the worker; a damaged file leaves the current session as it was."""
        path = Path(path)

        def load(_s):
            from rgflow.core.session import Session

            session = Session.load(path)  # raises SaveFileError before anything changes
            session.save_name = path.stem
            self.running = False
            self._job = None
            self._job_progress = None
            self.session = session
            self.save_path = path
            self._session_replaced()
            return f"opened {path}"
        self.submit(load)

    def action_quit_app(self) -> None:
        pub = self._published
        if pub is None or not pub.frame.unsaved:
            self.exit()
            return
        from .screens.dialogs import ConfirmQuit

        def chosen(choice: str | None) -> None:
            if choice == "quit":
                self.exit()
            elif choice == "save":
                target = self.save_path or self._resolve("autosave")
                self._save_to(target, then=self.exit)

        self.push_screen(ConfirmQuit(), chosen)

    def action_quit_now(self) -> None:
        """ctrl+q: write saves/autosave.npz, then quit at once."""
        self.running = False
        self._job = None
        if not self.ready or not self._worker_alive():
            self.exit()  # nothing has run yet (or nothing can run): nothing to save
            return
        try:
            path = self._resolve("autosave")
        except RgflowError as exc:
            self.notify(str(exc), severity="error")
            self.exit()
            return

        def save(s):
            try:
                s.save(path)
            finally:
                self._later(self.exit)
        self.submit(save)

    def _worker_alive(self) -> bool:
        return any(w.group == "sim" and not w.is_finished for w in self.workers)

    def exit(self, *args, **kwargs) -> None:
        self._stop.set()
        self._reproduce_stop.set()
        self._calibrate_stop.set()
        self._wake.set()
        super().exit(*args, **kwargs)

    # ---- command palette ----------------------------------------------------------------
    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for binding in self.BINDINGS:
            if binding.id in ("quit-now", "view-back") or binding.id.startswith("unit-"):
                continue
            key = binding.key_display or binding.key.split(",")[0]
            yield SystemCommand(binding.description, f"key: {key}",
                                lambda a=binding.action: self.call_later(self.run_action, a))
        yield SystemCommand("Quit at once", "key: ctrl+q — writes saves/autosave.npz",
                            self.action_quit_now)
        yield SystemCommand("Set temperature…", "type a temperature (or 'tc')",
                            self._ask_temperature)
        yield SystemCommand("Set lattice size L…", "restarts the lattice, data and RBM",
                            lambda: self._ask_config("L", "Lattice size L (even, 4..1024):"))
        yield SystemCommand("Set hidden units…", "re-initialises the RBM",
                            lambda: self._ask_config("hidden", "Hidden units (0 = L²/4):"))
        yield SystemCommand("Set learning rate…", "keeps the weights, resets the optimiser",
                            lambda: self._ask_config("lr", "Learning rate:"))
        yield SystemCommand("Train N steps…", "RBM updates on the stored data, in the "
                            "background", self._ask_train_steps)
        yield SystemCommand("Cancel the training job", "stops a running 'Train N steps'",
                            self.cancel_job)
        yield SystemCommand("Save as…", "save under a new name", self.action_save_as)
        yield SystemCommand("Run reproduce preset…", "the paper's experiments (tiny, quick or "
                            "paper) in the background, into saves/reproduce-<preset>",
                            self._ask_reproduce)
        yield SystemCommand("Calibrate classifier thermometer", "fits the flow view's second "
                            "thermometer on Monte Carlo data at this L, in the background",
                            self.calibrate_classifier)
        yield SystemCommand("Stop reproduce run", "stops the reproduce run at its next check "
                            "(finished stages stay cached)", self.stop_reproduce)
        yield SystemCommand("Reset flow from data", "flow chains start at stored samples",
                            lambda: self.submit(lambda s: s.flow_reset("data")))
        yield SystemCommand("Reset flow from random spins", "flow chains start at random",
                            lambda: self.submit(lambda s: s.flow_reset("random")))
        yield SystemCommand("Export view data (npz)", "the arrays of the current view",
                            self.export_view)
        yield SystemCommand("Screenshot (SVG)", "save the screen as an SVG file",
                            self.screenshot)

    def _ask(self, prompt: str, chosen: Callable[[str], None], value: str = "",
             placeholder: str = "") -> None:
        from .screens.dialogs import InputDialog

        def done(text: str | None) -> None:
            if text:
                chosen(text)
        self.push_screen(InputDialog(prompt, value=value, placeholder=placeholder), done)

    def _ask_temperature(self) -> None:
        self._ask("Temperature T:", self.set_temperature_text, placeholder="e.g. 2.269 or tc")

    def set_temperature_text(self, text: str) -> None:
        try:
            T = TC if text.strip().lower() == "tc" else float(text)
        except ValueError:
            self.notify(f"not a temperature: {text!r}", severity="error")
            return
        self.submit(lambda s: s.set_temperature(T))

    def _ask_config(self, key: str, prompt: str) -> None:
        self._ask(prompt, lambda text: self.set_config(key, text))

    def set_config(self, key: str, text: str) -> None:
        """Change one setting (validated by SessionConfig); L and the RBM are rebuilt."""
        def apply(s):
            from rgflow.core.config import SessionConfig

            value = getattr(SessionConfig.from_dict({**s.config.to_dict(), key: text}), key)
            old_L, old_hidden = s.config.L, s.config.n_hidden
            s.reconfigure(**{key: value})
            if (s.config.L, s.config.n_hidden) != (old_L, old_hidden):
                self._session_replaced()
            return f"{key} = {getattr(s.config, key)}"
        self.submit(apply)

    def _ask_train_steps(self) -> None:
        self._ask("Train how many RBM steps?", self.train_steps_text, value="100")

    def train_steps_text(self, text: str) -> None:
        try:
            n = int(text)
            if n <= 0:
                raise ValueError
        except ValueError:
            self.notify(f"not a positive whole number: {text!r}", severity="error")
            return

        def start(s):
            if not s.can_train():
                raise UsageError(f"training needs at least {s.config.batch} stored samples "
                                 f"(have {s.dataset_size})")
            self._job = _train_job(self, n)
            self._job_progress = (0, n)
            return f"training {n} steps in the background"
        self.submit(start)

    def cancel_job(self) -> None:
        def cancel(_s):
            if self._job is None:
                return "no training job is running"
            self._job = None
            done = self._job_progress
            self._job_progress = None
            return f"training job cancelled after {done[0] if done else 0} steps"
        self.submit(cancel)

    # ---- reproduce: rgflow.core.experiments.Pipeline on its own thread ---------------------------
    def _ask_reproduce(self) -> None:
        self._ask("Reproduce which preset? (tiny, quick, paper)", self.start_reproduce,
                  value="tiny")

    def reproduce_running(self) -> bool:
        return any(w.group == "reproduce" and not w.is_finished for w in self.workers)

    def start_reproduce(self, text: str) -> None:
        """Run a reproduce preset into <saves>/reproduce-<preset>; progress on the status
        line, the report path in a notification when done."""
        from rgflow.core.experiments import get_preset

        if self.reproduce_running():
            self.notify("a reproduce run is already going (palette: Stop reproduce run)",
                        severity="warning")
            return
        try:
            preset = get_preset(text.strip().lower())
        except RgflowError as exc:
            self.notify(str(exc), severity="error")
            return
        from rgflow.core.persist import saves_dir

        out = saves_dir(self.saves_dir) / f"reproduce-{preset.name}"
        self._reproduce_stop = stop = threading.Event()
        self.reproduce_result = None
        self._set_reproduce_status(f"reproduce {preset.name}: starting")
        self.run_worker(lambda: self._reproduce(preset, out, stop), thread=True,
                        group="reproduce", exclusive=True, name=f"reproduce-{preset.name}")

    def stop_reproduce(self) -> None:
        if not self.reproduce_running():
            self.notify("no reproduce run is going")
            return
        self._reproduce_stop.set()
        self.notify("stopping the reproduce run at its next check…", timeout=3)

    def _set_reproduce_status(self, text: str) -> None:
        self.reproduce_status = text
        if text:
            self.reproduce_log.append(text)
        self._update_status()

    def _reproduce(self, preset, out: Path, stop: threading.Event) -> None:
        """Thread worker. Errors end in a notification, never in the app."""
        from rgflow.core.experiments import Pipeline, check_out_dir

        state = {"index": 0, "shown": None}

        def show(text: str) -> None:
            if text != state["shown"]:  # post only changes (progress ticks are frequent)
                state["shown"] = text
                self._later(self._set_reproduce_status, text)

        def report(event, stage, **info):
            if event == "start":
                state["index"] += 1
            label = f"reproduce {state['index']}/{len(pipeline.stages)} {stage.name}"
            if event == "start":
                show(label + (" (cached)" if info["cached"] else ""))
            elif event == "progress" and info.get("total"):
                show(f"{label} {100 * info['done'] // info['total']}%")

        try:
            out.parent.mkdir(parents=True, exist_ok=True)
            check_out_dir(out, False)
            pipeline = Pipeline(preset, out, jobs=self.threads, report=report,
                                stop=stop.is_set)
            plan = pipeline.estimates()
            todo = [st for st in plan if not st["cached"]]
            estimate = sum(st["estimate_s"] for st in todo)
            self._notify_later(
                f"reproduce {preset.name}: {len(plan)} stages ({len(plan) - len(todo)} "
                f"cached), estimated {format_seconds(estimate)}; output in {out}", timeout=6)
            summary = pipeline.run()
        except KeyboardInterrupt:
            self.reproduce_result = {"stopped": True, "stage": state["index"]}
            self._notify_later(f"reproduce {preset.name} stopped in stage {state['index']}; "
                               "finished stages stay cached", severity="warning", timeout=6)
        except Exception as exc:
            message = _error_text(exc)
            self.reproduce_result = {"error": message}
            self._notify_later(f"reproduce {preset.name} failed: {message}", severity="error",
                               timeout=10)
        else:
            summary["report"] = str(out / "report.md")
            self.reproduce_result = summary
            self._notify_later(f"reproduce {preset.name} done in "
                               f"{format_seconds(summary['seconds'])}: {out / 'report.md'}",
                               timeout=10)
        finally:
            self._later(self._set_reproduce_status, "")

    # ---- classifier thermometer: calibrated on its own thread ----------------------------
    def calibrate_classifier(self) -> None:
        """Sample labelled data at the session's L and fit the classifier thermometer
        (rgflow.tui.analysis.calibrate_classifier) on a thread worker; the flow view reads the
        flow chains with it from then on."""
        if self.calibrating:
            self.notify("the classifier thermometer is being calibrated already")
            return
        self.calibrating = True
        self._calibrate_stop = stop = threading.Event()

        def start(s):  # L and seed come from the session, on its own worker
            self._later(self._start_calibration, s.config.L, s.config.seed, stop)
        self.submit(start)

    def _start_calibration(self, L: int, seed: int, stop: threading.Event) -> None:
        self.notify(f"calibrating the classifier thermometer at L={L} in the background…",
                    timeout=4)
        self.run_worker(lambda: self._calibrate(L, seed, stop), thread=True,
                        group="thermometer", exclusive=True, name="calibrate-classifier")
        self._draw(force=True)

    def _calibrate(self, L: int, seed: int, stop: threading.Event) -> None:
        """Thread worker. Errors end in a notification, never in the app."""
        from .analysis import calibrate_classifier

        try:
            result = calibrate_classifier(L, seed, threads=self.threads, stop=stop.is_set)
        except KeyboardInterrupt:
            result = None
        except Exception as exc:
            message = _error_text(exc)
            self._notify_later(f"classifier calibration failed: {message}", severity="error",
                               timeout=8)
            result = None
        self._later(self._calibrated, result)

    def _calibrated(self, result: dict | None) -> None:
        self.calibrating = False
        if result is not None:
            self.classifier = result
            self.notify(f"classifier thermometer ready (L={result['L']}, held-out accuracy "
                        f"{result['heldout_accuracy']:.2f}, chance {result['chance']:.2f})",
                        timeout=5)
        self._request_publish()
        self._draw(force=True)

    def _exports_dir(self) -> Path:
        from rgflow.core.persist import saves_dir

        return saves_dir(self.saves_dir) / "exports"

    def export_view(self) -> None:
        """Write the arrays behind the current view to saves/exports/<view>-step<N>.npz."""
        pub = self._published
        if pub is None:
            return
        f, extras = pub.frame, pub.extras
        view = self.view
        arrays = {"spins": f.spins}
        if view == "dashboard":
            arrays.update({f"rg_level{i + 1}": lv for i, lv in enumerate(f.rg_levels)})
            arrays["reconstruction"] = f.rbm["reconstruction"]
            arrays.update(energy=f.histories["energy"], abs_m=f.histories["abs_m"])
        elif view == "rbm":
            arrays.update({f"rbm_{k}": v for k, v in f.rbm.items()})
            arrays["unit_weights"] = extras["weights"]
        elif view == "correlators" and "corr" in self.analysis:
            c = self.analysis["corr"]
            arrays.update({k: np.asarray(v) for k, v in c.items()
                           if isinstance(v, np.ndarray)})
        elif view == "plots":
            arrays.update({f"history_{k}": v for k, v in f.histories.items()})
            for name, pair in self.analysis.get("gr", {}).items():
                if isinstance(pair, tuple):
                    arrays[f"G_{name}_r"], arrays[f"G_{name}"] = pair
        elif view == "flow" and f.flow_v is not None:
            arrays["flow_spins"] = f.flow_v
            arrays["flow_abs_m"] = f.histories["flow_abs_m"]
            if extras["flow"] is not None:
                arrays["flow_T_per_chain"] = extras["flow"]["per_chain"]
        meta = {"view": view, "T": f.T, "L": f.L, "step": f.step, "sweeps": f.sweeps,
                "train_step": f.train_step, "unit": extras["unit"]}
        path = self._exports_dir() / f"{view}-step{f.step}.npz"

        def write(_s):
            from rgflow.core.npzio import atomic_write_npz

            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_npz(path, arrays, meta)
            self.last_export = path
            return f"exported {path}"
        self.submit(write)

    def screenshot(self) -> Path:
        directory = self._exports_dir()
        directory.mkdir(parents=True, exist_ok=True)
        name = f"{self.view}-{time.strftime('%Y%m%d-%H%M%S')}.svg"
        path = Path(self.save_screenshot(filename=name, path=str(directory)))
        self.notify(f"screenshot {path}")
        return path


# keys of the main screen do nothing while a dialog is on top (ctrl+q always works)
MAIN_SCREEN_ACTIONS = {b.action.split("(")[0] for b in RgflowApp.BINDINGS} - {"quit_now"}


def _train_job(app: RgflowApp, n: int) -> Iterator[tuple[int, int]]:
    for i in range(n):
        app.session.train()
        yield i + 1, n
    app._notify_later(f"trained {n} steps (now {app.session.trainer.steps_done})", timeout=3)


def _timed(fn, *args):
    start = time.perf_counter()
    result = fn(*args)
    return result, time.perf_counter() - start


def _fmt(v) -> str:
    if isinstance(v, float | np.floating):
        return "∞" if np.isinf(v) else f"{v:.4g}"
    return str(v)


def _error_text(exc: Exception) -> str:
    """A background job's error for a notification: our own errors are already sentences."""
    return str(exc) if isinstance(exc, RgflowError) else f"{type(exc).__name__}: {exc}"


def _si(x: float) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if x >= scale:
            return f"{x / scale:.2f}{unit}"
    return f"{x:.0f}"


def create_app(session=None, **kwargs) -> RgflowApp:
    """The app factory. session: a core Session (tests pass a small seeded one), or None for
    the default session, built on the worker thread (pass config= for another config)."""
    return RgflowApp(session, **kwargs)
