"""`rgflow reproduce`: the staged pipeline end to end on the tiny preset (every promised file,
member and shape; error bars on every number; cache hits on a re-run with identical results),
bad arguments, interruption, and a stopped run keeping its finished stages."""

import contextlib
import io
import json
import math

import numpy as np
import pytest

from rgflow.core.npzio import read_npz
from rgflow.core.reproduce.claims import VERDICTS
from rgflow.core.reproduce.exp3_rbm_flow import FLOW_STARTS
from rgflow.core.reproduce.plan import assign_keys, build_plan
from rgflow.core.reproduce.presets import get_preset
from rgflow.core.reproduce.report import OUTPUT_FILES
from rgflow.core.reproduce.runner import Pipeline, compute_stage, default_threads, set_threads
from rgflow.core.reproduce.stage import StageOutput, cache_hit
from rgflow.tui.__main__ import main

TINY = get_preset("tiny")


def run_cli(argv):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(argv)
    return code, out.getvalue()


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    d = tmp_path_factory.mktemp("reproduce") / "out"
    code, stdout = run_cli(["reproduce", "--preset", "tiny", "--out", str(d), "--workers", "2"])
    assert code == 0
    return d, json.loads(stdout)


# --------------------------------------------------------------------------- end to end


def test_first_run_computes_every_stage_and_lists_files(tiny_run):
    d, summary = tiny_run
    n_stages = len(build_plan(TINY))
    assert summary["computed"] == n_stages and summary["cached"] == 0
    for name in OUTPUT_FILES:
        assert (d / name).is_file(), name
        assert name in summary["files"]
    assert set(summary["headline"]) >= {"1_correlators", "2_rg_temperature", "3_rbm_flow"}
    # Each stage's file sits in the cache under its content key; no temporary files remain.
    cache = sorted(p.name for p in (d / "cache").iterdir())
    assert len(cache) == n_stages
    assert not [p for p in cache if not p.endswith(".npz")]
    # Two seeds: every stage of the tiny preset depends on one; the seeds' copies differ.
    assert n_stages == 2 * len([st for st in build_plan(TINY) if st.seed_index == 0])
    # stages.json records who computed each stage: both workers of the LocalCluster did.
    records = json.loads((d / "stages.json").read_text())["stages"]
    assert len(records) == n_stages
    assert len({r["worker"] for r in records}) >= 2
    assert all(r["seconds"] >= 0 for r in records)


