"""`rgflow sample`: output format, determinism, bad input, nothing written on errors."""

import json

import numpy as np
import pytest

from rgflow.core.npzio import read_npz
from rgflow.tui.__main__ import main


def test_sample_writes_documented_format(tmp_path, capsys):
    out = tmp_path / "d.npz"
    rc = main(["sample", "--L", "8", "--T", "1.5", "--T", "2:3:3", "--n", "40",
               "--seed", "3", "--symmetrize", "--out", str(out)])
    stdout = capsys.readouterr().out
    assert rc == 0
    summary = json.loads(stdout)
    arrays, meta = read_npz(out, required=("spins", "temperatures"))
    spins = arrays["spins"]
    assert spins.dtype == np.int8 and spins.shape == (4, 40, 8, 8)
    assert set(np.unique(spins)) <= {-1, 1}
    np.testing.assert_allclose(arrays["temperatures"], [1.5, 2.0, 2.5, 3.0])
    assert meta["L"] == 8 and meta["seed"] == 3 and meta["symmetrized"] is True
    for rec in meta["per_temperature"]:
        assert rec["spacing_sweeps"] >= 1 and rec["thermalize_sweeps"] >= 200
        assert rec["algorithm"] in ("heatbath", "wolff")
        assert 0 < rec["independent_samples"] <= 40 * 2
    assert summary["shape"] == [4, 40, 8, 8]
    assert set(meta["versions"]) == {"rgflow", "numpy", "numba"}


@pytest.mark.parametrize("argv", [
    ["--L", "7"], ["--L", "2"], ["--L", "100000"], ["--T", "0"], ["--T", "-1"],
    ["--T", "nan"], ["--T", "1:2"], ["--T", "1:2:x"], ["--T", "a"], ["--n", "0"],
    ["--n", "-3"], ["--algo", "magic"], ["--spacing", "0"], ["--h", "0.1", "--algo", "wolff"],
])
def test_bad_arguments_exit_2_without_output(tmp_path, capsys, argv):
    out = tmp_path / "d.npz"
    rc = main(["sample", *argv, "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1, err
    assert not out.exists()


def test_existing_output_needs_force(tmp_path, capsys):
    out = tmp_path / "d.npz"
    out.write_bytes(b"keep me")
    assert main(["sample", "--L", "4", "--n", "2", "--out", str(out)]) == 2
    assert out.read_bytes() == b"keep me"
    assert main(["sample", "--L", "4", "--n", "2", "--out", str(out), "--force"]) == 0
    capsys.readouterr()


def test_missing_output_folders_are_created(tmp_path, capsys):
    """The rule of every command: missing folders of an output path are created."""
    out = tmp_path / "new" / "deeper" / "x.npz"
    assert main(["sample", "--L", "4", "--n", "2", "--out", str(out)]) == 0
    assert read_npz(out)[0]["spins"].shape == (1, 2, 4, 4)
    capsys.readouterr()


def test_interrupt_while_sampling_leaves_no_output(tmp_path, capsys, monkeypatch):
    """Ctrl-C in the middle of sampling: exit 130, one line, no file. The interrupt is raised
    from the sampler's own progress callback, so it lands inside the sampling loop."""
    import rgflow.core.sampling as sampling

    real = sampling.generate
    calls = []

    def interrupted(spec, progress=None, stop=None):
        def progress_then_interrupt(index, new):
            calls.append(new)
            raise KeyboardInterrupt

        return real(spec, progress=progress_then_interrupt, stop=stop)

    monkeypatch.setattr(sampling, "generate", interrupted)
    out = tmp_path / "big.npz"
    rc = main(["sample", "--L", "16", "--T", "1:3:4", "--n", "100000", "--spacing", "1",
               "--thermalize", "0", "--out", str(out)])
    err = capsys.readouterr().err
    assert calls, "the interrupt was never raised inside the sampling loop"
    assert rc == 130 and "interrupted" in err
    assert list(tmp_path.iterdir()) == []
