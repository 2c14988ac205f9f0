"""Heat maps for continuous fields (⟨v h⟩ maps, RBM weights, block averages).

Values are quantised to a small palette; two map rows share one text row through '▀' with
fg = top colour and bg = bottom colour. Runs of equal colour pairs become one Segment, and the
Style of every pair is cached, so a redraw is a few numpy operations plus one Segment per run.
Rows are rebuilt only when the quantised data or the widget size change.
"""

from __future__ import annotations

import math

import numpy as np
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.geometry import Size
from textual.strip import Strip
from textual.widget import Widget

from rgflow.tui.widgets.lattice import frame_rows
from rgflow.tui.widgets.outline import cells_within, outline_glyphs, ring_of
from rgflow.tui.widgets.palette import (
    BACKGROUND_INDEX,
    NAN_COLOR,
    OUTLINE_INDEX,
    RGB,
    fg_bg_style,
    palette,
    quantise,
    resample_palette,
    rgb_only_filters,
    sign_glyph,
    style_rgb,
    value_range,
)

_UPPER_HALF = "▀"
_LOWER_HALF = "▄"
_SPECIAL = 3  # palette indices below 0: NAN_INDEX, BACKGROUND_INDEX, OUTLINE_INDEX
OUTLINE_COLOR: RGB = (80, 200, 120)  # when the theme gives the outline no colour


# -- pure helpers -------------------------------------------------------------------------


def fit_scale(rows: int, cols: int, width: int, height_px: int) -> float:
    """Scale factor for a rows x cols map in width x height_px square pixels, keeping aspect.

    Upscaling is by whole numbers so every map cell has the same size on screen; shrinking
    uses the exact ratio (nearest-neighbour sampling).
    """
    if rows <= 0 or cols <= 0 or width <= 0 or height_px <= 0:
        return 0.0
    scale = min(width / cols, height_px / rows)
    return float(math.floor(scale)) if scale >= 1 else scale


def resample(image: np.ndarray, scale: float) -> np.ndarray:
    """Nearest-neighbour resampling of the last two axes by ``scale`` (at least 1 x 1 out)."""
    rows, cols = image.shape[-2:]
    out_r = max(1, int(rows * scale + 1e-9))
    out_c = max(1, int(cols * scale + 1e-9))
    if (out_r, out_c) == (rows, cols):
        return image
    r_idx = np.minimum(((np.arange(out_r) + 0.5) / scale).astype(np.intp), rows - 1)
    c_idx = np.minimum(((np.arange(out_c) + 0.5) / scale).astype(np.intp), cols - 1)
    return image[..., r_idx, :][..., c_idx]


def grid_layout(
    n_maps: int, rows: int, cols: int, width: int, height: int, gap: int = 1
) -> tuple[int, int, float]:
    """Best (grid_rows, grid_cols, scale) to tile n_maps rows x cols maps into width x height
    text cells, with ``gap`` blank columns between maps and ``gap`` blank text rows between map
    rows. Maximises the per-map scale (whole numbers when >= 1)."""
    best = (max(n_maps, 1), 1, 0.0)
    best_key = (0.0, 0.0)
    if n_maps <= 0 or rows <= 0 or cols <= 0:
        return best
    for g_cols in range(1, n_maps + 1):
        g_rows = math.ceil(n_maps / g_cols)
        avail_w = width - (g_cols - 1) * gap
        avail_h_px = 2 * (height - (g_rows - 1) * gap)
        if avail_w <= 0 or avail_h_px <= 0:
            continue
        raw = min(avail_w / (g_cols * cols), avail_h_px / (g_rows * rows))
        scale = raw
        if scale >= 1:
            scale = float(math.floor(scale))
            # whole-number upscaling; each map takes an even number of pixel rows
            while scale > 1 and g_rows * _even(int(rows * scale)) > avail_h_px:
                scale -= 1
        # Ties on the drawn scale go to the layout with more room to spare.
        key = (scale, raw)
        if key > best_key:
            best, best_key = (g_rows, g_cols, scale), key
    return best


def _even(n: int) -> int:
    return n + (n & 1)


