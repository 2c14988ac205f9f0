"""Shared pieces of the headless commands: one-line argument errors, argument types,
rich progress on stderr, JSON on stdout. Never imports textual."""

import argparse
import json
import math
import sys
from contextlib import contextmanager


class OneLineParser(argparse.ArgumentParser):
    """argparse that reports a bad argument as one line on stderr and exits 2."""

    def error(self, message):
        sys.stderr.write(f"{self.prog}: error: {message} (see {self.prog} --help)\n")
        raise SystemExit(2)


def format_seconds(s: float) -> str:
    """A duration for people: '45 s', or '3.5 min' from two minutes on."""
    return f"{s:.0f} s" if s < 120 else f"{s / 60:.1f} min"


def plural(n: int, noun: str) -> str:
    """'1 seed', '3 seeds'."""
    return f"{n} {noun}" + ("" if n == 1 else "s")


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {value}")
    return value


def nonnegative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def finite_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
    return value


def positive_float(text: str) -> float:
    value = finite_float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def emit_json(obj) -> None:
    """The machine-readable summary of a command: one JSON document on stdout."""
    sys.stdout.write(json.dumps(obj, sort_keys=True) + "\n")
    sys.stdout.flush()


def stderr_console():
    from rich.console import Console

    return Console(stderr=True)


LINE_SECONDS = 5.0  # a progress line this often when stderr is not a terminal


def _clock_text(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class LineProgress:
    """Progress as whole lines (for logs and pipes, where a bar is cut to the terminal
    width or redrawn with control codes): one line every `every` seconds and a last one
    when done, never truncated."""

    def __init__(self, description: str, total: float, fields=(), stream=None,
                 clock=None, every: float = LINE_SECONDS):
        import time

        self.description, self.total = description, total
        self.values = {name: "" for name in fields}
        self.completed = 0
        self.stream = stream if stream is not None else sys.stderr
        self.clock = clock or time.monotonic
        self.every = every
        self.start = self.clock()
        self.next_line = self.start + every

    def update(self, completed=None, description=None, total=None, **values):
        if completed is not None:
            self.completed = completed
        if description is not None:
            self.description = description
        if total is not None:
            self.total = total
        self.values.update(values)
        now = self.clock()
        if now >= self.next_line:
            self.next_line = now + self.every
            self.emit(now)

    def line(self, now: float) -> str:
        elapsed = now - self.start
        done, total = self.completed, self.total
        text = f"{self.description}: {done:g}/{total:g}"
        if total:
            text += f" ({100.0 * done / total:.1f}%)"
        text += f" elapsed {_clock_text(elapsed)}"
        if done and total and done < total:
            text += f" eta {_clock_text(elapsed * (total - done) / done)}"
        return " ".join([text, *(f"{k}={v}" for k, v in self.values.items() if v != "")])

    def emit(self, now=None) -> None:
        self.stream.write(self.line(self.clock() if now is None else now) + "\n")
        self.stream.flush()


@contextmanager
def progress_bar(description: str, total: float, fields: tuple[str, ...] = ()):
    """Progress on stderr: a rich bar on a terminal, whole lines every few seconds
    otherwise (LineProgress). Yields update(completed=..., **fields)."""
    if not sys.stderr.isatty():
        progress = LineProgress(description, total, fields)
        try:
            yield progress.update
        finally:
            progress.emit()
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = [
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
    ]
    columns += [TextColumn(f"{name}={{task.fields[{name}]}}") for name in fields]
    with Progress(*columns, console=stderr_console(), transient=False) as progress:
        task = progress.add_task(description, total=total, **{f: "" for f in fields})

        def update(completed=None, description=None, **values):
            kwargs = {k: v for k, v in values.items()}
            if completed is not None:
                kwargs["completed"] = completed
            if description is not None:
                kwargs["description"] = description
            progress.update(task, **kwargs)

        yield update
