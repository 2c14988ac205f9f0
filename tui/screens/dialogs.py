"""Modal dialogs: a one-line input, a quit confirmation, and the saves browser."""

from pathlib import Path

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, OptionList
from textual.widgets.option_list import Option


class InputDialog(ModalScreen[str | None]):
    """Ask for one value; Enter accepts, Escape cancels (dismisses with None)."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="dialog-cancel")]

    def __init__(self, prompt: str, value: str = "", placeholder: str = "") -> None:
        super().__init__()
        self._prompt = prompt
        self._value = value
        self._placeholder = placeholder

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="dialog"):
            yield Label(self._prompt)
            yield Input(value=self._value, placeholder=self._placeholder, id="dialog-input")
            yield Label("Enter to accept, Escape to cancel", classes="dialog-hint")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value.strip())

    def action_cancel(self) -> None:
        self.dismiss(None)


class ConfirmQuit(ModalScreen[str]):
    """Unsaved changes: save and quit (s), quit anyway (y), or stay (n / Escape)."""

    BINDINGS = [
        Binding("s", "choose('save')", "Save and quit", id="confirm-save"),
        Binding("y", "choose('quit')", "Quit without saving", id="confirm-quit"),
        Binding("n,escape", "choose('cancel')", "Cancel", id="confirm-cancel"),
    ]

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="dialog"):
            yield Label("The session has unsaved changes.")
            with Horizontal(classes="dialog-buttons"):
                yield Button("[s] Save and quit", id="save", variant="primary")
                yield Button("[y] Quit without saving", id="quit", variant="error")
                yield Button("[n] Cancel", id="cancel")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id or "cancel")

    def action_choose(self, choice: str) -> None:
        self.dismiss(choice)


class SaveBrowser(ModalScreen[Path | None]):
    """Lists the saves directory with each file's summary; damaged files are marked."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="browser-cancel")]

    def __init__(self, entries: list[tuple[Path, dict | None, str | None]], title: str) -> None:
        super().__init__()
        self._entries = entries
        self._title = title

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="dialog browser"):
            yield Label(self._title)
            options = [Option(self._describe(p, meta, err), id=str(i))
                       for i, (p, meta, err) in enumerate(self._entries)]
            if not options:
                yield Label("No saves yet (press Escape).")
            yield OptionList(*options, id="browser-list")
            yield Label("Enter to open, Escape to cancel", classes="dialog-hint")

    @staticmethod
    def _describe(path: Path, meta: dict | None, error: str | None) -> str:
        if error:
            return f"{path.stem:<20} damaged: {error}"
        s = (meta or {}).get("summary") or {}
        return (f"{path.stem:<20} L={s.get('L')} T={s.get('T', 0):.4f} steps={s.get('steps')} "
                f"train={s.get('train_steps')}")

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(self._entries[int(event.option.id)][0])

    def action_cancel(self) -> None:
        self.dismiss(None)
