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


@contextmanager
def progress_bar(description: str, total: float, fields: tuple[str, ...] = ()):
    """A rich progress bar on stderr. Yields update(advance_to, **fields)."""
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
