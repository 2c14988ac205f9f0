"""The Textual app: bindings and wiring around a SessionDriver (tui/driver.py).

The driver's worker thread owns the Session and publishes frames; the UI thread draws the
newest one with the view modules (tui/views/), the status line (tui/status.py), and handles
keys. Files (tui/files.py), background jobs (tui/jobs.py) and the palette
(tui/commands.py) live in their own modules.
"""

import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
from textual import events
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Grid, Vertical
from textual.message import Message
from textual.reactive import reactive
from textual.screen import Screen
from textual.widgets import ContentSwitcher, Footer, LoadingIndicator, ProgressBar, Static

from rgflow.core.exact import TC

from .commands import palette_commands
from .driver import Command, DriverListener, SessionDriver
from .files import FilesMixin
from .jobs import JobsMixin
from .status import StatusContext, status_text
from .views import MODULES, PANES, VIEW_TITLES, VIEWS
from .views.common import unit_side

__all__ = ["PANES", "VIEWS", "VIEW_TITLES", "RgflowApp", "create_app"]

PANES_PER_PAGE = {"wide": None, "compact": 2, "tiny": 1}
WIDE_MIN = (110, 30)  # columns, rows for whole views
TINY_MAX = (60, 18)  # below either: one pane per page, no borders
SWITCH_INTERVAL = 0.001  # seconds (Python's default is 0.005)
BIG_LATTICE = 64  # from this L on, maps beside the lattice refresh at most SLOW_PANE_HZ
SLOW_PANE_HZ = 4.0
# the loading spinner appears only if loading lasts this long (a cold numba cache): on a warm
# one the live lattice comes first, and animating the spinner would take the UI thread's
# share of the GIL from the start-up work
SPINNER_DELAY = 1.5  # seconds after mount


class FrameReady(Message):
    """The worker published a new frame (or analysis result): draw it now."""


class UiCall(Message):
    """Run a callable on the UI thread (posted from other threads, never blocking them)."""

    def __init__(self, fn: Callable[[], None]) -> None:
        super().__init__()
        self.fn = fn


class AppListener(DriverListener):
    """The driver's events, posted to the app as messages (never blocking the worker)."""

    def __init__(self, app: "RgflowApp") -> None:
        self.app = app

    def frame_ready(self) -> None:
        self.app.post_message(FrameReady())

    def call(self, fn: Callable[[], None]) -> None:
        self.app.post_message(UiCall(fn))

    def notify(self, message: str, severity: str = "information", timeout: float = 4) -> None:
        self.call(lambda: self.app.notify(message, severity=severity, timeout=timeout))

    def progress(self, label: str, done: int, total: int) -> None:
        self.call(lambda: self.app._loading(label, done, total))

    def live(self) -> None:
        self.call(self.app._show_live)

    def kernels_ready(self) -> None:
        self.call(self.app._kernels_ready)

    def crashed(self, message: str) -> None:
        def show():
            self.app.set_running(False)
            self.app._loading(f"The simulation stopped: {message}")
            self.app.notify(f"simulation stopped: {message}", severity="error", timeout=30)
        self.call(show)


