"""Saving, opening and quitting, and the autosave files.

Autosaves are named after the session and the time, `autosave-<session>-<YYYYmmdd-HHMMSS>`
(`unsaved` for a session that was never saved), are never overwritten, and only the newest
AUTOSAVE_KEEP of each session are kept: an autosave never replaces another session's work.
write_autosave() is the one way to write one (ctrl+q, quit-and-save, signals, periodic
saves). Saves are written on a writer thread from a snapshot taken by the session worker,
so the simulation does not wait for the disk.
"""

import contextlib
import fcntl
import os
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path

from rgflow.core.errors import RgflowError, UsageError

AUTOSAVE_KEEP = 5
AUTOSAVE_PREFIX = "autosave-"
_STAMP = "%Y%m%d-%H%M%S"
_AUTOSAVE_RE = re.compile(r"^autosave-(?P<name>.+)-(?P<stamp>\d{8}-\d{6})(?:-(?P<n>\d+))?$")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def autosave_session_name(save_name: str | None) -> str:
    """The session part of an autosave's name: the save's name ('unsaved' if none). An
    opened autosave keeps the name of the session it came from."""
    if not save_name:
        return "unsaved"
    match = _AUTOSAVE_RE.match(save_name)
    name = match["name"] if match else save_name
    return _UNSAFE.sub("_", name).strip("._-") or "unsaved"


def list_autosaves(directory=None, session: str | None = None) -> list[Path]:
    """Autosave files in the saves directory (of one session if given), newest first."""
    from rgflow.core.persist import saves_dir

    d = saves_dir(directory)
    if not d.is_dir():
        return []
    found = []
    for path in d.glob(f"{AUTOSAVE_PREFIX}*.npz"):
        match = _AUTOSAVE_RE.match(path.stem)
        if match and (session is None or match["name"] == session):
            found.append(((match["stamp"], int(match["n"] or 1)), path))
    return [path for _, path in sorted(found, reverse=True)]


def autosave_path(save_name: str | None, directory=None, when: float | None = None) -> Path:
    """A new autosave's path: named after the session and the time, never an existing
    file (a second autosave within the same second gets -2, -3, ...)."""
    from rgflow.core.persist import saves_dir

    session = autosave_session_name(save_name)
    stamp = time.strftime(_STAMP, time.localtime(time.time() if when is None else when))
    base = saves_dir(directory) / f"{AUTOSAVE_PREFIX}{session}-{stamp}"
    path, n = base.with_suffix(".npz"), 1
    while path.exists():
        n += 1
        path = base.parent / f"{base.name}-{n}.npz"
    return path


def write_autosave(snapshot: tuple[dict, dict], save_name: str | None, directory=None, *,
                   when: float | None = None, keep: int = AUTOSAVE_KEEP) -> Path:
    """Write a session snapshot ((arrays, meta) from Session.snapshot()) as a new autosave
    of the session called save_name (None: never saved), atomically; then delete that
    session's autosaves beyond the newest `keep` (except a dropped session's autosave that has
not been offered yet, tui/lifecycle.py). Returns the path written."""
    from rgflow.core.persist import write_save

    from .lifecycle import dropped_note_path

    with autosave_lock(directory):
        path = autosave_path(save_name, directory, when)
        write_save(path, *snapshot)
        for old in list_autosaves(directory, autosave_session_name(save_name))[keep:]:
            if not dropped_note_path(directory, old).exists():  # kept until it is offered
                old.unlink(missing_ok=True)
    return path


