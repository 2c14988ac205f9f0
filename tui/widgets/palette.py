"""Colour palettes, value quantisation and theme colour helpers for the display widgets.

Colours are plain (r, g, b) tuples; Textual downgrades RGB per terminal (truecolor, 256, 16),
so the widgets never need to know the colour system. Quantising to a small palette keeps the
number of distinct Rich styles (and so segment/style caches) tiny.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from rich.color import Color as RichColor
from rich.style import Style

if TYPE_CHECKING:
    from textual.app import App

RGB = tuple[int, int, int]

# Diverging, negative -> positive: blue, near-white, red (after ColorBrewer RdBu). The ends
# are saturated mid-luminance colours (relative luminance ~0.2), not RdBu's near-black navy
# and maroon, so -1 and +1 stand out on dark and on light themes alike (contrast about 4:1
# against black and against white).
DIVERGING: tuple[RGB, ...] = (
    (40, 110, 255),
    (70, 135, 245),
    (105, 160, 240),
    (150, 190, 240),
    (195, 215, 240),
    (235, 235, 235),
    (245, 205, 190),
    (245, 170, 150),
    (240, 125, 105),
    (235, 85, 70),
    (230, 40, 40),
)

# viridis sampled at 9 levels: dark, perceptually uniform, readable on dark and light themes.
SEQUENTIAL: tuple[RGB, ...] = (
    (68, 1, 84),
    (71, 45, 123),
    (59, 82, 139),
    (44, 114, 142),
    (33, 145, 140),
    (40, 174, 128),
    (94, 201, 98),
    (173, 220, 48),
    (253, 231, 37),
)

NAN_COLOR: RGB = (128, 128, 128)

# Index values quantise() uses for cells that have no palette colour.
NAN_INDEX = -1
BACKGROUND_INDEX = -2
OUTLINE_INDEX = -3  # a heat map's outline of a region (HeatMap.set_outline)


def palette(diverging: bool) -> tuple[RGB, ...]:
    """The default palette for diverging (signed) or sequential data."""
    return DIVERGING if diverging else SEQUENTIAL


def resample_palette(colors: tuple[RGB, ...], n_levels: int) -> tuple[RGB, ...]:
    """Linearly interpolate ``colors`` to ``n_levels`` colours (keeps both end colours)."""
    if n_levels < 1:
        raise ValueError("n_levels must be >= 1")
    if n_levels == len(colors):
        return colors
    src = np.asarray(colors, dtype=np.float64)
    pos = np.linspace(0.0, len(colors) - 1, n_levels)
    lo = np.floor(pos).astype(int)
    hi = np.minimum(lo + 1, len(colors) - 1)
    frac = (pos - lo)[:, None]
    out = np.rint(src[lo] * (1.0 - frac) + src[hi] * frac).astype(int)
    return tuple((int(r), int(g), int(b)) for r, g, b in out)


def value_range(
    values: np.ndarray, vmin: float | None, vmax: float | None, diverging: bool
) -> tuple[float, float]:
    """Resolve the colour range: symmetric about 0 for diverging data, min..max otherwise.

    Explicit ``vmin``/``vmax`` win. NaNs are ignored; all-NaN data gives (-1, 1) or (0, 1).
    """
    finite = values[np.isfinite(values)]
    if diverging:
        if vmin is None and vmax is None:
            amax = float(np.max(np.abs(finite))) if finite.size else 1.0
            return -amax, amax
        if vmin is None:
            return -abs(float(vmax)), float(vmax)
        if vmax is None:
            return float(vmin), abs(float(vmin))
        return float(vmin), float(vmax)
    lo = float(np.min(finite)) if (vmin is None and finite.size) else vmin
    hi = float(np.max(finite)) if (vmax is None and finite.size) else vmax
    return float(0.0 if lo is None else lo), float(1.0 if hi is None else hi)


def quantise(values: np.ndarray, vmin: float, vmax: float, n_levels: int) -> np.ndarray:
    """Map values to palette indices 0..n_levels-1 (int16); NaN -> NAN_INDEX.

    Level k covers [vmin + k*d, vmin + (k+1)*d) with d = (vmax - vmin)/n_levels; values
    outside the range are clipped. With a symmetric range and odd n_levels, 0 lands in the
    middle level. A degenerate range (vmax <= vmin) puts everything in the middle level.
    """
    v = np.asarray(values, dtype=np.float64)
    if vmax > vmin:
        scaled = (v - vmin) * (n_levels / (vmax - vmin))
        with np.errstate(invalid="ignore"):
            idx = np.clip(np.floor(scaled), 0, n_levels - 1)
        idx = np.where(np.isnan(idx), NAN_INDEX, idx)
    else:
        idx = np.where(np.isnan(v), NAN_INDEX, n_levels // 2)
    return idx.astype(np.int16)


def relative_luminance(rgb: RGB) -> float:
    """WCAG relative luminance of an sRGB colour (0 black .. 1 white)."""
    c = np.asarray(rgb, dtype=np.float64) / 255.0
    lin = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    return float(lin @ np.array([0.2126, 0.7152, 0.0722]))


def contrast_ratio(a: RGB, b: RGB) -> float:
    """WCAG contrast ratio of two colours (1 .. 21)."""
    la, lb = sorted((relative_luminance(a), relative_luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


# NO_COLOR: a diverging map keeps its sign in its glyphs: denser shading for larger
# positive values, more strokes for larger negative ones, blank at zero
NEGATIVE_GLYPHS = "≡=-"  # strongest first
POSITIVE_GLYPHS = "░▒▓"  # weakest first


def sign_glyph(level: int, n_levels: int) -> str:
    """The NO_COLOR glyph of palette level `level` of a diverging map of n_levels levels."""
    mid = n_levels // 2
    if level < 0:
        return "?"
    if level == mid:
        return " "
    if level < mid:  # negative: 0 is the most negative
        k = min(len(NEGATIVE_GLYPHS) - 1, level * len(NEGATIVE_GLYPHS) // max(mid, 1))
        return NEGATIVE_GLYPHS[k]
    k = min(len(POSITIVE_GLYPHS) - 1,
            (level - mid - 1) * len(POSITIVE_GLYPHS) // max(n_levels - mid - 1, 1))
    return POSITIVE_GLYPHS[k]


def rich_color(rgb: RGB | None) -> RichColor | None:
    return None if rgb is None else RichColor.from_rgb(*rgb)


def fg_bg_style(fg: RGB | None, bg: RGB | None) -> Style:
    """One Rich style with the given foreground/background RGB (None = inherit)."""
    return Style(color=rich_color(fg), bgcolor=rich_color(bg))


def style_rgb(style: Style, background: bool = False) -> RGB | None:
    """The RGB of a Rich style's colour (or bgcolor), or None if it has none."""
    color = style.bgcolor if background else style.color
    if color is None or color.is_default:
        return None
    triplet = color.get_truecolor()
    return (triplet.red, triplet.green, triplet.blue)


