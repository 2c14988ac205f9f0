"""The Textual app: bindings and wiring around a SessionDriver (tui/driver.py).

The driver's worker thread owns the Session and publishes frames; the UI thread draws the
newest one with the view modules (tui/views/), the status line (tui/status.py), and handles
keys. The keys' actions (tui/actions.py), the driver's messages (tui/listener.py), files
(tui/files.py), background jobs (tui/jobs.py) and the palette (tui/commands.py) live in
their own modules.
"""

import sys
from pathlib import Path

from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.reactive import reactive
from textual.screen import Screen
from textual.widgets import ContentSwitcher, Footer, LoadingIndicator, ProgressBar, Static

from .actions import ActionsMixin
from .commands import PaletteMixin
from .drawing import DrawMixin
from .driver import Command, SessionDriver
from .files import FilesMixin
from .jobs import JobsMixin
from .layout import LayoutMixin, ViewGrid
from .listener import AppListener, FrameReady, UiCall
from .views import MODULES, PANES, VIEW_TITLES, VIEWS

__all__ = ["PANES", "VIEWS", "VIEW_TITLES", "RgflowApp", "create_app"]

SWITCH_INTERVAL = 0.001  # seconds (Python's default is 0.005)
# the loading spinner appears only if loading lasts this long (a cold numba cache): on a warm
# one the live lattice comes first, and animating the spinner would take the UI thread's
# share of the GIL from the start-up work
SPINNER_DELAY = 1.5  # seconds after mount


