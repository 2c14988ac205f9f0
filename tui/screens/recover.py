"""At start-up: a session that ended on a hang-up or termination left an autosave; offer to
open it (tui/lifecycle.py writes the note that this reads)."""

import time

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Button, Label

from rgflow.tui.lifecycle import dropped_sessions, forget_dropped


def describe(entry: dict) -> str:
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(entry["time"]))
    reason = entry["reason"].removeprefix("signal ")
    return (f"The session '{entry['name']}' was dropped ({reason}) at {when} after "
            f"{entry['steps']} steps. Its autosave is {entry['path']}\n\nOpen it now?")


class RecoverDropped(ModalScreen[bool]):
    """Open the dropped session's autosave (o / Enter) or not now (n / Escape)."""

    DEFAULT_CSS = """
    RecoverDropped #recover-text { width: 100%; margin-bottom: 1; }
    """
    BINDINGS = [
        Binding("o,enter", "choose(True)", "Open it", id="recover-open"),
        Binding("n,escape", "choose(False)", "Not now", id="recover-skip"),
    ]

    def __init__(self, entry: dict) -> None:
        super().__init__()
        self.entry = entry

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="dialog browser"):
            yield Label(describe(self.entry), id="recover-text", markup=False)
            with Horizontal(classes="dialog-buttons"):
                yield Button(Content("[o] Open it"), id="open", variant="primary")
                yield Button(Content("[n] Not now"), id="skip")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "open")

    def action_choose(self, choice: bool) -> None:
        self.dismiss(choice)


def offer_dropped_session(app, open_save) -> dict | None:
    """If a dropped session's autosave exists, ask once whether to open it (open_save(path)
    opens it). Each note is offered once; the autosave itself stays. Returns the entry."""
    found = dropped_sessions(app.saves_dir)
    if not found:
        return None
    entry = found[0]
    forget_dropped(entry)

    def chosen(choice: bool | None) -> None:
        if choice:
            open_save(entry["path"])

    app.push_screen(RecoverDropped(entry), chosen)
    return entry