def theme_rgb(app: App, name: str, default: RGB, variables: dict[str, str] | None = None) -> RGB:
    """An RGB colour from the app's active theme, e.g. name="accent" or "primary-darken-2".

    Falls back to ``default`` when the theme does not define the variable. Generating the
    theme variables costs ~1 ms, so pass ``variables=app.get_css_variables()`` when looking up
    several colours.
    """
    from textual.color import Color

    if variables is None:
        variables = app.get_css_variables()
    value = variables.get(name)
    if not value:
        return default
    try:
        return Color.parse(value).rgb
    except Exception:
        return default


def theme_series_colors(app: App | None) -> list[RGB]:
    """Distinct line colours for plots, taken from the active theme where it has them."""
    defaults: list[tuple[str, RGB]] = [
        ("accent", (255, 166, 43)),
        ("primary", (1, 120, 212)),
        ("success", (78, 191, 113)),
        ("error", (186, 60, 91)),
        ("secondary", (0, 69, 120)),
        ("warning", (255, 166, 43)),
    ]
    if app is None:
        colors = [rgb for _, rgb in defaults]
    else:
        variables = app.get_css_variables()
        colors = [theme_rgb(app, name, rgb, variables) for name, rgb in defaults]
    unique: list[RGB] = []
    for rgb in colors:
        if rgb not in unique:
            unique.append(rgb)
    return unique


def rgb_only_filters(widget) -> list:
    """The app's line filters minus ANSIToTruecolor, for widgets whose styles are all RGB
    already: that pass only rebuilds every segment unchanged (~20 % of a large frame).
    NO_COLOR / monochrome filters stay."""
    from textual.filter import ANSIToTruecolor

    return [f for f in widget.app.get_line_filters() if not isinstance(f, ANSIToTruecolor)]
