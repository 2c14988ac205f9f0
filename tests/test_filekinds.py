"""rgflow.core.filekinds: every reader names the kind of a wrong file; `info` and `ls`
say what each file is; files with the older format ids are still recognised."""

import json

import numpy as np
import pytest

from rgflow.core import filekinds
from rgflow.core.npzio import atomic_write_npz
from rgflow.core.persist import write_save
from rgflow.tui.__main__ import main


@pytest.fixture
def files(tmp_path):
    spins = np.ones((1, 4, 4, 4), np.int8)
    made = {}
    made["dataset"] = atomic_write_npz(tmp_path / "d.npz", {"spins": spins,
                                       "temperatures": np.array([2.0])},
                                       {"format": filekinds.DATASET})
    made["rg"] = atomic_write_npz(tmp_path / "r.npz", {"level1": np.ones((1, 4, 2, 2))},
                                  {"format": "rgflow.rg", "rule": "average"})  # older id
    made["rbm"] = atomic_write_npz(tmp_path / "t.npz", {"W": np.zeros((16, 4)),
                                   "visible_bias": np.zeros(16), "hidden_bias": np.zeros(4)},
                                   {"format": "rgflow.trained_rbm"})  # older id
    made["session"] = write_save(tmp_path / "s.npz", {"spins": np.ones((4, 4), np.int8)}, {})
    return made


def test_kind_of_known_legacy_and_hand_made():
    assert filekinds.kind_of({"format": "rgflow.rg"}, []) == filekinds.RG_LEVELS
    assert filekinds.kind_of({"format": "rgflow.trained_rbm"}, []) == filekinds.TRAINED_RBM
    assert filekinds.kind_of({}, ["spins"]) == filekinds.DATASET
    assert filekinds.kind_of({}, ["W", "visible_bias", "hidden_bias"]) == filekinds.TRAINED_RBM
    assert filekinds.kind_of({"format": "someone-else"}, ["spins"]) is None
    ids = list(filekinds.KINDS)
    assert all(i.startswith("rgflow-") and i == i.lower() and "." not in i and "_" not in i
               for i in ids)


@pytest.mark.parametrize(("argv", "wrong", "needs"), [
    (["rg", "--data", "{rbm}", "--out", "{out}"], "a trained RBM", "a dataset"),
    (["rg", "--data", "{session}", "--out", "{out}"], "a session save", "a dataset"),
    (["train", "--data", "{session}", "--out", "{out}"], "a session save", "a dataset"),
    (["train", "--data", "{rg}", "--out", "{out}"], "RG levels", "a dataset"),
    (["resume", "{dataset}", "--steps", "1"], "a dataset", "a session save"),
    (["open", "{rbm}"], "a trained RBM", "a session save"),
])
def test_readers_name_the_wrong_kind(argv, wrong, needs, files, tmp_path, capsys):
    names = {k: str(v) for k, v in files.items()} | {"out": str(tmp_path / "o.npz")}
    rc = main([a.format(**names) for a in argv])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1, err
    assert f"is {wrong}" in err and f"needs {needs}" in err, err
    assert not (tmp_path / "o.npz").exists()


def test_info_and_ls_say_what_each_file_is(files, tmp_path, capsys):
    expected = {"dataset": filekinds.DATASET, "rg": filekinds.RG_LEVELS,
                "rbm": filekinds.TRAINED_RBM, "session": filekinds.SESSION}
    for key, kind in expected.items():
        assert main(["info", str(files[key]), "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["kind"] == kind
    (tmp_path / "junk.npz").write_bytes(b"no zip")
    assert main(["ls", "--saves-dir", str(tmp_path), "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert {k: rows[v.stem]["kind"] for k, v in files.items()} == expected
    assert rows["junk"]["kind"] is None and rows["junk"]["error"]


def test_a_name_that_exists_as_a_file_is_that_file(files, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "plain").write_bytes(files["dataset"].read_bytes())
    assert main(["info", "plain", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["path"] == "plain"
