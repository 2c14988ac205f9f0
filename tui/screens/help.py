"""The help screen (? or F1): keys (generated from the bindings), views and what is on
screen, from help.md."""

from importlib import resources

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Markdown


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,question_mark,f1", "close", "Close help", id="help-close")]

    def compose(self) -> ComposeResult:
        from ..keys import KEYS_MARKER, key_table

        text = resources.files("rgflow.tui").joinpath("help.md").read_text(encoding="utf-8")
        text = text.replace(KEYS_MARKER, key_table(self.app.BINDINGS))
        with VerticalScroll(id="help"):
            yield Markdown(text)

    def action_close(self) -> None:
        self.dismiss(None)
