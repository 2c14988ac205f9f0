"""`rgflow serve` (tui/cli/serve.py, tui/webserve.py): a real server on a free port, a
websocket client as the browser; every app process it starts ends, with its autosave, when
its tab closes or the server stops."""

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import pytest

from rgflow.core.persist import read_save
from rgflow.tui.__main__ import build_parser, main

START_DEADLINE = 180.0  # a cold numba cache compiles for a minute or more on a busy machine
# the status line (at 120 columns) once the session has stepped: a session with no step
# has nothing to save
STEPPED = re.compile("sweeps [1-9]")
STOP_DEADLINE = 5.0  # the promise: the app process is gone this long after its tab
# a lattice row: a run of at least 24 half-block glyphs with both halves in it
LATTICE_ROW = re.compile("(?=[ ▄▀█]{24})[ █]*(?:▀[ ▀█]*▄|▄[ ▄█]*▀)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def children(pid: int) -> list[int]:
    """Live child processes of pid, from the process table (/proc)."""
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        state, ppid = fields[0], int(fields[1])
        if ppid == pid and state != "Z":
            out.append(int(entry.name))
    return out


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


async def until(predicate, timeout: float, what: str):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        await asyncio.sleep(0.02)  # polling interval; the deadline decides
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def signal_autosaves(saves: Path, reason: str) -> list[dict]:
    metas = []
    for p in saves.glob("autosave-*.npz"):
        meta = read_save(p)[1]
        if meta["autosave"]["reason"] == reason:
            metas.append(meta)
    return metas


class Served:
    """`rgflow serve` on a free port with its saves in a temporary directory."""

    def __init__(self, tmp_path: Path):
        self.port = free_port()
        self.saves = tmp_path / "saves"
        self.log_path = tmp_path / "serve.log"
        self.log = open(self.log_path, "wb")  # noqa: SIM115 (closed in stop)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "rgflow.tui", "serve", "--port", str(self.port),
             "--saves-dir", str(self.saves)], stdout=self.log, stderr=subprocess.STDOUT)
        self.url = f"http://127.0.0.1:{self.port}"

    async def ready(self, client: aiohttp.ClientSession) -> str:
        end = time.monotonic() + START_DEADLINE
        while True:
            try:
                async with client.get(self.url + "/") as response:
                    return await response.text()
            except aiohttp.ClientConnectionError:
                if time.monotonic() > end or self.process.poll() is not None:
                    raise
                await asyncio.sleep(0.05)

    def stop(self):
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        for pid in children(self.process.pid):
            os.kill(pid, signal.SIGKILL)
        self.log.close()


class Tab:
    """A websocket client in the place of a browser tab. Like a browser it reads all the
    time (which also answers the server's heartbeat pings); the output is collected."""

    def __init__(self, websocket):
        import codecs

        self.ws = websocket
        self.output = ""
        self.closed = False
        self._decoder = codecs.getincrementaldecoder("utf-8")()
        self._news = asyncio.Event()
        self._reader = asyncio.ensure_future(self._read())

    async def _read(self):
        async for message in self.ws:
            if message.type == aiohttp.WSMsgType.BINARY:
                self.output += self._decoder.decode(message.data)
                self._news.set()
        self.closed = True
        self._news.set()

    async def read_until(self, pattern: re.Pattern, timeout: float, start: int = 0):
        end = time.monotonic() + timeout
        while not (match := pattern.search(self.output, start)):
            if self.closed:
                raise AssertionError("the app closed the connection")
            left = end - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {pattern.pattern!r} in the app's output")
            self._news.clear()
            try:
                await asyncio.wait_for(self._news.wait(), left)
            except TimeoutError:
                pass
        return match

    async def key(self, text: str):
        await self.ws.send_json(["stdin", text])


async def open_tab(served: Served, client: aiohttp.ClientSession) -> tuple[Tab, int]:
    websocket = await client.ws_connect(served.url + "/ws?width=120&height=40")
    tab = Tab(websocket)
    pid, = await until(lambda: children(served.process.pid), START_DEADLINE,
                       "the tab's app process")
    return tab, pid


