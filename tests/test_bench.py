"""`rgflow bench rbm --json`: the output contract (the numbers themselves are measured by
running the bench, never asserted in tests)."""

import json

from rgflow.core.bench import rbm as bench_rbm


def test_bench_rbm_json_lines(capsys):
    results = bench_rbm.run(json_output=True, quick=True, repeats=1)
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert lines == results
    cases = bench_rbm.available_cases()
    assert {"pcd1", "cd1", "numpy-reference", "gemm-only"} <= set(cases)
    assert [r["case"] for r in lines] == [c for _ in {r["threads"] for r in lines} for c in cases]
    for r in lines:
        assert (r["n_visible"], r["n_hidden"], r["batch"]) == (1024, 256, 100)
        assert r["threads"] >= 1 and r["samples_per_s"] > 0
        assert r["samples_per_s_min"] <= r["samples_per_s"] <= r["samples_per_s_max"]
        for peer, key in bench_rbm.PEERS.items():
            assert (key in r) == (peer in cases)
        if r["case"] == "gemm-only":
            assert r["vs_gemm_only"] == 1.0
    assert 1 in {r["threads"] for r in lines}


def test_bench_chain_field_json_lines(capsys):
    """`rgflow bench chain-field`: one row per setting, mean and standard error over seeds;
    the paired difference is the difference of the means (same seeds)."""
    from rgflow.core.bench import chain_field

    rows = chain_field.run(json_output=True, repeats=2)
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert lines == rows and len(rows) == len(chain_field.SETTINGS)
    for r in rows:
        assert r["seeds"] == 2 and r["carried"] < 0 and r["fresh"] < 0
        assert abs(r["carried"] - r["fresh"] - r["carried_minus_fresh"]) < 2e-5
        assert r["carried_se"] >= 0 and r["carried_minus_fresh_se"] >= 0


def test_bench_chain_field_needs_two_seeds(capsys):
    from rgflow.tui.__main__ import main

    assert main(["bench", "chain-field", "--repeats", "1"]) == 2
    assert capsys.readouterr().err.count("\n") == 1