def legend_text(
    vmin: float, vmax: float, colors: tuple[RGB, ...] | None = None, *, diverging: bool = True,
    glyphs: bool = False, labels: tuple[str, str] | None = None,
) -> Text:
    """One-line colour bar: "min ██████0█████ max" (the '0' marks zero for diverging maps).
    glyphs=True (NO_COLOR): each level drawn with its sign glyph instead of its colour.
    """
    colors = palette(diverging) if colors is None else colors
    low, high = labels or (f"{vmin:.3g}", f"{vmax:.3g}")
    text = Text(f"{low} ", no_wrap=True)
    zero_level = None
    if diverging and vmax > vmin and vmin <= 0.0 <= vmax:
        zero_level = min(int((0.0 - vmin) / (vmax - vmin) * len(colors)), len(colors) - 1)
    for level, rgb in enumerate(colors):
        if glyphs:  # zero is blank in the map: set apart, so "-" and "0" do not read as -0
            text.append(" 0 " if level == zero_level else sign_glyph(level, len(colors)))
        elif level == zero_level:
            ink = (0, 0, 0) if sum(rgb) > 384 else (255, 255, 255)
            text.append("0", fg_bg_style(ink, rgb))
        else:
            text.append("█", fg_bg_style(rgb, None))
    text.append(f" {high}")
    return text


