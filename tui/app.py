"""The Textual app: a thin, live driver of one core Session.

Threading (DESIGN.md principle 6): one exclusive thread worker owns the Session. It runs
queued commands (key actions that change the session), steps it in time-sized chunks while
running, and publishes an immutable Frame. A timer on the UI thread draws the newest frame.
Widgets are touched only on the UI thread; the Session only on the worker thread.
"""

import queue
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Grid, Horizontal, Vertical
from textual.reactive import reactive
from textual.screen import Screen
from textual.widgets import ContentSwitcher, Footer, LoadingIndicator, Static

from core.errors import RgflowError
from core.session import Frame, Session

from .widgets.heatmap import HeatMap, HeatMapGrid
from .widgets.lattice import LatticeView
from .widgets.plot import PlotView

VIEWS = ("dashboard", "rbm", "correlators", "plots", "flow")
VIEW_TITLES = {
    "dashboard": "Lattice · RG · RBM",
    "rbm": "RBM",
    "correlators": "⟨v h⟩ correlators",
    "plots": "Plots",
    "flow": "RBM flow",
}
CHUNK_SECONDS = 0.03  # one worker chunk: 20-50 ms keeps pause/quit/save within a frame
CORRELATOR_PERIOD = 2.0  # seconds between correlator recomputations while visible
CORRELATOR_SAMPLES = 1000


Command = Callable[[Session], str | None]


