"""Headless session commands: run, resume, info, ls; bit-exact resume; bad files."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from rgflow.core.persist import read_save, write_save
from rgflow.core.session import Session

SMALL = ["--set", "L=8", "--set", "batch=10", "--set", "chains=10", "--set",
         "dataset_capacity=50", "--set", "sample_spacing=2", "--set", "monitor_every=5"]


def test_run_resume_equals_one_long_run(run_cli, tmp_path, capsys):
    a, b = str(tmp_path / "a.npz"), str(tmp_path / "b.npz")
    assert run_cli(["run", *SMALL, "--steps", "40", "--save", a])[0] == 0
    assert run_cli(["run", *SMALL, "--steps", "25", "--save", b])[0] == 0
    rc, out, _ = run_cli(["resume", b, "--steps", "15"])
    assert rc == 0 and json.loads(out)["steps"] == 40
    arrays_a, meta_a = read_save(a)
    arrays_b, meta_b = read_save(b)
    assert meta_a["counters"] == meta_b["counters"]
    for name in arrays_a:
        np.testing.assert_array_equal(arrays_a[name], arrays_b[name], err_msg=name)


def test_resume_keeps_the_classifier_calibration_saved_with_the_session(run_cli, tmp_path):
    path, other = tmp_path / "c.npz", tmp_path / "d.npz"
    assert run_cli(["run", *SMALL, "--steps", "4", "--save", str(path)])[0] == 0
    arrays, meta = read_save(path)
    calibration = {"classifier_L": np.array(8), "classifier_w0": np.arange(6.0).reshape(2, 3)}
    write_save(path, {**arrays, **calibration}, meta)
    assert run_cli(["resume", str(path), "--steps", "3"])[0] == 0
    assert run_cli(["resume", str(path), "--steps", "2", "--save", str(other)])[0] == 0
    for written in (path, other):
        kept, meta = read_save(written)
        assert meta["counters"]["step"] == (7 if written == path else 9)
        for name, value in calibration.items():
            np.testing.assert_array_equal(kept[name], value, err_msg=f"{written.name} {name}")


def test_run_refuses_existing_save_and_bad_settings(run_cli, tmp_path, capsys):
    path = tmp_path / "x.npz"
    assert run_cli(["run", *SMALL, "--steps", "2", "--save", str(path)])[0] == 0
    before = path.read_bytes()
    rc, _, err = run_cli(["run", *SMALL, "--steps", "2", "--save", str(path)])
    assert rc == 2 and "already exists" in err and err.count("\n") == 1
    assert path.read_bytes() == before
    for bad in (["--set", "L=7"], ["--set", "nope=1"], ["--preset", "nosuch"],
                ["--config", str(tmp_path / "missing.toml")]):
        rc, _, err = run_cli(["run", *bad, "--steps", "2", "--save",
                              str(tmp_path / "y.npz")])
        assert rc == 2 and err.count("\n") == 1, err
    assert not (tmp_path / "y.npz").exists()
    rc, _, err = run_cli(["run", "--steps", "0", "--save", "z"])
    assert rc == 2


def test_saves_dir_names_info_and_ls(run_cli, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("RGFLOW_SAVES", str(tmp_path / "saves"))
    assert run_cli(["run", *SMALL, "--steps", "5", "--save", "first"])[0] == 0
    assert (tmp_path / "saves" / "first.npz").exists()
    rc, out, _ = run_cli(["info", "first", "--json"])
    info = json.loads(out)
    assert rc == 0 and info["summary"]["steps"] == 5 and info["config"]["L"] == 8
    rc, out, _ = run_cli(["info", "first"])
    assert rc == 0 and "L=8" in out
    (tmp_path / "saves" / "broken.npz").write_bytes(b"garbage")
    rc, out, _ = run_cli(["ls"])
    assert rc == 0 and "first" in out and "DAMAGED" in out
    rc, _, err = run_cli(["run", *SMALL, "--steps", "1", "--save", "bad name!"])
    assert rc == 2 and "invalid save name" in err


def test_bad_files_exit_2_and_stay_untouched(run_cli, tmp_path, capsys):
    good = tmp_path / "good.npz"
    assert run_cli(["run", *SMALL, "--steps", "3", "--save", str(good)])[0] == 0
    blob = good.read_bytes()
    cases = {"truncated": blob[: len(blob) // 2], "flipped": None, "text": b"hello"}
    flipped = bytearray(blob)
    flipped[len(blob) // 3] ^= 0x10
    cases["flipped"] = bytes(flipped)
    for name, content in cases.items():
        path = tmp_path / f"{name}.npz"
        path.write_bytes(content)
        for cmd in (["info", str(path)], ["resume", str(path), "--steps", "1"]):
            rc, _, err = run_cli(cmd)
            assert rc == 2 and err.count("\n") == 1 and str(path) in err, (name, err)
        assert path.read_bytes() == content
    rc, _, err = run_cli(["info", str(tmp_path / "absent.npz")])
    assert rc == 2 and "no such file" in err


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_writes_final_checkpoint(tmp_path, sig, code):
    path = tmp_path / "long.npz"
    proc = subprocess.Popen(
        [sys.executable, "-m", "rgflow.tui", "run", *SMALL, "--steps", "100000000",
         "--checkpoint-every", "0.2", "--save", str(path)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ.copy())
    deadline = time.monotonic() + 90
    while not path.exists() and time.monotonic() < deadline:  # stepping: first checkpoint
        time.sleep(0.05)
    proc.send_signal(sig)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == code
    summary = json.loads(out)
    assert summary["interrupted"] is True
    session = Session.load(path)
    assert session.step_count == summary["steps"] > 0


def test_resume_warns_when_library_versions_differ(run_cli, tmp_path, capsys):
    from rgflow.core.npzio import atomic_write_npz

    path = tmp_path / "v.npz"
    assert run_cli(["run", *SMALL, "--steps", "3", "--save", str(path)])[0] == 0
    arrays, meta = read_save(path)
    meta["versions"] = {**meta["versions"], "numpy": "0.0.1"}
    atomic_write_npz(path, arrays, meta)  # same arrays and checksums, older numpy recorded
    rc, _, err = run_cli(["resume", str(path), "--steps", "2"])
    assert rc == 0
    assert "warning: saved with numpy 0.0.1" in err
    rc, out, _ = run_cli(["info", str(path), "--json"])
    assert json.loads(out)["version_warnings"] == []  # resume rewrote it with today's versions