def serve_and_run(tmp_path: Path, scenario) -> Served:
    """Start a server, run scenario(served, client, tab, pid) once its first tab's app is
    running, and stop whatever is left of the server afterwards."""
    served = Served(tmp_path)

    async def main():
        async with aiohttp.ClientSession() as client:
            served.page = await served.ready(client)
            tab, pid = await open_tab(served, client)
            await tab.read_until(STEPPED, START_DEADLINE)
            await scenario(served, client, tab, pid)

    try:
        asyncio.run(main())
    finally:
        served.stop()
    return served


def test_a_tab_runs_the_app_and_its_process_ends_with_an_autosave_when_it_closes(tmp_path):
    async def scenario(served, _client, tab, pid):
        assert f"ws://127.0.0.1:{served.port}/ws" in served.page
        await tab.read_until(LATTICE_ROW, START_DEADLINE)
        running = await tab.read_until(re.compile("▶ running"), START_DEADLINE)
        await tab.key(" ")
        await tab.read_until(re.compile("‖ paused"), 10, start=running.end())
        await tab.ws.close()
        closed = time.monotonic()
        await until(lambda: not alive(pid), STOP_DEADLINE, "the app process to end")
        assert time.monotonic() - closed <= STOP_DEADLINE
        assert served.process.poll() is None  # the server goes on serving

    served = serve_and_run(tmp_path, scenario)
    metas = signal_autosaves(served.saves, "signal SIGTERM")
    assert len(metas) == 1, served.log_path.read_text()
    assert metas[0]["counters"]["step"] > 0
    assert metas[0]["live"]["T"] > 0


def test_stopping_the_server_ends_every_app_process_each_with_an_autosave(tmp_path):
    async def scenario(served, client, _first, _pid):
        second = Tab(await client.ws_connect(served.url + "/ws?width=120&height=40"))
        pids = await until(lambda: len(children(served.process.pid)) == 2
                           and children(served.process.pid), START_DEADLINE,
                           "the second tab's app process")
        await second.read_until(STEPPED, START_DEADLINE)
        served.process.send_signal(signal.SIGTERM)
        await until(lambda: not any(alive(p) for p in pids), STOP_DEADLINE + 1,
                    "every app process to end")
        await until(lambda: served.process.poll() is not None, 10, "the server to stop")

    served = serve_and_run(tmp_path, scenario)
    assert served.process.returncode == 0
    metas = signal_autosaves(served.saves, "signal SIGTERM")
    assert len(metas) == 2, served.log_path.read_text()
    assert all(m["counters"]["step"] > 0 for m in metas)


@pytest.mark.parametrize("how", ["SIGHUP", "SIGKILL"])
def test_a_server_that_hangs_up_or_dies_leaves_no_app_process(tmp_path, how):
    """SIGHUP stops the server as Ctrl-C does; after SIGKILL the kernel sends each app
    process SIGTERM (PR_SET_PDEATHSIG). Either way each tab's session is autosaved."""
    async def scenario(served, _client, _tab, pid):
        served.process.send_signal(getattr(signal, how))
        await until(lambda: not alive(pid), STOP_DEADLINE, "the app process to end")

    served = serve_and_run(tmp_path, scenario)
    metas = signal_autosaves(served.saves, "signal SIGTERM")
    assert len(metas) == 1, served.log_path.read_text()


def test_help_shows_the_ssh_tunnel_and_says_there_is_no_authentication(capsys):
    assert main(["serve", "--help"]) == 0
    text = capsys.readouterr().out
    assert "ssh -L 8000:localhost:8000" in text
    assert "no authentication" in text.lower()
    args = build_parser().parse_args(["serve"])
    assert (args.host, args.port, args.public_url, args.name) == ("127.0.0.1", 8000, None,
                                                                   None)


@pytest.mark.parametrize("argv, message", [
    (["serve", "no-such-save"], "no such file"),
    (["serve", "--port", "70000"], "at most 65535"),
    (["serve", "--public-url", "example.org"], "http:// or https://"),
])
def test_bad_input_is_one_line_and_exit_2(argv, message, capsys, tmp_path):
    assert main([*argv, "--saves-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_a_busy_port_is_one_line_and_exit_2(capsys):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["serve", "--port", str(port)]) == 2
    err = capsys.readouterr().err
    assert f"cannot listen on 127.0.0.1:{port}" in err and len(err.strip().splitlines()) == 1
