"""Starting the Textual app: `rgflow` (default session) and `rgflow open NAME|PATH`."""

import argparse
import gc
import os

from rgflow.tui.cli.common import finite_float, positive_float, positive_int


def non_negative_float(text: str) -> float:
    value = finite_float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be zero or positive, got {text}")
    return value


def add_app_options(p):
    p.add_argument("--fps", type=positive_float,
                   help="frames drawn per second (default 12, 8 over SSH; "
                   "TEXTUAL_FPS caps the terminal updates)")
    p.add_argument("--threads", type=positive_int,
                   help="numba threads (default: cores - 1, leaving one for the UI)")
    p.add_argument("--theme", help="Textual theme name (e.g. textual-dark, nord, gruvbox)")
    p.add_argument("--saves-dir", help="saves directory (default ./saves or $RGFLOW_SAVES)")
    p.add_argument("--preset", help="start from a named preset instead of the default session")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override one setting of a new session (repeatable)")
    p.add_argument("--autosave-minutes", type=non_negative_float, default=None, metavar="M",
                   help="write an autosave every M minutes while the session changes "
                   "(default 5; 0: only on quit, hang-up or termination)")


def add_parser(sub):
    p = sub.add_parser("open", help="open a saved session in the app")
    p.add_argument("name", metavar="NAME|PATH")
    add_app_options(p)
    p.set_defaults(run=run_open)


def default_fps() -> float:
    return 8.0 if os.environ.get("SSH_CONNECTION") else 12.0


# Textual composes a changed screen on its next tick at TEXTUAL_FPS (default 60): up to
# 17 ms added to every key's feedback. Ticks only do work when something changed, and our
# frames are paced by --fps, so a faster tick costs little. A user's setting wins.
SCREEN_TICK_FPS = "120"


def _launch(args, session=None, config=None, save_path=None) -> int:
    os.environ.setdefault("TEXTUAL_FPS", SCREEN_TICK_FPS)  # read when Textual is imported
    # Textual, numpy and numba create a few hundred thousand long-lived objects while they
    # load; the collector's full passes over them cost ~0.3 s of a 2 s start. The app
    # collects once, freezes what is left and turns the collector back on when its kernels
    # are ready (RgflowApp._kernels_ready), or when the simulation fails before that.
    gc.disable()
    from rgflow.core.errors import UsageError
    from rgflow.tui.app import create_app

    app = create_app(session, config=config, fps=args.fps or default_fps(),
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
    return app.return_code or 0  # 128 + N after signal N (tui/lifecycle.py)


def run_default(args) -> int:
    from rgflow.core.config import build_config

    # validated here (a bad --set is a one-line error); the Session itself is built on the
    # app's worker thread, so the window and its loading indicator appear at once
    config = build_config(args.preset, None, args.set)
    return _launch(args, config=config)


def run_open(args) -> int:
    from rgflow.core.persist import read_save, resolve_save_path
    from rgflow.core.session import Session

    path = resolve_save_path(args.name, args.saves_dir)
    arrays, meta = read_save(path)
    session = Session.from_state(arrays, meta, path)
    session.save_name = path.stem
    return _launch(args, session=session, save_path=path)
