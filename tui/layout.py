"""Layout of the app's views: whole views in wide terminals, pages of one or two panes in
smaller ones (v / tab step through every page of every view)."""

from textual import events
from textual.containers import Grid
from textual.widgets import Footer

from .views import PANES, VIEWS

PANES_PER_PAGE = {"wide": None, "compact": 2, "tiny": 1}
WIDE_MIN = (110, 30)  # columns, rows for whole views
TINY_MAX = (60, 18)  # below either: one pane per page, side borders off


class ViewGrid(Grid):
    """One view's panes (a module of tui/views/). Only the view shown first is composed
    with the app: the others are composed once the first frame is on screen (build), so
    that creating and styling their widgets does not delay it."""

    def __init__(self, module, built: bool, **kwargs) -> None:
        super().__init__(classes="view", **kwargs)
        self.module = module
        self.built = built

    def compose(self):
        if self.built:
            yield from self.module.compose()

    async def build(self) -> bool:
        """Compose the panes; False if the app is closing (then nothing is composed)."""
        if not self.built:
            self.built = True
            await self.recompose()
            self.built = bool(self.children)
        return self.built


class LayoutMixin:
    """Layout modes, pages and view switching (mixed into RgflowApp)."""

    def on_resize(self, event: events.Resize) -> None:
        self._apply_layout(event.size.width, event.size.height)

    def _apply_layout(self, width: int, height: int) -> None:
        if width >= WIDE_MIN[0] and height >= WIDE_MIN[1]:
            mode = "wide"
        elif width < TINY_MAX[0] or height < TINY_MAX[1]:
            mode = "tiny"
        else:
            mode = "compact"
        screen = self._main or self.screen
        for name in PANES_PER_PAGE:
            screen.set_class(name == mode, f"-{name}")
        if mode != self.layout_mode:
            self.layout_mode = mode
            self.page = min(self.page, self.pages_of(self.view) - 1)
        # small terminals: the footer's room goes to the keys (the palette is also ':')
        for footer in screen.query(Footer):
            footer.compact = mode != "wide"
            footer.show_command_palette = mode == "wide"
        self._show_page()

    def pages_of(self, view: str) -> int:
        per = PANES_PER_PAGE[self.layout_mode]
        return 1 if per is None else -(-len(PANES[view]) // per)

    async def _build_views(self) -> None:
        """Compose the views left out at start (after the first frame is on screen)."""
        for view in VIEWS:
            grid = self.w(view)
            if not grid.built:
                if not await grid.build():
                    return
                self._widgets.update({w.id: w for w in grid.query("*") if w.id})
        self.views_built = True
        self._show_page()
        self._draw(force=True)

    def _show_page(self) -> None:
        if not self._widgets:
            return
        per = PANES_PER_PAGE[self.layout_mode]
        for view, panes in PANES.items():
            if not self.w(view).built:
                continue
            for i, pane in enumerate(panes):
                visible = per is None or (view == self.view and i // per == self.page)
                self.w(pane).display = visible
        self._drawn_key = None

    def action_next_view(self, step: int = 1) -> None:
        pages = [(v, p) for v in VIEWS for p in range(self.pages_of(v))]
        index = pages.index((self.view, min(self.page, self.pages_of(self.view) - 1)))
        view, page = pages[(index + step) % len(pages)]
        self.page = page
        self.view = view

    def action_show_view(self, view: str) -> None:
        self.page = 0
        self.view = view
