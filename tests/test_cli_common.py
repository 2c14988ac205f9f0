"""rgflow.tui.cli.common: progress as whole lines when stderr is not a terminal."""

import io

from rgflow.tui.cli.common import LineProgress, plural


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_line_progress_writes_whole_lines_every_few_seconds():
    out, clock = io.StringIO(), Clock()
    p = LineProgress("train", 100000, fields=("batch_recon", "pll"), stream=out, clock=clock,
                     every=5.0)
    long_value = "x" * 300  # never cut to a terminal's width
    for step in range(1, 801):
        clock.now += 0.125  # 100 s in all
        p.update(completed=step, batch_recon=f"{step / 1000:.4f}", pll=long_value)
    p.emit()
    lines = out.getvalue().split("\n")
    assert lines[-1] == ""  # every line is complete
    lines = lines[:-1]
    assert len(lines) == 100 / 5 + 1
    assert lines[0].startswith("train: 40/100000 (0.0%) elapsed 0:00:05 eta 3:28:")
    assert all(long_value in line for line in lines)
    assert lines[-1].startswith("train: 800/100000 (0.8%) elapsed 0:01:40")
    assert "batch_recon=0.8000" in lines[-1]


def test_plural_counts_one_and_many():
    assert plural(1, "worker") == "1 worker"
    assert plural(2, "worker") == "2 workers"
    assert plural(0, "seed") == "0 seeds"
