"""Nothing lost when the link drops: the app's final autosave on SIGHUP, SIGTERM and SIGINT,
periodic autosaves while it runs, and the note that lets the next start offer a dropped
session's autosave.

A hang-up (an SSH connection that drops), `kill` or the browser server stopping a tab's
process all end here: the session is saved atomically, then the app exits with 128 + the
signal number. The save is taken at the worker's next chunk boundary; when a long step
keeps the worker busy for BOUNDARY_WAIT_SECONDS, the snapshot taken at its last chunk
boundary is written instead, so the save is on disk within 2 s (a few tens of ms of writing
for the default session). Further signals during the save are only reported: the write is
never interrupted.

No Textual here: the app wires these to its loop, worker and exit (see `Lifecycle`).
"""

import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from rgflow.core.errors import RgflowError
from rgflow.core.npzio import atomic_write_bytes
from rgflow.core.persist import saves_dir

SIGNALS = (signal.SIGHUP, signal.SIGTERM, signal.SIGINT)
# the worker gets this long to reach a chunk boundary before the newest snapshot is written
BOUNDARY_WAIT_SECONDS = 1.0
SNAPSHOT_SECONDS = 1.0  # a changed session is copied at a chunk boundary this often
SNAPSHOT_DUTY = 0.01  # snapshots take at most this share of the worker's time
# a session bigger than this (L = 128 with its RBM and optimiser: ~800 MB) is not held twice
# in memory: its final autosave waits for the worker's next chunk boundary
SNAPSHOT_MAX_BYTES = 64 << 20
# after a signal the app exits on its own; if its shutdown hangs (a dead terminal, a stuck
# thread), the process ends at this deadline anyway (a write still in progress finishes first)
HARD_EXIT_SECONDS = 4.0
DEFAULT_AUTOSAVE_MINUTES = 5.0
DROPPED_DIR = ".dropped"  # inside the saves directory: one note per dropped session


def stderr_line(text: str) -> None:
    """One line on stderr (stdout may carry the browser protocol; Textual captures
    sys.stderr while the app runs); a dead terminal is fine."""
    try:
        sys.__stderr__.write(f"rgflow: {text}\n")
        sys.__stderr__.flush()
    except (OSError, ValueError):
        pass


def protect_protocol_stdout() -> None:
    """Under textual-serve the app's stdout is the protocol: a stray print (ours, a
    library's, a C extension's) would corrupt it. The web driver writes to the descriptor of
    sys.__stdout__, so that becomes a private copy of the pipe and descriptor 1, and
    sys.stdout, go to stderr."""
    if "web_driver" not in os.environ.get("TEXTUAL_DRIVER", ""):
        return
    protocol = os.dup(1)
    os.dup2(2, 1)
    sys.__stdout__ = os.fdopen(protocol, "w", buffering=1)
    sys.stdout = sys.stderr


def terminal_attached() -> bool:
    """The process still has its controlling terminal (after a real hang-up it has not)."""
    try:
        os.close(os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY))
    except OSError:
        return False
    return True


def session_key(session) -> tuple:
    """Changes whenever the session has something new to save."""
    return (id(session), session.step_count, session.sweeps, session.trainer.steps_done,
            session.flow_step_count, session.T, session.h, session.algorithm,
            session.training)


