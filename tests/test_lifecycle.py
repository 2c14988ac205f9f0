"""tui/lifecycle.py: the final autosave on a signal, the snapshot fallback, periodic
autosaves, dropped-session notes; and the real app under a pseudo-terminal receiving
SIGHUP, SIGTERM and SIGINT twice."""

import json
import os
import pty
import select
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from rgflow.core.config import SessionConfig
from rgflow.core.persist import read_save, write_save
from rgflow.core.session import Session
from rgflow.tui import lifecycle as lc

SMALL = dict(L=8, batch=10, chains=10, dataset_capacity=50, sample_spacing=2,
             flow_chains=4, monitor_every=5, history=64)
DEADLINE = 180.0  # a cold numba cache compiles for a minute or more on a busy machine


def wait_for(predicate, timeout: float, what: str):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)  # polling interval, not synchronisation: the deadline decides
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


class FakeApp:
    """What a Lifecycle drives: a worker queue run by the test, exit codes, autosaves."""

    def __init__(self, tmp_path: Path, session: Session | None):
        self.session = session
        self.commands: list = []
        self.exits: list[int] = []
        self.stopped = 0
        self.written: list[tuple[Path, dict, dict]] = []
        self.dir = tmp_path
        self.hard_exits: list[int] = []
        self.write_gate: threading.Event | None = None  # a write waits for this when set

    def write_autosave(self, snapshot, save_name):
        arrays, meta = snapshot
        if self.write_gate is not None:
            assert self.write_gate.wait(10)
        path = self.dir / f"autosave-{save_name or 'unsaved'}-{len(self.written)}.npz"
        write_save(path, arrays, meta)
        self.written.append((path, arrays, meta))
        return path

    def lifecycle(self, **kwargs) -> lc.Lifecycle:
        return lc.Lifecycle(submit=self.commands.append, stop_work=self.stop,
                            exit_app=self.exits.append, write_autosave=self.write_autosave,
                            saves_directory=self.dir, hard_exit=self.hard_exits.append,
                            log=lambda _text: None, **kwargs)

    def stop(self):
        self.stopped += 1

    def run_commands(self):
        while self.commands:
            self.commands.pop(0)(self.session)


def stepped_session(steps=3) -> Session:
    s = Session(SessionConfig(**SMALL))
    s.run_steps(steps)
    return s


def test_signal_saves_at_the_boundary_notes_it_and_exits_128_plus_n(tmp_path):
    app = FakeApp(tmp_path, stepped_session(3))
    life = app.lifecycle()
    life.on_signal(signal.SIGHUP)
    assert app.stopped == 1
    wait_for(lambda: app.commands, 5, "the final save command")
    app.run_commands()
    wait_for(lambda: app.exits, 5, "the exit")
    assert app.exits == [128 + signal.SIGHUP]
    (path, _arrays, meta), = app.written
    assert meta["autosave"]["reason"] == "signal SIGHUP"
    assert meta["counters"]["step"] == 3
    assert Session.load(path).step_count == 3
    notes = lc.dropped_sessions(tmp_path)
    assert [n["path"] for n in notes] == [path.resolve()]
    assert notes[0]["reason"] == "signal SIGHUP"


def test_nothing_unsaved_writes_nothing_but_still_exits(tmp_path):
    session = stepped_session(2)
    session.unsaved = False
    app = FakeApp(tmp_path, session)
    life = app.lifecycle()
    life.on_signal(signal.SIGTERM)
    wait_for(lambda: app.commands, 5, "the final save command")
    app.run_commands()
    wait_for(lambda: app.exits, 5, "the exit")
    assert app.exits == [128 + signal.SIGTERM] and app.written == []
    assert lc.dropped_sessions(tmp_path) == []


