"""Display widgets: glyph encodings, mode choice, heat maps, plots, NO_COLOR, resizing."""

from __future__ import annotations

import asyncio
import re
import unicodedata

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.console import Console
from rich.style import Style
from rich.text import Text
from textual.app import App, ComposeResult
from textual.filter import Monochrome, NoColor

from rgflow.tui.widgets.heatmap import (
    HeatMap,
    HeatMapGrid,
    fit_scale,
    grid_layout,
    legend_text,
    resample,
)
from rgflow.tui.widgets.lattice import (
    BRAILLE,
    DOWNSAMPLED,
    HALF_BLOCK,
    MODES,
    QUADRANT,
    LatticeView,
    block_majority,
    cells_needed,
    choose_mode,
    encode_rows,
    mode_label,
)
from rgflow.tui.widgets.palette import (
    DIVERGING,
    NAN_INDEX,
    SEQUENTIAL,
    quantise,
    resample_palette,
    value_range,
)
from rgflow.tui.widgets.plot import (
    PlotSpec,
    PlotView,
    _Series,
    ansi_lines,
    build_plot,
    downsample_minmax,
    integer_ticks,
    legend_lines,
    power_of_two_ticks,
    sparkline,
)

# -- slow references built from Unicode character names, not from the module's tables ------

_QUADRANT_WORDS = {
    "UPPER LEFT": {(0, 0)},
    "UPPER RIGHT": {(0, 1)},
    "LOWER LEFT": {(1, 0)},
    "LOWER RIGHT": {(1, 1)},
}
_BLOCK_NAMES = {
    "SPACE": set(),
    "FULL BLOCK": {(0, 0), (0, 1), (1, 0), (1, 1)},
    "UPPER HALF BLOCK": {(0, 0), (0, 1)},
    "LOWER HALF BLOCK": {(1, 0), (1, 1)},
    "LEFT HALF BLOCK": {(0, 0), (1, 0)},
    "RIGHT HALF BLOCK": {(0, 1), (1, 1)},
}
# Braille dot number -> (row, column) in the 4 x 2 cell (Unicode braille numbering).
_BRAILLE_DOTS = {
    1: (0, 0),
    2: (1, 0),
    3: (2, 0),
    4: (0, 1),
    5: (1, 1),
    6: (2, 1),
    7: (3, 0),
    8: (3, 1),
}


def filled_positions(char: str, mode: str) -> set[tuple[int, int]]:
    """Which (row, col) positions of a cell the glyph fills, read from its Unicode name."""
    name = unicodedata.name(char)
    if mode == BRAILLE:
        if name == "BRAILLE PATTERN BLANK":
            return set()
        digits = name.removeprefix("BRAILLE PATTERN DOTS-")
        return {_BRAILLE_DOTS[int(d)] for d in digits}
    if name in _BLOCK_NAMES:
        cells = _BLOCK_NAMES[name]
    else:
        parts = name.removeprefix("QUADRANT ").split(" AND ")
        cells = set().union(*(_QUADRANT_WORDS[p] for p in parts))
    if mode == HALF_BLOCK:  # a 2 x 1 cell: these glyphs fill whole rows of the character
        assert cells == {(r, j) for r, _ in cells for j in (0, 1)}
        return {(r, 0) for r, _ in cells}
    return cells


_CELL = {HALF_BLOCK: (2, 1), QUADRANT: (2, 2), BRAILLE: (4, 2)}
_ALL_GLYPHS = {
    HALF_BLOCK: " ▀▄█",
    QUADRANT: " ▘▝▖▗▀▄▌▐▚▞▙▛▜▟█",
    BRAILLE: "".join(chr(0x2800 + i) for i in range(256)),
}


def slow_encode(spins: np.ndarray, mode: str) -> list[str]:
    """Per-cell reference: for each cell find the glyph whose filled set equals the up set."""
    by_set = {frozenset(filled_positions(c, mode)): c for c in _ALL_GLYPHS[mode]}
    cell_h, cell_w = _CELL[mode]
    rows, cols = spins.shape
    out = []
    for r0 in range(0, rows, cell_h):
        line = ""
        for c0 in range(0, cols, cell_w):
            up = {
                (i, j)
                for i in range(cell_h)
                for j in range(cell_w)
                if r0 + i < rows and c0 + j < cols and spins[r0 + i, c0 + j] > 0
            }
            line += by_set[frozenset(up)]
        out.append(line)
    return out


def decode_rows(rows: list[str], mode: str, shape: tuple[int, int]) -> np.ndarray:
    """Text back to spins (what a reader of the glyphs sees, with no colour at all)."""
    cell_h, cell_w = _CELL[mode]
    out = -np.ones((len(rows) * cell_h, len(rows[0]) * cell_w), dtype=np.int8)
    for r, line in enumerate(rows):
        for c, char in enumerate(line):
            for i, j in filled_positions(char, mode):
                out[r * cell_h + i, c * cell_w + j] = 1
    return out[: shape[0], : shape[1]]


