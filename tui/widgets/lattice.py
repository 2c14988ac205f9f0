"""Spin-lattice view on Textual's Line API.

The spins are encoded by glyph, not by colour: every text cell shows a small block of spins
(1x2, 2x2 or 2x4) as one character whose filled part marks the up spins. Each text row is one
Segment with a single style (fg = up colour, bg = down colour), so a row costs one string
build, the colour system does not matter, and NO_COLOR still shows the pattern. Per-cell Rich
styles would cost 60-100 ms a frame; this costs well under a millisecond for 128x128.

Modes, least to most dense (the widget picks the first that fits, see choose_mode):
  half-block  1 column x 2 rows of spins per cell   (square pixels, colour-friendly)
  quadrant    2 x 2 spins per cell                  (each spin drawn twice as tall as wide)
  braille     2 columns x 4 rows of dots per cell   (square, densest)
  downsampled majority rule over k x k blocks, then half-block
"""

from __future__ import annotations

import numpy as np
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.geometry import Size
from textual.strip import Strip
from textual.widget import Widget

from rgflow.tui.widgets.palette import rgb_only_filters

HALF_BLOCK = "half-block"
QUADRANT = "quadrant"
BRAILLE = "braille"
DOWNSAMPLED = "downsampled"
MODES = (HALF_BLOCK, QUADRANT, BRAILLE, DOWNSAMPLED)

# Cell code -> glyph. Bit weights per spin position inside a cell (rows x columns); a set bit
# means "up". Half-block: code = 2*top + bottom.
_HALF_WEIGHTS = np.array([[2], [1]], dtype=np.uint8)
_HALF_GLYPHS = " ▄▀█"
# Quadrant: code = 8*TL + 4*TR + 2*BL + BR.
_QUAD_WEIGHTS = np.array([[8, 4], [2, 1]], dtype=np.uint8)
_QUAD_GLYPHS = " ▗▖▄▝▐▞▟▘▚▌▙▀▜▛█"
# Braille: dots 1-3 down the left column, 4-6 down the right, 7 and 8 on the bottom row.
_BRAILLE_WEIGHTS = np.array([[0x01, 0x08], [0x02, 0x10], [0x04, 0x20], [0x40, 0x80]], np.uint8)
_BRAILLE_GLYPHS = "".join(chr(0x2800 + code) for code in range(256))

_ENCODINGS: dict[str, tuple[np.ndarray, np.ndarray]] = {
    name: (weights, np.array(list(glyphs), dtype="<U1"))
    for name, weights, glyphs in (
        (HALF_BLOCK, _HALF_WEIGHTS, _HALF_GLYPHS),
        (QUADRANT, _QUAD_WEIGHTS, _QUAD_GLYPHS),
        (BRAILLE, _BRAILLE_WEIGHTS, _BRAILLE_GLYPHS),
    )
}


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def _shape_of(L: int | tuple[int, int]) -> tuple[int, int]:
    if isinstance(L, tuple):
        return int(L[0]), int(L[1])
    return int(L), int(L)


def cells_needed(shape: tuple[int, int], mode: str, scale: int = 1) -> tuple[int, int]:
    """(columns, text rows) the lattice of ``shape`` = (rows, cols) occupies in ``mode``."""
    rows, cols = shape
    if mode == DOWNSAMPLED:
        rows, cols = _ceil_div(rows, scale), _ceil_div(cols, scale)
        mode = HALF_BLOCK
    cell_h, cell_w = _ENCODINGS[mode][0].shape
    return _ceil_div(cols, cell_w), _ceil_div(rows, cell_h)


def choose_mode(L: int | tuple[int, int], width: int, height: int) -> tuple[str, int]:
    """Pick how to draw an L x L lattice (or (rows, cols)) into width x height text cells.

    Returns (mode, scale): the first of half-block, quadrant, braille that fits at 1:1
    (scale 1), else ("downsampled", k) with the smallest block size k >= 2 whose half-block
    view fits. If nothing fits (a zero-sized widget) k is the largest useful block size and
    the view is cropped.
    """
    shape = _shape_of(L)
    for mode in (HALF_BLOCK, QUADRANT, BRAILLE):
        cols, rows = cells_needed(shape, mode)
        if cols <= width and rows <= height:
            return mode, 1
    largest = max(shape)
    for k in range(2, largest + 1):
        cols, rows = cells_needed(shape, DOWNSAMPLED, k)
        if cols <= width and rows <= height:
            return DOWNSAMPLED, k
    return DOWNSAMPLED, max(largest, 2)


def mode_label(mode: str, scale: int = 1) -> str:
    """Short human label for a mode, for a border subtitle."""
    if mode == DOWNSAMPLED:
        return f"downsampled ×{scale}"
    if mode == HALF_BLOCK:
        return "half-block 1:1"
    return f"{mode} 1:1"


