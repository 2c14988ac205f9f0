"""rgflow.core.npzio: atomic writes tested deterministically (a crash injected between the
temporary write and the rename, a full disk), and the output-path rule every command uses."""

import errno
import os
from pathlib import Path

import numpy as np
import pytest

from rgflow.core import npzio
from rgflow.core.errors import DataFileError, UsageError
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


def test_outputs_get_the_usual_file_mode(tmp_path):
    """mkstemp makes 0600 files; an output gets 0666 minus the umask, like any new file."""
    mask = os.umask(0o022)
    os.umask(mask)
    path = atomic_write_npz(tmp_path / "m.npz", {"x": np.arange(3)})
    plain = tmp_path / "plain"
    plain.write_bytes(b"")
    assert path.stat().st_mode & 0o777 == plain.stat().st_mode & 0o777 == 0o666 & ~mask


def test_file_sha256_of_a_file_larger_than_one_block(tmp_path):
    import hashlib

    data = np.random.default_rng(0).bytes(3 * (1 << 20) + 12345)
    path = tmp_path / "big.bin"
    path.write_bytes(data)
    assert npzio.file_sha256(path) == hashlib.sha256(data).hexdigest()


def test_pickled_members_are_never_loaded(tmp_path):
    path = tmp_path / "p.npz"
    np.savez(path, obj=np.array([{"a": 1}], dtype=object))
    with pytest.raises(DataFileError, match="pickled"):
        read_npz(path)


def test_unreadable_file_is_one_error(tmp_path, monkeypatch):
    path = tmp_path / "r.npz"
    atomic_write_npz(path, {"x": np.arange(3)})

    def denied(_):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(npzio.zipfile, "is_zipfile", denied)
    with pytest.raises(DataFileError, match=r"cannot be read \(Permission denied\)"):
        read_npz(path)


def test_refusals_name_the_system_reason(tmp_path, full_disk_in, spare_dir):
    """The reason in parentheses is the OS's own words, not a repr of the exception."""
    if Path("/proc").is_dir():
        with pytest.raises(UsageError) as info:
            ensure_output_dir("/proc/rgflow-x")
        assert str(info.value).endswith("(No such file or directory)")
    full_disk_in(tmp_path)  # the output folder and the temporary folder are both full
    with pytest.raises(UsageError) as info:
        write_or_fallback(tmp_path / "r.npz",
                          lambda p: atomic_write_npz(p, {"x": np.arange(3)}))
    assert str(info.value) == (f"{tmp_path / 'r.npz'}: cannot write (No space left on device); "
                               "the fallback in the temporary folder failed too "
                               "(No space left on device)")


def test_members_are_stored_unless_compression_is_asked_for(tmp_path):
    """Uncompressed by default (large datasets load without inflating); compress=True
    deflates. Either way the arrays read back the same."""
    import zipfile

    x = np.zeros(10_000)
    for compress, method in ((False, zipfile.ZIP_STORED), (True, zipfile.ZIP_DEFLATED)):
        path = atomic_write_npz(tmp_path / f"c{compress}.npz", {"x": x}, {"k": 1},
                                compress=compress)
        with zipfile.ZipFile(path) as z:
            assert {i.compress_type for i in z.infolist()} == {method}
        np.testing.assert_array_equal(read_npz(path)[0]["x"], x)
    plain = atomic_write_npz(tmp_path / "default.npz", {"x": x})
    with zipfile.ZipFile(plain) as z:
        assert {i.compress_type for i in z.infolist()} == {zipfile.ZIP_STORED}