@contextlib.contextmanager
def autosave_lock(directory=None):
    """Held while an autosave's name is chosen, the file written and old ones pruned: app
    processes sharing a saves directory (`rgflow serve` tabs stopping together) never pick
    the same name."""
    from rgflow.core.persist import saves_dir

    d = saves_dir(directory)
    d.mkdir(parents=True, exist_ok=True)
    fd = os.open(d / ".autosave.lock", os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


class FilesMixin:
    """The app's save, open and quit actions (mixed into RgflowApp). The session worker
    takes a snapshot; a writer thread writes it; the UI hears back through listener.call."""

    def _init_files(self, save_path) -> None:
        self.save_path = Path(save_path) if save_path is not None else None  # worker writes
        self.saves_writing = 0  # saves submitted and not yet written (UI thread)
        self.last_autosave: Path | None = None  # the newest autosave this app wrote

    def _list_saves(self):
        from rgflow.core.persist import list_saves

        return list_saves(self.saves_dir)

    def _resolve_target(self, name: str) -> Path:
        from rgflow.core.persist import resolve_save_target

        return resolve_save_target(name, self.saves_dir)

    def action_save(self) -> None:
        if self.save_path is None:
            self.action_save_as()
        else:
            self._save_to(self.save_path)

    def _save_target(self, name: str) -> Path:
        """The path a typed name saves to, checked before any work as every command checks
        its output: not a directory, in a folder that really accepts a file."""
        from rgflow.core.npzio import ensure_output_dir

        path = self._resolve_target(name)
        if path.is_dir():
            raise UsageError(f"{path}: is a directory, not a save file")
        ensure_output_dir(path.parent, path)
        return path

    def action_save_as(self) -> None:
        from .screens.dialogs import SaveDialog

        def chosen(name: str | None) -> None:
            if name:
                try:
                    self._save_to(self._save_target(name))
                except RgflowError as exc:
                    self.notify(str(exc), severity="error")

        default = self.save_path.stem if self.save_path is not None else ""
        self.push_screen(SaveDialog(self._list_saves, default, check=self._save_target),
                         chosen)

    def _save_to(self, path: Path | None, then: Callable[[], None] | None = None,
                 only_if_unsaved: bool = False) -> None:
        """Save the session to path (None: a new autosave) in the background; then runs on
        the UI thread once the file is written (at once if only_if_unsaved and nothing
        is unsaved)."""
        driver = self.driver
        self.saves_writing += 1

        def done(error: BaseException | None, written: Path | None) -> None:
            self.saves_writing -= 1
            if error is not None:
                self.notify(f"save failed: {error}", severity="error", timeout=8)
                if path is not None:
                    driver.submit(_mark_unsaved)
                return
            if written is not None:
                self.notify(f"saved {written}", timeout=3)
                if path is None:
                    self.last_autosave = written
            if then is not None:
                then()

        def save(s):
            if only_if_unsaved and not s.unsaved:
                driver.listener.call(lambda: done(None, None))
                return None
            snapshot = s.snapshot()
            calibration = driver.classifier  # saved with the session when it fits its L
            if calibration is not None and calibration["L"] == s.config.L:
                from rgflow.core.live_analysis import calibration_arrays

                snapshot[0].update(calibration_arrays(calibration))
            if path is not None:
                s.unsaved = False
                s.save_name = path.stem
                self.save_path = path
            name = s.save_name

            def write():
                try:
                    if path is None:
                        written = write_autosave(snapshot, name, self.saves_dir)
                    else:
                        from rgflow.core.persist import write_save

                        written = write_save(path, *snapshot)
                except Exception as exc:  # reported in a notification, the app goes on
                    driver.listener.call(lambda error=exc: done(error, None))
                else:
                    driver.listener.call(lambda: done(None, written))

            threading.Thread(target=write, name="rgflow-save").start()
            return None
        self.submit(save)

    def autosave(self, then: Callable[[], None] | None = None,
                 only_if_unsaved: bool = False) -> None:
        """Write a new autosave of the session in the background, from a snapshot (then: on
        the UI thread once it is written)."""
        self._save_to(None, then, only_if_unsaved)

    def action_open(self) -> None:
        from .screens.dialogs import SaveBrowser

        def chosen(path: Path | None) -> None:
            if path is not None:
                self.open_save(path)

        self.push_screen(SaveBrowser(self._list_saves, "Open a saved session"), chosen)

    def open_save(self, path: Path) -> None:
        """Load a save in the worker; a damaged file leaves the current session as it was."""
        path = Path(path)
        driver = self.driver
        was_running = self.running
        self.set_running(False)  # the opened session starts paused

        def load(current):
            from rgflow.core.errors import SaveFileError, UsageError
            from rgflow.core.live_analysis import calibration_from_arrays
            from rgflow.core.persist import read_save
            from rgflow.core.session import Session

            try:  # any error leaves everything as it was
                arrays, meta = read_save(path)
                session = Session.from_state(arrays, meta, path)
                try:
                    calibration = calibration_from_arrays(arrays)
                except UsageError as exc:
                    raise SaveFileError(path, f"classifier calibration: {exc}") from None
                kept = None
                if current.unsaved:  # the session it replaces is never lost
                    kept = write_autosave(current.snapshot(), current.save_name, self.saves_dir)
            except Exception:
                if was_running:  # the current session goes on as it was
                    driver.listener.call(lambda: self.set_running(True))
                raise
            session.save_name = path.stem
            driver.replace_session(session)
            if calibration is not None:
                driver.listener.call(lambda: self.use_calibration(calibration))
            self.save_path = path
            if kept is None:
                return f"opened {path}"
            driver.listener.call(lambda: setattr(self, "last_autosave", kept))
            return f"opened {path}; the unsaved session before it is in {kept}"
        self.submit(load)

    def use_calibration(self, calibration: dict) -> None:
        """UI thread: the flow view's classifier thermometer from now on."""
        self.driver.classifier = calibration
        self.driver.request_publish()

    def load_calibration(self, text: str) -> None:
        """Read a calibration written by `rgflow calibrate` (or a save holding one)."""
        from rgflow.core.errors import RgflowError
        from rgflow.core.live_analysis import calibration_from_arrays
        from rgflow.core.npzio import read_npz

        path = Path(text).expanduser()
        try:
            calibration = calibration_from_arrays(read_npz(path)[0])
            if calibration is None:
                raise RgflowError(f"{path}: holds no classifier calibration")
        except RgflowError as exc:
            self.notify(str(exc), severity="error")
            return
        self.use_calibration(calibration)
        self.notify(f"classifier thermometer loaded (L={calibration['L']}) from {path}")

    def action_quit_app(self) -> None:
        pub = self.driver.published
        if pub is None or not pub.frame.unsaved:
            self.exit()
            return
        from .screens.dialogs import ConfirmQuit

        def chosen(choice: str | None) -> None:
            if choice == "quit":
                self.exit()
            elif choice == "save":
                self.set_running(False)
                self._save_to(self.save_path, then=self.exit)

        self.push_screen(ConfirmQuit(), chosen)

    def action_quit_now(self) -> None:
        """ctrl+q: write a new autosave (when anything is unsaved), then quit at once."""
        self.set_running(False)
        pub = self.driver.published
        if not self.ready or not self.driver.alive or pub is None:
            self.exit()  # nothing has run yet (or nothing can run): nothing to save
            return
        self.autosave(then=self.exit, only_if_unsaved=True)

    # -- exports of the view shown (arrays from the view's module) and screenshots
    def _exports_dir(self) -> Path:
        from rgflow.core.persist import saves_dir

        return saves_dir(self.saves_dir) / "exports"

    def export_view(self) -> None:
        """Write the arrays behind the current view to saves/exports/<view>-step<N>.npz."""
        pub = self.driver.published
        if pub is None or pub.frame.preview:
            self.notify("nothing to export yet: the session is still starting")
            return
        f, extras = pub.frame, pub.extras
        from .views import MODULES

        arrays = {"spins": f.spins, **MODULES[self.view].export(self, f, extras)}
        meta = {"view": self.view, "T": f.T, "L": f.L, "step": f.step, "sweeps": f.sweeps,
                "train_step": f.train_step, "unit": extras["unit"]}
        path = self._exports_dir() / f"{self.view}-step{f.step}.npz"

        def write(_s):
            from rgflow.core.npzio import atomic_write_npz

            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_npz(path, arrays, meta)
            self.last_export = path
            return f"exported {path}"
        self.submit(write)

    def screenshot(self) -> Path:
        directory = self._exports_dir()
        directory.mkdir(parents=True, exist_ok=True)
        name = f"{self.view}-{time.strftime('%Y%m%d-%H%M%S')}.svg"
        path = Path(self.save_screenshot(filename=name, path=str(directory)))
        self.notify(f"screenshot {path}")
        return path


def _mark_unsaved(s) -> None:
    s.unsaved = True
