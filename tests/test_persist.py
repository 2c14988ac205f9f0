"""Save files: atomic writes, verification, and a corruption sweep of damaged files."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import zipfile

import numpy as np
import pytest

from rgflow.core.errors import SaveFileError, UsageError
from rgflow.core.persist import (
    FORMAT_ID,
    SCHEMA_VERSION,
    read_save,
    resolve_save_path,
    write_save,
)


def sample_arrays():
    rng = np.random.default_rng(0)
    return {
        "spins": np.where(rng.random((8, 8)) < 0.5, -1, 1).astype(np.int8),
        "W": rng.normal(size=(64, 16)).astype(np.float32),
        "rng_mc": np.arange(1, 5, dtype=np.uint64),
    }


@pytest.fixture
def good_save(tmp_path):
    path = tmp_path / "good.npz"
    write_save(path, sample_arrays(), {"config": {"L": 8}})
    return path


def test_round_trip(good_save):
    arrays, meta = read_save(good_save)
    for name, a in sample_arrays().items():
        assert arrays[name].dtype == a.dtype
        np.testing.assert_array_equal(arrays[name], a)
    assert meta["format"] == FORMAT_ID and meta["schema"] == SCHEMA_VERSION
    assert meta["config"] == {"L": 8}
    assert set(meta["versions"]) == {"rgflow", "numpy", "numba"}


def test_save_names_cannot_escape(tmp_path):
    assert resolve_save_path("run1", tmp_path) == tmp_path / "run1.npz"
    assert resolve_save_path("sub/x.npz", tmp_path).as_posix() == "sub/x.npz"
    assert resolve_save_path("x.npz", tmp_path).as_posix() == "x.npz"
    for bad in ("..", ".hidden", "a b", "", "x\\y", "é"):
        with pytest.raises(UsageError):
            resolve_save_path(bad, tmp_path)


def test_save_targets_name_a_session(tmp_path):
    from rgflow.core.persist import resolve_save_target

    assert resolve_save_target("run1", tmp_path) == tmp_path / "run1.npz"
    assert resolve_save_target("out/run1", tmp_path).as_posix() == "out/run1.npz"
    assert resolve_save_target("out/run1.npz", tmp_path).as_posix() == "out/run1.npz"
    for bad in ("out/name?", "out/a b.npz", "bad name!", "out/.npz"):
        with pytest.raises(UsageError):
            resolve_save_target(bad, tmp_path)


def rewrite(path, arrays, meta_obj=None, raw_meta=None, pickle_member=None):
    members = {k: np.asarray(v) for k, v in arrays.items()}
    if raw_meta is not None:
        members["meta"] = np.array(raw_meta)
    elif meta_obj is not None:
        members["meta"] = np.array(json.dumps(meta_obj))
    if pickle_member is not None:
        members[pickle_member] = np.array([{"x": 1}, None], dtype=object)
    np.savez(path, **members)


def reason_of(path):
    with pytest.raises(SaveFileError) as info:
        read_save(path)
    message = str(info.value)
    assert "\n" not in message and str(path) in message
    return message


def test_structured_damage_is_refused(good_save, tmp_path):
    arrays, meta = read_save(good_save)
    cases = {}
    cases["wrong_format"] = dict(meta_obj={**meta, "format": "something-else"})
    cases["future_schema"] = dict(meta_obj={**meta, "schema": SCHEMA_VERSION + 1})
    cases["bad_schema"] = dict(meta_obj={**meta, "schema": "one"})
    cases["no_meta"] = dict()
    cases["meta_not_json"] = dict(raw_meta="{not json")
    cases["meta_not_object"] = dict(raw_meta="[1, 2]")
    cases["pickled"] = dict(meta_obj=meta, pickle_member="evil")
    for name, kwargs in cases.items():
        path = tmp_path / f"{name}.npz"
        rewrite(path, arrays, **kwargs)
        message = reason_of(path)
        if name == "future_schema":
            assert "newer" in message
        if name == "pickled":
            assert "pickle" in message

    missing = dict(arrays)
    del missing["W"]
    rewrite(tmp_path / "missing.npz", missing, meta_obj=meta)
    assert "missing" in reason_of(tmp_path / "missing.npz")
    rewrite(tmp_path / "extra.npz", {**arrays, "x": np.zeros(2)}, meta_obj=meta)
    assert "unexpected" in reason_of(tmp_path / "extra.npz")
    rewrite(tmp_path / "dtype.npz", {**arrays, "W": arrays["W"].astype(np.float64)}, meta_obj=meta)
    assert "dtype" in reason_of(tmp_path / "dtype.npz")
    rewrite(tmp_path / "shape.npz", {**arrays, "W": arrays["W"].reshape(16, 64)}, meta_obj=meta)
    assert "shape" in reason_of(tmp_path / "shape.npz")
    changed = arrays["spins"].copy()
    changed[0, 0] *= -1
    rewrite(tmp_path / "sum.npz", {**arrays, "spins": changed}, meta_obj=meta)
    assert "checksum" in reason_of(tmp_path / "sum.npz")
    (tmp_path / "text.npz").write_text("hello")
    assert "not a valid npz" in reason_of(tmp_path / "text.npz")
    (tmp_path / "empty.npz").write_bytes(b"")
    reason_of(tmp_path / "empty.npz")
    assert "no such file" in reason_of(tmp_path / "absent.npz")


def test_corruption_sweep_never_crashes_or_modifies(good_save, tmp_path):
    """Hundreds of damaged copies: each either fails with one SaveFileError or (damage in
    bytes that carry no data, e.g. zip timestamps) loads exactly the original arrays."""
    original = good_save.read_bytes()
    reference = sample_arrays()
    rng = np.random.default_rng(1234)
    damaged = tmp_path / "damaged.npz"
    outcomes = {"refused": 0, "identical": 0}
    variants = []
    for cut in np.linspace(0, len(original) - 1, 120).astype(int):
        variants.append(original[:cut])
    for _ in range(300):
        blob = bytearray(original)
        pos = int(rng.integers(len(blob)))
        blob[pos] ^= 1 << int(rng.integers(8))
        variants.append(bytes(blob))
    for _ in range(40):
        blob = bytearray(original)
        start = int(rng.integers(len(blob) - 16))
        blob[start:start + 16] = rng.integers(0, 256, 16, dtype=np.uint8).tobytes()
        variants.append(bytes(blob))
    for blob in variants:
        damaged.write_bytes(blob)
        try:
            arrays, _ = read_save(damaged)
        except SaveFileError as exc:
            assert "\n" not in str(exc)
            outcomes["refused"] += 1
        else:
            for name, a in reference.items():
                np.testing.assert_array_equal(arrays[name], a)
            outcomes["identical"] += 1
        assert damaged.read_bytes() == blob  # reading never modifies the file
    assert outcomes["refused"] >= 400


def test_atomic_write_leaves_no_temp_files(tmp_path):
    path = tmp_path / "a.npz"
    write_save(path, sample_arrays(), {})
    write_save(path, sample_arrays(), {"again": True})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.npz"]
    assert read_save(path)[1]["again"] is True
    with zipfile.ZipFile(path) as z:
        assert all(not n.endswith(".pkl") for n in z.namelist())


def test_kill_9_during_checkpoints_keeps_a_loadable_save(tmp_path):
    """A writer killed while re-saving never leaves a damaged file. No timing lottery: the
    child reports each finished write on stdout, and each kill comes right after a report,
    so it lands while the next write is under way; the file then holds at least the write
    reported last."""
    path = tmp_path / "ckpt.npz"
    write_save(path, sample_arrays(), {"i": -1})
    script = textwrap.dedent(f"""
        import sys
        import numpy as np
        from rgflow.core.persist import write_save
        rng = np.random.default_rng(0)
        big = {{"W": rng.normal(size=(1024, 256)).astype(np.float32)}}
        i = 0
        while True:
            write_save({str(path)!r}, big, {{"i": i}})
            print(i, flush=True)
            i += 1
    """)
    for kill in range(6):
        proc = subprocess.Popen([sys.executable, "-c", script], cwd=os.getcwd(),
                                stdout=subprocess.PIPE, text=True)
        reported = [int(proc.stdout.readline()) for _ in range(1 + kill % 3)]
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
        assert reported == list(range(len(reported)))  # the writes really happened
        arrays, meta = read_save(path)
        assert meta["i"] >= reported[-1]
        assert arrays["W"].shape == (1024, 256)
    leftovers = [p for p in tmp_path.iterdir() if p.name != "ckpt.npz"]
    # a killed writer may leave its temp file behind, never a damaged target
    assert all(p.name.startswith(".ckpt.npz.") for p in leftovers)


# ---- session state validation (rgflow.core.persist.validate_session_state) ---------------

def _session_state():
    from rgflow.core.config import SessionConfig
    from rgflow.core.session import Session

    s = Session(SessionConfig(L=8, dataset_capacity=200, batch=20, chains=20, train=False,
                              sample_spacing=1))
    s.run_steps(30)
    return s.state()


def _set(d, key, value):
    d[key] = value


CORRUPTIONS = {
    "invalid config": lambda a, m: _set(m["config"], "L", 7),
    "meta is incomplete": lambda a, m: m.pop("live"),
    "counter 'sweeps' missing": lambda a, m: m["counters"].pop("sweeps"),
    "missing member 'rng_mc'": lambda a, m: a.pop("rng_mc"),
    "member 'spins' has shape": lambda a, m: _set(a, "spins", a["spins"][:4]),
    "spins hold values other than": lambda a, m: _set(a, "spins", a["spins"] * 0),
    "meta 'live' holds invalid values": lambda a, m: _set(m["live"], "T", -1.0),
    "meta 'live' is malformed": lambda a, m: _set(m["live"], "T", "hot"),
    "dataset holds values other than": lambda a, m: _set(a, "dataset", a["dataset"] * 2),
    "holds NaN or infinite values": lambda a, m: _set(a, "rbm_W", a["rbm_W"] * np.nan),
    "missing or malformed history 'pll'": lambda a, m: a.pop("history_pll"),
    "invalid live spacing": lambda a, m: _set(m["counters"], "live_spacing", 0),
}


def test_a_valid_session_state_passes():
    from rgflow.core.persist import validate_session_state
    from rgflow.core.session import HISTORIES

    arrays, meta = _session_state()
    v = validate_session_state(arrays, meta, "s.npz", HISTORIES)
    assert v.config.L == 8 and v.counters["step"] == 30 and set(v.histories) == set(HISTORIES)


@pytest.mark.parametrize("reason", sorted(CORRUPTIONS))
def test_each_inconsistency_is_one_save_file_error(reason):
    import copy

    from rgflow.core.persist import validate_session_state
    from rgflow.core.session import HISTORIES

    arrays, meta = _session_state()
    arrays = {k: np.array(v) for k, v in arrays.items()}
    meta = copy.deepcopy(meta)
    CORRUPTIONS[reason](arrays, meta)
    with pytest.raises(SaveFileError, match="s.npz") as info:
        validate_session_state(arrays, meta, "s.npz", HISTORIES)
    assert reason in str(info.value) and "\n" not in str(info.value)