class Lifecycle:
    """The app process's end and its safety net.

    submit(fn): run fn(session) on the simulation worker at its next chunk boundary.
    stop_work(): called on the UI loop when a signal arrives (stop stepping and jobs).
    exit_app(code): ask the app to exit with this code (called from a helper thread).
    write_autosave((arrays, meta), save_name) -> Path: write a new autosave of the session
    called save_name (the one naming and pruning of autosaves, tui/files.py).
    probe(): optional, UI side: a value that changes when the session may have changed.
    """

    def __init__(self, *, submit: Callable, stop_work: Callable[[], None],
                 exit_app: Callable[[int], None], write_autosave: Callable,
                 saves_directory=None, autosave_seconds: float | None = None,
                 log: Callable[[str], None] = stderr_line, clock=time.monotonic,
                 hard_exit: Callable[[int], None] = os._exit,
                 probe: Callable[[], object] | None = None):
        self.submit = submit
        self.probe = probe
        self._probed = object()  # probe() when the newest snapshot was asked for
        self.stop_work = stop_work
        self.exit_app = exit_app
        self.write_autosave = write_autosave
        self.saves_dir = saves_dir(saves_directory)
        self.autosave_seconds = (DEFAULT_AUTOSAVE_MINUTES * 60 if autosave_seconds is None
                                 else autosave_seconds)
        self.log = log
        self.clock = clock
        self.hard_exit = hard_exit
        self.signum: int | None = None
        self.final_path: Path | None = None
        self._final_info = (0, None)  # (steps, session name) of the final autosave
        self._lock = threading.Lock()
        self._final_owner: str | None = None  # "worker", "snapshot" or "abandoned"
        self._final_done = threading.Event()
        self.final_thread: threading.Thread | None = None  # started by the first signal
        self.watchdog: threading.Thread | None = None
        self._snapshot = None  # (arrays, meta, session, key, save_name) at the newest boundary
        self._snapshot_cost = 0.0
        self._snapshot_time = 0.0
        self._sized = (None, 0)  # (session config, bytes of the session's state)
        self._saved_key = None  # the session state the newest autosave holds
        self._last_autosave = clock()
        self._write_lock = threading.Lock()  # one autosave write at a time
        self._wake = threading.Event()
        self._closed = False
        self._ticker: threading.Thread | None = None

    # ---- installing ---------------------------------------------------------------------
    def install(self, loop) -> None:
        """Handle the signals on the app's event loop. Call it after the driver has started
        (the web driver puts its own SIGINT/SIGTERM handlers in place then)."""
        for signum in SIGNALS:
            loop.add_signal_handler(signum, self.on_signal, signum)
        self._ticker = threading.Thread(target=self._tick_loop, name="rgflow-autosave",
                                        daemon=True)
        self._ticker.start()

    def close(self) -> None:
        """The app is exiting normally: no more snapshots or periodic autosaves."""
        self._closed = True
        self._wake.set()

    # ---- snapshots and periodic autosaves -----------------------------------------------
    def _tick_loop(self) -> None:
        while not self._closed and self.signum is None:
            self._wake.wait(self._snapshot_interval())
            if self._closed or self.signum is not None:
                return
            if self._snapshot_wanted():
                self.submit(self._take_snapshot)

    def _snapshot_wanted(self) -> bool:
        """Ask the worker only when the session may have changed (every command makes the
        app publish a frame: a paused app would redraw every second for nothing), or when
        a periodic autosave of an earlier change is due."""
        if self.probe is None:
            return True
        probed, self._probed = self._probed, self.probe()
        snapshot = self._snapshot
        due = (self.autosave_seconds > 0
               and self.clock() - self._last_autosave >= self.autosave_seconds
               and (snapshot is None or snapshot[3] != self._saved_key))
        return probed != self._probed or due

    def _snapshot_interval(self) -> float:
        return max(SNAPSHOT_SECONDS, self._snapshot_cost / SNAPSHOT_DUTY)

    def _take_snapshot(self, session) -> None:
        """Worker thread, at a chunk boundary: a consistent copy of the session when it has
        changed (kept for the final autosave when it is small enough to hold twice); every
        autosave_seconds one is written in the background."""
        if session is None or self.signum is not None:
            return
        key = session_key(session)
        due = (self.autosave_seconds > 0 and key != self._saved_key
               and self.clock() - self._last_autosave >= self.autosave_seconds)
        keep = self._state_bytes(session) <= SNAPSHOT_MAX_BYTES
        if (keep or due) and (self._snapshot is None or self._snapshot[3] != key):
            t0 = self.clock()
            arrays, meta = session.snapshot()
            self._snapshot_cost = self.clock() - t0
            self._snapshot = (arrays, meta, session, key, session.save_name)
            self._snapshot_time = self.clock()
        if due:
            self._last_autosave = self.clock()
            threading.Thread(target=self._write_snapshot, args=(self._snapshot, "periodic"),
                             name="rgflow-autosave-write", daemon=True).start()
        if not keep:
            self._snapshot = None

    def _state_bytes(self, session) -> int:
        """The size of the session's arrays (measured again when its config changes)."""
        if self._sized[0] is not session.config:
            self._sized = (session.config,
                           sum(a.nbytes for a in session.state()[0].values()))
        return self._sized[1]

    def _write_snapshot(self, snapshot, reason: str) -> Path | None:
        arrays, meta, _session, key, save_name = snapshot
        return self._write(save_name, arrays, meta, key, reason)

    def _write(self, save_name, arrays, meta, key, reason: str) -> Path | None:
        with self._write_lock:
            try:
                meta = dict(meta, autosave={"reason": reason, "time": time.time()})
                path = self.write_autosave((arrays, meta), save_name)
            except (RgflowError, OSError) as exc:
                self.log(f"autosave failed: {exc}")
                return None
            self._saved_key = key
            return path

    # ---- the final autosave --------------------------------------------------------------
    def on_signal(self, signum: int) -> None:
        """UI loop: the first signal starts the final autosave; later ones only say so."""
        if self.signum is not None:
            self.log(f"{signal.Signals(signum).name}: still writing the autosave")
            return
        self.signum = signum
        self._wake.set()
        try:
            self.stop_work()
        finally:
            self.final_thread = threading.Thread(target=self._final, daemon=True,
                                                 name="rgflow-final-save")
            self.watchdog = threading.Thread(target=self._watchdog, daemon=True,
                                             name="rgflow-exit-watchdog")
            self.final_thread.start()
            self.watchdog.start()

    def _final_at_boundary(self, session, owner: str = "worker") -> None:
        """Worker thread: the final autosave from the session itself (the usual case)."""
        with self._lock:
            if self._final_owner is not None:
                return
            self._final_owner = owner
        try:
            if session is not None and session.unsaved:
                arrays, meta = session.state()
                self._final_info = (session.step_count, session.save_name)
                self.final_path = self._write(session.save_name, arrays, meta,
                                              session_key(session), self._reason())
        finally:
            self._final_done.set()

    def _reason(self) -> str:
        return f"signal {signal.Signals(self.signum).name}"

    def _final(self) -> None:
        """Helper thread: get the final autosave written, note it, exit the app."""
        code = 128 + int(self.signum)
        self.submit(self._final_at_boundary)
        if not self._final_done.wait(BOUNDARY_WAIT_SECONDS):
            snapshot = self._snapshot
            with self._lock:
                # without a snapshot the worker's own save is the only one: wait for it
                fallback = self._final_owner is None and snapshot is not None
                if fallback:
                    self._final_owner = "snapshot"
            if fallback:
                try:
                    if snapshot[2].unsaved:
                        age = self.clock() - self._snapshot_time
                        self.log("the simulation is in a long step: saving its state of "
                                 f"{age:.1f} s ago")
                        self._final_info = (snapshot[1]["counters"]["step"], snapshot[4])
                        self.final_path = self._write_snapshot(snapshot, self._reason())
                finally:
                    self._final_done.set()
        # a write in progress is never cut short, however long it takes
        self._final_done.wait()
        if self.final_path is not None:
            self.log(f"{signal.Signals(self.signum).name}: session autosaved to "
                     f"{self.final_path}")
            self._note_dropped(self.final_path)
        if self.signum == signal.SIGHUP and not terminal_attached():
            self.hard_exit(code)  # the terminal hung up: restoring it would only stall
        try:
            self.exit_app(code)
        except Exception:  # the app is already gone: the watchdog ends the process
            pass

    def _watchdog(self) -> None:
        """Helper thread: if the app has not exited by HARD_EXIT_SECONDS after the signal
        (a dead terminal, a stuck thread), end the process, after a write in progress."""
        time.sleep(HARD_EXIT_SECONDS)  # a daemon thread: a normal exit does not wait for it
        with self._lock:
            if self._final_owner is None:  # the worker never came back (stuck or dead)
                self._final_owner = "abandoned"
                self.log("the simulation did not answer: nothing could be saved")
                self._final_done.set()
        self._final_done.wait()  # a write in progress is finished first
        self.log("the app did not exit in time: ending the process")
        self.hard_exit(128 + int(self.signum))

    def after_exit(self, session, worker_alive: bool, code: int) -> int:
        """Main thread, once the app has exited: the process's exit code. After a signal the
        app may have ended another way first (e.g. its output pipe broke when the browser
        server died), stopping the worker before it took the final autosave: the session
        is at rest then, and is saved here. Waits for the final autosave either way."""
        if self.signum is None:
            return code
        if not worker_alive:
            self._final_at_boundary(session, owner="after-exit")
        self.final_thread.join()  # bounded: the watchdog gives up on a worker that is gone
        return 128 + int(self.signum)

    # ---- dropped sessions ---------------------------------------------------------------
    def _note_dropped(self, path: Path) -> None:
        write_dropped_note(self.saves_dir, path, self._reason(), *self._final_info)


