"""Headless training: dataset loading, the training driver (batches, monitoring, stop,
save/load/resume) and `rgflow train` end to end on tiny synthetic datasets."""

import hashlib
import json
import os
import signal
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from rgflow.core.errors import DataFileError, UsageError
from rgflow.core.npzio import atomic_write_npz, read_npz
from rgflow.core.rbm import TrainConfig, Trainer
from rgflow.core.training import (
    FORMAT,
    TrainingRun,
    load_dataset,
    load_trained,
    make_trainer,
    save_trained,
    split_holdout,
    train,
)

L = 4


def make_spins(n, L=L, seed=0):
    """Two 'temperatures': random ±1 (hot) and nearly ordered configurations (cold)."""
    rng = np.random.default_rng(seed)
    hot = np.where(rng.random((n, L, L)) < 0.5, 1, -1).astype(np.int8)
    cold = np.ones((n, L, L), np.int8)
    cold[rng.random(n) < 0.5] *= -1
    cold[rng.random((n, L, L)) < 0.05] *= -1
    return np.stack([hot, cold])


def write_dataset(path, n=150, L=L, seed=0, **override):
    arrays = {"spins": make_spins(n, L, seed), "temperatures": np.array([10.0, 1.0])}
    arrays.update(override)
    arrays = {k: v for k, v in arrays.items() if v is not None}
    atomic_write_npz(path, arrays, {"format": "rgflow.samples", "L": L})
    return Path(path)


@pytest.fixture
def dataset(tmp_path):
    return write_dataset(tmp_path / "data.npz")


# ----------------------------------------------------------------------------- load_dataset


def test_load_dataset_all_and_selected(dataset):
    spins, temps, meta, sha = load_dataset(dataset)
    raw = make_spins(150)
    assert spins.dtype == np.int8 and spins.flags.c_contiguous and spins.shape == (300, L, L)
    np.testing.assert_array_equal(spins, raw.reshape(300, L, L))
    np.testing.assert_array_equal(temps, [10.0, 1.0])
    assert meta["L"] == L
    assert sha == hashlib.sha256(dataset.read_bytes()).hexdigest()
    spins, temps, _, _ = load_dataset(dataset, [1, 0])
    np.testing.assert_array_equal(spins[:150], raw[1])
    np.testing.assert_array_equal(temps, [1.0, 10.0])
    spins, temps, _, _ = load_dataset(dataset, [1])
    np.testing.assert_array_equal(spins, raw[1])


def test_load_dataset_accepts_other_integer_dtypes_and_3d(tmp_path):
    p = write_dataset(tmp_path / "d.npz", spins=make_spins(10)[0].astype(np.int64),
                      temperatures=np.array([2.0]))
    spins, temps, _, _ = load_dataset(p)
    assert spins.dtype == np.int8 and spins.shape == (10, L, L)
    np.testing.assert_array_equal(temps, [2.0])