def test_correlators_npz_members_and_shapes(tiny_run):
    d, _ = tiny_run
    arrays, meta = read_npz(d / "correlators.npz", required=("rg_vh", "rbm_vh"))
    L, S = TINY.corr_sizes[0], TINY.seeds
    assert arrays["rg_vh"].shape == (S, L * L // 4, L, L)
    assert arrays["rbm_vh"].shape == (S, L * L // 4, L, L)
    np.testing.assert_array_equal(arrays["seeds"], np.arange(S))
    assert np.isfinite(arrays["rg_vh"]).all() and np.isfinite(arrays["rbm_vh"]).all()
    # RG maps are exactly <v_i h_a> with h the block average of the same configurations.
    from rgflow.core.correlators import rg_vh_maps

    plan = build_plan(TINY)
    assign_keys(plan, d / "cache")
    for k in range(S):
        stage = next(st for st in plan if st.name == f"mc-tc-L{L}-s{k}")
        spins = read_npz(stage.path)[0]["spins"][0]
        np.testing.assert_allclose(arrays["rg_vh"][k], rg_vh_maps(spins), rtol=0, atol=1e-12)
    # Seeds draw different Monte Carlo data.
    assert not np.array_equal(arrays["rg_vh"][0], arrays["rg_vh"][1])
    K = TINY.stack_levels
    for k in range(1, K + 1):
        n_h = (L // 2**k) ** 2
        assert arrays[f"rg_vh_stack_level{k}"].shape == (S, n_h, L, L)
        assert arrays[f"rbm_vh_stack_level{k}"].shape == (S, n_h, L, L)
    assert meta["preset"] == "tiny"


def test_flow_npz_members_and_shapes(tiny_run):
    d, _ = tiny_run
    a, _ = read_npz(d / "flow.npz")
    R = len(TINY.flow_hidden) * len(TINY.flow_train_sets)
    K, S, N, n_t = TINY.seeds, 3, TINY.flow_steps + 1, len(TINY.grid)
    for k in ("hist_mlp", "hist_obs"):
        assert a[k].shape == (K, R, S, N, n_t)
        # every configuration lands in exactly one bin
        assert (a[k].sum(axis=-1) == TINY.flow_chains).all()
    for k in ("T_mlp", "T_mlp_err", "T_obs", "T_obs_err", "abs_m", "abs_m_err", "delta_sigma",
              "delta_sigma_err", "delta_epsilon", "delta_epsilon_err"):
        assert a[k].shape == (K, R, S, N), k
    for k in ("G_sigma", "G_sigma_err"):
        assert a[k].shape == (K, R, S, N, a["r_sigma"].size)
    for k in ("G_epsilon", "G_epsilon_err"):
        assert a[k].shape == (K, R, S, N, a["r_epsilon"].size)
    assert (a["r_sigma"] < TINY.flow_L / 2).all()
    assert list(a["start_labels"]) == list(FLOW_STARTS)
    assert len(a["rbm_labels"]) == R
    np.testing.assert_array_equal(a["steps"], np.arange(N))
    assert ((a["abs_m"] >= 0) & (a["abs_m"] <= 1)).all()
    # The temperatures assigned are grid temperatures' means: inside the grid.
    assert ((a["T_mlp"] >= TINY.grid[0]) & (a["T_mlp"] <= TINY.grid[-1])).all()


def _measurements(node, path=""):
    """Yield (path, dict) for every measured number ({"value", "error"} dicts) and every float
    leaf found outside one (those would be numbers without an error bar)."""
    if isinstance(node, dict):
        if "value" in node:
            yield path, node
            return
        for k, v in node.items():
            if k == "settings":
                continue
            yield from _measurements(v, f"{path}/{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _measurements(v, f"{path}/{i}")
    elif isinstance(node, float):
        yield path, node


ALLOWED_PLAIN = ("/z", "/max_pairwise_z")


def test_results_json_has_an_error_bar_for_every_number(tiny_run):
    d, _ = tiny_run
    results = json.loads((d / "results.json").read_text())
    assert results["preset"]["name"] == "tiny"
    found = 0
    for section in ("thermometers", "experiments"):
        for path, m in _measurements(results[section], section):
            if isinstance(m, float):
                assert path.endswith(ALLOWED_PLAIN), f"{path} has no error bar"
                continue
            found += 1
            if m["value"] is None:
                continue
            assert m["error"] is not None and m["error"] >= 0, path
            assert math.isfinite(m["value"]) and math.isfinite(m["error"]), path
    assert found > 100
    exps = results["experiments"]
    assert set(exps) == {"1_correlators", "2_rg_temperature", "3_rbm_flow", "4_stacked",
                         "5_local", "6_finite_size"}
    for m in exps["5_local"]["models"].values():
        assert m["vs_global"]["own_block_fraction"]["verdict"] in (
            "consistent", "higher", "lower", "undetermined")
    assert exps["6_finite_size"]["tracking"]["verdict"] in ("T_pc", "Tc", "both", "neither",
                                                            "undetermined")
    # Verdicts are computed, and only from the allowed vocabulary.
    c = exps["1_correlators"]["L8"]["comparison"]["own_block_fraction"]
    assert c["verdict"] in ("consistent", "higher", "lower", "undetermined")
    for st in exps["2_rg_temperature"]["starts"]:
        assert st["obs_flow"]["verdict"] in ("no significant change", "moves away from Tc",
                                             "moves toward Tc", "moves up", "moves down",
                                             "undetermined")
    for rb in exps["3_rbm_flow"]["rbms"].values():
        for st in rb["starts"].values():
            v = st["obs_toward_tc"]["verdict"]
            assert v in ("toward Tc", "away from Tc", "no significant change",
                         "undetermined") or v.startswith("crossed Tc, ends ")


def test_report_mentions_every_experiment_and_setting(tiny_run):
    d, _ = tiny_run
    text = (d / "report.md").read_text()
    for k in range(1, 5):
        assert f"## Experiment {k}" in text
    for name, words in (("rbm_lr", "RBM learning rate (Adam)"), ("flow_steps", "RBM flow: steps"),
                        ("grid", "thermometer temperature grid"),
                        ("corr_samples", "⟨v h⟩ Monte Carlo configurations")):
        assert f"| `{name}` |" in text
        assert f"| {words}" in text
    assert "±" in text and "As measured" in text


def test_report_opens_with_the_claims_and_warns_on_tiny(tiny_run):
    d, summary = tiny_run
    text = (d / "report.md").read_text()
    headings = [line for line in text.splitlines() if line.startswith("## ")]
    assert headings[:2] == ["## The paper's claims, as measured", "## How to read this"]
    assert "Smoke test: numbers are not meaningful" in text.split("## ")[0]
    results = json.loads((d / "results.json").read_text())
    claims = results["claims"]
    assert [c["number"] for c in claims] == list(range(1, len(claims) + 1))
    assert len(claims) >= 7
    table = text.split("## The paper's claims, as measured")[1].split("\n## ")[0]
    for c in claims:
        assert c["verdict"] in VERDICTS
        assert f"| {c['number']} | {c['claim']} |" in table
        assert f"**{c['verdict']}**" in table


def test_figures_are_written_and_embedded(tiny_run):
    d, summary = tiny_run
    pngs = sorted((d / "figures").glob("*.png"))
    assert len(pngs) >= 6
    text = (d / "report.md").read_text()
    html = (d / "report.html").read_text()
    for png in pngs:
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"figures/{png.name}" in summary["files"]
        assert f"](figures/{png.name})" in text
    # report.html stands alone: every figure inlined, none linked
    assert html.count('src="data:image/png;base64,') == len(pngs)
    assert 'src="figures/' not in html
    assert "<table>" in html and "<h2>The paper's claims, as measured</h2>" in html


def test_second_run_hits_the_cache_and_reproduces_results(tiny_run):
    d, _ = tiny_run
    before = (d / "results.json").read_bytes()
    report_before = (d / "report.md").read_bytes()
    code, stdout = run_cli(["reproduce", "--preset", "tiny", "--out", str(d), "--workers", "1"])
    assert code == 0
    summary = json.loads(stdout)
    assert summary["computed"] == 0
    assert all(s["cached"] for s in summary["stages"])
    assert (d / "results.json").read_bytes() == before
    assert (d / "report.md").read_bytes() == report_before


def test_plan_lists_stages_with_estimates(tiny_run):
    d, _ = tiny_run
    code, stdout = run_cli(["reproduce", "--preset", "tiny", "--out", str(d), "--plan",
                            "--json"])
    assert code == 0
    plan = json.loads(stdout)
    assert all(s["cached"] for s in plan["stages"])
    assert all(s["estimate_s"] >= 0 for s in plan["stages"])
    code, table = run_cli(["reproduce", "--preset", "tiny", "--out", str(d), "--plan"])
    assert code == 0
    rows = [line.split() for line in table.splitlines() if line[:1].isdigit()]
    assert [r[1] for r in rows] == [s["name"] for s in plan["stages"]]
    assert all(r[-1] == "cached" for r in rows)


# --------------------------------------------------------------------------- arguments


@pytest.mark.parametrize("argv", [
    ["reproduce", "--preset", "huge"],
    ["reproduce", "--jobs", "0"],
    ["reproduce", "--threads", "two"],
    ["reproduce", "--seeds", "0"],
    ["reproduce", "--workers", "0"],
    ["reproduce", "--workers", "2", "--scheduler", "tcp://127.0.0.1:9"],
    ["reproduce", "--bogus"],
])
def test_bad_arguments_exit_2(argv, capsys):
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's exit, if main lets it through
        code = exc.code
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1


def test_bad_output_directory_exits_2_and_writes_nothing(tmp_path, capsys):
    f = tmp_path / "a_file"
    f.write_text("x")
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    for out in (f, foreign, f / "under_a_file"):
        code, stdout = run_cli(["reproduce", "--preset", "tiny", "--out", str(out)])
        assert code == 2 and stdout == ""
        assert len(capsys.readouterr().err.strip().splitlines()) == 1
    assert f.read_text() == "x"
    assert sorted(p.name for p in foreign.iterdir()) == ["notes.txt"]


# --------------------------------------------------------------------------- pipeline pieces


def test_stop_ends_the_run_and_finished_stages_stay_cached(tmp_path):
    calls = {"n": 0, "stop_in": None}

    def report(event, stage, **info):
        if event == "start" and stage.kind == "rbm":
            calls["stop_in"] = stage.name

    def stop():
        return calls["stop_in"] is not None

    pipe = Pipeline(TINY, tmp_path / "o", jobs=1, report=report, stop=stop)
    with pytest.raises(KeyboardInterrupt):
        pipe.run()
    files = sorted(p.name for p in (tmp_path / "o" / "cache").iterdir())
    first = pipe.stages[0]
    assert files == [first.path.name]  # the finished stage only, no partial files
    assert cache_hit(first.path, first.key)
    assert [s["cached"] for s in Pipeline(TINY, tmp_path / "o").estimates()][:2] == [
        True, False]


def test_ctrl_c_exits_130_and_keeps_finished_stages(tmp_path):
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "o"
    code = ("import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
            "from rgflow.tui.__main__ import main; "
            f"sys.exit(main(['reproduce', '--preset', 'tiny', '--out', {str(out)!r}]))")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        if (out / "cache").is_dir() and any((out / "cache").glob("*.npz")):
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr[-500:]
    assert stdout == ""
    assert stderr.strip().splitlines()[-1] == "rgflow reproduce: interrupted"
    files = [p.name for p in (out / "cache").iterdir()]
    npz = [f for f in files if f.endswith(".npz")]
    # Only whole stage files (a worker killed mid-write may leave its ".<name>.*.tmp").
    assert all(f.endswith(".npz") or (f.startswith(".") and f.endswith(".tmp")) for f in files)
    plan = Pipeline(TINY, out)
    cached = [s["cached"] for s in plan.estimates()]
    assert npz and sum(cached) == len(npz) and not all(cached)
    assert not (out / "results.json").exists()
    # The re-run computes exactly the missing stages.
    code, stdout = run_cli(["reproduce", "--preset", "tiny", "--out", str(out), "--workers", "2"])
    assert code == 0
    summary = json.loads(stdout)
    assert summary["cached"] == len(npz)
    assert summary["computed"] == len(plan.stages) - len(npz)


def test_stage_results_do_not_depend_on_threads(tiny_run, tmp_path):
    """Stages recomputed here with two numba threads equal the fixture's (computed by
    single-threaded Dask workers), bit for bit."""
    d, _ = tiny_run
    done = Pipeline(TINY, d)
    outputs = {st.name: StageOutput(st.path) for st in done.stages}
    again = Pipeline(TINY, tmp_path / "o", jobs=2)
    again.cache_dir.mkdir(parents=True)
    set_threads(2)
    try:
        for name in ("mc-grid-L4-s0", "thermometer-L4-s1", "rbm-flow-low-h81-s0",
                     "flow-low-h81-s0", "rg-temperature-s1"):
            st = again.by_name[name]
            compute_stage(st, {n: outputs[n] for n in st.inputs}, 2)
            new, _ = read_npz(again.by_name[name].path)
            old, _ = read_npz(done.by_name[name].path)
            assert sorted(new) == sorted(old)
            for k in old:
                np.testing.assert_array_equal(new[k], old[k], err_msg=f"{name}: {k}")
    finally:
        set_threads(default_threads())


# --------------------------------------------------------------------------- Dask runs


def _same_outputs(a, b):
    """results.json byte for byte, and every array of correlators.npz and flow.npz."""
    assert (a / "results.json").read_bytes() == (b / "results.json").read_bytes()
    for name in ("correlators.npz", "flow.npz"):
        x, _ = read_npz(a / name)
        y, _ = read_npz(b / name)
        assert sorted(x) == sorted(y)
        for k in x:
            np.testing.assert_array_equal(x[k], y[k], err_msg=f"{name}: {k}")


@pytest.mark.slow
def test_one_worker_gives_the_results_of_two(tiny_run, tmp_path):
    d, _ = tiny_run
    out = tmp_path / "one"
    code, stdout = run_cli(["reproduce", "--preset", "tiny", "--out", str(out), "--workers", "1"])
    assert code == 0 and json.loads(stdout)["cached"] == 0
    records = json.loads((out / "stages.json").read_text())["stages"]
    assert len({r["worker"] for r in records}) == 1
    _same_outputs(d, out)


def _cached_copy(d, tmp_path, missing: list):
    """A copy of the fixture's output directory without the named stages' files."""
    import shutil

    out = tmp_path / "copy"
    shutil.copytree(d / "cache", out / "cache")
    gone = []
    for st in Pipeline(TINY, out).stages:
        if st.name in missing or any(i in gone for i in st.inputs):
            st.path.unlink()
            gone.append(st.name)
    return out, gone


@pytest.mark.slow
def test_worker_killed_mid_stage_is_retried_with_identical_results(tiny_run, tmp_path,
                                                                   monkeypatch):
    from rgflow.core.reproduce.cluster import FAULT_HOOK_ENV

    d, _ = tiny_run
    out, gone = _cached_copy(d, tmp_path, ["rbm-flow-mixed-h81-s0", "thermometer-L8-s1"])
    marker = tmp_path / "killed"
    monkeypatch.setenv(FAULT_HOOK_ENV, f"kill:rbm-flow-mixed-h81-s0:{marker}")
    code, stdout = run_cli(["reproduce", "--preset", "tiny", "--out", str(out), "--workers", "2"])
    assert code == 0
    assert json.loads(stdout)["computed"] == len(gone)
    killed = marker.read_text()  # the hook fired: this worker process died mid-stage
    meta = StageOutput(Pipeline(TINY, out).by_name["rbm-flow-mixed-h81-s0"].path).meta
    assert meta["worker"] != killed
    _same_outputs(d, out)


def test_a_stage_that_raises_is_named_in_one_line_and_the_rest_is_kept(tiny_run, tmp_path,
                                                                     monkeypatch, capsys):
    from rgflow.core.reproduce.cluster import FAULT_HOOK_ENV

    d, _ = tiny_run
    out, gone = _cached_copy(d, tmp_path, ["flow-low-h81-s1", "rbm-L8-h16-s0"])
    monkeypatch.setenv(FAULT_HOOK_ENV, "raise:flow-low-h81-s1")
    capsys.readouterr()
    code, stdout = run_cli(["reproduce", "--preset", "tiny", "--out", str(out), "--workers", "2"])
    assert code == 1 and stdout == ""
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("rgflow reproduce: stage flow-low-h81-s1 failed: RuntimeError")
    # Every other stage, including those computed in this run, is cached.
    pipe = Pipeline(TINY, out)
    missing = [s["name"] for s in pipe.estimates() if not s["cached"]]
    assert missing == ["flow-low-h81-s1"]
    assert not (out / "results.json").exists()


def test_in_process_stage_error_names_the_stage(tmp_path, monkeypatch):
    from rgflow.core.reproduce import plan
    from rgflow.core.reproduce.runner import StageFailed

    def broken(ctx):
        raise ValueError("no\ngood")

    monkeypatch.setitem(plan.STAGE_FUNCS, "rbm", broken)
    pipe = Pipeline(TINY, tmp_path / "o", jobs=1)
    with pytest.raises(StageFailed) as info:
        pipe.run()
    first_rbm = next(st.name for st in pipe.stages if st.kind == "rbm")
    assert str(info.value) == f"stage {first_rbm} failed: ValueError: no good"
