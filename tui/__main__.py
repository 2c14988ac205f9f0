"""`rgflow`: the command line; without a sub-command it starts the app.

Headless sub-commands import only core (plus rich for progress); the Textual app is
imported only when it is started."""

import importlib
import os
import sys

from rgflow.core.blas import import_numpy_single_threaded, restore_default_threads
from rgflow.core.errors import RgflowError
from rgflow.tui.cli.common import OneLineParser

# sub-command -> module with add_parser(subparsers) and run(args) -> int
COMMANDS = {
    "sample": "rgflow.tui.cli.sample",
    "rg": "rgflow.tui.cli.rg",
    "train": "rgflow.tui.cli.train",
    "bench": "rgflow.tui.cli.bench",
    "run": "rgflow.tui.cli.session_cmds",  # also registers resume
    "info": "rgflow.tui.cli.files",  # also registers ls
    "open": "rgflow.tui.cli.app_cmds",
    "reproduce": "rgflow.tui.cli.reproduce",
    "calibrate": "rgflow.tui.cli.calibrate",
    "serve": "rgflow.tui.cli.serve",
}


# every sub-command's name, also those a module registers besides its own (tests/test_main.py
# checks this against the parser)
COMMAND_NAMES = frozenset({*COMMANDS, "resume", "ls"})

TOP = "top_"  # dest prefix of the options given before any sub-command


def _apply_top_options(parser, args) -> None:
    """Options before a sub-command belong to the app (plain `rgflow`). With a sub-command
    they are refused with one line rather than silently ignored."""
    from rgflow.tui.cli.app_cmds import APP_OPTIONS

    given = [name for name in APP_OPTIONS if getattr(args, TOP + name) not in (None, [])]
    if args.command is not None and given:
        flags = ", ".join("--" + name.replace("_", "-") for name in given)
        parser.error(f"{flags} before '{args.command}' applies to the app only; "
                     f"put it after the sub-command (rgflow {args.command} {flags.split(',')[0]} "
                     "...), where the sub-command accepts it")
    if args.command is None:
        for name in APP_OPTIONS:
            setattr(args, name, getattr(args, TOP + name))


class _NotAppOnly(Exception):
    """The command line is not app options alone (see parse_args)."""


class _AppOnlyParser(OneLineParser):
    def error(self, message):
        raise _NotAppOnly(message)


def build_parser(commands: bool = True) -> OneLineParser:
    """The command line's parser; commands=False: the app's options only, without the
    sub-commands (whose modules `rgflow` alone need not import)."""
    parser = (OneLineParser if commands else _AppOnlyParser)(
        prog="rgflow",
        description="Is deep learning a renormalization group flow? Ising Monte Carlo, "
        "RG block spins and RBMs, in the terminal and headless. Without a COMMAND it starts "
        "the app with a new session; the options below are the app's. Each COMMAND has its "
        "own options, given after it (rgflow COMMAND --help).",
    )
    from rgflow.tui.cli.app_cmds import add_app_options, run_default

    add_app_options(parser, prefix=TOP)
    parser.set_defaults(run=run_default)
    if not commands:
        parser.set_defaults(command=None)
        return parser
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineParser)
    for module in COMMANDS.values():
        importlib.import_module(module).add_parser(sub)
    return parser


def parse_args(argv=None):
    """(parser, args). A command line of app options alone (the app's start) is parsed
    without building the sub-commands' parsers; anything else, including what the short
    parser refuses, by the full one, which parses it and reports errors as it always does."""
    tokens = sys.argv[1:] if argv is None else list(argv)
    if not any(t in COMMAND_NAMES or t.startswith(("-h", "--h")) for t in tokens):
        parser = build_parser(commands=False)
        try:
            return parser, parser.parse_args(tokens)
        except _NotAppOnly:
            pass
    parser = build_parser()
    return parser, parser.parse_args(tokens)


def main(argv=None) -> int:
    prefix = "rgflow"  # the command's name in messages, once it is known
    # the app's first frame needs no BLAS threads: its worker starts them after that frame
    import_numpy_single_threaded()
    try:
        try:
            parser, args = parse_args(argv)
            _apply_top_options(parser, args)
        except SystemExit as exc:  # --help, or a bad argument already reported in one line
            return int(exc.code or 0)
        from rgflow.tui.cli.app_cmds import starts_app

        if not starts_app(args):
            restore_default_threads()
        prefix = f"rgflow {args.command or 'app'}"
        return int(args.run(args) or 0)
    except RgflowError as exc:
        sys.stderr.write(f"{prefix}: error: {exc}\n")
        return 2
    except OSError as exc:  # a write failed after the checks (disk full, folder gone, ...)
        where = f"{exc.filename}: " if exc.filename else ""
        sys.stderr.write(f"{prefix}: error: {where}{exc.strerror or exc}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write(f"{prefix}: interrupted\n")
        return 130
    except BrokenPipeError:  # e.g. `rgflow bench ising --json | head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


if __name__ == "__main__":
    sys.exit(main())
