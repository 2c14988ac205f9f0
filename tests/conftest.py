"""Shared fixtures: the command line run in-process, one-line error checks, small datasets,
and an injected full disk."""

import errno
import os
from pathlib import Path

import numpy as np
import pytest

from rgflow.core.filekinds import DATASET


@pytest.fixture
def run_cli(capsys):
    """run_cli(argv) -> (exit code, stdout, stderr) of `rgflow argv`, in-process."""
    from rgflow.tui.__main__ import main

    def run(argv):
        rc = main([str(a) for a in argv])
        out, err = capsys.readouterr()
        return rc, out, err

    return run


def assert_one_error_line(err: str, command: str | None = None) -> str:
    """A refusal is exactly one line on stderr, `rgflow COMMAND: error: ...`, no traceback."""
    assert err.count("\n") == 1 and err.endswith("\n"), err
    assert "Traceback" not in err, err
    if command is not None:
        assert err.startswith(f"rgflow {command}: error: "), err
    return err


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    """Run in an empty temporary working directory (./saves, relative outputs)."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def random_spins(shape, seed=0) -> np.ndarray:
    """±1 int8 configurations of the given shape, from a fixed seed."""
    rng = np.random.default_rng(seed)
    return np.where(rng.random(shape) < 0.5, -1, 1).astype(np.int8)


@pytest.fixture
def small_dataset(tmp_path):
    """An `rgflow sample`-style file: 200 random 4 x 4 configurations at T = 2."""
    from rgflow.core.npzio import atomic_write_npz

    path = tmp_path / "data.npz"
    atomic_write_npz(path, {"spins": random_spins((1, 200, 4, 4)),
                            "temperatures": np.array([2.0])}, {"format": DATASET})
    return path


@pytest.fixture
def full_disk_in(monkeypatch):
    """full_disk_in(folder): from now on fsync fails with ENOSPC for files in that folder
    (a full disk there), and works elsewhere (the temporary folder for fallbacks)."""
    from rgflow.core import npzio

    if not Path("/proc/self/fd").is_dir():
        pytest.skip("needs /proc/self/fd to tell which file an fsync is for")
    real = os.fsync

    def arm(folder):
        folder = str(Path(folder).resolve())

        def fsync(fd):
            if os.readlink(f"/proc/self/fd/{fd}").startswith(folder + os.sep):
                raise OSError(errno.ENOSPC, "No space left on device")
            return real(fd)

        monkeypatch.setattr(npzio.os, "fsync", fsync)

    return arm


@pytest.fixture
def spare_dir(tmp_path, monkeypatch):
    """The temporary folder where fallback files go, isolated per test."""
    from rgflow.core import npzio

    d = tmp_path / "spare-tmp"
    d.mkdir()
    monkeypatch.setattr(npzio.tempfile, "tempdir", str(d))
    return d