class RgflowApp(FilesMixin, JobsMixin, App):
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
        self.driver = SessionDriver(session, config=config, fps=fps, threads=threads,
                                    warm_up=warm_up, listener=AppListener(self))
        self.fps = self.driver.fps
        self.saves_dir = saves_dir
        self.autorun = (save_path is None) if autorun is None else bool(autorun)
        self._init_files(save_path)
        self._init_jobs()
        self.ready = False  # every kernel compiled, actions enabled
        self.live = False  # first frame published, live views shown
        self.layout_mode = "wide"
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

    # the driver's state, read by the UI, views and tests
    @property
    def session(self):
        return self.driver.session

    @property
    def running(self) -> bool:
        return self.driver.running

    @property
    def analysis(self) -> dict:
        return self.driver.analysis

    @property
    def classifier(self) -> dict | None:
        return self.driver.classifier

    def submit(self, command: Command) -> None:
        """Queue a change of the session for the worker (runs before the next step)."""
        self.driver.submit(command)

    def set_running(self, on: bool) -> None:
        self.driver.set_running(on)
        self._update_status(first=True)

    @property
    def settled(self) -> bool:
        """Every submitted command has run, a frame published after it, every save written
        and (unless a dialog is on top) the frame drawn. Tests wait for this."""
        pub = self.driver.published
        if not self.live or not self.driver.caught_up or self.saves_writing:
            return False
        return not self.main_screen_active or self._drawn_seq == pub.seq

    # ---- layout -------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield Static("", id="status", markup=False)
        with ContentSwitcher(initial="loading", id="views"):
            with Vertical(id="loading"):
                yield LoadingIndicator(id="loading-spinner")
                yield Static("Starting…", id="loading-text")
                yield ProgressBar(total=1, show_eta=False, id="loading-progress")
            for name, module in MODULES.items():
                with Grid(id=name, classes="view"):
                    yield from module.compose()
        yield Footer()

    def on_mount(self) -> None:
        # The UI thread holds the GIL while it composes a frame; a shorter switch interval
        # lets the simulation thread back in sooner (measured: ~1.5x more steps/s in-app
        # for L=128 at 20 fps on 2 cores).
        sys.setswitchinterval(SWITCH_INTERVAL)
        self._main = self.screen
        self._widgets = {w.id: w for w in self._main.query("*") if w.id}
        self._apply_layout(self.size.width, self.size.height)
        self.driver.start()
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

    def _show_page(self) -> None:
        if not self._widgets:
            return
        per = PANES_PER_PAGE[self.layout_mode]
        for view, panes in PANES.items():
            for i, pane in enumerate(panes):
                visible = per is None or (view == self.view and i // per == self.page)
                self.w(pane).display = visible
        self._drawn_key = None

    # ---- drawing (UI thread) --------------------------------------------------------------
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
            self.w("loading-progress").update(total=total, progress=done)
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
        import gc

        gc.collect()
        gc.freeze()
        gc.enable()
        self.ready = True
        self.loading_text = ""
        self.refresh_bindings()
        if self.autorun:
            self.driver.set_running(True)
        self._draw(force=True)

    def watch_view(self, view: str) -> None:
        self.driver.view = view
        if self.live:
            self.w("views").current = view
        self._show_page()
        self.driver.wake()  # the worker schedules the new view's analysis
        self._draw(force=True)

    def watch_page(self, _page: int) -> None:
        self._show_page()
        self._draw(force=True)

    def watch_selected_unit(self, unit: int) -> None:
        self.driver.selected_unit = unit
        self.driver.request_publish()  # the worker sends that unit's weights

    def watch_rg_level_index(self, index: int) -> None:
        self.driver.rg_level_index = index
        self.driver.wake()
        self._draw()

    def _draw(self, force: bool = False) -> None:
        pub = self.driver.published
        if pub is None or not self.live or not self.main_screen_active:
            return  # drawing pauses behind modal screens
        if self._status_first:
            return  # a key's feedback goes out alone first; _status_shown draws then
        key = (pub.seq, self.view, self.page, self.layout_mode, self.selected_unit,
               self.rg_level_index, self.driver.analysis_version, self.running, self.ready)
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
            self.set_text("status", self.status_line(pub))
        if slow:
            self._slow_time = now
        self._slow_stale = not slow
        MODULES[self.view].draw(self, f, pub.extras, slow)

    def set_text(self, widget_id: str, text: str) -> None:
        """Update a fixed-size Static only when its text changes, without a layout pass
        (a layout pass makes Textual recompose the whole screen)."""
        if self._texts.get(widget_id) != text:
            self._texts[widget_id] = text
            self.w(widget_id).update(text, layout=False)

    def _update_status(self, first: bool = False) -> None:
        """Redraw just the status line. first=True (a key press): the next screen update
        carries only this line (~1 ms to compose), frames are drawn right after it."""
        pub = self.driver.published
        if pub is not None and self.live and self.main_screen_active:
            self.set_text("status", self.status_line(pub))
            if first and not self._status_first:
                self._status_first = True
                self.screen.call_after_refresh(self._status_shown)

    def _status_shown(self) -> None:
        self._status_first = False
        self._draw()

    def status_line(self, pub) -> str:
        pending = self._pending_T
        if pending is not None and pub.commands >= pending[1]:
            self._pending_T = pending = None  # the session has it: frames show it from now on
        ctx = StatusContext(
            view_number=VIEWS.index(self.view) + 1, view_count=len(VIEWS),
            view_title=VIEW_TITLES[self.view], page=self.page, pages=self.pages_of(self.view),
            paged=self.layout_mode != "wide", ready=self.ready, loading_text=self.loading_text,
            running=self.running, pending_T=None if pending is None else pending[0],
            fps=self.measured_fps, job_text=self.reproduce_status)
        return status_text(pub.frame, pub.extras, ctx, self.size.width)

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
        self.set_running(not self.running)

    def action_step(self) -> None:
        self.submit(lambda s: s.step() and None)

    def action_temperature(self, delta: float) -> None:
        pub = self.driver.published
        if pub is None:
            return
        pending = self._pending_T
        base = pending[0] if pending is not None else pub.frame.T
        target = round(max(0.01, base + delta), 6)
        number = self.driver.submit(lambda s: s.set_temperature(target))
        # shown at once; the status line marks it "→" until a frame taken after the change
        self._pending_T = (target, number)
        self._update_status(first=True)

    def action_cycle_algorithm(self) -> None:
        self.submit(lambda s: f"algorithm: {s.cycle_algorithm()}")

    def action_cycle_rg_rule(self) -> None:
        self.submit(lambda s: f"RG rule: {s.cycle_rg_rule()}")

    def action_rg_level(self, delta: int) -> None:
        pub = self.driver.published
        levels = max(1, len(pub.frame.rg_levels)) if pub is not None else 1
        self.rg_level_index = int(np.clip(self.rg_level_index + delta, 0, levels - 1))

    def action_toggle_training(self) -> None:
        def toggle(s):
            s.set_training(not s.training)
            return f"training {'on' if s.training else 'off'}"
        self.submit(toggle)

    def action_flow_step(self) -> None:
        self.submit(lambda s: s.flow_step() and None)

    def action_select_unit(self, dx: int, dy: int) -> None:
        pub = self.driver.published
        if pub is None:
            return
        n = pub.extras["hidden"]
        side = unit_side(n) or n
        row, col = divmod(min(self.selected_unit, n - 1), side)
        row = int(np.clip(row + dy, 0, max(0, (n - 1) // side)))
        col = int(np.clip(col + dx, 0, side - 1))
        self.selected_unit = min(n - 1, row * side + col)

    def action_next_view(self, step: int = 1) -> None:
        pages = [(v, p) for v in VIEWS for p in range(self.pages_of(v))]
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

    def exit(self, *args, **kwargs) -> None:
        self.driver.stop()
        self._stop_jobs()
        super().exit(*args, **kwargs)

    def on_unmount(self) -> None:
        self.driver.stop(join=5.0)  # the worker ends its step; the session is not torn

    # ---- palette and value commands -------------------------------------------------------
    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        # Textual's own Quit and Screenshot would duplicate ours
        for command in super().get_system_commands(screen):
            if command.title not in ("Quit", "Screenshot"):
                yield command
        yield from palette_commands(self)

    def ask(self, prompt: str, chosen: Callable[[str], None], value: str = "",
            placeholder: str = "") -> None:
        from .screens.dialogs import InputDialog

        def done(text: str | None) -> None:
            if text:
                chosen(text)
        self.push_screen(InputDialog(prompt, value=value, placeholder=placeholder), done)

    def ask_temperature(self) -> None:
        self.ask("Temperature T:", self.set_temperature_text, placeholder="e.g. 2.269 or tc")

    def set_temperature_text(self, text: str) -> None:
        try:
            T = TC if text.strip().lower() == "tc" else float(text)
        except ValueError:
            self.notify(f"not a temperature: {text!r}", severity="error")
            return
        self.submit(lambda s: s.set_temperature(T))

    def ask_config(self, key: str, prompt: str) -> None:
        self.ask(prompt, lambda text: self.set_config(key, text))

    def set_config(self, key: str, text: str) -> None:
        """Change one setting (validated by SessionConfig); L and the RBM are rebuilt."""
        driver = self.driver

        def apply(s):
            from rgflow.core.config import SessionConfig

            value = getattr(SessionConfig.from_dict({**s.config.to_dict(), key: text}), key)
            old_L, old_hidden = s.config.L, s.config.n_hidden
            s.reconfigure(**{key: value})
            if (s.config.L, s.config.n_hidden) != (old_L, old_hidden):
                driver.session_changed()
            return f"{key} = {getattr(s.config, key)}"
        self.submit(apply)

    # ---- export -------------------------------------------------------------------------
    def _exports_dir(self) -> Path:
        from rgflow.core.persist import saves_dir

        return saves_dir(self.saves_dir) / "exports"

    def export_view(self) -> None:
        """Write the arrays behind the current view to saves/exports/<view>-step<N>.npz."""
        pub = self.driver.published
        if pub is None:
            return
        f, extras = pub.frame, pub.extras
        arrays = {"spins": f.spins, **MODULES[self.view].export(self, f, extras)}
        meta = {"view": self.view, "T": f.T, "L": f.L, "step": f.step, "sweeps": f.sweeps,
                "train_step": f.train_step, "unit": extras["unit"]}
        path = self._exports_dir() / f"{self.view}-step{f.step}.npz"

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


def create_app(session=None, **kwargs) -> RgflowApp:
    """The app factory. session: a core Session (tests pass a small seeded one), or None for
    the default session, built on the worker thread (pass config= for another config)."""
    return RgflowApp(session, **kwargs)