class RgflowApp(App):
    CSS_PATH = "app.tcss"
    TITLE = "rgflow"
    ENABLE_COMMAND_PALETTE = True

    BINDINGS = [
        Binding("space", "toggle_run", "Run/Pause", id="run"),
        Binding("n", "step", "Step", id="step"),
        Binding("equals_sign", "temperature(0.01)", "T +0.01", show=False, id="t-up"),
        Binding("plus", "temperature(0.1)", "T +0.1", key_display="+/-", id="t-up-big"),
        Binding("minus", "temperature(-0.01)", "T -0.01", show=False, id="t-down"),
        Binding("underscore", "temperature(-0.1)", "T -0.1", show=False, id="t-down-big"),
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
        Binding("s", "save", "Save", id="save"),
        Binding("o", "open", "Open", show=False, id="open"),
        Binding("question_mark,f1", "help", "Help", key_display="?", id="help"),
        Binding("q", "quit_app", "Quit", id="quit"),
        Binding("ctrl+q", "quit_now", "Quit (autosave)", show=False, priority=True,
                id="quit-now"),
    ]

    # actions that need compiled kernels / a running worker
    NEEDS_KERNELS = {"toggle_run", "step", "flow_step", "save", "open", "train_n"}

    view = reactive("dashboard")
    selected_unit = reactive(0)
    rg_level_index = reactive(0)

    def __init__(self, session: Session, *, fps: float = 12.0, saves_dir=None,
                 warm_up: bool = True, save_path: Path | None = None) -> None:
        super().__init__()
        self.session = session  # touched only by the worker once it has started
        self.fps = max(1.0, float(fps))
        self.saves_dir = saves_dir
        self.save_path = save_path
        self._warm_up_needed = warm_up
        self.ready = False
        self.running = False
        self._commands: queue.SimpleQueue = queue.SimpleQueue()
        self._stop = threading.Event()
        self._frame: Frame | None = None
        self._drawn: Frame | None = None
        self._correlators: dict | None = None
        self._correlators_drawn: dict | None = None
        self._want_correlators = False
        self.frames_drawn = 0
        self._fps_window: list[float] = []
        self.measured_fps = 0.0
        self.commands_done = 0

    # ---- layout -------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield Static("", id="status")
        with ContentSwitcher(initial="loading", id="views"):
            with Vertical(id="loading"):
                yield LoadingIndicator()
                yield Static("Compiling kernels…", id="loading-text")
            with Grid(id="dashboard"):
                yield LatticeView(title="spins", id="lattice")
                yield HeatMap(title="RG level", id="rg-map")
                yield LatticeView(title="RG level", id="rg-spins")
                yield HeatMap(title="RBM reconstruction ⟨v'⟩", id="dash-recon")
                yield PlotView(title="E/N and |m|", id="dash-plot")
            with Grid(id="rbm"):
                yield LatticeView(title="input v", id="rbm-v")
                yield HeatMap(title="hidden ⟨h⟩", id="rbm-hidden")
                yield HeatMap(title="reconstruction ⟨v'⟩", id="rbm-recon")
                yield LatticeView(title="reconstruction sample", id="rbm-recon-sample")
                yield HeatMap(title="weights of unit", id="rbm-weights")
                yield Static("", id="rbm-info")
            with Grid(id="correlators"):
                yield HeatMap(title="RG ⟨v h_a⟩", id="corr-rg")
                yield HeatMap(title="RBM ⟨v h_a⟩", id="corr-rbm")
                yield Static("Collecting data…", id="corr-info")
                yield HeatMapGrid(title="RBM ⟨v h⟩ grid", id="corr-grid")
            with Grid(id="plots"):
                yield PlotView(title="energy per spin", id="plot-energy")
                yield PlotView(title="|m|", id="plot-m")
                yield PlotView(title="training", id="plot-train")
                yield PlotView(title="flow |m| per step", id="plot-flow")
            with Grid(id="flow"):
                yield LatticeView(title="flow chain 1", id="flow-0")
                yield LatticeView(title="flow chain 2", id="flow-1")
                yield LatticeView(title="flow chain 3", id="flow-2")
                yield Static("", id="flow-info")
        yield Footer()

    def on_mount(self) -> None:
        self.run_worker(self._sim_loop, thread=True, exclusive=True, group="sim",
                        name="simulation")
        self.set_interval(1.0 / self.fps, self._draw)

    # ---- worker side --------------------------------------------------------------------
    def submit(self, command: Command) -> None:
        """Queue a change of the session for the worker (runs between chunks)."""
        self._commands.put(command)

    def _sim_loop(self) -> None:
        if self._warm_up_needed:
            self._warm_up()
        self._publish()
        self.call_from_thread(self._on_ready)
        while not self._stop.is_set():
            ran = self._drain_commands()
            if self.running:
                self.session.run_for(CHUNK_SECONDS)
                self._publish()
                continue
            if ran:
                self._publish()
                continue
            try:
                command = self._commands.get(timeout=0.05)
            except queue.Empty:
                self._maybe_correlators()
                continue
            self._execute(command)
            self._publish()

    def _warm_up(self) -> None:
        """Compile (or load from numba's cache) every kernel on a tiny session, showing
        which stage is running."""
        from core.config import SessionConfig

        tiny = Session(SessionConfig(L=4, batch=2, chains=2, dataset_capacity=8,
                                     sample_spacing=1, flow_chains=2, monitor_every=1,
                                     dtype=self.session.config.dtype,
                                     units=self.session.config.units))
        stages = [
            ("Monte Carlo kernels", lambda: [tiny.set_algorithm(a) or tiny.sweep(1)
                                             for a in ("metropolis", "heatbath", "wolff")]),
            ("dataset and RBM training", lambda: [tiny.step() for _ in range(4)]),
            ("RG and RBM flow", lambda: (tiny.rg_levels("majority"), tiny.flow_step())),
            ("display frame", lambda: tiny.frame()),
        ]
        for i, (label, fn) in enumerate(stages):
            self.call_from_thread(self._loading_text, f"Compiling kernels ({i + 1}/"
                                  f"{len(stages)}): {label}…")
            tiny.set_algorithm("metropolis")
            fn()

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
            self.call_from_thread(self.notify, str(exc), severity="error", timeout=6)
        except Exception as exc:  # never let one bad command kill the worker
            self.call_from_thread(self.notify, f"{type(exc).__name__}: {exc}",
                                  severity="error", timeout=8)
        else:
            if message:
                self.call_from_thread(self.notify, message, timeout=3)
        self.commands_done += 1

    def _publish(self) -> None:
        self._frame = self.session.frame()
        self._maybe_correlators()

    def _maybe_correlators(self) -> None:
        if not self._want_correlators:
            return
        last = (self._correlators or {}).get("time", 0.0)
        if time.monotonic() - last < CORRELATOR_PERIOD:
            return
        s = self.session
        data = s.training_data()[-CORRELATOR_SAMPLES:]
        if len(data) < 10:
            return
        from core.correlators import locality_summary, rbm_vh_maps, rg_vh_maps

        b = s.config.rg_b
        rg = rg_vh_maps(data, b)
        rbm = rbm_vh_maps(s.trainer.rbm, data)
        result = {"time": time.monotonic(), "rg": rg, "rbm": rbm, "n": len(data),
                  "train_step": s.trainer.steps_done}
        if rbm.shape[0] == (s.config.L // b) ** 2:
            result["rg_locality"] = locality_summary(rg, b)
            result["rbm_locality"] = locality_summary(rbm, b)
        self._correlators = result

    # ---- UI side ------------------------------------------------------------------------
    def _loading_text(self, text: str) -> None:
        self.query_one("#loading-text", Static).update(text)

    def _on_ready(self) -> None:
        self.ready = True
        self.query_one("#views", ContentSwitcher).current = self.view
        self.refresh_bindings()
        self._draw()

    def watch_view(self, view: str) -> None:
        self._want_correlators = view == "correlators"
        if self.ready:
            self.query_one("#views", ContentSwitcher).current = view
            self._drawn = None  # redraw the newly visible widgets
            self._draw()

    def _draw(self) -> None:
        frame = self._frame
        if frame is None or not self.ready:
            return
        if frame is self._drawn and self._correlators is self._correlators_drawn:
            return
        self._drawn = frame
        now = time.monotonic()
        self._fps_window = [t for t in self._fps_window if now - t < 1.0] + [now]
        self.measured_fps = len(self._fps_window)
        self.frames_drawn += 1
        self._draw_status(frame)
        getattr(self, f"_draw_{self.view}")(frame)

    def _draw_status(self, f: Frame) -> None:
        acc = "–" if np.isnan(f.acceptance) else f"{f.acceptance:.3f}"
        rate = f"{f.flips_per_s / 1e6:.1f}M" if self.running else "–"
        name = f.save_name or "unsaved session"
        mark = " *" if f.unsaved else ""
        state = "running" if self.running else "paused"
        self.query_one("#status", Static).update(
            f" {state} │ T={f.T:.4f} L={f.L} {f.algorithm} │ sweeps {f.sweeps} acc {acc} │ "
            f"{rate} spins/s │ data {f.dataset_count} │ train {'on' if f.training else 'off'} "
            f"step {f.train_step} │ {self.measured_fps:.0f} fps │ {name}{mark} │ "
            f"{VIEW_TITLES[self.view]}"
        )

    def _rg_level(self, f: Frame) -> np.ndarray | None:
        if not f.rg_levels:
            return None
        return f.rg_levels[min(self.rg_level_index, len(f.rg_levels) - 1)]

    def _draw_rg(self, f: Frame, heat: HeatMap, spins: LatticeView) -> None:
        level = self._rg_level(f)
        if level is None:
            return
        title = f"RG {f.rg_rule} level {min(self.rg_level_index, len(f.rg_levels) - 1) + 1} " \
                f"({level.shape[0]}²)"
        continuous = f.rg_rule == "average"
        heat.display = continuous
        spins.display = not continuous
        if continuous:
            heat.border_title = title
            heat.set_data(level, vmin=-1.0, vmax=1.0)
        else:
            spins.border_title = title
            spins.set_spins(level)

    def _draw_dashboard(self, f: Frame) -> None:
        self.query_one("#lattice", LatticeView).set_spins(f.spins)
        self._draw_rg(f, self.query_one("#rg-map", HeatMap),
                      self.query_one("#rg-spins", LatticeView))
        self.query_one("#dash-recon", HeatMap).set_data(f.rbm["reconstruction"], -1.0, 1.0)
        self._plot_thermo(self.query_one("#dash-plot", PlotView), f, both=True)

    def _plot_thermo(self, plot: PlotView, f: Frame, both: bool = False, which: str = "energy"):
        from core.exact import onsager_energy_per_spin, onsager_magnetisation

        names = ("energy", "abs_m") if both else (which,)
        for name in names:
            y = f.histories[name]
            x = np.arange(len(y))
            plot.set_series(name if name != "abs_m" else "|m|", x, y)
        if "energy" in names:
            plot.set_reference("Onsager E/N", float(onsager_energy_per_spin(f.T)))
        if "abs_m" in names:
            plot.set_reference("Onsager m", float(onsager_magnetisation(f.T)))

    def _unit_grid(self, f: Frame) -> int:
        side = int(round(np.sqrt(len(f.rbm["hidden"]))))
        return side if side * side == len(f.rbm["hidden"]) else 0

    def _draw_rbm(self, f: Frame) -> None:
        L = f.L
        self.query_one("#rbm-v", LatticeView).set_spins(f.rbm["v"])
        hidden = f.rbm["hidden"]
        side = self._unit_grid(f)
        image = hidden.reshape(side, side) if side else hidden[None, :]
        self.query_one("#rbm-hidden", HeatMap).set_data(image, -1.0, 1.0)
        self.query_one("#rbm-recon", HeatMap).set_data(f.rbm["reconstruction"], -1.0, 1.0)
        self.query_one("#rbm-recon-sample", LatticeView).set_spins(
            np.where(f.rbm["reconstruction_sample"] > 0, 1, -1))
        unit = min(self.selected_unit, len(hidden) - 1)
        weights = self.query_one("#rbm-weights", HeatMap)
        if "W" in f.rbm:
            weights.border_title = f"weights of hidden unit {unit}"
            weights.set_data(f.rbm["W"][:, unit].reshape(L, L))
        m = f.metrics
        lines = [f"RBM {L * L} → {len(hidden)}   train step {f.train_step}",
                 f"selected hidden unit {unit}   ⟨h⟩ = {hidden[unit]:+.3f}"]
        for key in ("reconstruction_error", "pll", "free_energy_gap"):
            if key in m:
                lines.append(f"{key.replace('_', ' ')}: {m[key]:.5g}")
        self.query_one("#rbm-info", Static).update("\n".join(lines))

    def _draw_correlators(self, f: Frame) -> None:
        c = self._correlators
        self._correlators_drawn = c
        info = self.query_one("#corr-info", Static)
        if c is None:
            info.update(f"Collecting data… ({f.dataset_count} configurations stored; "
                        "maps need at least 10)")
            return
        unit = min(self.selected_unit, c["rbm"].shape[0] - 1)
        rg_unit = min(unit, c["rg"].shape[0] - 1)
        lim = float(max(np.abs(c["rg"]).max(), np.abs(c["rbm"]).max(), 1e-9))
        rg_map = self.query_one("#corr-rg", HeatMap)
        rg_map.border_title = f"RG ⟨v h_{rg_unit}⟩"
        rg_map.set_data(c["rg"][rg_unit], -lim, lim)
        rbm_map = self.query_one("#corr-rbm", HeatMap)
        rbm_map.border_title = f"RBM ⟨v h_{unit}⟩"
        rbm_map.set_data(c["rbm"][unit], -lim, lim)
        self.query_one("#corr-grid", HeatMapGrid).set_maps(c["rbm"][:64], per_map=True)
        lines = [f"{c['n']} configurations, RBM train step {c['train_step']}", ""]
        for side in ("rg", "rbm"):
            loc = c.get(f"{side}_locality")
            if loc:
                lines.append(f"{side.upper()}: " + "  ".join(
                    f"{k}={_fmt(v)}" for k, v in loc.items() if not isinstance(v, list | dict)))
        self.query_one("#corr-info", Static).update("\n".join(lines))

    def _draw_plots(self, f: Frame) -> None:
        self._plot_thermo(self.query_one("#plot-energy", PlotView), f, which="energy")
        self._plot_thermo(self.query_one("#plot-m", PlotView), f, which="abs_m")
        train = self.query_one("#plot-train", PlotView)
        for name in ("recon_error", "pll", "fe_gap"):
            y = f.histories[name]
            train.set_series(name, np.arange(len(y)), y)
        flow = self.query_one("#plot-flow", PlotView)
        y = f.histories["flow_abs_m"]
        flow.set_series("flow |m|", np.arange(len(y)), y)

    def _draw_flow(self, f: Frame) -> None:
        chains = f.flow_v
        for i in range(3):
            view = self.query_one(f"#flow-{i}", LatticeView)
            if chains is not None and i < len(chains):
                view.set_spins(chains[i])
        m = f.histories["flow_abs_m"]
        text = (f"flow step {f.flow_step}  (f: one step; palette: reset flow)\n"
                f"⟨|m|⟩ of the flow chains: {m[-1]:.4f}" if len(m) else
                "Press f to start the RBM flow from stored data.")
        self.query_one("#flow-info", Static).update(text)

    # ---- actions ------------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple) -> bool | None:
        if action in self.NEEDS_KERNELS and not self.ready:
            return None  # shown greyed out until the kernels are compiled
        return True

    def action_toggle_run(self) -> None:
        self.running = not self.running
        self._drawn = None
        self._draw()

    def action_step(self) -> None:
        self.submit(lambda s: s.step() and None)

    def action_temperature(self, delta: float) -> None:
        def change(s: Session):
            s.set_temperature(round(max(0.01, s.T + delta), 6))
        self.submit(change)

    def action_cycle_algorithm(self) -> None:
        self.submit(lambda s: f"algorithm: {s.cycle_algorithm()}")

    def action_cycle_rg_rule(self) -> None:
        self.submit(lambda s: f"RG rule: {s.cycle_rg_rule()}")

    def action_rg_level(self, delta: int) -> None:
        levels = max(1, self.session.config.effective_rg_levels)
        self.rg_level_index = int(np.clip(self.rg_level_index + delta, 0, levels - 1))
        self._drawn = None
        self._draw()

    def action_toggle_training(self) -> None:
        self.submit(lambda s: (s.set_training(not s.training),
                               f"training {'on' if s.training else 'off'}")[1])

    def action_flow_step(self) -> None:
        self.submit(lambda s: s.flow_step() and None)

    def action_select_unit(self, dx: int, dy: int) -> None:
        frame = self._frame
        if frame is None:
            return
        n = len(frame.rbm["hidden"])
        side = self._unit_grid(frame) or n
        row, col = divmod(self.selected_unit, side)
        row = int(np.clip(row + dy, 0, max(0, (n - 1) // side)))
        col = int(np.clip(col + dx, 0, side - 1))
        self.selected_unit = min(n - 1, row * side + col)
        self._drawn = None
        self._draw()

    def action_next_view(self, step: int = 1) -> None:
        self.view = VIEWS[(VIEWS.index(self.view) + step) % len(VIEWS)]

    def action_help(self) -> None:
        from .screens.help import HelpScreen

        self.push_screen(HelpScreen())

    def action_save(self) -> None:
        if self.save_path is None:
            self.action_save_as()
        else:
            self._save_to(self.save_path)

    def action_save_as(self) -> None:
        from .screens.dialogs import InputDialog

        def chosen(name: str | None) -> None:
            if name:
                try:
                    self._save_to(self._resolve(name))
                except RgflowError as exc:
                    self.notify(str(exc), severity="error")

        self.push_screen(InputDialog("Save session as (name or path):",
                                     placeholder="e.g. tc-run"), chosen)

    def _resolve(self, name: str) -> Path:
        from core.persist import resolve_save_path

        return resolve_save_path(name, self.saves_dir)

    def _save_to(self, path: Path, then: Callable[[], None] | None = None) -> None:
        def save(s: Session):
            s.save(path)
            s.save_name = path.stem
            self.save_path = path
            if then is not None:
                self.call_from_thread(then)
            return f"saved {path}"
        self.submit(save)

    def action_open(self) -> None:
        from core.persist import list_saves

        from .screens.dialogs import SaveBrowser

        def chosen(path: Path | None) -> None:
            if path is not None:
                self.open_save(path)

        self.push_screen(SaveBrowser(list_saves(self.saves_dir), "Open a saved session"),
                         chosen)

    def open_save(self, path: Path) -> None:
        """Load a save in the worker; a damaged file leaves the current session as it was."""
        def load(_s: Session):
            session = Session.load(path)
            session.save_name = path.stem
            self.session = session
            self.save_path = path
            self.running = False
            return f"opened {path}"
        self.submit(load)

    def action_quit_app(self) -> None:
        frame = self._frame
        if frame is None or not frame.unsaved:
            self._shutdown()
            return
        from .screens.dialogs import ConfirmQuit

        def chosen(choice: str | None) -> None:
            if choice == "quit":
                self._shutdown()
            elif choice == "save":
                if self.save_path is None:
                    self._save_to(self._resolve("autosave"), then=self._shutdown)
                else:
                    self._save_to(self.save_path, then=self._shutdown)

        self.push_screen(ConfirmQuit(), chosen)

    def action_quit_now(self) -> None:
        """ctrl+q: write saves/autosave.npz, then quit at once."""
        self.running = False
        self._save_to(self._resolve("autosave"), then=self._shutdown)
        if not self.ready:  # no worker yet: nothing can have changed
            self._shutdown()

    def _shutdown(self) -> None:
        self.running = False
        self._stop.set()
        self.exit()

    # ---- command palette ----------------------------------------------------------------
    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for binding in self.BINDINGS:
            if binding.id in ("quit-now",):
                continue
            yield SystemCommand(binding.description, f"key {binding.key_display or binding.key}",
                                lambda a=binding.action: self.run_action(a))
        yield SystemCommand("Set temperature…", "type a temperature (or 'tc')",
                            self._ask_temperature)
        yield SystemCommand("Set lattice size L…", "restarts the lattice, data and RBM",
                            lambda: self._ask_config("L", "Lattice size L (even):"))
        yield SystemCommand("Set hidden units…", "re-initialises the RBM",
                            lambda: self._ask_config("hidden", "Hidden units (0 = L²/4):"))
        yield SystemCommand("Set learning rate…", "keeps the weights, resets the optimiser",
                            lambda: self._ask_config("lr", "Learning rate:"))
        yield SystemCommand("Train N steps…", "RBM updates on the stored data",
                            self._ask_train_steps)
        yield SystemCommand("Save as…", "save under a new name", self.action_save_as)
        yield SystemCommand("Reset flow from data", "flow chains start at stored samples",
                            lambda: self.submit(lambda s: s.flow_reset("data")))
        yield SystemCommand("Reset flow from random spins", "flow chains start at random",
                            lambda: self.submit(lambda s: s.flow_reset("random")))
        yield SystemCommand("Export view data (npz)", "the arrays on screen, to a file",
                            self.export_view)
        yield SystemCommand("Screenshot (SVG)", "save the screen as an SVG file",
                            self._screenshot)

    def _ask_temperature(self) -> None:
        from .screens.dialogs import InputDialog

        def chosen(text: str | None) -> None:
            if not text:
                return
            try:
                T = 2 / np.log(1 + np.sqrt(2)) if text.lower() == "tc" else float(text)
            except ValueError:
                self.notify(f"not a temperature: {text!r}", severity="error")
                return
            self.submit(lambda s: s.set_temperature(T))

        self.push_screen(InputDialog("Temperature T:", placeholder="e.g. 2.269 or tc"), chosen)

    def _ask_config(self, key: str, prompt: str) -> None:
        from core.config import build_config  # noqa: F401  (validates through SessionConfig)

        from .screens.dialogs import InputDialog

        def chosen(text: str | None) -> None:
            if not text:
                return

            def apply(s: Session):
                from core.config import SessionConfig

                value = SessionConfig.from_dict({**s.config.to_dict(), key: text})
                s.reconfigure(**{key: getattr(value, key)})
                return f"{key} = {getattr(s.config, key)}"
            self.submit(apply)

        self.push_screen(InputDialog(prompt), chosen)

    def _ask_train_steps(self) -> None:
        from .screens.dialogs import InputDialog

        def chosen(text: str | None) -> None:
            if not text:
                return
            try:
                n = int(text)
                if n <= 0:
                    raise ValueError
            except ValueError:
                self.notify(f"not a positive whole number: {text!r}", severity="error")
                return

            def train(s: Session):
                for _ in range(n):
                    s.train()
                return f"trained {n} steps (now {s.trainer.steps_done})"
            self.submit(train)

        self.push_screen(InputDialog("Train how many RBM steps?", value="100"), chosen)

    def export_view(self) -> None:
        from core.npzio import atomic_write_npz

        f = self._frame
        if f is None:
            return
        arrays = {"spins": f.spins, **{f"rbm_{k}": v for k, v in f.rbm.items()}}
        for i, level in enumerate(f.rg_levels):
            arrays[f"rg_level{i + 1}"] = level
        for name, h in f.histories.items():
            arrays[f"history_{name}"] = h
        c = self._correlators
        if c is not None:
            arrays["rg_vh"], arrays["rbm_vh"] = c["rg"], c["rbm"]
        path = Path(f"rgflow-{self.view}-step{f.step}.npz")
        atomic_write_npz(path, arrays, {"view": self.view, "T": f.T, "L": f.L, "step": f.step})
        self.notify(f"exported {path}")

    def _screenshot(self) -> None:
        path = self.save_screenshot(filename=f"rgflow-{self.view}-{int(time.time())}.svg",
                                    path=".")
        self.notify(f"screenshot {path}")


def _fmt(v) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def create_app(session: Session | None = None, **kwargs) -> RgflowApp:
    """The app factory (tests pass a small seeded Session)."""
    return RgflowApp(session or Session(), **kwargs)
