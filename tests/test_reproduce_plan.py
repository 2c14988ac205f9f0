"""Presets and the stage graph (rgflow.core.reproduce.presets, .plan): presets validate, cache
keys follow settings and not the thread count."""

import dataclasses

import pytest

from rgflow.core.errors import UsageError
from rgflow.core.reproduce.plan import build_plan
from rgflow.core.reproduce.presets import PRESETS, get_preset, validate_preset
from rgflow.core.reproduce.runner import Pipeline
from rgflow.core.reproduce.stage import cache_hit

TINY = get_preset("tiny")


def test_cache_keys_ignore_jobs_and_follow_settings(tmp_path):
    a = Pipeline(TINY, tmp_path / "a", jobs=1)
    b = Pipeline(TINY, tmp_path / "a", jobs=2)
    assert [s.key for s in a.stages] == [s.key for s in b.stages]
    other = dataclasses.replace(TINY, flow_steps=TINY.flow_steps + 1)
    c = Pipeline(other, tmp_path / "a", jobs=1)
    changed = {s.name for s, t in zip(a.stages, c.stages, strict=True) if s.key != t.key}
    # the RBM flows of experiment 3 and those of experiments 5 and 6 ("flow_other")
    assert changed == {st.name for st in a.stages if st.kind in ("flow", "flow_other")}


def test_presets_validate_and_unknown_preset_is_a_usage_error():
    for p in PRESETS.values():
        assert validate_preset(p) is p
        build_plan(p)
    with pytest.raises(UsageError):
        get_preset("huge")
    with pytest.raises(UsageError):
        validate_preset(dataclasses.replace(TINY, flow_grid_samples=5))


def test_quick_preset_keeps_the_paper_settings_that_define_the_experiments():
    q, p = get_preset("quick"), get_preset("paper")
    for name in ("rbm_k", "rbm_batch", "rbm_chains", "rbm_lr", "rbm_adam_eps", "corr_T",
                 "flow_steps", "grid", "flow_L"):
        assert getattr(q, name) == getattr(p, name), name
    assert 32 in q.corr_sizes and set(p.corr_sizes) == {16, 32, 64}
    assert p.stack_L == 64 and p.stack_levels == 3 and q.stack_L is None
    assert p.flow_steps == 29 and set(p.flow_hidden) == {81, 100}


def test_damaged_cache_file_is_recomputed(tmp_path):
    pipe = Pipeline(TINY, tmp_path / "o", jobs=1)
    st = pipe.stages[0]
    st.path.parent.mkdir(parents=True)
    st.path.write_bytes(b"PK\x03\x04 not really a zip")
    assert not cache_hit(st.path, st.key)


def test_each_seed_gets_its_own_copy_of_seed_dependent_stages():
    one = build_plan(dataclasses.replace(TINY, seeds=1))
    three = build_plan(dataclasses.replace(TINY, seeds=3))
    assert len(three) == 3 * len(one)
    for st in one:
        copies = [s for s in three if s.base == st.base]
        assert [s.name for s in copies] == [f"{st.base}-s{k}" for k in range(3)]
        assert [s.seed_index for s in copies] == [0, 1, 2]
        # a copy reads the same seed's inputs
        for k, s in enumerate(copies):
            assert all(i.endswith(f"-s{k}") for i in s.inputs)
        seeds = [s.settings.get("seed") for s in copies]
        if seeds[0] is not None:
            assert len(set(seeds)) == 3  # streams differ between seeds
    # seed k's stages do not depend on how many seeds there are
    s0 = {s.name: s.settings for s in three if s.seed_index == 0}
    assert s0 == {s.name: s.settings for s in one}


def test_deterministic_stages_of_shared_inputs_run_once():
    from rgflow.core.reproduce.plan import PlanBuilder

    stages: dict = {}
    for k in range(3):
        b = PlanBuilder(TINY, 1, k, stages)
        shared = b.add("exact-L4", "exact", "enumeration", {"L": 4})
        fed = b.add("table", "table", "from the enumeration", {"of": shared}, (shared,))
        own = b.add("draw", "draw", "random", {"seed": b.seed("draw")})
        mixed = b.add("both", "both", "shared + seeded", {"a": shared, "b": own},
                      (shared, own))
        assert (shared, fed, own, mixed) == ("exact-L4", "table", f"draw-s{k}", f"both-s{k}")
    assert sorted(stages) == ["both-s0", "both-s1", "both-s2", "draw-s0", "draw-s1",
                              "draw-s2", "exact-L4", "table"]
    assert stages["exact-L4"].seed_index is None and stages["draw-s2"].seed_index == 2