@pytest.mark.parametrize(
    "override,t_indices,match",
    [
        ({"spins": make_spins(5).astype(np.float32)}, None, "dtype float32"),
        ({"spins": np.zeros((2, 5, L, L), np.int8)}, None, "value 0"),
        ({"spins": (make_spins(5) + 1) // 2}, None, "value 0"),  # 0/1 instead of ±1
        ({"spins": np.ones((2, 5, L), np.int8)}, None, "shape"),
        ({"spins": np.ones((2, 0, L, L), np.int8)}, None, "empty"),
        ({"spins": None}, None, "missing member"),
        ({"temperatures": np.array([1.0, 2.0, 3.0])}, None, "temperatures"),
        ({}, [2], "T-index 2 out of range"),
        ({}, [0, 0], "repeated"),
    ],
)
def test_load_dataset_errors(tmp_path, override, t_indices, match):
    p = write_dataset(tmp_path / "d.npz", n=5, **override)
    with pytest.raises(DataFileError, match=match):
        load_dataset(p, t_indices)


def test_load_dataset_missing_or_not_npz(tmp_path):
    with pytest.raises(DataFileError, match="no such file"):
        load_dataset(tmp_path / "absent.npz")
    bad = tmp_path / "bad.npz"
    bad.write_text("not a zip")
    with pytest.raises(DataFileError, match="not a valid npz"):
        load_dataset(bad)


# ----------------------------------------------------------------------------- driver


def small_config(**kw):
    base = dict(batch=20, n_chains=20, lr=1e-2)
    base.update(kw)
    return TrainConfig(**base)


def test_split_and_batches_are_deterministic_permutations():
    tr, held = split_holdout(100, 0.25, seed=3)
    assert len(held) == 25 and len(tr) == 75
    assert sorted(np.concatenate([tr, held]).tolist()) == list(range(100))
    tr2, held2 = split_holdout(100, 0.25, seed=3)
    assert np.array_equal(tr, tr2) and np.array_equal(held, held2)
    with pytest.raises(UsageError, match="holdout"):
        split_holdout(100, 1.0, seed=0)

    spins = make_spins(50).reshape(100, L, L)
    trainer = make_trainer(16, 4, small_config(batch=30, n_chains=30), seed=1)
    run = TrainingRun(trainer, spins, None, seed=5, monitor_every=10)
    assert run.batches_per_epoch == 3  # the last 10 configurations of an epoch are dropped
    epoch0 = np.concatenate([run.batch_indices(s) for s in range(3)])
    assert len(set(epoch0.tolist())) == 90
    epoch1 = np.concatenate([run.batch_indices(s) for s in range(3, 6)])
    assert not np.array_equal(epoch0, epoch1)
    fresh = TrainingRun(trainer, spins, None, seed=5, monitor_every=10)
    assert np.array_equal(fresh.batch_indices(4), run.batch_indices(4))  # a function of step


def test_train_records_history_and_stops(dataset):
    spins, *_ = load_dataset(dataset)
    calls = []
    result = train(small_config(), spins, 12, n_hidden=4, seed=2, monitor_every=5,
                   progress=lambda step, m: calls.append((step, m["step"])))
    assert result.steps_done == 12 and result.stopped is None
    assert [h["step"] for h in result.history] == [0, 5, 10, 12]
    assert calls[0] == (1, 0) and calls[4] == (5, 5) and calls[-1] == (12, 10)
    first, last = result.history[0], result.history[-1]
    for key in ("reconstruction_error", "pll", "free_energy_gap", "exact_ll", "elapsed_s"):
        assert last[key] is not None
    assert last["exact_ll"] > first["exact_ll"]  # 12 Adam steps on ordered data help
    assert result.n_heldout == 30 and result.n_train == 270

    result = train(small_config(), spins, 50, n_hidden=4, seed=2, monitor_every=5,
                   stop=lambda: True)
    assert result.steps_done == 1 and result.stopped == "stop"
    assert result.history[-1]["step"] == 1


def test_keyboard_interrupt_from_a_callback_keeps_the_last_complete_step(dataset):
    spins, *_ = load_dataset(dataset)

    def progress(step, metrics):
        if step == 5:
            raise KeyboardInterrupt

    result = train(small_config(), spins, 50, n_hidden=4, seed=2, progress=progress)
    assert result.stopped == "interrupt" and result.steps_done == 5
    assert result.trainer.steps_done == 5 and result.history[-1]["step"] == 5


def test_keyboard_interrupt_inside_a_step_propagates(dataset, monkeypatch):
    spins, *_ = load_dataset(dataset)
    real_step = Trainer.step

    def step(self, batch, **kw):
        if self.steps_done == 3:
            raise KeyboardInterrupt  # a half-done update must not be reported as saved
        return real_step(self, batch, **kw)

    monkeypatch.setattr(Trainer, "step", step)
    with pytest.raises(KeyboardInterrupt):
        train(small_config(), spins, 10, n_hidden=4, seed=2)


@pytest.mark.parametrize("persistent,optimizer", [(True, "adam"), (False, "sgd")])
def test_save_load_continue_equals_uninterrupted(dataset, tmp_path, persistent, optimizer):
    spins, *_ = load_dataset(dataset)
    cfg = small_config(persistent=persistent, optimizer=optimizer)
    kw = dict(n_hidden=5, seed=7, monitor_every=4, holdout_fraction=0.2)
    full = train(cfg, spins, 21, **kw)

    part = train(cfg, spins, 9, **kw)
    save_trained(tmp_path / "part.npz", part.trainer, {"history": part.history})
    trainer, meta = load_trained(tmp_path / "part.npz")
    assert trainer.steps_done == 9 and meta["steps_done"] == 9
    resumed = train(cfg, spins, 21, trainer=trainer, history=meta["history"], **kw)

    a, b = full.trainer.state_arrays(), resumed.trainer.state_arrays()
    assert a.keys() == b.keys()
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)

    def strip(history):  # the stopped run also recorded its last step, 9
        return [{k: v for k, v in h.items() if k != "elapsed_s"} for h in history
                if h["step"] != 9]

    assert [h["step"] for h in resumed.history] == [0, 4, 8, 9, 12, 16, 20, 21]
    assert strip(full.history) == strip(resumed.history)


def test_train_argument_errors(dataset):
    spins, *_ = load_dataset(dataset)
    with pytest.raises(UsageError, match="batch 300 is larger"):
        train(small_config(batch=300), spins, 5, n_hidden=4)
    with pytest.raises(UsageError, match="hidden"):
        train(small_config(), spins, 5, n_hidden=0)
    with pytest.raises(UsageError, match="units"):
        train(small_config(), spins, 5, units="gauss")
    with pytest.raises(UsageError, match="holdout"):
        train(small_config(), spins, 5, holdout_fraction=-0.1)


def test_load_trained_validation(dataset, tmp_path):
    spins, *_ = load_dataset(dataset)
    result = train(small_config(), spins, 3, n_hidden=4, seed=1)
    good = tmp_path / "good.npz"
    save_trained(good, result.trainer, {"note": "x"})
    arrays, meta = read_npz(good)
    assert meta["format"] == FORMAT and meta["note"] == "x"

    def variant(name, arrays_patch=None, meta_patch=None, drop=()):
        arr = {k: v for k, v in arrays.items() if k not in drop}
        arr.update(arrays_patch or {})
        m = {**meta, **(meta_patch or {})}
        return atomic_write_npz(tmp_path / name, arr, m)

    cases = [
        (variant("fmt.npz", meta_patch={"format": "rgflow.samples"}), "not a trained-RBM"),
        (variant("new.npz", meta_patch={"schema": 99}), "newer"),
        (variant("units.npz", meta_patch={"units": "gauss"}), "units"),
        (variant("noW.npz", drop=("W",)), "missing member"),
        (variant("shape.npz", arrays_patch={"hidden_bias": np.zeros(3, np.float32)}),
         "inconsistent shapes"),
        (variant("nan.npz", arrays_patch={"W": np.full_like(arrays["W"], np.nan)}),
         "non-finite"),
        (variant("cfg.npz", meta_patch={"config": {**meta["config"], "bogus": 1}}), "unknown"),
        (variant("cfg2.npz", meta_patch={"config": {**meta["config"], "k": 0}}), "invalid"),
        (variant("nochains.npz", drop=("chains",)), "training state"),
    ]
    for path, match in cases:
        with pytest.raises(DataFileError, match=match):
            load_trained(path)


# ----------------------------------------------------------------------------- the CLI


def cli(argv, monkeypatch):
    """rgflow main() with only the train command registered (other commands are not
    needed here), so exit codes and error lines are exactly the real ones."""
    import rgflow.tui.__main__ as main_mod

    monkeypatch.setattr(main_mod, "COMMANDS", {"train": "rgflow.tui.cli.train"})
    try:
        return main_mod.main(argv)
    except SystemExit as exc:  # argparse errors
        return exc.code


def base_args(data, out, *extra):
    return ["train", "--data", str(data), "--out", str(out), "--steps", "20", "--batch", "20",
            "--monitor-every", "5", *extra]


def test_cli_end_to_end(dataset, tmp_path, monkeypatch, capsys):
    out = tmp_path / "rbm.npz"
    code = cli(base_args(dataset, out, "--T-index", "1", "--seed", "3", "--lr", "0.01"),
               monkeypatch)
    captured = capsys.readouterr()
    assert code == 0, captured.err
    summary = json.loads(captured.out)
    assert summary["path"] == str(out) and summary["steps"] == 20
    assert summary["n_visible"] == 16 and summary["n_hidden"] == 4  # default n_visible / 4
    assert summary["final"]["step"] == 20 and summary["samples_per_s"] > 0
    arrays, meta = read_npz(out)
    for name in ("W", "visible_bias", "hidden_bias", "chains", "chain_field", "rng_state",
                 "steps_done", "m_W", "v_W", "m_hidden_bias", "v_visible_bias"):
        assert name in arrays, name
    assert arrays["W"].shape == (16, 4) and arrays["W"].dtype == np.float32
    assert arrays["chains"].shape == (20, 16)  # --chains defaults to the batch
    assert arrays["chain_field"].shape == (20, 4)
    assert meta["units"] == "spin" and meta["steps_done"] == 20
    assert meta["config"] == {
        "k": 1, "persistent": True, "n_chains": 20, "fresh_chain_field": False,
        "optimizer": "adam", "lr": 0.01,
        "momentum": 0.9, "adam_betas": [0.9, 0.999], "adam_eps": 0.01, "l1": 0.0, "l2": 0.0,
        "batch": 20, "lr_schedule": "constant", "total_steps": 20, "lr_end_fraction": 0.01,
    }
    assert meta["data"]["sha256"] == hashlib.sha256(dataset.read_bytes()).hexdigest()
    assert meta["data"]["t_indices"] == [1] and meta["data"]["temperatures"] == [1.0]
    assert meta["seed"] == 3 and meta["holdout_fraction"] == 0.1
    assert meta["n_train"] == 135 and meta["n_heldout"] == 15
    assert [h["step"] for h in meta["history"]] == [0, 5, 10, 15, 20]
    assert set(meta["versions"]) == {"rgflow", "numpy", "numba"}
    assert meta["interrupted"] is None
    trainer, _ = load_trained(out)
    assert trainer.steps_done == 20


def test_cli_options_reach_the_config(dataset, tmp_path, monkeypatch, capsys):
    out = tmp_path / "rbm.npz"
    code = cli(base_args(dataset, out, "--cd", "--k", "2", "--units", "binary", "--optimizer",
                         "sgd", "--momentum", "0.5", "--l1", "1e-4", "--l2", "1e-3",
                         "--hidden", "6", "--holdout", "0"), monkeypatch)
    assert code == 0, capsys.readouterr().err
    arrays, meta = read_npz(out)
    assert "chains" not in arrays and "velocity_W" in arrays
    assert arrays["W"].shape == (16, 6) and meta["units"] == "binary"
    cfg = meta["config"]
    assert (cfg["persistent"], cfg["k"], cfg["optimizer"], cfg["momentum"], cfg["l1"],
            cfg["l2"]) == (False, 2, "sgd", 0.5, 1e-4, 1e-3)
    assert meta["n_heldout"] == 0 and meta["history"][-1]["free_energy_gap"] is None


def test_cli_fresh_chain_field(dataset, tmp_path, monkeypatch, capsys):
    out = tmp_path / "rbm.npz"
    code = cli(base_args(dataset, out, "--fresh-chain-field", "--chains", "7"), monkeypatch)
    assert code == 0, capsys.readouterr().err
    arrays, meta = read_npz(out)
    assert meta["config"]["fresh_chain_field"] is True
    assert meta["config"]["persistent"] is True and arrays["chain_field"].shape == (7, 4)
    trainer, _ = load_trained(out)
    assert trainer.config.fresh_chain_field


@pytest.mark.parametrize(
    "extra,match",
    [
        (["--hidden", "0"], "--hidden"),
        (["--hidden", "-3"], "--hidden"),
        (["--k", "0"], "--k"),
        (["--lr", "0"], "--lr"),
        (["--lr", "-1e-3"], "--lr"),
        (["--lr", "nan"], "--lr"),
        (["--batch", "280"], "--batch 280 is larger than the 270 training"),
        (["--holdout", "1"], "--holdout"),
        (["--holdout", "-0.1"], "--holdout"),
        (["--momentum", "1"], "--momentum"),
        (["--l2", "-1"], "--l2"),
        (["--steps", "0"], "--steps"),
        (["--chains", "0"], "--chains"),
        (["--T-index", "2"], "T-index 2 out of range"),
        (["--optimizer", "rmsprop"], "--optimizer"),
        (["--cd", "--pcd"], "not allowed with"),
    ],
)
def test_cli_bad_arguments(dataset, tmp_path, monkeypatch, capsys, extra, match):
    out = tmp_path / "rbm.npz"
    # later options win in argparse, so a bad --batch replaces the default one
    assert cli(base_args(dataset, out) + extra, monkeypatch) == 2
    err = capsys.readouterr().err
    assert match in err and err.count("\n") == 1, err
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.npz"]


def test_cli_bad_data_files(tmp_path, monkeypatch, capsys):
    out = tmp_path / "rbm.npz"
    cases = [
        (tmp_path / "absent.npz", "no such file"),
        (write_dataset(tmp_path / "float.npz", spins=make_spins(50).astype(np.float64)),
         "dtype float64"),
        (write_dataset(tmp_path / "zero.npz", spins=np.zeros((1, 50, L, L), np.int8),
                       temperatures=np.array([1.0])), "spins must be ±1"),
    ]
    notnpz = tmp_path / "text.npz"
    notnpz.write_text("hello")
    cases.append((notnpz, "not a valid npz"))
    for data, match in cases:
        assert cli(base_args(data, out), monkeypatch) == 2
        err = capsys.readouterr().err
        assert err.startswith("rgflow train: error: ") and match in err
        assert err.count("\n") == 1 and not out.exists()


def test_cli_existing_out_is_refused_and_untouched(dataset, tmp_path, monkeypatch, capsys):
    out = tmp_path / "rbm.npz"
    out.write_bytes(b"precious")
    assert cli(base_args(dataset, out), monkeypatch) == 2
    err = capsys.readouterr().err
    assert "already exists" in err and err.count("\n") == 1
    assert out.read_bytes() == b"precious"
    assert cli(base_args(dataset, out, "--force"), monkeypatch) == 0
    assert load_trained(out)[0].steps_done == 20
    capsys.readouterr()
    # --force never lets --out overwrite the dataset itself
    before = dataset.read_bytes()
    assert cli(base_args(dataset, dataset, "--force"), monkeypatch) == 2
    assert "refusing to overwrite the dataset" in capsys.readouterr().err
    assert dataset.read_bytes() == before


def test_cli_keyboard_interrupt_saves_last_complete_step(dataset, tmp_path, monkeypatch, capsys):
    import rgflow.tui.cli.common as common

    @contextmanager
    def progress_bar(description, total, fields=()):
        def update(completed=None, **values):
            if completed == 5:
                raise KeyboardInterrupt
        yield update

    monkeypatch.setattr(common, "progress_bar", progress_bar)
    out = tmp_path / "rbm.npz"
    assert cli(base_args(dataset, out), monkeypatch) == 130
    captured = capsys.readouterr()
    assert "SIGINT: stopped after step 5 of 20; saved" in captured.err
    assert json.loads(captured.out)["steps"] == 5
    trainer, meta = load_trained(out)
    assert trainer.steps_done == 5 and meta["steps_done"] == 5
    assert meta["interrupted"] == "SIGINT" and meta["history"][-1]["step"] == 5


@pytest.mark.parametrize("signum,code,name", [(signal.SIGINT, 130, "SIGINT"),
                                              (signal.SIGTERM, 143, "SIGTERM")])
def test_cli_signal_mid_step_saves_that_complete_step(dataset, tmp_path, monkeypatch, capsys,
                                                      signum, code, name):
    # A real signal delivered while update 5 is running: the handler only records it, the
    # update completes, the loop stops and saves step 5.
    real_step = Trainer.step

    def step(self, batch, **kw):
        if self.steps_done == 4:
            os.kill(os.getpid(), signum)
        return real_step(self, batch, **kw)

    monkeypatch.setattr(Trainer, "step", step)
    previous = signal.getsignal(signum)
    out = tmp_path / "rbm.npz"
    assert cli(base_args(dataset, out), monkeypatch) == code
    assert signal.getsignal(signum) is previous  # handlers restored
    assert f"{name}: stopped after step 5 of 20" in capsys.readouterr().err
    trainer, meta = load_trained(out)
    assert trainer.steps_done == 5 and meta["interrupted"] == name


def test_cli_modules_import_nothing_heavy():
    code = (
        "import sys, rgflow.tui.cli.train; "
        "heavy = [m for m in ('numpy', 'numba', 'rich', 'textual') if m in sys.modules]; "
        "print(heavy); "
        "import rgflow.core.training, rgflow.core.rbm_monitor; "
        "print([m for m in ('rich', 'textual') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=Path(__file__).resolve().parents[1]).stdout
    assert out.split("\n")[:2] == ["[]", "[]"]


def test_cli_receptive_field(tmp_path, monkeypatch, capsys):
    """--receptive-field 1 on 8×8 data: every weight farther than 1 from its unit's block
    is exactly 0 after training, every own-block weight is not, and the file resumes as a
    locally connected RBM."""
    from rgflow.core.rbm_local import LocalRBM, field_index, field_mask

    data = write_dataset(tmp_path / "data8.npz", L=8)
    out = tmp_path / "local.npz"
    code = cli(base_args(data, out, "--hidden", "16", "--receptive-field", "1"), monkeypatch)
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert json.loads(captured.out)["receptive_field"] == 1
    arrays, meta = read_npz(out)
    assert meta["receptive_field"] == 1 and arrays["W"].shape == (64, 16)
    assert not arrays["W"][~field_mask(8, 1)].any()
    own_block = field_index(8, 0)
    assert arrays["W"][own_block, np.arange(16)[:, None]].all()
    trainer, _ = load_trained(out)
    assert isinstance(trainer.rbm, LocalRBM) and trainer.rbm.receptive_field == 1
    assert np.array_equal(trainer.rbm.W, arrays["W"])
    # a field needs one hidden unit per block; a negative field is not a field
    for extra, match in ((["--hidden", "6", "--receptive-field", "1"], "2×2 block"),
                         (["--receptive-field", "-1"], "--receptive-field")):
        bad = tmp_path / "bad.npz"
        assert cli(base_args(data, bad, *extra), monkeypatch) == 2
        err = capsys.readouterr().err
        assert match in err and err.count("\n") == 1, err
        assert not bad.exists()


def test_trained_file_with_a_weight_outside_its_field_is_refused(tmp_path):
    data = make_spins(60, L=8).reshape(-1, 8, 8)
    result = train(small_config(batch=10), data, 5, receptive_field=0)
    arrays = result.trainer.state_arrays()
    path = save_trained(tmp_path / "ok.npz", result.trainer)
    _, meta = read_npz(path)
    arrays["W"][63, 0] = 0.25  # site (7, 7) is not in unit 0's own block
    atomic_write_npz(tmp_path / "bad.npz", arrays, meta)
    with pytest.raises(DataFileError, match="outside the receptive field"):
        load_trained(tmp_path / "bad.npz")
    atomic_write_npz(tmp_path / "old.npz", result.trainer.state_arrays(),
                     {**meta, "schema": 1, "receptive_field": None})
    trainer, _ = load_trained(tmp_path / "old.npz")  # schema 1: the global RBM
    assert type(trainer) is Trainer


# ----------------------------------------------------------------------------- live progress


class FakeTime:
    """A clock that moves only when told: a training step costs `step`, an evaluation
    `monitor` (both in fake seconds), so the schedule is tested without timing."""

    def __init__(self, step, monitor):
        self.now, self.step, self.monitor = 0.0, step, monitor

    def __call__(self):
        return self.now


@pytest.fixture
def fake_run(monkeypatch):
    import rgflow.core.rbm_monitor as rbm_monitor

    def make(step_cost, monitor_cost, monitor_every=None):
        clock = FakeTime(step_cost, monitor_cost)
        real_monitor = rbm_monitor.monitor

        def monitor(*args, **kwargs):
            clock.now += clock.monitor
            return real_monitor(*args, **kwargs)

        monkeypatch.setattr(rbm_monitor, "monitor", monitor)
        spins = make_spins(50).reshape(100, L, L)
        trainer = make_trainer(16, 4, small_config(batch=10, n_chains=10), seed=1)
        real_step = trainer.step

        def step(*args, **kwargs):
            clock.now += clock.step
            return real_step(*args, **kwargs)

        trainer.step = step
        return TrainingRun(trainer, spins, None, seed=5, monitor_every=monitor_every,
                           clock=clock)

    return make


def test_monitoring_stays_within_its_time_budget(fake_run):
    """Steps of 1 s, evaluations of 5 s: with monitor_every=None evaluations happen during
    the run, spread out, and all of them (the first and last included) take at most 10%
    of the training time."""
    from rgflow.core.training import MONITOR_BUDGET

    run = fake_run(1.0, 5.0)
    run.run(1000)
    steps = [h["step"] for h in run.history]
    assert steps[0] == 0 and steps[-1] == 1000 and len(steps) >= 10
    assert run.train_seconds == 1000 and run.monitor_seconds == 5.0 * len(steps)
    assert run.monitor_seconds <= MONITOR_BUDGET * run.train_seconds
    assert max(np.diff(steps)) <= 200  # never stale for long once the budget allows


def test_monitor_every_keeps_its_step_schedule(fake_run):
    run = fake_run(1.0, 5.0, monitor_every=100)
    run.run(300)
    assert [h["step"] for h in run.history] == [0, 100, 200, 300]


def test_batch_reconstruction_error_is_fresh_every_half_second(fake_run):
    """Evaluations are rare (expensive), but progress gets the minibatch reconstruction
    error at least every CHEAP_METRIC_SECONDS of training plus two steps (it is due at
    the first step that starts after the interval, and arrives when that step ends)."""
    from rgflow.core.training import CHEAP_METRIC_SECONDS

    run = fake_run(0.25, 1000.0)
    seen = []
    run.run(100, progress=lambda step, m: seen.append((run.clock(), m.get("batch_step"),
                                                      m.get("batch_reconstruction_error"))))
    refreshed = {}
    for now, batch_step, error in seen:
        assert error is not None and 0 <= error <= 4
        refreshed.setdefault(batch_step, now)
    times = sorted(refreshed.values())
    assert len(times) > 10
    monitor_time = 1000.0 * len(run.history)
    gaps = [b - a for a, b in zip(times, times[1:], strict=False) if b - a < monitor_time / 2]
    assert max(gaps) <= CHEAP_METRIC_SECONDS + 2 * 0.25
