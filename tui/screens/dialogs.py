"""Modal dialogs: a one-line input, a quit confirmation, the save dialog and the saves
browser. The saves directory is read on a thread (every file is verified, which takes a
moment for big saves), so the dialog opens at once and fills in."""

from collections.abc import Callable
from pathlib import Path

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, OptionList
from textual.widgets.option_list import Option

Entries = list[tuple[Path, dict | None, str | None]]  # (path, meta, error) as list_saves


def describe_save(path: Path, meta: dict | None, error: str | None) -> str:
    """One line per save: name, L, T, steps, training steps; damaged files say why."""
    if error:
        return f"{path.stem:<20} damaged: {error}"
    s = (meta or {}).get("summary") or {}
    T = s.get("T")
    T_text = f"{T:.4f}" if isinstance(T, int | float) else "?"
    return (f"{path.stem:<20} L={s.get('L')} T={T_text} steps={s.get('steps')} "
            f"train={s.get('train_steps')} data={s.get('dataset')}")


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
                yield Button(Content("[s] Save and quit"), id="save", variant="primary")
                yield Button(Content("[y] Quit without saving"), id="quit", variant="error")
                yield Button(Content("[n] Cancel"), id="cancel")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id or "cancel")

    def action_choose(self, choice: str) -> None:
        self.dismiss(choice)


class _SavesList(ModalScreen):
    """Shared: an OptionList filled from `loader()` on a thread."""

    def __init__(self, loader: Callable[[], Entries]) -> None:
        super().__init__()
        self._loader = loader
        self.entries: Entries | None = None

    def on_mount(self) -> None:
        self._load()

    @work(thread=True, exclusive=True, group="saves-list")
    def _load(self) -> None:
        try:
            entries = self._loader()
            error = None
        except Exception as exc:  # an unreadable directory: say so, never crash
            entries, error = [], f"cannot list saves: {exc}"
        self.app.call_from_thread(self._fill, entries, error)

    def _fill(self, entries: Entries, error: str | None) -> None:
        self.entries = entries
        listing = self.query_one("#browser-list", OptionList)
        listing.clear_options()
        listing.add_options([Option(describe_save(p, meta, err), id=str(i))
                             for i, (p, meta, err) in enumerate(entries)])
        if entries:
            listing.highlighted = 0
        status = self.query_one("#browser-status", Label)
        status.update(error or (f"{len(entries)} saved session(s)" if entries
                                else "No saves yet."))


class SaveBrowser(_SavesList):
    """Lists the saves directory with each file's summary; damaged files are marked."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="browser-cancel")]

    def __init__(self, loader: Callable[[], Entries], title: str) -> None:
        super().__init__(loader)
        self._title = title

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="dialog browser"):
            yield Label(self._title)
            yield Label("Reading saves…", id="browser-status", classes="dialog-hint")
            yield OptionList(id="browser-list")
            yield Input(placeholder="or type a path to any save, then Enter",
                        id="browser-path")
            yield Label("", id="browser-error", classes="dialog-hint")
            yield Label("Enter to open, Tab to type a path, Escape to cancel",
                        classes="dialog-hint")

    def on_mount(self) -> None:
        super().on_mount()
        self.query_one("#browser-list", OptionList).focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        if self.entries is not None:
            self.dismiss(self.entries[int(event.option.id)][0])

    def on_input_submitted(self, event: Input.Submitted) -> None:
        """A typed path: opened if it is a file, else the dialog stays with the reason."""
        path = Path(event.value.strip()).expanduser()
        if not event.value.strip():
            return
        if not path.is_file():
            self.query_one("#browser-error", Label).update(f"no such file: {path}")
            return
        self.dismiss(path)

    def action_cancel(self) -> None:
        self.dismiss(None)


class SaveDialog(_SavesList):
    """Name for a save (Enter), with the existing saves listed; choosing one fills in its
    name (saving then overwrites it, which the hint says)."""

    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="save-cancel"),
        Binding("down", "focus_list", "Existing saves", show=False, id="save-list"),
    ]

    def __init__(self, loader: Callable[[], Entries], value: str = "",
                 check: Callable[[str], object] | None = None) -> None:
        """check(name) raises an RgflowError for a name that cannot be saved: the dialog
        then stays open and shows the error."""
        super().__init__(loader)
        self._value = value
        self._check = check

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="dialog browser"):
            yield Label("Save session as (a name in the saves directory, or a path):")
            yield Input(value=self._value, placeholder="e.g. tc-run", id="dialog-input")
            yield Label("", id="save-hint", classes="dialog-hint")
            yield Label("Reading saves…", id="browser-status", classes="dialog-hint")
            yield OptionList(id="browser-list")
            yield Label("Enter to save, Escape to cancel, ↓ to pick an existing save",
                        classes="dialog-hint")

    def on_mount(self) -> None:
        super().on_mount()
        self.query_one("#dialog-input", Input).focus()

    def _fill(self, entries: Entries, error: str | None) -> None:
        super()._fill(entries, error)
        self._update_hint(self.query_one("#dialog-input", Input).value)

    def on_input_changed(self, event: Input.Changed) -> None:
        self._update_hint(event.value)

    def _update_hint(self, value: str) -> None:
        names = {p.stem for p, _, _ in self.entries or []}
        hint = f"'{value.strip()}' exists and will be overwritten" \
            if value.strip() in names else ""
        self.query_one("#save-hint", Label).update(hint)

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        if self.entries is not None:
            field = self.query_one("#dialog-input", Input)
            field.value = self.entries[int(event.option.id)][0].stem
            field.focus()

    def action_focus_list(self) -> None:
        self.query_one("#browser-list", OptionList).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        from rgflow.core.errors import RgflowError

        name = event.value.strip()
        if name and self._check is not None:
            try:
                self._check(name)
            except RgflowError as exc:
                self.query_one("#save-hint", Label).update(f"⚠ {exc}")
                return
        self.dismiss(name or None)

    def action_cancel(self) -> None:
        self.dismiss(None)