def dropped_note_path(directory, autosave) -> Path:
    """Where the note that `autosave` holds a dropped session goes."""
    return saves_dir(directory) / DROPPED_DIR / f"{Path(autosave).stem}.json"


def write_dropped_note(directory: Path, path: Path, reason: str, steps: int = 0,
                       name: str | None = None) -> Path | None:
    """Record that `path` holds the autosave of a session (called name, with steps done)
    that ended on a signal."""
    note = dropped_note_path(directory, path)
    try:
        note.parent.mkdir(parents=True, exist_ok=True)
        data = {"path": str(Path(path).resolve()), "reason": reason, "time": time.time(),
                "steps": int(steps), "name": name}
        atomic_write_bytes(note, json.dumps(data).encode())
    except OSError as exc:
        stderr_line(f"could not note the dropped session: {exc}")
        return None
    return note


def dropped_sessions(directory=None) -> list[dict]:
    """Notes of dropped sessions whose autosave still exists, newest first. Each dict has
    path (Path), reason, time, steps, name and note (the note's own Path). Unreadable
    notes are skipped."""
    notes = saves_dir(directory) / DROPPED_DIR
    out = []
    for note in notes.glob("*.json") if notes.is_dir() else ():
        try:
            data = json.loads(note.read_text())
            entry = {"path": Path(data["path"]), "reason": str(data["reason"]),
                     "time": float(data["time"]), "steps": int(data.get("steps", 0)),
                     "name": data.get("name") or "unsaved", "note": note}
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if entry["path"].is_file():
            out.append(entry)
        else:
            forget_dropped(entry)
    return sorted(out, key=lambda e: e["time"], reverse=True)