class RgflowApp(ActionsMixin, DrawMixin, LayoutMixin, PaletteMixin, FilesMixin, JobsMixin,
                App):
    CSS_PATH = "app.tcss"
    TITLE = "rgflow"
    ENABLE_COMMAND_PALETTE = True

    # The footer shows the bindings with show=True in this order, and drops them from the
    # right when it is narrow: the keys to page, save, get help and leave come first.
    # Every action has a key that browsers leave alone (ctrl+q, ctrl+w, ctrl+t, ctrl+p
    # are theirs under `rgflow serve`): Q quits at once, : opens the palette.
    BINDINGS = [
        Binding("v,tab", "next_view", "View", id="view"),
        Binding("s", "save", "Save", id="save"),
        Binding("question_mark,f1", "help", "Help", key_display="?", id="help"),
        Binding("q", "quit_app", "Quit", id="quit"),
        Binding("space", "toggle_run", "Run/Pause", id="run"),
        Binding("n", "step", "Step", id="step"),
        Binding("equals_sign", "temperature(0.01)", "T ±0.01", key_display="=/-", id="t-up"),
        Binding("minus", "temperature(-0.01)", "T -0.01", show=False, id="t-down"),
        Binding("plus,shift+equals_sign", "temperature(0.1)", "T ±0.1", key_display="+/_",
                id="t-up-big"),
        Binding("underscore,shift+minus", "temperature(-0.1)", "T -0.1", show=False,
                id="t-down-big"),
        Binding("a", "cycle_algorithm", "Algorithm", id="algorithm"),
        Binding("t", "toggle_training", "Train", id="train"),
        Binding("f", "flow_step", "Flow", id="flow"),
        Binding("r", "cycle_rg_rule", "RG rule", show=False, id="rg-rule"),
        Binding("left_square_bracket", "rg_level(-1)", "RG level -", show=False, id="rg-down"),
        Binding("right_square_bracket", "rg_level(1)", "RG level +", show=False, id="rg-up"),
        Binding("g", "toggle_gr_log", "G(r) log-log", show=False, id="gr-log"),
        Binding("c", "toggle_connected", "Connected ⟨v h⟩", show=False, id="connected"),
        Binding("up,k", "select_unit(0,-1)", "Unit up", show=False, id="unit-up"),
        Binding("down,j", "select_unit(0,1)", "Unit down", show=False, id="unit-down"),
        Binding("left,h", "select_unit(-1,0)", "Unit left", show=False, id="unit-left"),
        Binding("right,l", "select_unit(1,0)", "Unit right", show=False, id="unit-right"),
        Binding("shift+tab", "next_view(-1)", "Previous view", show=False, id="view-back"),
        *[Binding(str(i + 1), f"show_view('{name}')", f"View: {VIEW_TITLES[name]}", show=False,
                  id=f"view-{name}") for i, name in enumerate(VIEWS)],
        Binding("o", "open", "Open…", show=False, id="open"),
        Binding("colon,ctrl+p", "command_palette", "Command palette", show=False, id="palette"),
        Binding("Q", "quit_now", "Quit at once (autosave)", show=False, id="quit-now-key"),
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
    gr_log = reactive(False)  # G(r) on log-log axes (g)
    connected = reactive(False)  # the correlator view shows <v h> - <v><h> (c)

    def __init__(self, session=None, *, fps: float = 12.0, saves_dir=None,
                 warm_up: bool = True, save_path: Path | None = None,
                 autorun: bool | None = None, threads: int | None = None,
                 config=None, opening=None) -> None:
        """session: a core Session, or None to build one on the worker (so the window
        appears before numba is even imported): from opening (tui/driver.py Opening, a
        save), else Session(config). autorun: start running once ready (default: yes for
        a new session, no for an opened save)."""
        super().__init__()
        self.driver = SessionDriver(session, config=config, opening=opening, fps=fps,
                                    threads=threads, warm_up=warm_up,
                                    listener=AppListener(self))
        self.fps = self.driver.fps
        self.saves_dir = saves_dir
        # set by tui/cli/app_cmds.py for the real app: signals autosave (tui/lifecycle.py)
        self.guard_session = False
        self.autosave_seconds: float | None = None  # None: the default interval
        self.lifecycle = None
        self.autorun = (save_path is None) if autorun is None else bool(autorun)
        self._init_files(save_path)
        self._init_jobs()
        self.ready = False  # every kernel compiled, actions enabled
        self.live = False  # first frame published, live views shown
        self.views_built = False  # every view composed (after the first frame: tui/layout.py)
        self.layout_mode = "wide"
        # UI-only state
        self._widgets: dict = {}
        self._main: Screen | None = None
        self._init_drawing()
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
        if not self.views_built or not self.driver.caught_up or self.saves_writing:
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
                yield ViewGrid(module, built=name == self.view, id=name)
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
        if self.guard_session:  # the real app (tui/cli/app_cmds.py), not a test's
            self._guard_session()
        # catches up after modal screens close; new frames are also drawn on FrameReady
        self.set_interval(1.0 / self.fps, self._draw)
        self.set_timer(SPINNER_DELAY, self._show_spinner)

    def _guard_session(self) -> None:
        """Signals autosave, periodic autosaves, a dropped session offered (tui/lifecycle.py)."""
        from .lifecycle import attach
        from .screens.recover import offer_dropped_session

        self.lifecycle = attach(self)
        if self.save_path is None:
            offer_dropped_session(self, self.open_save)

    def _show_spinner(self) -> None:
        if not self.live:
            self.w("loading-spinner").display = True

    def w(self, widget_id: str):
        """A widget of the main screen by id (valid while a modal screen is on top)."""
        return self._widgets[widget_id]

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

    def action_help(self) -> None:
        from .screens.help import HelpScreen

        self.push_screen(HelpScreen())

    def exit(self, *args, **kwargs) -> None:
        if self.lifecycle is not None:
            self.lifecycle.close()
        self.driver.stop()
        self._stop_jobs()
        super().exit(*args, **kwargs)

    def on_unmount(self) -> None:
        self.driver.stop(join=5.0)  # the worker ends its step; the session is not torn



# keys of the main screen do nothing while a dialog is on top (ctrl+q always works)
MAIN_SCREEN_ACTIONS = {b.action.split("(")[0] for b in RgflowApp.BINDINGS} - {"quit_now"}


def create_app(session=None, **kwargs) -> RgflowApp:
    """The app factory. session: a core Session (tests pass a small seeded one), or None for
    the default session, built on the worker thread (pass config= for another config)."""
    return RgflowApp(session, **kwargs)