def random_spins(rng: np.random.Generator, rows: int, cols: int) -> np.ndarray:
    return np.where(rng.random((rows, cols)) < 0.5, 1, -1).astype(np.int8)


def run_app(app: App, body, size=(80, 24)) -> None:
    async def main() -> None:
        async with app.run_test(size=size) as pilot:
            await pilot.pause()
            await body(pilot)

    asyncio.run(main())


class OneWidget(App):
    CSS = "Screen > * { width: 1fr; height: 1fr; }"

    def __init__(self, widget) -> None:
        super().__init__()
        self.widget = widget

    def compose(self) -> ComposeResult:
        yield self.widget


def visible_rows(widget) -> list[str]:
    """The non-blank rendered rows, with the centring padding removed."""
    lines = [widget.render_line(y).text for y in range(widget.size.height)]
    lines = [line for line in lines if line.strip()]
    left = min(len(line) - len(line.lstrip(" ")) for line in lines)
    right = max(len(line.rstrip(" ")) for line in lines)
    return [line[left:right] for line in lines]


# -- glyph encodings -------------------------------------------------------------------------

PATTERN = np.array(
    [
        [1, -1, 1, 1],
        [1, 1, -1, -1],
        [-1, -1, 1, -1],
        [1, -1, -1, 1],
    ],
    dtype=np.int8,
)


def test_half_block_known_pattern():
    # (top, bottom) per column: up/up=█, down/up=▄, up/down=▀, down/down=' '
    assert encode_rows(PATTERN, HALF_BLOCK) == ["█▄▀▀", "▄ ▀▄"]
    assert encode_rows(PATTERN, QUADRANT) == ["▙▀", "▖▚"]
    assert encode_rows(PATTERN, BRAILLE) == [
        chr(0x2800 + 0x01 + 0x02 + 0x10 + 0x40) + chr(0x2800 + 0x01 + 0x08 + 0x04 + 0x80)
    ]


@pytest.mark.parametrize("mode", [HALF_BLOCK, QUADRANT, BRAILLE])
def test_encodings_match_per_cell_reference(mode):
    rng = np.random.default_rng(1234)
    shapes = [(r, c) for r in range(1, 10) for c in range(1, 10)] + [(32, 32), (33, 17)]
    for rows, cols in shapes:
        spins = random_spins(rng, rows, cols)
        fast = encode_rows(spins, mode)
        assert fast == slow_encode(spins, mode), (mode, rows, cols)
        # and the text alone gives the spins back (edge padding reads as down)
        assert np.array_equal(decode_rows(fast, mode, spins.shape), spins)


def test_block_majority_and_downsampled_rows():
    assert np.array_equal(block_majority(PATTERN, 2), np.array([[1, 1], [-1, 1]]))  # ties: corner
    rng = np.random.default_rng(7)
    spins = random_spins(rng, 9, 9)
    k = 3  # odd: no ties, partial blocks none
    expected = np.sign(spins.reshape(3, 3, 3, 3).sum(axis=(1, 3)).astype(int))
    assert np.array_equal(block_majority(spins, k), expected)
    assert encode_rows(spins, DOWNSAMPLED, 3) == encode_rows(expected, HALF_BLOCK)
    # partial edge blocks use the spins they contain
    assert np.array_equal(block_majority(np.array([[1, 1, -1]]), 2), np.array([[1, -1]]))


# -- mode choice -----------------------------------------------------------------------------


def test_choose_mode_examples():
    assert choose_mode(64, 200, 60) == (HALF_BLOCK, 1)
    assert choose_mode(64, 64, 32) == (HALF_BLOCK, 1)
    assert choose_mode(64, 63, 32) == (QUADRANT, 1)
    assert choose_mode(64, 40, 40) == (QUADRANT, 1)
    assert choose_mode(64, 40, 20) == (BRAILLE, 1)
    assert choose_mode(64, 32, 16) == (BRAILLE, 1)
    assert choose_mode(64, 31, 16) == (DOWNSAMPLED, 3)  # 22 x 11 cells
    assert choose_mode(64, 20, 10) == (DOWNSAMPLED, 4)
    assert choose_mode(128, 80, 24) == (DOWNSAMPLED, 3)
    assert choose_mode(64, 0, 0) == (DOWNSAMPLED, 64)
    assert mode_label(HALF_BLOCK) == "half-block 1:1"
    assert mode_label(BRAILLE) == "braille 1:1"
    assert mode_label(DOWNSAMPLED, 4) == "downsampled ×4"