def test_a_busy_worker_gets_the_newest_boundary_snapshot_written(tmp_path, monkeypatch):
    monkeypatch.setattr(lc, "BOUNDARY_WAIT_SECONDS", 0.05)
    session = stepped_session(4)
    app = FakeApp(tmp_path, session)
    life = app.lifecycle()
    life._take_snapshot(session)  # a boundary: the snapshot holds 4 steps
    session.run_steps(2)  # the worker goes on, then never reaches another boundary
    life.on_signal(signal.SIGTERM)
    wait_for(lambda: app.exits, 5, "the exit")
    (_path, _arrays, meta), = app.written
    assert meta["counters"]["step"] == 4
    app.run_commands()  # the worker comes back: the final save is not written twice
    assert len(app.written) == 1


def test_without_a_snapshot_a_slow_worker_is_waited_for(tmp_path, monkeypatch):
    monkeypatch.setattr(lc, "BOUNDARY_WAIT_SECONDS", 0.01)
    app = FakeApp(tmp_path, stepped_session(5))
    life = app.lifecycle()
    life.on_signal(signal.SIGTERM)  # before any snapshot was taken
    wait_for(lambda: app.commands, 5, "the final save command")
    life.final_thread.join(0.2)  # well past the boundary wait: still waiting for the worker
    assert life.final_thread.is_alive() and app.exits == [] and app.written == []
    app.run_commands()
    wait_for(lambda: app.exits, 5, "the exit")
    (_path, _arrays, meta), = app.written
    assert meta["counters"]["step"] == 5


def test_a_worker_that_never_answers_ends_at_the_deadline_without_a_save(tmp_path,
                                                                       monkeypatch):
    monkeypatch.setattr(lc, "BOUNDARY_WAIT_SECONDS", 0.01)
    monkeypatch.setattr(lc, "HARD_EXIT_SECONDS", 0.05)
    app = FakeApp(tmp_path, stepped_session(1))
    life = app.lifecycle()
    life.on_signal(signal.SIGTERM)
    wait_for(lambda: app.hard_exits, 5, "the hard exit")
    assert app.hard_exits == [128 + signal.SIGTERM]
    app.run_commands()  # the worker comes back too late: it writes nothing
    assert app.written == []


def gated_final_save(app: FakeApp, signum: int) -> tuple[lc.Lifecycle, threading.Thread]:
    """A signal, then the worker starting the final write, which waits on app.write_gate."""
    app.write_gate = threading.Event()
    life = app.lifecycle()
    life.on_signal(signum)
    wait_for(lambda: app.commands, 5, "the final save command")
    worker = threading.Thread(target=app.run_commands)
    worker.start()
    return life, worker


def test_an_app_that_ended_before_its_worker_saved_is_saved_after_the_exit(tmp_path):
    """e.g. the browser server died: SIGTERM, but the broken output pipe ended the app and
    stopped its worker before the worker reached the final save."""
    session = stepped_session(4)
    app = FakeApp(tmp_path, session)
    life = app.lifecycle()
    assert life.after_exit(session, worker_alive=False, code=0) == 0  # no signal: as it was
    life.on_signal(signal.SIGTERM)
    wait_for(lambda: app.commands, 5, "the final save command")  # never run: worker gone
    assert life.after_exit(session, worker_alive=False, code=1) == 128 + signal.SIGTERM
    (path, _arrays, meta), = app.written
    assert meta["counters"]["step"] == 4 and meta["autosave"]["reason"] == "signal SIGTERM"
    assert [e["path"] for e in lc.dropped_sessions(tmp_path)] == [path.resolve()]
    app.run_commands()  # too late: written once
    assert len(app.written) == 1


def test_a_second_signal_during_the_save_neither_writes_nor_exits_again(tmp_path):
    app = FakeApp(tmp_path, stepped_session(3))
    life, worker = gated_final_save(app, signal.SIGINT)
    life.on_signal(signal.SIGINT)  # while the write waits on the gate
    life.on_signal(signal.SIGTERM)
    assert app.commands == [] and app.exits == []
    app.write_gate.set()
    worker.join(10)
    wait_for(lambda: app.exits, 5, "the exit")
    assert app.exits == [128 + signal.SIGINT] and app.stopped == 1
    (path, _arrays, meta), = app.written
    assert Session.load(path).step_count == 3


