"""Starting the Textual app: `rgflow` (default session) and `rgflow open NAME|PATH`."""

import argparse
import gc
import os

from rgflow.tui.cli.common import finite_float, positive_float, positive_int

# the app's options; before a sub-command they are refused (see rgflow.tui.__main__)
APP_OPTIONS = ("fps", "threads", "theme", "saves_dir", "autosave_minutes", "preset", "config",
               "set")


def non_negative_float(text: str) -> float:
    value = finite_float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be zero or positive, got {text}")
    return value


def add_app_options(p, prefix: str = "", new_session: bool = True):
    """The app's options. prefix renames their dests (the top level keeps its own, so that
    an option before a sub-command can be told apart from one after it)."""
    p.add_argument("--fps", dest=f"{prefix}fps", type=positive_float, metavar="FPS",
                   help="frames drawn per second (default 12, 8 over SSH; "
                   "TEXTUAL_FPS caps the terminal updates)")
    p.add_argument("--threads", dest=f"{prefix}threads", type=positive_int, metavar="N",
                   help="numba threads (default: cores - 1, leaving one for the UI)")
    p.add_argument("--theme", dest=f"{prefix}theme", metavar="NAME",
                   help="Textual theme name (e.g. textual-dark, nord, gruvbox)")
    p.add_argument("--saves-dir", dest=f"{prefix}saves_dir", metavar="DIR",
                   help="saves directory (default ./saves or $RGFLOW_SAVES)")
    p.add_argument("--autosave-minutes", dest=f"{prefix}autosave_minutes",
                   type=non_negative_float, metavar="M",
                   help="write an autosave every M minutes while the session changes "
                   "(default 5; 0: only on quit, hang-up or termination)")
    if not new_session:  # accepted only to be refused with a reason (run_open)
        for flag in ("--preset", "--config", "--set"):
            p.add_argument(flag, dest=f"refused_{flag[2:]}", action="append",
                           help=argparse.SUPPRESS)
        return
    p.add_argument("--preset", dest=f"{prefix}preset", metavar="NAME",
                   help="start from a named preset instead of the default session")
    p.add_argument("--config", dest=f"{prefix}config", metavar="FILE.toml",
                   help="TOML file of settings for the new session")
    p.add_argument("--set", dest=f"{prefix}set", action="append", default=[],
                   metavar="KEY=VALUE", help="override one setting of a new session (repeatable)")


def add_parser(sub):
    p = sub.add_parser(
        "open", help="open a saved session in the app",
        description="Open a saved session in the app. NAME is a save in the saves directory "
        "(saves/NAME.npz); a PATH (containing '/', ending in .npz, or an existing file) is used "
        "as given. A save carries its own settings, so --preset, --config and --set are "
        "refused here: they shape new sessions (`rgflow --set ...`, `rgflow run --set ...`).")
    p.add_argument("name", metavar="NAME|PATH")
    add_app_options(p, new_session=False)
    p.set_defaults(run=run_open)


def default_fps() -> float:
    return 8.0 if os.environ.get("SSH_CONNECTION") else 12.0


# Textual composes a changed screen on its next tick at TEXTUAL_FPS (default 60): up to
# 17 ms added to every key's feedback. Ticks only do work when something changed, and our
# frames are paced by --fps, so a faster tick costs little. A user's setting wins.
SCREEN_TICK_FPS = "120"


def _launch(args, config=None, opening=None, save_path=None) -> int:
    os.environ.setdefault("TEXTUAL_FPS", SCREEN_TICK_FPS)  # read when Textual is imported
    # Textual, numpy and numba create a few hundred thousand long-lived objects while they
    # load; the collector's full passes over them cost ~0.3 s of a 2 s start. The app
    # collects once, freezes what is left and turns the collector back on when its kernels
    # are ready (RgflowApp._kernels_ready), or when the simulation fails before that.
    gc.disable()
    from rgflow.core.errors import UsageError
    from rgflow.tui.app import create_app

    app = create_app(config=config, opening=opening, fps=args.fps or default_fps(),
                     saves_dir=args.saves_dir, save_path=save_path, threads=args.threads)
    if args.theme:
        if args.theme not in app.available_themes:
            raise UsageError(f"unknown theme {args.theme!r}; choose from "
                             + ", ".join(sorted(app.available_themes)))
        app.theme = args.theme
    from rgflow.tui.lifecycle import protect_protocol_stdout

    protect_protocol_stdout()
    app.guard_session = True
    if args.autosave_minutes is not None:
        app.autosave_seconds = args.autosave_minutes * 60
    app.run()
    if app.driver.start_error is not None:
        raise app.driver.start_error
    if app.lifecycle is None:
        return app.return_code or 0
    # 128 + N after signal N, once its autosave is written (tui/lifecycle.py)
    return app.lifecycle.after_exit(app.session, app.driver.alive, app.return_code or 0)


def starts_app(args) -> bool:
    """This command line starts the Textual app (`rgflow`, `rgflow open`)."""
    return args.run in (run_default, run_open)


def run_default(args) -> int:
    from rgflow.core.config import build_config

    # validated here (a bad --set is a one-line error); the Session itself is built on the
    # app's worker thread, so the window and its loading indicator appear at once
    config = build_config(args.preset, args.config, args.set)
    return _launch(args, config=config)


def run_open(args) -> int:
    from rgflow.core.errors import UsageError

    refused = [f"--{k}" for k in ("preset", "config", "set") if getattr(args, f"refused_{k}")]
    if refused:
        raise UsageError(f"{', '.join(refused)}: a save carries its own settings; these shape "
                         "new sessions (rgflow --set KEY=VALUE, rgflow run --set KEY=VALUE)")
    from rgflow.core.frame import HISTORIES, saved_frame
    from rgflow.core.persist import read_save, resolve_save_path, validate_session_state
    from rgflow.tui.driver import Opening

    path = resolve_save_path(args.name, args.saves_dir)
    arrays, meta = read_save(path)
    # checked here, so a damaged save is a one-line error before the window opens; the
    # Session (numba) is built on the app's worker, after the save's lattice is shown
    state = validate_session_state(arrays, meta, path, HISTORIES)

    def build():
        from rgflow.core.session import Session

        session = Session.from_state(arrays, meta, path, checked=state)
        session.save_name = path.stem
        return session

    opening = Opening(build, saved_frame(state, arrays["spins"], path.stem))
    return _launch(args, opening=opening, save_path=path)
