"""The command palette (: or ctrl+p): every key's action under its readable key name, plus
the commands that ask for a value. An entry appears only when it applies (cancel a job only
while one runs, stop reproduce only while a run goes, ...)."""

from collections.abc import Callable, Iterable, Iterator

from textual.app import SystemCommand
from textual.screen import Screen

from rgflow.core.exact import TC

from .keys import readable

# bindings the palette leaves out: aliases of an entry it has, and per-unit moves
PALETTE_SKIPS = {"quit-now", "quit-now-key", "palette", "view-back", "unit-up", "unit-down",
                 "unit-left", "unit-right"}


def key_name(binding) -> str:
    """A binding's first key as a person reads it: '[' not 'left_square_bracket'."""
    return binding.key_display or readable(binding.key.split(",")[0])


# the footer's paired entries ("=/- T ±0.01") are one direction each in the palette
PALETTE_TITLES = {"t-up": ("T +0.01", "="), "t-up-big": ("T +0.1", "+")}


def palette_commands(app) -> Iterator[SystemCommand]:
    for binding in app.BINDINGS:
        if binding.id in PALETTE_SKIPS:
            continue
        title, key = PALETTE_TITLES.get(binding.id, (binding.description, key_name(binding)))
        yield SystemCommand(title, f"key: {key}",
                            lambda a=binding.action: app.call_later(app.run_action, a))
    yield SystemCommand("Quit at once", "key: Q or ctrl+q — writes a new autosave first",
                        app.action_quit_now)
    yield SystemCommand("Set temperature…", "type a temperature (or 'tc')",
                        app.ask_temperature)
    yield SystemCommand("Set lattice size L…", "restarts the lattice, data and RBM",
                        lambda: app.ask_config("L", "Lattice size L (even, 4..1024):"))
    yield SystemCommand("Set hidden units…", "re-initialises the RBM",
                        lambda: app.ask_config("hidden", "Hidden units (0 = L²/4):"))
    yield SystemCommand("Set receptive field…", "locally connected RBM: each hidden unit "
                        "sees the sites within R of its 2×2 block; re-initialises the RBM",
                        lambda: app.ask_config("receptive_field", "Receptive field R (sites "
                                               "around the unit's block; -1 = every site):"))
    yield SystemCommand("Set learning rate…", "keeps the weights, resets the optimiser",
                        lambda: app.ask_config("lr", "Learning rate:"))
    yield SystemCommand("Train N steps…", "RBM updates on the stored data, in the "
                        "background", lambda: app.ask("Train how many RBM steps?",
                                                      app.train_steps_text, value="100"))
    yield SystemCommand("Flow N steps…", "RBM flow steps on the frozen RBM, in the "
                        "background", lambda: app.ask("How many RBM flow steps?",
                                                      app.flow_steps_text, value="10"))
    if app.driver.job is not None:
        yield SystemCommand("Cancel the job", "stops a running 'Train N steps' or "
                            "'Flow N steps'", app.cancel_job)
    yield SystemCommand("Save as…", "save under a new name", app.action_save_as)
    if not app.reproduce_running():
        yield SystemCommand("Run reproduce preset…", "the paper's experiments (tiny, quick "
                            "or paper) in the background, into saves/reproduce-<preset>",
                            lambda: app.ask("Reproduce which preset? (tiny, quick, paper)",
                                            app.start_reproduce, value="tiny"))
    else:
        yield SystemCommand("Stop reproduce run", "stops the reproduce run at its next "
                            "check (finished stages stay cached)", app.stop_reproduce)
    if not app.calibrating:
        yield SystemCommand("Calibrate classifier thermometer", "fits the flow view's "
                            "second thermometer on Monte Carlo data at this L, in the "
                            "background", app.calibrate_classifier)
        yield SystemCommand("Load classifier calibration…", "an npz written by `rgflow "
                            "calibrate L`", lambda: app.ask("Calibration file:",
                                                            app.load_calibration))
    else:
        yield SystemCommand("Cancel the classifier calibration", "stops the calibration "
                            "at its next check", app.cancel_calibration)
    yield SystemCommand("Reset flow from data", "flow chains start at stored samples; the "
                        "next step freezes the RBM as it is then",
                        lambda: app.reset_flow("data"))
    yield SystemCommand("Reset flow from random spins", "flow chains start at random; the "
                        "next step freezes the RBM as it is then",
                        lambda: app.reset_flow("random"))
    yield SystemCommand("Export view data (npz)", "the arrays of the current view",
                        app.export_view)
    yield SystemCommand("Screenshot (SVG)", "save the screen as an SVG file into "
                        "saves/exports", app.screenshot)


class PaletteMixin:
    """The palette and its value commands (mixed into RgflowApp)."""

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        # Textual's own Quit, Screenshot and Keys would duplicate ours (Keys: our Help)
        for command in super().get_system_commands(screen):
            if command.title not in ("Quit", "Screenshot", "Keys"):
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