def test_the_watchdog_ends_the_process_only_after_a_write_in_progress(tmp_path, monkeypatch):
    monkeypatch.setattr(lc, "HARD_EXIT_SECONDS", 0.05)
    app = FakeApp(tmp_path, stepped_session(1))
    life, worker = gated_final_save(app, signal.SIGTERM)
    life.watchdog.join(0.3)  # well past its deadline: it waits for the write
    assert life.watchdog.is_alive() and app.hard_exits == []
    app.write_gate.set()
    worker.join(10)
    wait_for(lambda: app.hard_exits, 5, "the hard exit")
    assert app.hard_exits == [128 + signal.SIGTERM] and len(app.written) == 1


@pytest.mark.parametrize("attached", [True, False])
def test_after_a_real_hang_up_the_process_ends_right_after_the_save(tmp_path, monkeypatch,
                                                                     attached):
    monkeypatch.setattr(lc, "terminal_attached", lambda: attached)
    app = FakeApp(tmp_path, stepped_session(1))
    life = app.lifecycle()
    life.on_signal(signal.SIGHUP)
    wait_for(lambda: app.commands, 5, "the final save command")
    app.run_commands()
    wait_for(lambda: app.exits, 5, "the exit")
    assert len(app.written) == 1
    # a terminal that is still there is restored by the app's own exit (the watchdog
    # only acts after HARD_EXIT_SECONDS); a hung-up one is not waited for
    assert app.hard_exits == ([] if attached else [128 + signal.SIGHUP])


def join_autosave_writes():
    for t in threading.enumerate():
        if t.name == "rgflow-autosave-write":
            t.join(10)


class Clock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t


def test_periodic_autosaves_are_due_every_interval_and_only_when_changed(tmp_path):
    session = stepped_session(1)
    app = FakeApp(tmp_path, session)
    clock = Clock()
    life = app.lifecycle(autosave_seconds=300, clock=clock)

    def boundary():  # the worker at a chunk boundary, then the background write done
        life._take_snapshot(session)
        join_autosave_writes()

    clock.t += 299
    boundary()
    assert app.written == []  # not due yet
    clock.t += 1
    boundary()
    assert [m["counters"]["step"] for _, _, m in app.written] == [1]
    assert app.written[0][2]["autosave"]["reason"] == "periodic"
    clock.t += 300
    boundary()
    assert len(app.written) == 1  # due, but nothing changed
    session.run_steps(2)
    boundary()
    assert [m["counters"]["step"] for _, _, m in app.written] == [1, 3]
    assert session.unsaved  # a periodic autosave is not the user's save


def test_a_big_session_is_not_held_twice_but_still_autosaved(tmp_path, monkeypatch):
    session = stepped_session(2)
    monkeypatch.setattr(lc, "SNAPSHOT_MAX_BYTES", 1000)  # SMALL's state is ~20 KB
    app = FakeApp(tmp_path, session)
    clock = Clock()
    life = app.lifecycle(autosave_seconds=300, clock=clock)
    life._take_snapshot(session)
    assert life._snapshot is None  # nothing held between autosaves
    clock.t += 300
    life._take_snapshot(session)
    assert life._snapshot is None
    wait_for(lambda: app.written, 5, "the periodic autosave")
    assert app.written[0][2]["counters"]["step"] == 2


def test_the_worker_is_asked_for_a_snapshot_only_when_something_may_have_changed(tmp_path):
    session = stepped_session(1)
    app = FakeApp(tmp_path, session)
    clock = Clock()
    shown = ["frame 1"]  # what the newest published frame says
    life = app.lifecycle(autosave_seconds=300, clock=clock, probe=lambda: shown[0])
    assert life._snapshot_wanted()  # the first tick
    life._take_snapshot(session)
    assert not life._snapshot_wanted()  # a paused session: nothing to ask for
    shown[0] = "frame 2"
    assert life._snapshot_wanted()
    session.run_steps(1)
    life._take_snapshot(session)  # changed, but no autosave due yet
    assert not life._snapshot_wanted()
    clock.t += 300  # due, and the newest snapshot was never autosaved
    assert life._snapshot_wanted()
    life._take_snapshot(session)
    join_autosave_writes()
    assert [m["counters"]["step"] for _, _, m in app.written] == [2]
    clock.t += 300
    assert not life._snapshot_wanted()  # due, but already autosaved


