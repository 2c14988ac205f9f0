"""Starting the Textual app: `rgflow` (default session) and `rgflow open NAME|PATH`."""

import os

from tui.cli.common import positive_float, positive_int


def add_app_options(p):
    p.add_argument("--fps", type=positive_float,
                   help="frames drawn per second (default 12, 8 over SSH)")
    p.add_argument("--threads", type=positive_int,
                   help="numba threads (default: cores - 1, leaving one for the UI)")
    p.add_argument("--theme", help="Textual theme name (e.g. textual-dark, nord, gruvbox)")
    p.add_argument("--saves-dir", help="saves directory (default ./saves or $RGFLOW_SAVES)")
    p.add_argument("--preset", help="start from a named preset instead of the default session")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override one setting of a new session (repeatable)")


def add_parser(sub):
    p = sub.add_parser("open", help="open a saved session in the app")
    p.add_argument("name", metavar="NAME|PATH")
    add_app_options(p)
    p.set_defaults(run=run_open)


def default_fps() -> float:
    return 8.0 if os.environ.get("SSH_CONNECTION") else 12.0


def _configure_threads(threads):
    import numba

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    n = threads or max(1, (cores or 1) - 1)
    numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))


def _launch(args, session, save_path=None) -> int:
    from core.errors import UsageError
    from tui.app import create_app

    _configure_threads(args.threads)
    app = create_app(session, fps=args.fps or default_fps(), saves_dir=args.saves_dir,
                     save_path=save_path)
    if args.theme:
        if args.theme not in app.available_themes:
            raise UsageError(f"unknown theme {args.theme!r}; choose from "
                             + ", ".join(sorted(app.available_themes)))
        app.theme = args.theme
    if save_path is not None:
        session.save_name = save_path.stem
    app.run()
    return 0


def run_default(args) -> int:
    from core.config import build_config
    from core.session import Session

    session = Session(build_config(args.preset, None, args.set))
    return _launch(args, session)


def run_open(args) -> int:
    from core.persist import read_save, resolve_save_path
    from core.session import Session

    path = resolve_save_path(args.name, args.saves_dir)
    arrays, meta = read_save(path)
    session = Session.from_state(arrays, meta, path)
    return _launch(args, session, save_path=path)