def forget_dropped(entry: dict) -> None:
    """The note has been offered: it is not offered again (the autosave itself stays)."""
    try:
        Path(entry["note"]).unlink()
    except OSError:
        pass


def attach(app) -> Lifecycle:
    """Wire a Lifecycle to the running app (from its on_mount, on the UI loop, after the
    driver has started)."""
    import asyncio

    from .files import write_autosave

    loop = asyncio.get_running_loop()

    def exit_app(code: int) -> None:
        loop.call_soon_threadsafe(lambda: app.exit(return_code=code))

    def probe():
        """What the newest frame says about the session (UI side, no worker needed)."""
        pub = app.driver.published
        if pub is None:
            return None
        f = pub.frame
        return (app.driver.generation, f.step, f.sweeps, f.train_step, f.flow_step, f.T, f.h,
                f.algorithm, f.training, f.rg_rule, f.unsaved, f.save_name)

    lifecycle = Lifecycle(
        submit=app.submit, stop_work=lambda: app.set_running(False), exit_app=exit_app,
        write_autosave=lambda snapshot, name: write_autosave(snapshot, name, app.saves_dir),
        saves_directory=app.saves_dir, autosave_seconds=app.autosave_seconds, probe=probe)
    lifecycle.install(loop)
    return lifecycle