def test_zero_minutes_means_no_periodic_autosave(tmp_path):
    session = stepped_session(1)
    app = FakeApp(tmp_path, session)
    clock = Clock()
    life = app.lifecycle(autosave_seconds=0, clock=clock)
    clock.t += 10 ** 6
    life._take_snapshot(session)
    assert app.written == []


def test_dropped_notes_newest_first_and_forgotten(tmp_path):
    older, newer = tmp_path / "a.npz", tmp_path / "b.npz"
    for p in (older, newer):
        p.write_bytes(b"x")
    lc.write_dropped_note(tmp_path, older, "signal SIGHUP")
    lc.write_dropped_note(tmp_path, newer, "signal SIGTERM")
    note = tmp_path / lc.DROPPED_DIR / "b.json"
    data = json.loads(note.read_text())
    data["time"] += 10
    note.write_text(json.dumps(data))
    gone = tmp_path / "c.npz"
    lc.write_dropped_note(tmp_path, gone, "signal SIGHUP")  # its autosave is missing
    (tmp_path / lc.DROPPED_DIR / "junk.json").write_text("{not json")
    found = lc.dropped_sessions(tmp_path)
    assert [e["path"].name for e in found] == ["b.npz", "a.npz"]
    assert not (tmp_path / lc.DROPPED_DIR / "c.json").exists()
    lc.forget_dropped(found[0])
    assert [e["path"].name for e in lc.dropped_sessions(tmp_path)] == ["a.npz"]


def test_under_the_web_driver_prints_never_reach_the_protocol():
    code = ("import os, sys\n"
            "from rgflow.tui.lifecycle import protect_protocol_stdout\n"
            "protect_protocol_stdout()\n"
            "print('stray')\n"
            "os.write(1, b'c-level\\n')\n"
            "os.write(sys.__stdout__.fileno(), b'protocol')\n")
    env = dict(os.environ, TEXTUAL_DRIVER="textual.drivers.web_driver:WebDriver")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, env=env,
                         timeout=60)
    assert out.returncode == 0
    assert out.stdout == b"protocol"
    assert b"stray" in out.stderr and b"c-level" in out.stderr


