"""rgflow.core.npzio: atomic writes tested deterministically (a crash injected between the
temporary write and the rename, a full disk), and the output-path rule every command uses."""

import errno
from pathlib import Path

import numpy as np
import pytest

from rgflow.core import npzio
from rgflow.core.errors import UsageError
from rgflow.core.npzio import (
    atomic_write_npz,
    check_output_path,
    ensure_output_dir,
    read_npz,
    write_or_fallback,
)


def _old_file(tmp_path):
    path = tmp_path / "d.npz"
    atomic_write_npz(path, {"x": np.arange(5)}, {"version": "old"})
    return path, path.read_bytes()


def test_crash_before_the_rename_keeps_the_old_file_and_no_temp(tmp_path, monkeypatch):
    """os.replace raising stands for a crash after the temporary file is complete: the old
    file stays byte for byte and readable, and the temporary file is gone."""
    path, before = _old_file(tmp_path)
    replaced = []

    def crash(src, dst):
        replaced.append((Path(src), Path(dst)))
        assert Path(src).stat().st_size > 0  # the new version was fully written first
        raise OSError(errno.EIO, "simulated crash")

    monkeypatch.setattr(npzio.os, "replace", crash)
    with pytest.raises(OSError):
        atomic_write_npz(path, {"x": np.arange(1000)}, {"version": "new"})
    assert replaced and replaced[0][1] == path
    assert path.read_bytes() == before
    arrays, meta = read_npz(path)
    assert meta["version"] == "old" and arrays["x"].tolist() == list(range(5))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.npz"]


def test_error_while_writing_keeps_the_old_file_and_no_temp(tmp_path, monkeypatch):
    path, before = _old_file(tmp_path)

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(npzio.os, "fsync", full)
    with pytest.raises(OSError):
        atomic_write_npz(path, {"x": np.arange(1000)}, {"version": "new"})
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.npz"]


def test_write_or_fallback_saves_the_result_elsewhere(tmp_path, full_disk_in, spare_dir):
    out_dir = tmp_path / "full"
    out_dir.mkdir()
    full_disk_in(out_dir)
    with pytest.raises(UsageError) as info:
        write_or_fallback(out_dir / "r.npz",
                          lambda p: atomic_write_npz(p, {"x": np.arange(3)}, {"k": 1}))
    message = str(info.value)
    assert "No space left on device" in message and "\n" not in message
    spares = list(spare_dir.iterdir())
    assert len(spares) == 1 and str(spares[0]) in message
    assert read_npz(spares[0])[0]["x"].tolist() == [0, 1, 2]
    assert list(out_dir.iterdir()) == []


def test_output_path_rule(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(UsageError, match="is a file, not a directory"):
        check_output_path(tmp_path / "file" / "x.npz", False)
    with pytest.raises(UsageError, match="is a directory"):
        check_output_path(tmp_path, True)
    with pytest.raises(UsageError, match="already exists"):
        check_output_path(tmp_path / "file", False)
    assert check_output_path(tmp_path / "file", True) == tmp_path / "file"
    with pytest.raises(UsageError, match="not a regular file"):
        check_output_path("/dev/null", True)  # never replaced by a file, even with --force
    made = check_output_path(tmp_path / "a" / "b" / "x.npz", False)
    assert made.parent.is_dir() and list(made.parent.iterdir()) == []  # the probe is gone


@pytest.mark.parametrize("folder", ["/proc/rgflow-x", "/sys/rgflow-x", "/proc"])
def test_unwritable_system_folders_are_refused(folder):
    """os.access says yes to root everywhere; the probe file tells the truth."""
    if not Path(folder).parent.is_dir():
        pytest.skip(f"no {Path(folder).parent}")
    with pytest.raises(UsageError, match="cannot write in"):
        ensure_output_dir(folder)


def test_read_only_folder_is_refused(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        probe = ro / "p"
        try:
            probe.write_text("")
        except OSError:
            pass
        else:
            probe.unlink()
            pytest.skip("running as root: permission bits do not stop writes")
        with pytest.raises(UsageError, match="cannot write in"):
            check_output_path(ro / "x.npz", False)
    finally:
        ro.chmod(0o755)
