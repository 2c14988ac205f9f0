"""Line plots drawn by plotext 5.x, throttled and cached.

plotext keeps global figure state, so every build starts from plt.clf() and builds happen on the
UI thread only (inside render_line). A build costs ~5-15 ms, so data updates only mark the plot
dirty: it is rebuilt at most once per ``min_interval`` (default 0.3 s), immediately when the
widget is resized, and the cached strips are served in between. Long series are reduced to
min/max pairs per column bucket, which keeps spikes visible and plotext fast.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from rich.color import Color
from rich.segment import Segment
from rich.style import Style
from textual.message import Message
from textual.strip import Strip
from textual.timer import Timer
from textual.widget import Widget

from rgflow.tui.widgets.palette import RGB, theme_rgb, theme_series_colors

MIN_WIDTH = 20
MIN_HEIGHT = 6
_BLOCKS = "▁▂▃▄▅▆▇█"


def downsample_minmax(
    x: np.ndarray, y: np.ndarray, max_points: int
) -> tuple[np.ndarray, np.ndarray]:
    """Reduce a series to at most ``max_points`` points: the min and max of y in each of
    max_points // 2 equal index buckets, in their original order (first and last kept)."""
    n = len(y)
    if n <= max_points or max_points < 4:
        return x, y
    n_buckets = max_points // 2
    edges = np.linspace(0, n, n_buckets + 1).astype(np.intp)
    keep = []
    for start, end in zip(edges[:-1], edges[1:], strict=True):
        if end <= start:
            continue
        chunk = y[start:end]
        keep.append(start + int(np.argmin(chunk)))
        keep.append(start + int(np.argmax(chunk)))
    index = np.unique(np.array([0, *keep, n - 1]))
    return x[index], y[index]