# ---- the real app under a pseudo-terminal -------------------------------------------------
class PtyApp:
    """`rgflow` in a pseudo-terminal (120x40) whose output is drained on a thread."""

    def __init__(self, saves: Path, *args: str, command: tuple = ()):
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child: become the app
            os.environ.update(TERM="xterm-256color", COLUMNS="120", LINES="40")
            os.execv(sys.executable, [sys.executable, "-m", "rgflow.tui", *command,
                                      "--saves-dir", str(saves), *args])
        import fcntl
        import struct
        import termios

        fcntl.ioctl(self.fd, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
        self.output = bytearray()
        self.status = None
        self._stop = threading.Event()
        self._reader = threading.Thread(target=self._drain, daemon=True)
        self._reader.start()

    def _drain(self):
        while not self._stop.is_set():
            ready, _, _ = select.select([self.fd], [], [], 0.05)
            if ready:
                try:
                    data = os.read(self.fd, 65536)
                except OSError:
                    return
                if not data:
                    return
                self.output += data

    def exited(self):
        if self.status is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.status = os.waitstatus_to_exitcode(status)
        return self.status is not None

    def hang_up(self):
        """Close the terminal's master side: the kernel sends SIGHUP to the app."""
        self._stop.set()
        self._reader.join(10)
        os.close(self.fd)
        self.fd = None

    def kill(self):
        if not self.exited():
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
        if self.fd is not None:
            self._stop.set()
            self._reader.join(10)
            os.close(self.fd)


def autosaves(saves: Path) -> dict[Path, dict]:
    out = {}
    for p in saves.glob("autosave-*.npz"):
        try:
            out[p] = read_save(p)[1]
        except Exception:  # being written: atomic, so it is simply not there yet
            continue
    return out


@pytest.mark.parametrize("signals", [["SIGHUP"], ["SIGTERM"], ["SIGINT", "SIGINT"],
                                     ["hang-up"]],
                         ids=["hup", "term", "int-twice", "terminal-closed"])
def test_the_app_autosaves_on_a_signal_and_the_autosave_resumes(tmp_path, signals):
    saves = tmp_path / "saves"
    app = PtyApp(saves, "--autosave-minutes", "0.01")  # a periodic autosave every 0.6 s
    try:
        # a periodic autosave with steps in it: the default session has been running
        periodic = wait_for(lambda: [m for m in autosaves(saves).values()
                                     if m["counters"]["step"] > 0], DEADLINE,
                            "a periodic autosave")
        steps_before = max(m["counters"]["step"] for m in periodic)
        if signals == ["hang-up"]:  # the terminal goes away, as when SSH drops
            app.hang_up()
        else:
            for name in signals:
                os.kill(app.pid, getattr(signal, name))
        wait_for(app.exited, 10, "the app to exit")
    finally:
        app.kill()
    name = "SIGHUP" if signals == ["hang-up"] else signals[0]
    assert app.status == 128 + getattr(signal, name)
    finals = {p: m for p, m in autosaves(saves).items()
              if m["autosave"]["reason"] == f"signal {name}"}
    (path, meta), = finals.items()
    assert meta["counters"]["step"] >= steps_before
    session = Session.load(path)
    assert session.step_count == meta["counters"]["step"]
    assert session.trainer.steps_done == meta["summary"]["train_steps"]
    session.run_steps(2)
    assert session.step_count == meta["counters"]["step"] + 2
    assert [e["path"] for e in lc.dropped_sessions(saves)] == [path.resolve()]
    assert not list(saves.glob(".*.tmp"))  # no half-written file left behind
    if signals == ["SIGHUP"]:  # the next start offers it
        again = PtyApp(saves)
        try:
            wait_for(lambda: b"was dropped (SIGHUP)" in again.output, DEADLINE, "the offer")
        finally:
            again.kill()


def test_rgflow_open_shows_the_saves_lattice_or_ends_in_one_line(tmp_path):
    """`rgflow open` shows the save's lattice while numba loads and rebuilds the session on
    the app's worker; a save only that rebuild refuses ends the app with one line, exit 2."""
    from rgflow.core.config import SessionConfig
    from rgflow.core.persist import write_save

    saves = tmp_path / "saves"
    session = Session(SessionConfig(L=8, batch=10, chains=10, dataset_capacity=50, seed=4))
    session.run_steps(3)
    arrays, meta = session.state()
    write_save(saves / "good.npz", arrays, meta)
    write_save(saves / "narrow.npz", {**arrays, "rbm_W": arrays["rbm_W"][:, :-1].copy()},
               meta)

    app = PtyApp(saves, command=("open", "good"))
    try:
        wait_for(lambda: b" spins " in app.output and b"paused" in app.output, DEADLINE,
                 "the save's lattice, paused")
        os.write(app.fd, b"\x11")  # ctrl+q
        wait_for(app.exited, 20, "the app to exit")
    finally:
        app.kill()
    assert app.status == 0

    app = PtyApp(saves, command=("open", "narrow"))
    try:
        wait_for(app.exited, DEADLINE, "the app to end")
    finally:
        app.kill()
    text = bytes(app.output).decode(errors="replace")
    assert app.status == 2, text[-2000:]
    assert "Traceback" not in text
    (line,) = [x for x in text.splitlines() if "rgflow open: error:" in x]
    assert "narrow.npz" in line and "RBM" in line