def block_majority(spins: np.ndarray, k: int) -> np.ndarray:
    """Majority rule over k x k blocks (partial blocks at the edges use the spins they have).

    Ties (possible for even k) take the block's top-left spin, so the result is deterministic
    and always a real spin value. This is only for display; the physics RG lives in core/rg.py.
    """
    rows, cols = spins.shape
    out_r, out_c = _ceil_div(rows, k), _ceil_div(cols, k)
    padded = np.zeros((out_r * k, out_c * k), dtype=np.int32)
    padded[:rows, :cols] = np.where(spins > 0, 1, -1)
    sums = padded.reshape(out_r, k, out_c, k).sum(axis=(1, 3))
    corner = np.where(spins[::k, ::k] > 0, 1, -1)
    return np.where(sums > 0, 1, np.where(sums < 0, -1, corner)).astype(np.int8)


def encode_codes(spins: np.ndarray, mode: str) -> np.ndarray:
    """Per-cell glyph codes (uint8, text rows x columns) for an up/down lattice.

    Spins > 0 are "up" (set bits); lattice sites beyond the edge (when the size is not a
    multiple of the cell size) count as down.
    """
    weights = _ENCODINGS[mode][0]
    cell_h, cell_w = weights.shape
    rows, cols = spins.shape
    out_r, out_c = _ceil_div(rows, cell_h), _ceil_div(cols, cell_w)
    up = np.zeros((out_r * cell_h, out_c * cell_w), dtype=np.uint8)
    np.greater(spins, 0, out=up[:rows, :cols], casting="unsafe")
    codes = np.zeros((out_r, out_c), dtype=np.uint8)
    for i in range(cell_h):
        for j in range(cell_w):
            # up is 0/1, so a multiply places the bit; sums of distinct bits never carry.
            codes += up[i::cell_h, j::cell_w] * weights[i, j]
    return codes


def encode_rows(spins: np.ndarray, mode: str, scale: int = 1) -> list[str]:
    """The lattice as one string per text row, in ``mode`` (glyphs only, no styles)."""
    if mode == DOWNSAMPLED:
        spins = block_majority(spins, scale)
        mode = HALF_BLOCK
    codes = encode_codes(spins, mode)
    glyphs = _ENCODINGS[mode][1][codes]  # (rows, cols) of '<U1'
    n_cols = codes.shape[1]
    # Reinterpret each row of one-character cells as a single numpy string: no Python loop
    # over cells. Safe because no glyph is NUL (numpy strips trailing NULs).
    return np.ascontiguousarray(glyphs).view(f"<U{n_cols}").ravel().tolist()