def pixels_to_runs(
    image: np.ndarray, n_levels: int
) -> tuple[tuple[int, int], list[int], list[int], list[int]]:
    """Pair pixel rows into text rows and run-length encode them.

    Returns ((text_rows, cols), run rows, run codes, run lengths), runs in reading order and
    never crossing a row end. A cell's code is (top + 3) * (n_levels + 3) + (bottom + 3), so
    NAN_INDEX (-1), BACKGROUND_INDEX (-2) and OUTLINE_INDEX (-3) have codes too; a missing
    bottom pixel row
    counts as background.
    """
    rows, cols = image.shape
    if rows % 2:
        image = np.vstack([image, np.full((1, cols), BACKGROUND_INDEX, dtype=image.dtype)])
    base = n_levels + _SPECIAL
    codes = (image[0::2].astype(np.int32) + _SPECIAL) * base \
        + (image[1::2].astype(np.int32) + _SPECIAL)
    starts_mask = np.ones(codes.shape, dtype=bool)
    starts_mask[:, 1:] = codes[:, 1:] != codes[:, :-1]
    starts = np.flatnonzero(starts_mask)
    lengths = np.diff(np.append(starts, codes.size))
    return (
        codes.shape,
        (starts // cols).tolist(),
        codes.ravel()[starts].tolist(),
        lengths.tolist(),
    )


class _PixelMap(Widget):
    """Shared machinery: a pixel image of palette indices -> cached strips."""

    COMPONENT_CLASSES = {"heat-map--nan", "heat-map--outline"}

    def __init__(
        self,
        *,
        title: str | None = None,
        n_levels: int | None = None,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self._n_levels_request = n_levels
        self._colors: tuple[RGB, ...] = palette(True)
        self._vmin = -1.0
        self._vmax = 1.0
        self._diverging = True
        self._generation = 0
        self._style_generation = 0
        self._cache_key: tuple | None = None
        self._strips: list[Strip] = []
        self._pair_cache: dict[int, tuple[str, Style]] = {}
        self._segment_cache: dict[int, Segment] = {}
        self.build_count = 0
        """How many times the rows were rebuilt (for tests and benchmarks)."""
        self.show_legend = True
        if title is not None:
            self.border_title = title

    @property
    def colors(self) -> tuple[RGB, ...]:
        return self._colors

    @property
    def value_range(self) -> tuple[float, float]:
        return self._vmin, self._vmax

    def legend(self) -> Text:
        """Colour legend for the current data (see legend_text)."""
        return legend_text(self._vmin, self._vmax, self._colors, diverging=self._diverging,
                           glyphs=self._glyph_mode())

    def _glyph_mode(self) -> bool:
        """NO_COLOR and a diverging map: the sign is drawn with glyphs."""
        return self._diverging and self.is_attached and bool(self.app.no_color)

    def _show_legend(self) -> None:
        """The colour bar with its values in the lower border."""
        if self.show_legend:
            self.border_subtitle = self.legend()

    def _palette_for(self, diverging: bool) -> tuple[RGB, ...]:
        colors = palette(diverging)
        if self._n_levels_request is not None:
            colors = resample_palette(colors, self._n_levels_request)
        return colors

    def _set_levels(
        self, values: np.ndarray, vmin: float | None, vmax: float | None, diverging: bool
    ) -> np.ndarray:
        colors = self._palette_for(diverging)
        lo, hi = value_range(values, vmin, vmax, diverging)
        if colors != self._colors:
            self._pair_cache.clear()
            self._segment_cache.clear()
        self._colors, self._vmin, self._vmax, self._diverging = colors, lo, hi, diverging
        return quantise(values, lo, hi, len(colors))

    def _changed(self) -> None:
        self._generation += 1
        self.refresh()

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._style_generation += 1
        self._pair_cache.clear()
        self._segment_cache.clear()

    def get_line_filters(self):
        return rgb_only_filters(self)

    def _pixel_image(self, width: int, height: int) -> np.ndarray | None:
        """Palette indices for the whole drawing (pixel rows = 2 x text rows)."""
        raise NotImplementedError

    def _outline_pixels(self, width: int, height: int) -> np.ndarray | None:
        """A region to outline, as a bool pixel mask aligned with _pixel_image (None: none)."""
        return None

    def render_line(self, y: int) -> Strip:
        width, height = self.size
        key = (self._generation, width, height, self._style_generation)
        if key != self._cache_key:
            self._strips = self._build_strips(width, height)
            self._cache_key = key
        if 0 <= y < len(self._strips):
            return self._strips[y]
        return Strip.blank(width, self.rich_style)

    def _pair(self, code: int) -> tuple[str, Style]:
        """Glyph and style for a cell pair code (cached)."""
        cached = self._pair_cache.get(code)
        if cached is not None:
            return cached
        base = len(self._colors) + _SPECIAL
        top, bottom = (index - _SPECIAL for index in divmod(code, base))
        background = self.rich_style
        if top == BACKGROUND_INDEX and bottom == BACKGROUND_INDEX:
            result = (" ", background)
        elif bottom == BACKGROUND_INDEX:
            result = (_UPPER_HALF, background + fg_bg_style(self._rgb(top), None))
        elif top == BACKGROUND_INDEX:
            result = (_LOWER_HALF, background + fg_bg_style(self._rgb(bottom), None))
        else:
            result = (_UPPER_HALF, fg_bg_style(self._rgb(top), self._rgb(bottom)))
        self._pair_cache[code] = result
        return result

    def _rgb(self, index: int) -> RGB:
        if index >= 0:
            return self._colors[index]
        if index == OUTLINE_INDEX:
            style = self.get_component_rich_style("heat-map--outline", partial=True)
            return style_rgb(style) or OUTLINE_COLOR
        style = self.get_component_rich_style("heat-map--nan", partial=True)
        return style_rgb(style) or NAN_COLOR

    def _build_strips(self, width: int, height: int) -> list[Strip]:
        if width <= 0 or height <= 0:
            return []
        image = self._pixel_image(width, height)
        if image is None:
            return []
        self.build_count += 1
        image = image[: 2 * height, :width]
        outline = self._outline_pixels(width, height)
        if outline is not None:
            outline = outline[: image.shape[0], : image.shape[1]]
        if self._glyph_mode():
            return self._glyph_strips(image, width, height, outline)
        if outline is not None:  # a ring of pixels in the outline colour, the field untouched
            image = np.where(ring_of(outline), OUTLINE_INDEX, image)
        (n_rows, n_cols), run_rows, run_codes, run_lengths = pixels_to_runs(
            image, len(self._colors)
        )
        left = (width - n_cols) // 2
        right = width - n_cols - left
        top = (height - n_rows) // 2
        background = self.rich_style
        pad_left = [Segment(" " * left, background)] if left else []
        pad_right = Segment(" " * right, background) if right else None
        rows: list[list[Segment]] = [list(pad_left) for _ in range(n_rows)]
        # Noisy maps are mostly short runs of a few colour pairs: reuse their Segments.
        segment_cache = self._segment_cache
        if len(segment_cache) > 50_000:
            segment_cache.clear()
        for row, code, length in zip(run_rows, run_codes, run_lengths, strict=True):
            key = (code << 16) | length
            segment = segment_cache.get(key)
            if segment is None:
                glyph, style = self._pair(code)
                segment = segment_cache[key] = Segment(glyph * length, style)
            rows[row].append(segment)
        blank = Strip.blank(width, background)
        strips = [blank] * top
        for segments in rows:
            if pad_right is not None:
                segments.append(pad_right)
            strips.append(Strip(segments, width))
        strips.extend([blank] * (height - len(strips)))
        return strips

    def _glyph_strips(self, image: np.ndarray, width: int, height: int,
                      outline: np.ndarray | None) -> list[Strip]:
        """NO_COLOR: one glyph per cell for the more extreme of its two pixel rows, so the
        sign and rough size of every value stay readable without colour; an outlined region
        gets box-drawing glyphs on the cells around the cells wholly in it (a cell half in
        it shows the no-data glyph anyway)."""
        if image.shape[0] % 2:
            image = np.vstack([image, np.full((1, image.shape[1]), BACKGROUND_INDEX,
                                              image.dtype)])
        top, bottom = image[0::2].astype(np.int32), image[1::2].astype(np.int32)
        mid = len(self._colors) // 2
        pick = np.where(np.abs(bottom - mid) > np.abs(top - mid), bottom, top)
        pick = np.where(top == BACKGROUND_INDEX, bottom, pick)
        glyphs = {level: sign_glyph(level, len(self._colors))
                  for level in range(len(self._colors))}
        glyphs[BACKGROUND_INDEX] = " "
        cells = [[glyphs.get(int(v), "?") for v in row] for row in pick]
        if outline is not None:
            for (r, c), glyph in outline_glyphs(cells_within(outline)).items():
                cells[r][c] = glyph
        rows = ["".join(row) for row in cells]
        n_cols = len(rows[0]) if rows else 0
        return frame_rows(rows, n_cols, width, height, self.rich_style, self.rich_style)


class HeatMap(_PixelMap):
    """One continuous map, scaled to fit the widget (nearest neighbour, aspect kept)."""

    DEFAULT_CSS = """
    HeatMap > .heat-map--nan {
        color: $foreground-muted;
    }
    /* green: a hue neither the blue-white-red weights nor the grey of no data use */
    HeatMap > .heat-map--outline {
        color: $success;
    }
    """

    def __init__(
        self,
        values: np.ndarray | None = None,
        *,
        title: str | None = None,
        fit: bool = True,
        n_levels: int | None = None,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        """
        Args:
            values: Optional first map (diverging, automatic range).
            title: Optional border title.
            fit: Scale the map to the widget; if False draw 1:1 (cropped when too big).
            n_levels: Palette size (default: 11 diverging, 9 sequential).
        """
        super().__init__(title=title, n_levels=n_levels, name=name, id=id, classes=classes)
        self._fit = fit
        self._scale: float | None = None
        self._levels: np.ndarray | None = None
        self._outline: np.ndarray | None = None
        if values is not None:
            self.set_data(values)

    @property
    def scale(self) -> float | None:
        """Columns per map cell, set by a view that draws several maps at one scale (None:
        as large as fits). Shrunk if the map would not fit."""
        return self._scale

    @scale.setter
    def scale(self, value: float | None) -> None:
        if value != self._scale:
            self._scale = value
            self._changed()

    def set_data(
        self,
        values: np.ndarray,
        vmin: float | None = None,
        vmax: float | None = None,
        diverging: bool = True,
    ) -> bool:
        """Show a map (UI thread only). Returns False (and does not redraw) when the quantised
        picture and the range are unchanged."""
        values = np.asarray(values, dtype=np.float64)
        if values.ndim != 2 or values.size == 0:
            raise ValueError(f"values must be a non-empty 2-D array, got shape {values.shape}")
        old = (self._colors, self._vmin, self._vmax, self._diverging)
        levels = self._set_levels(values, vmin, vmax, diverging)
        new = (self._colors, self._vmin, self._vmax, self._diverging)
        if old == new and self._levels is not None and np.array_equal(levels, self._levels):
            return False
        first = self._levels is None
        self._levels = levels
        if old != new or first:
            self._show_legend()
        self._changed()
        return True

    @property
    def outline(self) -> np.ndarray | None:
        """The outlined region (bool, the map's shape), or None."""
        return self._outline

    def set_outline(self, region: np.ndarray | None) -> None:
        """Outline a region of the map (bool, the map's shape; None: no outline), drawn with
        box-drawing glyphs on the cells just outside it (UI thread only)."""
        if region is not None:
            region = np.asarray(region, dtype=bool)
        old = self._outline
        if (region is None) != (old is None) or (
                region is not None and not np.array_equal(region, old)):
            self._outline = region
            self._changed()

    @property
    def levels(self) -> np.ndarray | None:
        """The quantised map (palette indices, NaN -> -1) currently shown."""
        return self._levels

    def get_content_width(self, container: Size, viewport: Size) -> int:
        return 0 if self._levels is None else self._levels.shape[1]

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        return 0 if self._levels is None else math.ceil(self._levels.shape[0] / 2)

    def _pixel_image(self, width: int, height: int) -> np.ndarray | None:
        return None if self._levels is None else self._fitted(self._levels, width, height)

    def _outline_pixels(self, width: int, height: int) -> np.ndarray | None:
        if self._outline is None or self._levels is None \
                or self._outline.shape != self._levels.shape:
            return None
        return self._fitted(self._outline, width, height)

    def _fitted(self, image: np.ndarray, width: int, height: int) -> np.ndarray:
        """image (the map's shape) at the scale the map is drawn."""
        if not self._fit:
            return image
        rows, cols = image.shape
        scale = fit_scale(rows, cols, width, 2 * height)
        if self._scale is not None:
            scale = min(scale, self._scale)
        return resample(image, scale)


class HeatMapGrid(_PixelMap):
    """Many small maps of the same shape (e.g. ⟨v h_a⟩ for each hidden unit a) in a grid,
    with blank gaps between them. The grid shape and scale are chosen to make the maps as
    large as possible in the widget."""

    DEFAULT_CSS = """
    HeatMapGrid > .heat-map--nan {
        color: $foreground-muted;
    }
    """

    def __init__(
        self,
        maps: np.ndarray | None = None,
        *,
        title: str | None = None,
        gap: int = 1,
        n_levels: int | None = None,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(title=title, n_levels=n_levels, name=name, id=id, classes=classes)
        self._gap = gap
        self._levels: np.ndarray | None = None
        self._grid_shape: tuple[int, int, float] | None = None
        if maps is not None:
            self.set_maps(maps)

    def set_maps(
        self,
        maps: np.ndarray,
        vmin: float | None = None,
        vmax: float | None = None,
        diverging: bool = True,
        per_map: bool = False,
    ) -> bool:
        """Show maps of shape (N, H, W) (UI thread only).

        One colour range is shared by all maps unless ``per_map`` (each map scaled to its own
        max |value|, or min..max when sequential; the legend then shows only the shared
        vmin/vmax, so prefer shared when comparing maps). Returns False when nothing changed.
        """
        maps = np.asarray(maps, dtype=np.float64)
        if maps.ndim != 3 or maps.size == 0:
            raise ValueError(f"maps must be a non-empty (N, H, W) array, got shape {maps.shape}")
        old = (self._colors, self._vmin, self._vmax, self._diverging)
        levels = self._set_levels(maps, vmin, vmax, diverging)
        if per_map:
            colors = len(self._colors)
            levels = np.stack(
                [quantise(m, *value_range(m, vmin, vmax, diverging), colors) for m in maps]
            )
        new = (self._colors, self._vmin, self._vmax, self._diverging)
        if old == new and self._levels is not None and np.array_equal(levels, self._levels):
            return False
        first = self._levels is None
        self._levels = levels
        if per_map and self.show_legend:  # one scale per map: the bar has no shared numbers
            self.border_subtitle = legend_text(
                -1, 1, self._colors, diverging=diverging, glyphs=self._glyph_mode(),
                labels=("−max", "+max each map") if diverging else ("min", "max each map"))
        elif old != new or first:
            self._show_legend()
        self._changed()
        return True

    @property
    def levels(self) -> np.ndarray | None:
        return self._levels

    @property
    def grid_shape(self) -> tuple[int, int, float] | None:
        """(grid rows, grid columns, scale) of the last drawing."""
        return self._grid_shape

    def _pixel_image(self, width: int, height: int) -> np.ndarray | None:
        if self._levels is None:
            return None
        n_maps, rows, cols = self._levels.shape
        gap = self._gap
        g_rows, g_cols, scale = grid_layout(n_maps, rows, cols, width, height, gap)
        self._grid_shape = (g_rows, g_cols, scale)
        if scale <= 0:
            return None
        tiles = resample(self._levels, scale)
        tile_h, tile_w = tiles.shape[1:]
        tile_h_even = _even(tile_h)  # each map starts on a text row
        image = np.full(
            (
                g_rows * tile_h_even + (g_rows - 1) * 2 * gap,
                g_cols * tile_w + (g_cols - 1) * gap,
            ),
            BACKGROUND_INDEX,
            dtype=np.int16,
        )
        for index, tile in enumerate(tiles):
            r, c = divmod(index, g_cols)
            y0 = r * (tile_h_even + 2 * gap)
            x0 = c * (tile_w + gap)
            image[y0 : y0 + tile_h, x0 : x0 + tile_w] = tile
        return image