@settings(max_examples=300, deadline=None)
@given(
    L=st.integers(1, 300),
    width=st.integers(1, 320),
    height=st.integers(1, 120),
)
def test_choose_mode_is_first_that_fits(L, width, height):
    mode, scale = choose_mode(L, width, height)
    order = [(m, 1) for m in (HALF_BLOCK, QUADRANT, BRAILLE)]
    order += [(DOWNSAMPLED, k) for k in range(2, L + 1)]
    fits = [w <= width and h <= height for w, h in (cells_needed((L, L), m, k) for m, k in order)]
    assert (mode, scale) == order[fits.index(True)]


def test_choose_mode_gets_denser_as_widget_shrinks():
    rank = {mode: i for i, mode in enumerate(MODES)}
    previous = (0, 1)
    for size in range(130, 0, -1):
        mode, scale = choose_mode(128, size, size // 2)
        current = (rank[mode], scale)
        assert current >= previous
        previous = current
    assert previous[0] == rank[DOWNSAMPLED]


# -- the lattice widget ----------------------------------------------------------------------


def test_a_lattice_view_not_laid_out_yet_names_no_mode():
    # the app's first frame may be drawn before the layout: no "downsampled ×32" then
    view = LatticeView(np.ones((32, 32), dtype=np.int8))
    assert view.size.area == 0 and view.mode_label == ""


def test_lattice_view_renders_half_block_and_caches():
    rng = np.random.default_rng(3)
    spins = random_spins(rng, 16, 16)
    view = LatticeView(spins, title="spins")

    async def body(pilot):
        assert view.mode_label == "half-block 1:1"
        assert view.border_subtitle == "half-block 1:1"
        assert visible_rows(view) == encode_rows(spins, HALF_BLOCK)
        builds = view.build_count
        view.render_line(0)
        view.render_line(3)
        assert view.build_count == builds  # cached
        # one style per lattice row: fg = up colour, bg = down colour, and they differ
        row_strip = view.render_line(view.size.height // 2 - 4)
        lattice_segments = [s for s in row_strip if s.text.strip()]
        assert len(lattice_segments) == 1
        style = lattice_segments[0].style
        assert style.color is not None and style.bgcolor is not None
        assert style.color != style.bgcolor
        view.set_spins(-spins)
        await pilot.pause()
        assert visible_rows(view) == encode_rows(-spins, HALF_BLOCK)
        assert view.build_count == builds + 1

    run_app(OneWidget(view), body, size=(40, 20))


def test_the_spin_legend_shows_up_and_down_sites_as_the_lattice_draws_them():
    view = LatticeView(spin_legend=True)

    async def body(pilot):
        view.set_spins(np.array([[1, -1], [1, 1]]))
        await pilot.pause()
        lattice = next(s.style for y in range(view.size.height) for s in view.render_line(y)
                       if s.text.strip())
        legend = view.spin_legend()
        assert legend.plain == "█ +1   −1"
        up, down = (legend.get_style_at_offset(pilot.app.console, i) for i in (0, 5))
        assert up.color == lattice.color  # +1: the filled glyph in the up colour
        assert down.bgcolor == lattice.bgcolor  # −1: blank on the down colour
        from textual.content import Content

        assert Content.from_markup(view.border_subtitle).plain.startswith("█ +1   −1")

    run_app(OneWidget(view), body, size=(40, 20))


def test_lattice_colours_follow_the_theme():
    view = LatticeView(np.array([[1, -1], [1, 1]]))

    def lattice_style():
        return next(s.style for s in view.render_line(view.size.height // 2) if s.text.strip())

    async def body(pilot):
        before, builds = lattice_style(), view.build_count
        pilot.app.theme = "nord"
        await pilot.pause()
        after = lattice_style()
        assert after != before and view.build_count == builds + 1
        assert after.color.triplet.hex.lower() == "#b48ead"  # nord's accent = up colour

    run_app(OneWidget(view), body, size=(10, 5))


def test_lattice_view_rejects_bad_shape():
    with pytest.raises(ValueError):
        LatticeView().set_spins(np.ones(5, dtype=np.int8))


class AllWidgets(App):
    CSS = """
    Screen { layout: grid; grid-size: 2 2; }
    LatticeView, HeatMap, HeatMapGrid, PlotView { width: 1fr; height: 1fr; border: round $primary; }
    """

    def compose(self) -> ComposeResult:
        yield LatticeView(id="lattice")
        yield HeatMap(id="map")
        yield HeatMapGrid(id="grid")
        yield PlotView("Energy", xlabel="sweep", id="plot")


def test_resizing_renders_every_widget():
    rng = np.random.default_rng(5)
    spins = random_spins(rng, 64, 64)
    app = AllWidgets()
    seen_modes = []

    async def body(pilot):
        app.query_one(LatticeView).set_spins(spins)
        app.query_one(HeatMap).set_data(rng.normal(size=(32, 32)))
        app.query_one(HeatMapGrid).set_maps(rng.normal(size=(16, 8, 8)))
        plot = app.query_one(PlotView)
        plot.set_series("E", None, np.cumsum(rng.normal(size=1000)))
        plot.set_reference("exact", 0.0)
        for size in [(200, 60), (80, 24), (40, 12), (200, 60)]:
            await pilot.resize_terminal(*size)
            await pilot.pause()
            for widget in app.query("LatticeView, HeatMap, HeatMapGrid, PlotView"):
                lines = [widget.render_line(y) for y in range(widget.size.height)]
                assert all(s.cell_length == widget.size.width for s in lines)
            view = app.query_one(LatticeView)
            mode, scale = view.mode
            seen_modes.append(view.mode_label)
            assert view.border_subtitle == view.mode_label
            # whatever the mode, the text encodes the (downsampled) lattice exactly
            shown = spins if mode != DOWNSAMPLED else block_majority(spins, scale)
            glyph_mode = HALF_BLOCK if mode == DOWNSAMPLED else mode
            rows = visible_rows(view)
            assert np.array_equal(decode_rows(rows, glyph_mode, shown.shape), shown)

    run_app(app, body, size=(200, 60))
    assert seen_modes[0] == seen_modes[-1]
    assert len(set(seen_modes)) >= 2


def test_no_color_keeps_the_pattern(monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    rng = np.random.default_rng(11)
    spins = random_spins(rng, 20, 20)
    view = LatticeView(spins)
    app = OneWidget(view)

    async def body(pilot):
        assert app.no_color
        strips = [view.render_line(y) for y in range(view.size.height)]
        for line_filter in (Monochrome(), NoColor()):
            # what the terminal receives after Textual's NO_COLOR filters
            filtered = [s.apply_filter(line_filter, app.screen.styles.background) for s in strips]
            lines = [s.text for s in filtered if s.text.strip()]
            left = min(len(x) - len(x.lstrip(" ")) for x in lines)
            rows = [x[left : left + 20] for x in lines]
            assert np.array_equal(decode_rows(rows, HALF_BLOCK, spins.shape), spins)
        no_color = [s.apply_filter(NoColor(), app.screen.styles.background) for s in strips]
        assert all(
            seg.style is None or seg.style.color is None or seg.style.color.is_default
            for strip in no_color
            for seg in strip
        )

    run_app(app, body, size=(30, 14))


# -- palette and heat maps -------------------------------------------------------------------


def test_quantise_gradient_is_monotone_and_centred():
    values = np.linspace(-1.0, 1.0, 1001)
    idx = quantise(values, -1.0, 1.0, 11)
    assert idx[0] == 0 and idx[-1] == 10
    assert np.all(np.diff(idx) >= 0)
    assert set(idx.tolist()) == set(range(11))
    assert quantise(np.array([0.0]), -1.0, 1.0, 11)[0] == 5
    assert quantise(np.array([np.nan, 5.0, -5.0]), -1.0, 1.0, 11).tolist() == [NAN_INDEX, 10, 0]
    assert quantise(np.array([2.0, 2.0]), 2.0, 2.0, 9).tolist() == [4, 4]
    assert value_range(np.array([-0.5, 0.25]), None, None, True) == (-0.5, 0.5)
    assert value_range(np.array([1.0, 3.0, np.nan]), None, None, False) == (1.0, 3.0)
    assert resample_palette(DIVERGING, 11) == DIVERGING
    five = resample_palette(SEQUENTIAL, 5)
    assert five[0] == SEQUENTIAL[0] and five[-1] == SEQUENTIAL[-1] and len(five) == 5


def test_fit_and_resample():
    assert fit_scale(8, 8, 40, 20) == 2.0  # whole-number upscaling
    assert fit_scale(100, 100, 50, 40) == 0.4
    image = np.arange(12).reshape(3, 4)
    assert np.array_equal(resample(image, 2.0), np.repeat(np.repeat(image, 2, 0), 2, 1))
    assert resample(image, 0.5).shape == (1, 2)


def _cell_colors(strip, palette):
    """Per cell (top index, bottom index) from the '▀' fg/bg colours of a rendered strip."""
    lookup = {rgb: i for i, rgb in enumerate(palette)}
    cells = []
    for seg in strip:
        if not seg.text.strip():
            continue
        assert set(seg.text) == {"▀"}
        fg = seg.style.color.get_truecolor()
        bg = seg.style.bgcolor.get_truecolor()
        pair = (lookup[(fg.red, fg.green, fg.blue)], lookup[(bg.red, bg.green, bg.blue)])
        cells.extend([pair] * len(seg.text))
    return cells


def test_heat_map_gradient_render_and_no_rebuild_for_same_data():
    values = np.tile(np.linspace(-1.0, 1.0, 22), (4, 1))
    values[1] *= 0.5  # second map row differs from the first: bottom colour of text row 0
    heat = HeatMap(fit=False)

    async def body(pilot):
        assert heat.set_data(values) is True
        await pilot.pause()
        strips = [heat.render_line(y) for y in range(heat.size.height)]
        rows = [_cell_colors(s, DIVERGING) for s in strips]
        rows = [r for r in rows if r]
        assert len(rows) == 2 and len(rows[0]) == 22
        top = [t for t, _ in rows[0]]
        assert top == heat.levels[0].tolist()
        assert [b for _, b in rows[0]] == heat.levels[1].tolist()
        assert top[0] == 0 and top[-1] == 10 and np.all(np.diff(top) >= 0)
        builds = heat.build_count
        assert heat.set_data(values.copy()) is False  # same picture: no redraw
        await pilot.pause()
        heat.render_line(0)
        assert heat.build_count == builds
        assert heat.set_data(values, vmin=-2.0, vmax=2.0) is True
        await pilot.pause()
        heat.render_line(0)
        assert heat.build_count == builds + 1
        legend = heat.legend()
        assert legend.plain.startswith("-2 ") and legend.plain.endswith(" 2")
        assert "0" in legend.plain[3:-2]

    run_app(OneWidget(heat), body, size=(30, 8))


def test_heat_map_style_update_drops_its_style_caches():
    heat = HeatMap(fit=False)

    async def body(pilot):
        heat.set_data(np.tile(np.linspace(-1.0, 1.0, 12), (4, 1)))
        await pilot.pause()
        heat.render_line(0)
        assert heat._pair_cache and heat._segment_cache
        heat.notify_style_update()  # what a theme change calls
        assert not heat._pair_cache and not heat._segment_cache

    run_app(OneWidget(heat), body, size=(30, 8))


def test_heat_map_fits_widget():
    values = np.random.default_rng(0).normal(size=(8, 8))
    heat = HeatMap(values)

    async def body(pilot):
        rows = visible_rows(heat)
        # 40 x 12 cells = 40 x 24 pixels: an 8 x 8 map scales by 3 to 24 x 24 pixels
        assert len(rows) == 12 and all(len(r) == 24 for r in rows)
        heat.set_data(values, diverging=False)
        await pilot.pause()
        assert heat.colors == SEQUENTIAL

    run_app(OneWidget(heat), body, size=(40, 12))


def test_grid_layout_and_gaps():
    assert grid_layout(4, 10, 10, 21, 5) == (1, 4, 0.45)
    assert grid_layout(16, 8, 8, 35, 20) == (4, 4, 1.0)
    assert grid_layout(16, 8, 8, 35, 40) == (6, 3, 1.0)  # same scale, roomier fit
    maps = np.stack([np.full((4, 4), v) for v in np.linspace(-1, 1, 6)])
    grid = HeatMapGrid(maps)

    async def body(pilot):
        g_rows, g_cols, scale = grid.grid_shape
        assert g_rows * g_cols >= 6 and scale >= 1
        lines = [grid.render_line(y).text for y in range(grid.size.height)]
        drawn = [line for line in lines if line.strip()]
        tile_w = int(4 * scale)
        first = drawn[0].strip()
        # tiles separated by one blank column
        assert first == " ".join(["▀" * tile_w] * g_cols)

    run_app(OneWidget(grid), body, size=(40, 12))


def test_legend_text():
    text = legend_text(-0.5, 0.5, DIVERGING, diverging=True)
    assert text.plain == "-0.5 █████0█████ 0.5"
    assert legend_text(0.0, 3.0, SEQUENTIAL, diverging=False).plain == "0 █████████ 3"
    # NO_COLOR: the sign glyphs, zero set apart from the weakest negative one ("-")
    assert legend_text(-0.5, 0.5, DIVERGING, glyphs=True).plain == "-0.5 ≡≡==- 0 ░░▒▒▓ 0.5"


# -- plots -----------------------------------------------------------------------------------


def test_a_narrow_legend_wraps_and_keeps_every_entry():
    # G(r) at 120x40: a 38-column pane; the last entry used to be dropped
    r = np.arange(1.0, 9.0)
    names = ("data", "RG 8² (coarse r)", "RBM recon.")
    series = {n: _Series(r, r ** -0.25 * (i + 1), None) for i, n in enumerate(names)}
    series["r^(-1/4)"] = _Series(r, r ** -0.25, None, reference=True)
    spec = PlotSpec(series=series, width=38, height=12)
    rows = [re.sub(r"\x1b\[[0-9;]*m", "", row)
            for row in build_plot(spec, [(255, 166, 43)], (128, 128, 128)).rstrip("\n").split("\n")]
    assert len(rows) == 12  # the plot gave the legend's second line back
    legend = "\n".join(rows[:2])
    assert all(f"━━ {n}" in legend for n in names) and "··· r^(-1/4)" in legend
    assert all(len(row) <= 38 for row in rows[:2])


def test_a_legend_with_too_few_lines_shortens_the_longest_names():
    entries = [("━━", "data", None), ("━━", "a long series name", None), ("··", "ref", None)]
    assert legend_lines(entries, 40, 1) == ["━━ data  ━━ a long series name  ·· ref"]
    (line,) = legend_lines(entries, 30, 1)
    assert line == "━━ data  ━━ a long se…  ·· ref" and len(line) <= 30


def test_downsample_minmax_keeps_extremes():
    x = np.arange(10_000, dtype=float)
    y = np.sin(x / 50.0)
    y[1234] = 10.0
    xs, ys = downsample_minmax(x, y, 200)
    assert len(xs) <= 202
    assert 10.0 in ys and xs[0] == 0 and xs[-1] == 9999
    assert np.all(np.diff(xs) > 0)
    assert sparkline([0, 1, 2, 3, 4, 5, 6, 7]) == "▁▂▃▄▅▆▇█"
    assert sparkline([1.0, np.nan], width=2) == "▅ "  # flat data: a middle block


def test_integer_ticks_are_whole_numbers_at_a_1_2_5_step():
    assert integer_ticks(0, 63) == [0, 20, 40, 60]
    assert integer_ticks(-4999, 0) == [-4000, -2000, 0]
    assert integer_ticks(0, 3) == [0, 1, 2, 3]
    assert integer_ticks(13.5, 81) == [20, 40, 60, 80]
    assert integer_ticks(0.2, 0.9) == []  # no whole number in a fractional range


def test_log_ticks_are_the_powers_of_two_in_range():
    assert power_of_two_ticks(1, 16) == [1, 2, 4, 8, 16]
    assert power_of_two_ticks(1, 15.8) == [1, 2, 4, 8]
    assert power_of_two_ticks(3, 100) == [4, 8, 16, 32, 64]
    assert power_of_two_ticks(1, 512) == [1, 4, 16, 64, 256]  # 10 powers: every other one


def _tick_rows(spec) -> tuple[str, list[str]]:
    text = build_plot(spec, [(255, 166, 43)], (128, 128, 128))
    rows = ["".join(seg.text for seg in line) for line in ansi_lines(text)]
    axis = next(i for i, row in enumerate(rows) if "└" in row)
    return rows[axis + 1], rows[:axis]


def test_integer_tick_options_label_the_axes_with_whole_numbers():
    # a histogram of counts: y ticks 0, 20, ... never 10.5
    counts = _Series(np.array([1.0, 2.0, 3.0, 4.0]), np.array([0.0, 63.0, 21.0, 7.0]), None)
    spec = PlotSpec(series={"chains": counts}, width=50, height=14, yticks="integer")
    _, body = _tick_rows(spec)
    labels = {row.split("┤")[0].strip() for row in body if "┤" in row}
    assert labels and all(label.lstrip("-").isdigit() for label in labels), labels
    # G(r) on log-log axes: r ticks 1, 2, 4, 8, 16 (not 7.9, 15.8)
    r = np.arange(1.0, 17.0)
    gr = _Series(r, r ** -0.25, None)
    spec = PlotSpec(series={"G": gr}, width=60, height=12, xscale="log", yscale="log",
                    xticks="integer")
    ticks, _ = _tick_rows(spec)
    assert ticks.split() == ["1", "2", "4", "8", "16"]
    # "ago": steps before now, counted positively
    ago = _Series(np.arange(-4000.0, 1.0), np.zeros(4001), None)
    ticks, _ = _tick_rows(PlotSpec(series={"E": ago}, width=60, height=10, xticks="ago"))
    assert ticks.split() == ["4000", "3000", "2000", "1000", "0"]


def test_ansi_decoder_matches_rich():
    rng = np.random.default_rng(2)
    spec = PlotSpec(
        series={"a": _Series(np.arange(50.0), rng.normal(size=50), None)},
        width=50,
        height=15,
        title="T",
    )
    text = build_plot(spec, [(255, 166, 43)], (128, 128, 128))
    console = Console(color_system="truecolor", width=80)
    ours = ansi_lines(text)
    theirs = Text.from_ansi(text).split("\n", allow_blank=True)
    assert len(ours) == len(theirs)

    def cells(segments):
        return [(c, (s.style or Style()).color) for s in segments for c in s.text]

    for mine, rich_line in zip(ours, theirs, strict=True):
        assert cells(mine) == cells(rich_line.render(console))


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_plot_view_renders_and_throttles():
    clock = FakeClock()
    plot = PlotView("Magnetisation", xlabel="sweep", min_interval=0.3, clock=clock)

    def text():
        return "\n".join(plot.render_line(y).text for y in range(plot.size.height))

    async def body(pilot):
        plot.max_duty = 1e9  # make the interval exactly min_interval for this test
        builds = plot.build_count
        assert builds >= 1  # built once (empty) for the new size
        clock.now = 0.05  # inside the interval, but an empty plot takes the first data at once
        plot.set_series("m", np.arange(100.0), np.linspace(0.0, 1.0, 100))
        await pilot.pause()
        shown = text()
        assert plot.build_count == builds + 1
        assert plot.border_title == "Magnetisation" and "sweep" in shown  # title: on the border
        assert "┌" in shown and "└" in shown
        # a burst of updates inside the interval: no rebuild, the cached plot is served
        for i in range(20):
            clock.now = 0.05 + 0.01 * i
            plot.set_series("m", np.arange(100.0), np.linspace(0.0, 1.0 + i, 100))
            plot.render_line(0)
        assert plot.build_count == builds + 1
        plot.set_reference("exact", 0.5)
        assert "exact" not in text()
        clock.now = 0.36  # interval passed: the next render builds once, with everything
        assert "exact" in text()
        assert plot.build_count == builds + 2
        text()
        assert plot.build_count == builds + 2
        # a resize rebuilds at once, whatever the clock says
        await pilot.resize_terminal(60, 20)
        await pilot.pause()
        assert "exact" in text()
        assert plot.build_count == builds + 3
        assert plot.size.width == 60

    run_app(OneWidget(plot), body, size=(70, 22))


def test_plot_view_small_sizes_and_bad_data_do_not_crash():
    plot = PlotView("E", min_interval=0.0)

    async def body(pilot):
        plot.set_series("e", None, np.array([np.nan, np.inf, -1.0]))
        plot.set_scale(yscale="log")  # only non-positive points left: nothing plotted
        await pilot.pause()
        assert any(plot.render_line(y).text.strip() for y in range(plot.size.height))
        await pilot.resize_terminal(12, 4)
        await pilot.pause()
        assert "too small" in "".join(plot.render_line(y).text for y in range(4))
        with pytest.raises(ValueError):
            plot.set_series("bad", np.arange(3), np.arange(4))
        with pytest.raises(ValueError):
            plot.set_scale(xscale="cubic")

    run_app(OneWidget(plot), body, size=(60, 20))


def test_diverging_ends_stand_out_on_dark_and_light_backgrounds():
    from rgflow.tui.widgets.palette import DIVERGING, contrast_ratio

    for end in (DIVERGING[0], DIVERGING[-1]):
        # WCAG's 3:1 for graphics, against black, a dark theme's grey and white
        for background in ((0, 0, 0), (30, 30, 30), (255, 255, 255)):
            assert contrast_ratio(end, background) >= 3.0, (end, background)


def test_sign_glyphs_tell_negative_zero_and_positive_apart():
    from rgflow.tui.widgets.palette import NEGATIVE_GLYPHS, POSITIVE_GLYPHS, sign_glyph

    glyphs = [sign_glyph(level, 11) for level in range(11)]
    assert glyphs[5] == " "
    assert set(glyphs[:5]) <= set(NEGATIVE_GLYPHS) and set(glyphs[6:]) <= set(POSITIVE_GLYPHS)
    assert glyphs[0] == NEGATIVE_GLYPHS[0] and glyphs[-1] == POSITIVE_GLYPHS[-1]  # strongest
    assert glyphs[4] == NEGATIVE_GLYPHS[-1] and glyphs[6] == POSITIVE_GLYPHS[0]  # weakest


@pytest.mark.parametrize("no_color", [False, True])
def test_heat_map_colour_bar_and_no_color_sign(monkeypatch, no_color):
    from rgflow.tui.widgets.palette import NEGATIVE_GLYPHS, POSITIVE_GLYPHS

    if no_color:
        monkeypatch.setenv("NO_COLOR", "1")
    else:
        monkeypatch.delenv("NO_COLOR", raising=False)
    values = np.tile(np.linspace(-1.0, 1.0, 20), (10, 1))  # negative left, positive right
    view = HeatMap(title="m")
    app = OneWidget(view)

    async def body(pilot):
        view.set_data(values, -1.0, 1.0)
        await pilot.pause()
        legend = view.border_subtitle
        assert legend.startswith("-1 ") and legend.endswith(" 1")  # values at both ends
        text = [view.render_line(y).text for y in range(view.size.height)]
        cells = "".join(text)
        if no_color:
            assert any(g in legend for g in NEGATIVE_GLYPHS)
            assert any(g in legend for g in POSITIVE_GLYPHS)
            row = next(r for r in text if r.strip())
            left, right = row.strip()[:3], row.strip()[-3:]
            assert set(left) <= set(NEGATIVE_GLYPHS) and set(right) <= set(POSITIVE_GLYPHS)
        else:
            assert "█" in legend or "▀" in cells

    run_app(app, body, size=(40, 12))


# -- the outline of a region (the RBM view's receptive field) -------------------------------


def test_ring_of_a_region_is_its_outside_neighbourhood_and_open_at_the_border():
    from rgflow.tui.widgets.outline import ring_of

    inside = np.zeros((6, 7), dtype=bool)
    inside[2:4, 2:5] = True
    expected = np.zeros_like(inside)
    expected[1:5, 1:6] = True
    expected[2:4, 2:5] = False
    np.testing.assert_array_equal(ring_of(inside), expected)
    # a region at the left border (a field across the periodic boundary): no ring beyond
    edge = np.zeros((4, 5), dtype=bool)
    edge[1:3, 0:2] = True
    np.testing.assert_array_equal(ring_of(edge), np.array([
        [1, 1, 1, 0, 0],
        [0, 0, 1, 0, 0],
        [0, 0, 1, 0, 0],
        [1, 1, 1, 0, 0]], dtype=bool))


def test_outline_glyphs_frame_the_cells_of_a_region():
    from rgflow.tui.widgets.outline import cells_within, outline_glyphs

    def drawn(inside):
        rows = [["." if v else " " for v in row] for row in inside]
        for (r, c), glyph in outline_glyphs(inside).items():
            rows[r][c] = glyph
        return ["".join(row) for row in rows]

    inside = np.zeros((5, 6), dtype=bool)
    inside[1:3, 2:4] = True
    assert drawn(inside) == [" ┌──┐ ", " │..│ ", " │..│ ", " └──┘ ", "      "]
    # cut by the image's top and left borders: open there
    corner = np.zeros((3, 4), dtype=bool)
    corner[0:2, 0:2] = True
    assert drawn(corner) == ["..│ ", "..│ ", "──┘ "]
    # pixels to cells: a cell is in the region when both its pixel rows are
    pixels = np.zeros((5, 2), dtype=bool)
    pixels[1:5, 0] = True
    np.testing.assert_array_equal(cells_within(pixels), [[False, False], [True, False],
                                                         [False, False]])


OUTLINE_RGB = "#4ebf71"  # $success of textual-dark, the outline's colour


def run_outlined_map(unit: int, check) -> None:
    """A 16 x 16 map of weights on the receptive field (R = 1) of hidden unit `unit`, no data
    outside it, outlined, in a 40 x 14 app; check(pilot, view, mask) once it is drawn."""
    from rgflow.core.rbm_local import field_mask

    L = 16
    mask = field_mask(L, 1)[:, unit].reshape(L, L)
    weights = np.random.default_rng(0).normal(size=(L, L))
    view = HeatMap(title="w")

    async def body(pilot):
        view.set_data(np.where(mask, weights, np.nan))
        view.set_outline(mask)
        await pilot.pause()
        await check(pilot, view, mask)

    run_app(OneWidget(view), body, size=(40, 14))


@pytest.mark.parametrize("unit", [9, 0])  # inside the lattice, across its corner
def test_heat_map_outline_colours_the_pixels_around_the_field_only(monkeypatch, unit):
    from rgflow.tui.widgets.outline import ring_of

    monkeypatch.delenv("NO_COLOR", raising=False)

    async def check(pilot, view, mask):
        # (fg, bg) of every cell: the top and bottom pixel of the map at scale 1
        cells = [[(s.style.color, s.style.bgcolor) for s in view.render_line(y)
                  for _ in s.text] for y in range(view.size.height)]
        text = [view.render_line(y).text for y in range(view.size.height)]
        top = next(y for y, row in enumerate(text) if "▀" in row)
        left = text[top].index("▀")
        assert len(text[top].strip()) == mask.shape[1]  # drawn at scale 1
        L = mask.shape[0]
        shown = np.zeros((L, L), dtype=bool)
        for r in range(L):
            for c in range(L):
                color = cells[top + r // 2][left + c][r % 2]
                shown[r, c] = color is not None and color.get_truecolor().hex == OUTLINE_RGB
        np.testing.assert_array_equal(shown, ring_of(mask))  # the field keeps its colours
        view.set_outline(None)
        await pilot.pause()
        assert not any(c and c.get_truecolor().hex == OUTLINE_RGB
                       for y in range(view.size.height) for s in view.render_line(y)
                       for c in (s.style.color, s.style.bgcolor))

    run_outlined_map(unit, check)


def test_heat_map_outline_under_no_color_is_a_box_around_the_field(monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")

    async def check(pilot, view, mask):  # unit 9's field: rows 1-4, columns 1-4 of 16 x 16
        rows = visible_rows(view)
        assert len(rows) == 8 and len(rows[0]) == 16  # 16 x 16 at one cell per 1 x 2 sites
        # text row 1 (map rows 2-3) is the only one wholly in the field: boxed
        assert rows[0][:6] == "┌────┐" and rows[2][:6] == "└────┘"
        assert rows[1][0] == "│" and rows[1][5] == "│"
        assert not set(rows[1][1:5]) & set("┌┐└┘─│?")  # the weights' own glyphs inside
        assert sum(ch in "┌┐└┘─│" for row in rows for ch in row) == 14  # nothing else

    run_outlined_map(9, check)
