"""The `rgflow` command line as a whole: bad output paths for every command refused before
any work (one line, exit 2), options placed before a sub-command, a full disk at the end
of a run."""

import errno
import os
from pathlib import Path

import numpy as np
import pytest

from rgflow.core import npzio
from rgflow.core.npzio import atomic_write_npz, read_npz
from rgflow.tui.__main__ import main

# each asks for far more work than a test could wait for: the refusal must come first
LONG_RUNS = {
    "sample": lambda out: ["sample", "--L", "256", "--T", "1:4:50", "--n", "100000",
                           "--out", out],
    "train": lambda out: ["train", "--data", "{data}", "--steps", "100000000", "--out", out],
    "rg": lambda out: ["rg", "--data", "{data}", "--out", out],
    "run": lambda out: ["run", "--steps", "1000000000", "--save", out],
    "reproduce": lambda out: ["reproduce", "--preset", "paper", "--out", out[:-4]],
}


@pytest.fixture
def dataset(tmp_path):
    path = tmp_path / "data.npz"
    spins = np.where(np.random.default_rng(0).random((1, 200, 4, 4)) < 0.5, -1, 1)
    atomic_write_npz(path, {"spins": spins.astype(np.int8), "temperatures": np.array([2.0])},
                     {"format": "rgflow-ising-samples"})
    return path


def _bad_outputs(tmp_path):
    (tmp_path / "plain").write_text("a regular file")
    bad = [str(tmp_path / "plain" / "x.npz")]
    bad += [f"{root}/rgflow-test/x.npz" for root in ("/proc", "/sys") if Path(root).is_dir()]
    return bad


@pytest.mark.parametrize("command", sorted(LONG_RUNS))
def test_bad_output_refused_before_work(command, tmp_path, dataset, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for out in _bad_outputs(tmp_path):
        argv = [a.replace("{data}", str(dataset)) for a in LONG_RUNS[command](out)]
        rc = main(argv)
        err = capsys.readouterr().err
        assert rc == 2, (argv, err)
        assert err.count("\n") == 1 and err.startswith(f"rgflow {command}: error: "), err
        assert "Traceback" not in err


@pytest.mark.parametrize("argv", [
    ["--set", "L=8", "run", "--steps", "2", "--save", "q"],
    ["--saves-dir", "other", "ls"],
    ["--preset", "quick", "info", "s1"],
    ["--threads", "1", "sample", "--n", "1", "--out", "x.npz"],
    ["open", "s1", "--preset", "big"],
    ["open", "s1", "--set", "L=8"],
])
def test_misplaced_options_are_refused(argv, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert list(tmp_path.iterdir()) == []  # nothing was run, nothing written


def test_options_after_the_command_are_honoured(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    saves = tmp_path / "other"
    assert main(["run", "--set", "L=8", "--steps", "2", "--saves-dir", str(saves),
                 "--save", "q"]) == 0
    _, meta = read_npz(saves / "q.npz")
    assert meta["config"]["L"] == 8
    capsys.readouterr()
    assert main(["ls", "--saves-dir", str(saves)]) == 0
    assert capsys.readouterr().out.startswith("q ")


def test_full_disk_at_the_end_of_a_run_saves_a_fallback(tmp_path, capsys, monkeypatch):
    """ENOSPC injected for files in the output folder: one line, exit 2, and the finished
    dataset is in the temporary folder, named in the message."""
    if not Path("/proc/self/fd").is_dir():
        pytest.skip("needs /proc/self/fd")
    out_dir, spare_dir = tmp_path / "out", tmp_path / "tmp"
    spare_dir.mkdir()
    monkeypatch.setattr(npzio.tempfile, "tempdir", str(spare_dir))
    real = os.fsync

    def fsync(fd):
        if os.readlink(f"/proc/self/fd/{fd}").startswith(str(out_dir.resolve()) + os.sep):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(fd)

    monkeypatch.setattr(npzio.os, "fsync", fsync)
    rc = main(["sample", "--L", "4", "--n", "3", "--out", str(out_dir / "d.npz")])
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert rc == 2 and "No space left on device" in err
    spares = list(spare_dir.iterdir())
    assert len(spares) == 1 and str(spares[0]) in err
    assert read_npz(spares[0])[0]["spins"].shape == (1, 3, 4, 4)
    assert list(out_dir.iterdir()) == []
