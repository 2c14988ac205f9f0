"""The command palette (ctrl+p): every key's action under its readable key name, plus the
commands that ask for a value. An entry appears only when it applies (cancel a training
job only while one runs, stop reproduce only while a run goes, ...)."""

from collections.abc import Iterator

from textual.app import SystemCommand

# bindings the palette leaves out: aliases of an entry it has, and per-unit moves
PALETTE_SKIPS = {"quit-now", "view-back", "unit-up", "unit-down", "unit-left", "unit-right"}
KEY_NAMES = {"space": "space", "left_square_bracket": "[", "right_square_bracket": "]",
             "equals_sign": "=", "minus": "-", "plus": "+", "underscore": "_",
             "question_mark": "?", "tab": "tab"}


def key_name(binding) -> str:
    """A binding's first key as a person reads it: '[' not 'left_square_bracket'."""
    if binding.key_display:
        return binding.key_display
    key = binding.key.split(",")[0]
    return KEY_NAMES.get(key, key)


def palette_commands(app) -> Iterator[SystemCommand]:
    for binding in app.BINDINGS:
        if binding.id in PALETTE_SKIPS:
            continue
        yield SystemCommand(binding.description, f"key: {key_name(binding)}",
                            lambda a=binding.action: app.call_later(app.run_action, a))
    yield SystemCommand("Quit at once", "key: ctrl+q — writes a new autosave first",
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
    if app.driver.job is not None:
        yield SystemCommand("Cancel the training job", "stops a running 'Train N steps'",
                            app.cancel_job)
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
    yield SystemCommand("Reset flow from data", "flow chains start at stored samples",
                        lambda: app.submit(lambda s: s.flow_reset("data")))
    yield SystemCommand("Reset flow from random spins", "flow chains start at random",
                        lambda: app.submit(lambda s: s.flow_reset("random")))
    yield SystemCommand("Export view data (npz)", "the arrays of the current view",
                        app.export_view)
    yield SystemCommand("Screenshot (SVG)", "save the screen as an SVG file into "
                        "saves/exports", app.screenshot)
