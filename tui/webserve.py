"""The app in a browser: a textual-serve Server whose every websocket (browser tab) runs its
own `rgflow` app process, and whose app processes never outlive their tab or the server.

textual-serve ends an app by asking it to quit over the protocol and then waits, without a
deadline, for its output to end; once the tab has gone it also stops reading that output,
so an app still drawing blocks on a full pipe and never exits. Here a tab's app process is
sent SIGTERM instead (the app writes its final autosave and exits, tui/lifecycle.py), its
output is drained until it has exited, and SIGKILL follows after STOP_SECONDS. Stopping the
server stops every app process it started the same way, and an app process whose server
dies is sent SIGTERM by the kernel (Linux).
"""

import asyncio
import contextlib
import logging
import os
import shlex
import signal
import sys

from aiohttp import WSCloseCode, web
from textual_serve.app_service import AppService
from textual_serve.server import Server, to_int

log = logging.getLogger("rgflow-serve")

STOP_SECONDS = 5.0  # an app process autosaves and exits within this after SIGTERM
# the websocket is pinged this often and closed when no answer comes within half of it: a
# lost connection ends its tab's app within 1.5x this; textual-serve's 15 s closed live tabs
# of a busy machine whose browser had not answered within 7.5 s
HEARTBEAT_SECONDS = 30.0
KILL_WAIT_SECONDS = 2.0


def _die_with_parent() -> None:
    """In the app process, before exec: SIGTERM when the server process dies."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        PR_SET_PDEATHSIG = 1
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):  # not Linux: the server's own shutdown still stops it
        pass


class TabAppService(AppService):
    """One browser tab's app process, started without a shell and stopped with SIGTERM."""

    def __init__(self, argv: list[str], **kwargs):
        super().__init__(shlex.join(argv), **kwargs)
        self.argv = argv
        self._stop_task: asyncio.Task | None = None
        self._tab_gone = False

    async def _open_app_process(self, width: int = 80, height: int = 24):
        env = self._build_environment(width=width, height=height)
        self._process = process = await asyncio.create_subprocess_exec(
            *self.argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, env=env,
            # not in the server's process group: a Ctrl-C at the server's terminal reaches
            # the server only, which then stops each app in turn
            start_new_session=True,
            preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None)
        self._stdin = process.stdin
        return process

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    async def on_data(self, payload: bytes) -> None:
        """Forward the app's output to the tab; once the tab is gone keep reading it (and
        drop it), so the app never blocks on a full pipe while it saves and exits."""
        if self._tab_gone:
            return
        try:
            await self.remote_write_bytes(payload)
        except (ConnectionError, RuntimeError):
            self._tab_gone = True

    async def stop(self) -> None:
        """End the app process (autosave, exit; SIGKILL after STOP_SECONDS). Safe to call
        more than once and from several tasks: they all wait for the same stop."""
        if self._stop_task is None:
            self._stop_task = asyncio.ensure_future(self._stop())
        await asyncio.shield(self._stop_task)

    async def _stop(self) -> None:
        self._tab_gone = True
        await self._download_manager.cancel_app_downloads(app_service_id=self.app_service_id)
        process = self._process
        if process is not None and process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), STOP_SECONDS)
            except TimeoutError:
                log.warning("app process %s did not exit in %.0f s: killed", process.pid,
                            STOP_SECONDS)
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await asyncio.wait_for(process.wait(), KILL_WAIT_SECONDS)
        if self._task is not None:
            await self._task  # ends at the end of the app's output, which has exited
            self._task = None


class RgflowServer(Server):
    """textual-serve's Server with one TabAppService per websocket and all of them stopped
    when the server stops."""

    def __init__(self, argv: list[str], *, host: str, port: int, public_url: str | None,
                 title: str = "rgflow"):
        super().__init__(shlex.join(argv), host=host, port=port, title=title,
                         public_url=public_url)
        self.argv = argv
        self.tabs: dict[TabAppService, web.WebSocketResponse] = {}

    def initialize_logging(self) -> None:
        logging.basicConfig(level="DEBUG" if self.debug else "INFO",
                            format="rgflow serve: %(message)s", stream=sys.stderr)

    async def on_startup(self, app: web.Application) -> None:
        # a hang-up of the server's terminal stops it as Ctrl-C does: every tab autosaves
        with contextlib.suppress(NotImplementedError, RuntimeError):
            asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, self.request_exit)
        sys.stderr.write(
            f"rgflow serve: serving the app on {self.public_url} (no authentication: keep "
            "it on localhost and reach it through an SSH tunnel); Ctrl-C stops it\n")
        sys.stderr.flush()

    async def on_shutdown(self, app: web.Application) -> None:
        """Stop every app process (each writes its autosave), then close their tabs."""
        tabs = list(self.tabs.items())
        await asyncio.gather(*(service.stop() for service, _ in tabs), return_exceptions=True)
        for _, websocket in tabs:
            with contextlib.suppress(Exception):
                await websocket.close(code=WSCloseCode.GOING_AWAY, message=b"server stopped")

    async def handle_websocket(self, request: web.Request) -> web.WebSocketResponse:
        """textual-serve's handler, with this module's app service and its bookkeeping."""
        websocket = web.WebSocketResponse(heartbeat=HEARTBEAT_SECONDS)
        width = to_int(request.query.get("width", "80"), 80)
        height = to_int(request.query.get("height", "24"), 24)
        service: TabAppService | None = None
        try:
            await websocket.prepare(request)
            service = TabAppService(
                self.argv, write_bytes=websocket.send_bytes, write_str=websocket.send_str,
                close=websocket.close, download_manager=self.download_manager,
                debug=self.debug)
            self.tabs[service] = websocket
            await service.start(width, height)
            log.info("tab opened: app process %s", service.pid)
            await self._process_messages(websocket, service)
        except asyncio.CancelledError:
            await websocket.close()
        except Exception as error:  # one tab's failure never stops the server
            log.exception(error)
        finally:
            if service is not None:
                await service.stop()
                self.tabs.pop(service, None)
                log.info("tab closed (websocket code %s): app process %s ended (exit %s)",
                         websocket.close_code, service.pid,
                         service._process.returncode if service._process else None)
        return websocket


def app_argv(save_path=None, saves_dir=None) -> list[str]:
    """The command each tab runs: this Python's `rgflow`, or `rgflow open PATH`."""
    argv = [sys.executable, "-m", "rgflow.tui"]
    if save_path is not None:
        argv += ["open", os.fspath(save_path)]
    if saves_dir is not None:
        argv += ["--saves-dir", os.fspath(saves_dir)]
    return argv
