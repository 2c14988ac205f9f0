"""The driver's events (tui/driver.py) as the app's messages: the worker thread posts
them and goes on, the UI thread handles them (RgflowApp.on_frame_ready, on_ui_call)."""

import threading
from collections.abc import Callable

from textual.message import Message

from .driver import DriverListener

FIRST_FRAME_WAIT = 1.0  # seconds the worker waits, at most, for the first frame on screen


class FrameReady(Message):
    """The worker published a new frame (or analysis result): draw it now."""


class UiCall(Message):
    """Run a callable on the UI thread (posted from other threads, never blocking them)."""

    def __init__(self, fn: Callable[[], None]) -> None:
        super().__init__()
        self.fn = fn


class AppListener(DriverListener):
    """The driver's events, posted to the app as messages (never blocking the worker, but
    for live(): it waits, briefly, for the first frame to be on screen)."""

    def __init__(self, app) -> None:
        self.app = app

    def frame_ready(self) -> None:
        self.app.post_message(FrameReady())

    def call(self, fn: Callable[[], None]) -> None:
        self.app.post_message(UiCall(fn))

    def notify(self, message: str, severity: str = "information", timeout: float = 4) -> None:
        self.call(lambda: self.app.notify(message, severity=severity, timeout=timeout))

    def progress(self, label: str, done: int, total: int) -> None:
        self.call(lambda: self.app._loading(label, done, total))

    def live(self) -> None:
        # the worker waits until the live frame is on screen: loading numba or the kernels
        # meanwhile would take the GIL from drawing it (measured: on screen ~20-30 ms later)
        shown = threading.Event()

        def show() -> None:
            self.app._show_live()
            self.app.call_after_refresh(shown.set)

        self.call(show)
        shown.wait(FIRST_FRAME_WAIT)

    def kernels_ready(self) -> None:
        self.call(self.app._kernels_ready)

    def crashed(self, message: str) -> None:
        if self.app.driver.start_error is not None:
            # the session could not be built (a damaged save): nothing to show or save;
            # `rgflow open` reports the error in one line (tui/cli/app_cmds.py)
            self.call(lambda: self.app.exit(return_code=2))
            return

        def show():
            self.app.set_running(False)
            self.app._loading(f"The simulation stopped: {message}")
            self.app.notify(f"simulation stopped: {message}", severity="error", timeout=30)
        self.call(show)