class LatticeView(Widget):
    """Shows an L x L array of ±1 spins in the first mode that fits (see choose_mode): 1:1
    half-block when there is room, denser glyphs or a downsampled view as the widget shrinks.

    Call set_spins() on the UI thread with each new frame. The rendered rows are cached and
    rebuilt only when the spins, the widget size or the styles change. The up/down colours come
    from the component classes below (theme variables by default), so an app's CSS can
    restyle them.
    """

    DEFAULT_CSS = """
    LatticeView > .lattice-view--up {
        color: $accent;
    }
    LatticeView > .lattice-view--down {
        color: $primary-darken-3;
    }
    """
    COMPONENT_CLASSES = {"lattice-view--up", "lattice-view--down"}

    def __init__(
        self,
        spins: np.ndarray | None = None,
        *,
        title: str | None = None,
        show_mode: bool = True,
        spin_legend: bool = False,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        """
        Args:
            spins: Optional first frame.
            title: Optional border title (visible when the widget has a border).
            show_mode: Keep the border subtitle set to mode_label.
            spin_legend: Put "█ +1 █ −1" in the colours of up and down spins before it.
        """
        super().__init__(name=name, id=id, classes=classes)
        self._spins: np.ndarray | None = None
        self._frame = 0
        self._style_generation = 0
        self._cache_key: tuple | None = None
        self._strips: list[Strip] = []
        self._show_mode = show_mode
        self._spin_legend = spin_legend
        self._zoom = 1
        self.build_count = 0
        """How many times the rows were rebuilt (for tests and benchmarks)."""
        if title is not None:
            self.border_title = title
        if spins is not None:
            self.set_spins(spins)

    # -- public API ---------------------------------------------------------------------

    def set_spins(self, spins: np.ndarray) -> None:
        """Show a new frame (UI thread only). ``spins`` is copied; values > 0 are up."""
        arr = np.array(spins, dtype=np.int8, copy=True)
        if arr.ndim != 2 or arr.size == 0:
            raise ValueError(f"spins must be a non-empty 2-D array, got shape {arr.shape}")
        shape_changed = self._spins is None or self._spins.shape != arr.shape
        self._spins = arr
        self._frame += 1
        if shape_changed:
            self._sync_mode_label()
        self.refresh()

    @property
    def spins(self) -> np.ndarray | None:
        return self._spins

    @property
    def zoom(self) -> int:
        """Text columns per site when the lattice is drawn half-block (1 = 1:1): set by a
        view that draws several maps at one scale. Ignored when the zoomed lattice does not
        fit."""
        return self._zoom

    @zoom.setter
    def zoom(self, k: int) -> None:
        k = max(1, int(k))
        if k != self._zoom:
            self._zoom = k
            self._frame += 1
            self._sync_mode_label()
            self.refresh()

    def _zoom_fits(self, width: int, height: int) -> bool:
        if self._zoom <= 1 or self._spins is None:
            return False
        rows, cols = self._spins.shape
        need_cols, need_rows = cells_needed((rows * self._zoom, cols * self._zoom), HALF_BLOCK)
        return need_cols <= width and need_rows <= height

    @property
    def columns_per_site(self) -> float:
        """Text columns one site takes as drawn now (1 at half-block 1:1)."""
        mode = self.mode
        if mode is None:
            return 1.0
        if self._zoom_fits(*self.size):
            return float(self._zoom)
        name, scale = mode
        return {HALF_BLOCK: 1.0, DOWNSAMPLED: 1.0 / scale}.get(name, 0.5)

    @property
    def mode(self) -> tuple[str, int] | None:
        """(mode, scale) for the current lattice and widget size, or None with no data."""
        if self._spins is None:
            return None
        width, height = self.size
        return choose_mode(self._spins.shape, width, height)

    @property
    def mode_label(self) -> str:
        """E.g. "half-block 1:1", "braille 1:1", "downsampled ×4"; "" with no data, or
        before the widget has a size (a first frame drawn before the layout)."""
        if not self.size.area:
            return ""
        mode = self.mode
        if mode is not None and self._zoom_fits(*self.size):
            return f"half-block ×{self._zoom}"
        return "" if mode is None else mode_label(*mode)

    # -- Textual hooks -------------------------------------------------------------------

    def get_content_width(self, container: Size, viewport: Size) -> int:
        # Natural size = the half-block view, so `width: auto` shows the lattice 1:1.
        if self._spins is None:
            return 0
        return cells_needed(self._spins.shape, HALF_BLOCK)[0]

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        if self._spins is None:
            return 0
        return cells_needed(self._spins.shape, HALF_BLOCK)[1]

    def on_resize(self) -> None:
        self._sync_mode_label()

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._style_generation += 1
        if self._spin_legend and self._spins is not None:
            self._sync_mode_label()

    def get_line_filters(self):
        return rgb_only_filters(self)

    def render_line(self, y: int) -> Strip:
        width, height = self.size
        key = (self._frame, width, height, self._style_generation)
        if key != self._cache_key:
            self._strips = self._build_strips(width, height)
            self._cache_key = key
        if 0 <= y < len(self._strips):
            return self._strips[y]
        return Strip.blank(width, self.rich_style)

    # -- internals -----------------------------------------------------------------------

    def spin_legend(self) -> Text:
        """Which colour is +1 and which −1, drawn as the lattice draws them: an up site is
        the glyph's filled part in the up colour, a down site its empty part on the down
        colour (so in a terminal without colour, too: filled +1, blank −1)."""
        style = self._lattice_style()
        return Text.assemble(("█", Style(color=style.color)), " +1 ",
                             (" ", Style(bgcolor=style.bgcolor)), " −1")

    def _sync_mode_label(self) -> None:
        if not self._show_mode:
            return
        label = self.mode_label
        if self._spin_legend and self.is_attached:
            text = self.spin_legend()
            if label:
                text.append(f"  {label}")
            self.border_subtitle = text
        elif self.border_subtitle != label:
            self.border_subtitle = label

    def _lattice_style(self) -> Style:
        up = self.get_component_rich_style("lattice-view--up", partial=True)
        down = self.get_component_rich_style("lattice-view--down", partial=True)
        return Style(color=up.color, bgcolor=down.color)

    def _build_strips(self, width: int, height: int) -> list[Strip]:
        if self._spins is None or width <= 0 or height <= 0:
            return []
        self.build_count += 1
        spins = self._spins
        if self._zoom_fits(width, height):
            spins = np.repeat(np.repeat(spins, self._zoom, axis=0), self._zoom, axis=1)
        mode, scale = choose_mode(spins.shape, width, height)
        rows = encode_rows(spins, mode, scale)[:height]
        n_cols = min(len(rows[0]), width)
        if n_cols < len(rows[0]):
            rows = [row[:n_cols] for row in rows]
        return frame_rows(rows, n_cols, width, height, self._lattice_style(), self.rich_style)


def frame_rows(
    rows: list[str], n_cols: int, width: int, height: int, style: Style, background: Style
) -> list[Strip]:
    """Centre equal-length rows (all drawn in ``style``) in a width x height area of strips."""
    left = (width - n_cols) // 2
    right = width - n_cols - left
    top = (height - len(rows)) // 2
    blank = Strip.blank(width, background)
    pad_left = Segment(" " * left, background) if left else None
    pad_right = Segment(" " * right, background) if right else None
    strips = [blank] * top
    for row in rows:
        segments = [Segment(row, style)]
        if pad_left is not None:
            segments.insert(0, pad_left)
        if pad_right is not None:
            segments.append(pad_right)
        strips.append(Strip(segments, width))
    strips.extend([blank] * (height - len(strips)))
    return strips
