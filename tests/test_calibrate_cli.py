"""`rgflow calibrate`: a classifier calibration written headless reads back whole, bad input
is one line and exit 2, an existing file is kept without --force."""

import numpy as np

from rgflow.core.live_analysis import calibration_arrays, calibration_from_arrays
from rgflow.core.npzio import read_npz
from rgflow.tui.__main__ import main


def test_calibrate_writes_a_calibration_that_reads_back(tmp_path, capsys):
    out = tmp_path / "cal.npz"
    assert main(["calibrate", "4", "--out", str(out), "--jobs", "1"]) == 0
    cal = calibration_from_arrays(read_npz(out)[0])
    assert cal["L"] == 4 and 0 <= cal["heldout_accuracy"] <= 1
    # round trip: the same arrays again
    again = calibration_arrays(cal)
    for key, value in calibration_arrays(calibration_from_arrays(again)).items():
        np.testing.assert_array_equal(value, again[key])
    assert '"L": 4' in capsys.readouterr().out
    before = out.read_bytes()
    assert main(["calibrate", "4", "--out", str(out)]) == 2  # exists, no --force
    assert out.read_bytes() == before
    assert "already exists" in capsys.readouterr().err


def test_calibrate_refuses_an_odd_L(tmp_path, capsys):
    assert main(["calibrate", "5", "--out", str(tmp_path / "x.npz")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "L must be even" in err
    assert not (tmp_path / "x.npz").exists()


def test_arrays_without_a_calibration_hold_none():
    assert calibration_from_arrays({"spins": np.zeros(3)}) is None