def sparkline(values: np.ndarray, width: int | None = None) -> str:
    """Tiny one-line plot with ▁..█ (last ``width`` values; NaN -> space)."""
    v = np.asarray(values, dtype=np.float64)
    if width is not None:
        v = v[-width:] if width > 0 else v[:0]
    finite = v[np.isfinite(v)]
    if finite.size == 0:
        return " " * len(v)
    lo, hi = float(finite.min()), float(finite.max())
    span = hi - lo
    chars = []
    for value in v:
        if not np.isfinite(value):
            chars.append(" ")
        elif span == 0:
            chars.append(_BLOCKS[len(_BLOCKS) // 2])
        else:
            chars.append(_BLOCKS[min(int((value - lo) / span * len(_BLOCKS)), len(_BLOCKS) - 1)])
    return "".join(chars)


_ESCAPE = re.compile(r"\x1b\[([0-9;]*)([A-Za-z])")
_SGR_ATTRIBUTES = {1: "bold", 2: "dim", 3: "italic", 4: "underline"}


@lru_cache(maxsize=256)
def _apply_sgr(style: Style | None, params: str) -> Style | None:
    """The style after one SGR escape (the subset terminals plots use)."""
    codes = [int(p) if p else 0 for p in params.split(";")]
    i = 0
    while i < len(codes):
        code = codes[i]
        extra: Style | None = None
        if code == 0:
            style = None
        elif code in (1, 2, 3, 4):
            extra = Style(**{_SGR_ATTRIBUTES[code]: True})
        elif code == 22:
            extra = Style(bold=False, dim=False)
        elif code in (38, 48) and i + 1 < len(codes):
            if codes[i + 1] == 2 and i + 4 < len(codes):
                color = Color.from_rgb(*codes[i + 2 : i + 5])
                i += 4
            elif codes[i + 1] == 5 and i + 2 < len(codes):
                color = Color.from_ansi(codes[i + 2])
                i += 2
            else:
                break
            extra = Style(color=color) if code == 38 else Style(bgcolor=color)
        elif code == 39:
            extra = Style(color="default")
        elif code == 49:
            extra = Style(bgcolor="default")
        elif 30 <= code <= 37 or 90 <= code <= 97:
            extra = Style(color=Color.from_ansi(code - 30 if code < 90 else code - 82))
        elif 40 <= code <= 47 or 100 <= code <= 107:
            extra = Style(bgcolor=Color.from_ansi(code - 40 if code < 100 else code - 92))
        if extra is not None:
            style = extra if style is None else style + extra
        i += 1
    return style


def ansi_lines(text: str) -> list[list[Segment]]:
    """Split ANSI text (SGR colour codes only, as plotext writes) into Segments per line.

    A few times faster than rich's general Text.from_ansi on plotext output; other escape
    sequences are dropped.
    """
    lines = []
    style: Style | None = None
    for raw in text.split("\n"):
        segments = []
        pos = 0
        for match in _ESCAPE.finditer(raw):
            if match.start() > pos:
                segments.append(Segment(raw[pos : match.start()], style))
            if match.group(2) == "m":
                style = _apply_sgr(style, match.group(1))
            pos = match.end()
        if pos < len(raw):
            segments.append(Segment(raw[pos:], style))
        lines.append(segments)
    return lines


@dataclass(frozen=True)
class _Series:
    x: np.ndarray
    y: np.ndarray
    color: RGB | None
    reference: bool = False
    level: float | None = None  # horizontal reference line at this y
    yside: str = "left"  # "right": drawn against its own, separately scaled y axis


@dataclass(frozen=True)
class PlotSpec:
    """Everything one plotext build needs (so build_plot is a plain function)."""

    series: dict[str, _Series]
    width: int
    height: int
    title: str = ""
    xlabel: str = ""
    ylabel: str = ""
    xscale: str = "linear"
    yscale: str = "linear"
    color: bool = True
    max_points: int | None = None
    ylabel_right: str = ""
    xticks: str = "auto"  # "integer": whole-number ticks; "ago": same, labelled |x|
    yticks: str = "auto"  # "integer": whole-number ticks (counts)


def integer_ticks(lo: float, hi: float, most: int = 5) -> list[int]:
    """At most `most` whole-number ticks spanning [lo, hi] at a 1-2-5 step."""
    span = max(hi - lo, 1.0)
    magnitude = 1
    while True:
        for base in (1, 2, 5):
            step = base * magnitude
            if span / step <= most - 1:
                first = int(np.ceil(lo / step)) * step
                return list(range(first, int(np.floor(hi)) + 1, step))
        magnitude *= 10


def power_of_two_ticks(lo: float, hi: float, most: int = 6) -> list[int]:
    """Whole-number ticks for a log axis over [lo, hi]: the powers of 2 in it (every other
    one, or fewer, when more than `most` would fit)."""
    first = max(0, int(np.ceil(np.log2(max(lo, 1e-300)))))
    last = int(np.floor(np.log2(max(hi, 1.0))))
    exponents = list(range(first, last + 1))
    stride = max(1, -(-len(exponents) // most))
    return [2 ** e for e in exponents[::stride]]


LEGEND_GAP = 2  # spaces between legend entries


def legend_lines(entries: list[tuple[str, str, RGB | None]], width: int,
                 max_lines: int) -> list[str]:
    """Lines above the plot naming each series with its marker, in its colour (ANSI), so no
    legend box covers the data. Every entry is shown: they wrap onto up to max_lines lines,
    and when that is not enough the longest names are shortened (ending in "…")."""
    names = [name for _, name, _ in entries]
    while True:
        rows = _wrap_entries([f"{marker} {name}" for (marker, _, _), name
                              in zip(entries, names, strict=True)], width)
        longest = max((len(n) for n in names), default=0)
        if len(rows) <= max(1, max_lines) or longest <= 2:
            break
        names = [n if len(n) < longest else n[:longest - 2] + "…" for n in names]
    lines = []
    for row in rows:
        parts = []
        for i in row:
            marker, _, color = entries[i]
            text = f"{marker} {names[i]}"[:max(1, width)]
            if color is not None:
                r, g, b = color
                text = f"\x1b[38;2;{r};{g};{b}m{marker}\x1b[0m{text[len(marker):]}"
            parts.append(text)
        lines.append((" " * LEGEND_GAP).join(parts))
    return lines


def _wrap_entries(texts: list[str], width: int) -> list[list[int]]:
    """Greedy rows of entry indices, each row's texts plus gaps within width."""
    rows: list[list[int]] = []
    used = 0
    for i, text in enumerate(texts):
        if rows and used + LEGEND_GAP + len(text) <= width:
            rows[-1].append(i)
            used += LEGEND_GAP + len(text)
        else:
            rows.append([i])
            used = len(text)
    return rows


def _finite_points(x: np.ndarray, y: np.ndarray, log_x: bool, log_y: bool):
    ok = np.isfinite(x) & np.isfinite(y)
    if log_x:
        ok &= x > 0
    if log_y:
        ok &= y > 0
    return x[ok], y[ok]


_PLOTEXT_LOCK = threading.Lock()  # plotext keeps global figure state
_BUILDER = None  # the one background thread that builds plots (created on first use)


def _builder():
    global _BUILDER
    if _BUILDER is None:
        from concurrent.futures import ThreadPoolExecutor

        _BUILDER = ThreadPoolExecutor(1, thread_name_prefix="plot-build")
    return _BUILDER


def build_plot(spec: PlotSpec, series_colors: list[RGB], reference_color: RGB) -> str:
    """Run plotext for ``spec`` and return its ANSI text (``spec.height`` lines).

    Thread-safe: builds are serialised by a lock, since plotext's state is global.
    """
    with _PLOTEXT_LOCK:
        return _build_plot(spec, series_colors, reference_color)


def _build_plot(spec: PlotSpec, series_colors: list[RGB], reference_color: RGB) -> str:
    import plotext as plt

    log_x, log_y = spec.xscale == "log", spec.yscale == "log"
    max_points = spec.max_points or max(2 * spec.width, 8)
    prepared: list[tuple[str, np.ndarray, np.ndarray, _Series]] = []
    for name, s in spec.series.items():
        if s.level is not None:
            continue
        x, y = _finite_points(s.x, s.y, log_x, log_y)
        if len(x):
            x, y = downsample_minmax(x, y, max_points)
            prepared.append((name, x, y, s))
    # Horizontal references span the x range of everything else.
    if prepared:
        x_lo = min(float(x.min()) for _, x, _, _ in prepared)
        x_hi = max(float(x.max()) for _, x, _, _ in prepared)
    else:
        x_lo, x_hi = (1.0, 10.0) if log_x else (0.0, 1.0)
    if x_hi <= x_lo:
        x_hi = x_lo + 1.0
    for name, s in spec.series.items():
        if s.level is not None and np.isfinite(s.level) and not (log_y and s.level <= 0):
            x = np.array([x_lo, x_hi])
            prepared.append((name, x, np.array([s.level, s.level]), s))

    plt.clf()
    plt.limit_size(False, False)
    plt.theme("clear")
    color_index = 0
    legend, lines = [], []
    for name, x, y, s in prepared:
        if s.reference:
            color = s.color or reference_color
            marker, shown = "·", "···"
        else:
            color = s.color or series_colors[color_index % len(series_colors)]
            color_index += 1
            marker, shown = "braille", "━━"
        side = f" ({s.yside} axis)" if any(t.yside == "right" for t in spec.series.values()) \
            and not s.reference else ""
        legend.append((shown, name + side, color if spec.color else None))
        lines.append((x.tolist(), y.tolist(), marker, color, s.yside))
    # the legend takes the first lines (at most a third of the pane), the plot the rest
    legend_text = legend_lines(legend, spec.width, max(1, spec.height // 3)) or [""]
    plt.plotsize(spec.width, spec.height - len(legend_text))
    for x, y, marker, color, yside in lines:
        plt.plot(x, y, marker=marker, color=color, yside=yside)
    if spec.title:
        plt.title(spec.title)
    if spec.xlabel:
        plt.xlabel(spec.xlabel)
    if spec.ylabel:
        plt.ylabel(spec.ylabel)
    if spec.ylabel_right:
        plt.ylabel(spec.ylabel_right, yside="right")
    if log_x:
        plt.xscale("log")
    if log_y:
        plt.yscale("log")
    if spec.xticks != "auto" and prepared:
        ticks = power_of_two_ticks(x_lo, x_hi) if log_x else integer_ticks(x_lo, x_hi)
        labels = [str(abs(t)) if spec.xticks == "ago" else str(t) for t in ticks]
        plt.xticks(ticks, labels)
    if spec.yticks == "integer" and not log_y and prepared:
        y_lo = min(float(y.min()) for _, _, y, _ in prepared)
        y_hi = max(float(y.max()) for _, _, y, _ in prepared)
        ticks = integer_ticks(y_lo, y_hi)
        plt.yticks(ticks, [str(t) for t in ticks])
    if not spec.color:
        plt.clear_color()
    return "\n".join(legend_text) + "\n" + plt.build()


class PlotView(Widget):
    """A plotext line plot of named series plus reference lines (exact values, fits).

    Call the setters on the UI thread; they are cheap. The plot is rebuilt lazily at most every
    ``min_interval`` seconds (and at once on resize), from min/max-downsampled series.
    With ``background=True`` the plotext build (10-100 ms) runs on a builder thread and the
    previous picture is shown meanwhile, so a plot never stalls the UI thread.
    """

    DEFAULT_CSS = """
    PlotView {
        height: 1fr;
    }
    """

    class Built(Message):
        """A background build finished (posted from the builder thread)."""

        def __init__(self, generation: int, size: tuple[int, int], lines: list,
                     seconds: float) -> None:
            super().__init__()
            self.generation = generation
            self.size = size
            self.lines = lines
            self.seconds = seconds

    def __init__(
        self,
        title: str = "",
        *,
        xlabel: str = "",
        ylabel: str = "",
        min_interval: float = 0.3,
        max_duty: float = 0.1,
        color: bool = True,
        max_points: int | None = None,
        clock: Callable[[], float] = time.monotonic,
        background: bool = False,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        """
        Args:
            title: The pane's title, on its top border like every pane's (set_labels'
                title is a line inside the plot, above the data).
            xlabel, ylabel: Axis labels (drawn by plotext inside the widget).
            min_interval: Minimum seconds between two builds (2-4 Hz is plenty).
            max_duty: Also wait at least last_build_time / max_duty between builds, so a
                large plot never takes more than this fraction of the UI thread.
            color: Colour the series from the theme; False draws monochrome.
            max_points: Points per series after downsampling (default 2 x width).
            clock: Monotonic clock (injectable for tests).
            background: Build on a builder thread instead of inside render_line.
        """
        super().__init__(name=name, id=id, classes=classes)
        self.border_title = title or None
        self._series: dict[str, _Series] = {}
        self._labels = {"title": "", "xlabel": xlabel, "ylabel": ylabel,
                        "ylabel_right": "", "xticks": "auto", "yticks": "auto"}
        self._scales = {"xscale": "linear", "yscale": "linear"}
        self._color = color
        self._max_points = max_points
        self.min_interval = min_interval
        self.max_duty = max_duty
        self._clock = clock
        self._dirty = True
        self._last_build = -float("inf")
        self._built_size: tuple[int, int] | None = None
        self._built_with_data = False
        self._strips: list[Strip] = []
        self._timer: Timer | None = None
        self._palette: tuple[list[RGB], RGB] | None = None
        self.build_count = 0
        self.last_build_seconds = 0.0
        """Wall time of the last plotext build + conversion."""
        self.background = background
        self._pending: int | None = None  # generation of the build in flight
        self._generation = 0

    # -- data setters (UI thread) -------------------------------------------------------

    def set_series(
        self,
        name: str,
        x: np.ndarray | None,
        y: np.ndarray,
        *,
        color: RGB | None = None,
        yside: str = "left",
    ) -> None:
        """Add or replace a series. ``x=None`` plots against the index; yside="right" draws
        it against a second y axis with its own scale."""
        y_arr = np.asarray(y, dtype=np.float64).ravel()
        x_arr = (
            np.arange(len(y_arr), dtype=np.float64)
            if x is None
            else np.asarray(x, dtype=np.float64).ravel()
        )
        if x_arr.shape != y_arr.shape:
            raise ValueError(f"series {name!r}: x has {len(x_arr)} points, y has {len(y_arr)}")
        self._series[name] = _Series(x_arr, y_arr, color, yside=yside)
        self._invalidate()

    def set_reference(
        self,
        name: str,
        value: float | tuple[np.ndarray, np.ndarray],
        *,
        color: RGB | None = None,
    ) -> None:
        """A reference drawn with '·': a horizontal line at y=value, or a curve (x, y)."""
        if isinstance(value, tuple):
            x_arr = np.asarray(value[0], dtype=np.float64).ravel()
            y_arr = np.asarray(value[1], dtype=np.float64).ravel()
            if x_arr.shape != y_arr.shape:
                raise ValueError(f"reference {name!r}: x and y lengths differ")
            self._series[name] = _Series(x_arr, y_arr, color, reference=True)
        else:
            empty = np.empty(0)
            self._series[name] = _Series(empty, empty, color, True, float(value))
        self._invalidate()

    def remove(self, name: str) -> None:
        if self._series.pop(name, None) is not None:
            self._invalidate()

    def clear(self) -> None:
        if self._series:
            self._series.clear()
            self._invalidate()

    def set_labels(
        self, *, title: str | None = None, xlabel: str | None = None, ylabel: str | None = None,
        ylabel_right: str | None = None, xticks: str | None = None,
        yticks: str | None = None,
    ) -> None:
        """Labels; xticks "integer" or "ago" (whole numbers, "ago" labelled positive; powers
        of 2 on a log axis), yticks "integer" (whole numbers: counts)."""
        for key, value in (("title", title), ("xlabel", xlabel), ("ylabel", ylabel),
                           ("ylabel_right", ylabel_right), ("xticks", xticks),
                           ("yticks", yticks)):
            if value is not None and self._labels[key] != value:
                self._labels[key] = value
                self._invalidate()

    def set_scale(self, *, xscale: str | None = None, yscale: str | None = None) -> None:
        """Axis scales, "linear" or "log" (non-positive points are dropped on a log axis)."""
        for key, value in (("xscale", xscale), ("yscale", yscale)):
            if value is None:
                continue
            if value not in ("linear", "log"):
                raise ValueError(f"{key} must be 'linear' or 'log', not {value!r}")
            if self._scales[key] != value:
                self._scales[key] = value
                self._invalidate()

    @property
    def series_names(self) -> list[str]:
        return list(self._series)

    # -- rendering ----------------------------------------------------------------------

    @property
    def interval(self) -> float:
        """Current minimum time between builds (seconds)."""
        return max(self.min_interval, self.last_build_seconds / self.max_duty)

    def _wait(self) -> float:
        # An empty plot is replaced by the first data at once.
        if not self._built_with_data:
            return 0.0
        return self._last_build + self.interval - self._clock()

    def _invalidate(self) -> None:
        self._dirty = True
        wait = self._wait()
        if wait <= 0:
            self.refresh()
        else:
            self._schedule(wait)

    def _schedule(self, wait: float) -> None:
        # Coalesce a burst of updates into one build once the interval has passed.
        if self._timer is None and self.is_mounted:
            self._timer = self.set_timer(min(wait, self.interval), self._throttle_done)

    def _throttle_done(self) -> None:
        self._timer = None
        self.refresh()

    def notify_style_update(self) -> None:
        # Also called when the theme changes: pick up its colours on the next build.
        super().notify_style_update()
        self._dirty = True
        self._palette = None

    def _theme_colors(self) -> tuple[list[RGB], RGB]:
        if self._palette is None:
            self._palette = (
                theme_series_colors(self.app),
                theme_rgb(self.app, "foreground-muted", (160, 160, 160)),
            )
        return self._palette

    def render_line(self, y: int) -> Strip:
        width, height = self.size
        size_changed = (width, height) != self._built_size
        wait = self._wait()
        if size_changed or (self._dirty and wait <= 0):
            if not self.background:
                self._build(width, height)
            elif self._pending is None:
                self._start_build(width, height)
        elif self._dirty:
            self._schedule(wait)
        if 0 <= y < len(self._strips):
            strip = self._strips[y]
            return strip if strip.cell_length == width else \
                strip.adjust_cell_length(width, self.rich_style)
        return Strip.blank(width, self.rich_style)

    def _begin(self, width: int, height: int):
        """Bookkeeping of a build, and the work to do (a function returning text)."""
        self._built_size = (width, height)
        self._dirty = False
        self._last_build = self._clock()
        self._built_with_data = bool(self._series)
        self.build_count += 1
        if width < MIN_WIDTH or height < MIN_HEIGHT:
            text = f"{self.border_title or 'plot'}\n(too small: {width}×{height})"
            return lambda: text
        spec = PlotSpec(
            series=dict(self._series),
            width=width,
            height=height,
            color=self._color,
            max_points=self._max_points,
            **self._labels,
            **self._scales,
        )
        colors, reference = self._theme_colors()

        def work() -> str:
            try:
                return build_plot(spec, colors, reference)
            except Exception as error:  # plotext rejects some inputs; never crash the UI
                return f"plot error: {type(error).__name__}: {error}"
        return work

    def _build(self, width: int, height: int) -> None:
        start = time.perf_counter()
        text = self._begin(width, height)()
        self._set_lines(ansi_lines(text), width, height)
        self.last_build_seconds = time.perf_counter() - start

    def _set_lines(self, lines: list, width: int, height: int) -> None:
        background = self.rich_style
        # every segment gets a style (the widget's under the plot's): line filters such as
        # Textual's Monochrome (NO_COLOR) expect one
        self._strips = [
            Strip(segments).apply_style(background).adjust_cell_length(width, background)
            for segments in lines[:height]
        ]

    def _start_build(self, width: int, height: int) -> None:
        work = self._begin(width, height)
        self._generation += 1
        generation = self._pending = self._generation

        def run() -> None:
            start = time.perf_counter()
            lines = ansi_lines(work())
            self.post_message(PlotView.Built(generation, (width, height), lines,
                                     time.perf_counter() - start))

        _builder().submit(run)

    def on_plot_view_built(self, message: PlotView.Built) -> None:
        message.stop()
        if message.generation != self._pending:
            return
        self._pending = None
        self.last_build_seconds = message.seconds
        self._set_lines(message.lines, *message.size)
        self.refresh()
