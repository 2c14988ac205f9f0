"""`rgflow serve`: the app in a browser (textual-serve), one app process per browser tab."""

import argparse
import os
from pathlib import Path

from rgflow.tui.cli.common import positive_int

EPILOG = """\
Each browser tab runs its own app process, exactly as `rgflow` (or `rgflow open NAME`) does.
Closing the tab (or losing the connection, which the websocket's heartbeat notices within
45 s) autosaves that session and ends its process; stopping the server (Ctrl-C,
SIGTERM, or a hang-up of its terminal) does the same for every tab.

There is no authentication: anyone who can reach the port controls the app and can write
files in the saves directory. The server binds to 127.0.0.1 by default. Never bind it to a
public address without a proxy in front that adds authentication. From another machine,
use an SSH tunnel:

  on the server:   rgflow serve --port 8000
  on your laptop:  ssh -L 8000:localhost:8000 user@server
  then open        http://localhost:8000

Browsers keep ctrl+q, ctrl+w, ctrl+t and often ctrl+p for themselves; every action has a key
they leave alone: Q quits at once with an autosave, q quits (offering to save), and ':'
opens the command palette.
"""


def port_number(text: str) -> int:
    port = positive_int(text)
    if port > 65535:
        raise argparse.ArgumentTypeError(f"invalid port {text!r}: at most 65535")
    return port


def add_parser(sub):
    p = sub.add_parser(
        "serve", help="serve the app to a web browser (no authentication: see --help)",
        description="Serve the app to a web browser through textual-serve.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("name", nargs="?", metavar="NAME|PATH",
                   help="open this saved session in every tab (default: a new session)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=port_number, default=8000, help="port (default 8000)")
    p.add_argument("--public-url", metavar="URL",
                   help="the URL browsers use, when it differs from http://HOST:PORT "
                   "(e.g. behind a proxy)")
    p.add_argument("--saves-dir", help="saves directory (default ./saves or $RGFLOW_SAVES)")
    p.set_defaults(run=run)


def run(args) -> int:
    from rgflow.core.errors import UsageError
    from rgflow.core.persist import read_save, resolve_save_path

    save_path = None
    if args.name is not None:
        save_path = resolve_save_path(args.name, args.saves_dir)
        read_save(save_path)  # a missing or damaged save is one line now, not in each tab
        save_path = save_path.resolve()
    saves_dir = Path(args.saves_dir).resolve() if args.saves_dir else None
    if args.public_url is not None and not args.public_url.startswith(("http://", "https://")):
        raise UsageError(f"invalid --public-url {args.public_url!r}: it starts with "
                         "http:// or https://")
    _check_port(args.host, args.port)

    from rgflow.tui.webserve import RgflowServer, app_argv

    server = RgflowServer(app_argv(save_path, saves_dir), host=args.host, port=args.port,
                          public_url=args.public_url)
    server.serve()
    return 0


def _check_port(host: str, port: int) -> None:
    """A busy port or an address that is not this machine's is one line, not a traceback
    from inside the server."""
    import socket

    from rgflow.core.errors import UsageError

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise UsageError(f"cannot resolve --host {host!r}: {exc.strerror}") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        if os.name == "posix":
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
