"""Session: config validation, stepping, determinism, save -> load -> continue bit-exactness."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rgflow.core.config import SESSION_PRESETS, SessionConfig, build_config
from rgflow.core.errors import SaveFileError, UsageError
from rgflow.core.session import History, Session

SMALL = dict(L=8, batch=10, chains=10, dataset_capacity=50, sample_spacing=2,
             flow_chains=4, monitor_every=5, history=64)


def small_session(**changes) -> Session:
    return Session(SessionConfig(**{**SMALL, **changes}))


def assert_same_state(a: Session, b: Session) -> None:
    arrays_a, meta_a = a.state()
    arrays_b, meta_b = b.state()
    assert sorted(arrays_a) == sorted(arrays_b)
    for name in arrays_a:
        np.testing.assert_array_equal(arrays_a[name], arrays_b[name], err_msg=name)
        assert arrays_a[name].dtype == arrays_b[name].dtype, name
    for key in ("config", "live", "counters", "history_totals"):
        assert meta_a[key] == meta_b[key], key


def test_default_session_is_the_paper_setting():
    c = SessionConfig()
    assert (c.L, c.n_visible, c.n_hidden) == (32, 1024, 256)
    assert abs(c.T - 2.269185314213022) < 1e-12
    assert (c.units, c.k, c.pcd, c.optimizer, c.lr, c.batch) == ("spin", 1, True, "adam", 1e-3, 100)
    assert c.train


def test_build_config_layers(tmp_path):
    toml = tmp_path / "c.toml"
    toml.write_text("L = 16\nlr = 0.01\ntrain = false\n")
    c = build_config("quick", toml, ["lr=0.02", "T=tc", "algorithm=heatbath"])
    assert (c.L, c.lr, c.train, c.algorithm) == (16, 0.02, False, "heatbath")
    for preset in SESSION_PRESETS:
        build_config(preset)


@pytest.mark.parametrize("override", [
    "L=7", "L=2", "L=abc", "T=0", "T=-1", "T=nan", "lr=0", "batch=0", "k=0",
    "algorithm=foo", "nosuchkey=1", "train=maybe", "rg_b=3", "L", "=3",
    "batch=5000", "momentum=1.5",
])
def test_bad_overrides_are_one_line_usage_errors(override):
    with pytest.raises(UsageError) as info:
        build_config(None, None, [override])
    assert "\n" not in str(info.value)


def test_bad_toml(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("L = = 3")
    with pytest.raises(UsageError):
        build_config(None, bad)
    with pytest.raises(UsageError):
        build_config(None, tmp_path / "missing.toml")


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(
    st.sampled_from(["L", "T", "lr", "batch", "hidden", "rg_levels", "sample_spacing",
                     "algorithm", "momentum", "train"]),
    st.one_of(st.integers(-5, 200), st.floats(allow_nan=True), st.text(max_size=5),
              st.booleans()),
    max_size=4))
def test_config_validation_never_crashes(data):
    """Any settings either validate into a usable config or give a UsageError."""
    try:
        c = SessionConfig.from_dict(data)
    except UsageError as exc:
        assert "\n" not in str(exc)
        return
    assert c.L % 2 == 0 and c.T > 0 and c.lr > 0 and c.batch <= c.dataset_capacity


def test_history_ring_and_restore():
    h = History(5)
    for i in range(12):
        h.append(i)
    np.testing.assert_array_equal(h.values(), [7, 8, 9, 10, 11])
    r = History(5, h.values(), h.total)
    r.append(12)
    h.append(12)
    np.testing.assert_array_equal(r.values(), h.values())


@pytest.mark.parametrize("sizes", [(3,), (2, 2, 1), (4, 9), (17,), (1, 5, 0, 6)])
def test_history_extend_equals_appends(sizes):
    appended, extended = History(5), History(5)
    start = 0
    for n in sizes:
        for x in range(start, start + n):
            appended.append(x)
        extended.extend(np.arange(start, start + n))
        start += n
        assert extended.total == appended.total
        np.testing.assert_array_equal(extended.values(), appended.values())


def test_step_samples_and_trains():
    s = small_session()
    for _ in range(40):
        s.step()
    assert s.sweeps == 40 and s.step_count == 40
    assert s.dataset_size + s.heldout_count == 20
    assert s.trainer.steps_done > 0
    assert s.metrics and np.isfinite(s.metrics["pll"])
    f = s.frame()
    assert f.spins.shape == (8, 8) and not f.spins.flags.writeable
    assert len(f.rg_levels) == s.config.effective_rg_levels == 3


def test_same_seed_same_arrays_and_frames_do_not_perturb():
    a, b = small_session(), small_session()
    for i in range(30):
        a.step()
        b.step()
        if i % 3 == 0:
            b.frame()  # drawing must not change the trajectory
            b.rg_levels("majority")
    assert_same_state(a, b)


@pytest.mark.slow
@pytest.mark.parametrize("algorithm", ["metropolis", "heatbath", "wolff"])
def test_save_load_continue_is_bit_exact(tmp_path, algorithm):
    n, m = 23, 17
    straight = small_session(algorithm=algorithm)
    straight.run_steps(n)
    straight.flow_step()
    straight.run_steps(m)
    straight.flow_step()  # on the RBM frozen at the first flow step

    first = small_session(algorithm=algorithm)
    first.run_steps(n)
    first.flow_step()
    path = tmp_path / "s.npz"
    first.save(path)
    resumed = Session.load(path)
    resumed.run_steps(m)
    resumed.flow_step()
    assert_same_state(straight, resumed)
    assert resumed.flow_rbm_step == straight.flow_rbm_step < resumed.trainer.steps_done


def test_thread_count_does_not_change_results():
    import numba

    results = []
    for threads in (1, min(2, numba.config.NUMBA_NUM_THREADS)):
        numba.set_num_threads(threads)
        s = small_session()
        s.run_steps(30)
        results.append(s)
    numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    assert_same_state(*results)


def test_live_controls_and_reconfigure():
    s = small_session()
    s.set_temperature(1.5)
    assert s.cycle_algorithm() == "heatbath"
    assert s.cycle_rg_rule() == "majority"
    with pytest.raises(UsageError):
        s.set_temperature(-1)
    s.run_steps(30)
    weights = s.trainer.rbm.W.copy()
    s.reconfigure(lr=0.01)
    np.testing.assert_array_equal(s.trainer.rbm.W, weights)  # a new lr keeps the weights
    assert s.trainer.config.lr == 0.01 and s.trainer.steps_done == 0
    s.reconfigure(hidden=9)
    assert s.trainer.rbm.W.shape == (64, 9)
    s.reconfigure(L=12)
    assert s.spins.shape == (12, 12) and s.trainer.rbm.W.shape == (144, 9)
    assert [lvl.shape for lvl in s.rg_levels()] == [(6, 6), (3, 3)]
    with pytest.raises(UsageError):
        s.reconfigure(L=5)
    assert s.config.L == 12


def _flowing(steps_before=30, **changes):
    """A session whose flow froze its RBM, and trained on afterwards."""
    s = small_session(**changes)
    s.run_steps(steps_before)
    s.flow_step()
    frozen_W, frozen_at = s.flow_rbm.W.copy(), s.flow_rbm_step
    s.run_steps(20)  # training goes on
    assert s.trainer.steps_done > frozen_at and not np.array_equal(s.trainer.rbm.W, frozen_W)
    return s, frozen_W, frozen_at


def test_a_flow_runs_on_the_rbm_frozen_at_its_first_step():
    from rgflow.core.rbm import sample_hidden, sample_visible

    s, frozen_W, frozen_at = _flowing()
    v, state = s.flow_v.copy(), s.rng["flow"].copy()
    s.flow_step()
    frozen = s.trainer.rbm.copy()
    frozen.W[...] = frozen_W
    frozen.visible_bias[...] = s.flow_rbm.visible_bias
    frozen.hidden_bias[...] = s.flow_rbm.hidden_bias
    expected = sample_visible(frozen, sample_hidden(frozen, v, state), state)
    np.testing.assert_array_equal(s.flow_v, expected)
    assert s.flow_rbm_step == frozen_at and s.frame().flow_rbm_step == frozen_at
    s.flow_reset("data")  # a new flow freezes the RBM as it is at its first step
    assert s.flow_rbm is None and s.frame().flow_rbm_step is None
    s.flow_step()
    assert s.flow_rbm_step == s.trainer.steps_done
    np.testing.assert_array_equal(s.flow_rbm.W, s.trainer.rbm.W)


@pytest.mark.parametrize("receptive_field", [-1, 1])  # global, and locally connected
def test_a_save_keeps_the_flows_frozen_rbm(tmp_path, receptive_field):
    s, frozen_W, frozen_at = _flowing(receptive_field=receptive_field)
    s.save(tmp_path / "s.npz")
    loaded = Session.load(tmp_path / "s.npz")
    assert loaded.flow_rbm_step == frozen_at
    np.testing.assert_array_equal(loaded.flow_rbm.W, frozen_W)
    s.flow_step()
    loaded.flow_step()
    np.testing.assert_array_equal(loaded.flow_v, s.flow_v)


def test_a_flow_restored_without_its_rbm_starts_again_from_its_chains(tmp_path):
    from rgflow.core.persist import write_save

    s, _, _ = _flowing()
    s.flow_step()
    arrays, meta = s.state()  # as an older save: no frozen RBM
    arrays = {k: v for k, v in arrays.items() if not k.startswith("flow_rbm_")}
    write_save(tmp_path / "old.npz", arrays, {**meta, "flow_rbm_step": None})
    old = Session.load(tmp_path / "old.npz")
    assert old.flow_step_count == 2 and old.flow_rbm is None
    assert old.flow_step() == 1  # a new flow, from the restored chains
    assert old.flow_rbm_step == old.trainer.steps_done


def test_a_damaged_frozen_flow_rbm_is_refused(tmp_path):
    from rgflow.core.persist import write_save

    s, _, _ = _flowing()
    arrays, meta = s.state()
    cases = {
        "narrow": ({**arrays, "flow_rbm_W": arrays["flow_rbm_W"][:, :-1].copy()}, meta),
        "nan": ({**arrays, "flow_rbm_W": np.full_like(arrays["flow_rbm_W"], np.nan)}, meta),
        "no-arrays": ({k: v for k, v in arrays.items() if not k.startswith("flow_rbm_")},
                      meta),
        "bad-step": (arrays, {**meta, "flow_rbm_step": -3}),
    }
    for name, (a, m) in cases.items():
        write_save(tmp_path / f"{name}.npz", a, m)
        with pytest.raises(SaveFileError) as info:
            Session.load(tmp_path / f"{name}.npz")
        assert "flow" in str(info.value) and "\n" not in str(info.value), name


def test_a_local_frozen_flow_rbm_with_weights_off_its_field_is_refused(tmp_path):
    from rgflow.core.persist import write_save

    s, _, _ = _flowing(receptive_field=1)
    arrays, meta = s.state()
    W = arrays["flow_rbm_W"].copy()
    W[np.unravel_index(np.argmin(np.abs(W) > 0), W.shape)] = 0.5  # a site off the field
    write_save(tmp_path / "off.npz", {**arrays, "flow_rbm_W": W}, meta)
    with pytest.raises(SaveFileError, match="outside the receptive field"):
        Session.load(tmp_path / "off.npz")


def test_flow_sources():
    s = small_session()
    s.run_steps(10)
    for source in ("data", "random", "lattice"):
        s.flow_reset(source)
        s.flow_step()
        assert s.flow_spins().shape == (4, 8, 8)
    with pytest.raises(UsageError):
        s.flow_reset("nowhere")


def test_semantically_bad_saves_are_refused(tmp_path):
    from rgflow.core.persist import read_save, write_save

    s = small_session()
    s.run_steps(25)
    path = tmp_path / "ok.npz"
    s.save(path)
    arrays, meta = read_save(path)

    def refused(arrays_, meta_):
        bad = tmp_path / "bad.npz"
        write_save(bad, arrays_, {k: v for k, v in meta_.items()
                                  if k not in ("format", "schema", "versions", "arrays")})
        with pytest.raises(SaveFileError) as info:
            Session.load(bad)
        assert "\n" not in str(info.value)

    spins = arrays["spins"].copy()
    spins[0, 0] = 3
    refused({**arrays, "spins": spins}, meta)
    w = arrays["rbm_W"].copy()
    w[0, 0] = np.nan
    refused({**arrays, "rbm_W": w}, meta)
    refused({**arrays, "rbm_W": arrays["rbm_W"][:, :3].copy()}, meta)
    refused(arrays, {**meta, "config": {**meta["config"], "L": 7}})
    refused(arrays, {**meta, "live": {**meta["live"], "T": -2}})
    refused(arrays, {k: v for k, v in meta.items() if k != "counters"})


def test_background_checkpoint_equals_direct_save(tmp_path):
    from rgflow.core.persist import BackgroundSaver, read_save

    s = small_session()
    s.run_steps(30)
    saver = BackgroundSaver()
    saver.submit(tmp_path / "bg.npz", *s.snapshot())
    s.run_steps(5)  # stepping goes on while the snapshot is written
    saver.wait()
    bg_arrays, bg_meta = read_save(tmp_path / "bg.npz")
    s2 = small_session()
    s2.run_steps(30)
    s2.save(tmp_path / "direct.npz")
    direct_arrays, direct_meta = read_save(tmp_path / "direct.npz")
    assert bg_meta["counters"] == direct_meta["counters"]
    for name in direct_arrays:
        np.testing.assert_array_equal(bg_arrays[name], direct_arrays[name], err_msg=name)


@pytest.mark.slow
@pytest.mark.parametrize("changes", [
    dict(train=False, sample_spacing=7),
    dict(train=True, sample_spacing=9, sweeps_per_step=2, algorithm="heatbath", h=0.3),
    dict(train=False, sample_spacing=5, algorithm="wolff"),
    # samples inside batches: ring buffers wrap (capacity 12, held-out 3), signs drawn
    dict(train=False, sample_spacing=3, dataset_capacity=12, holdout_every=4, batch=4),
    dict(train=False, sample_spacing=2, sweeps_per_step=3, symmetrize=False, history=16),
    dict(train=False, sample_spacing=1, algorithm="heatbath", dataset_capacity=10, batch=4),
    # training on but not yet possible: batches stop before the sample that enables it
    dict(train=True, sample_spacing=2, dataset_capacity=30, batch=12),
])
def test_batched_sweep_steps_equal_single_steps(changes):
    """run_steps runs steps in one kernel call where it can: same arrays as step()."""
    one_by_one = small_session(**changes)
    for _ in range(60):
        one_by_one.step()
    batched = small_session(**changes)
    assert batched.run_steps(60) == 60
    assert_same_state(one_by_one, batched)
    # and a second stretch, continuing from wherever the first left the sample spacing
    for _ in range(47):
        one_by_one.step()
    assert batched.run_steps(47) == 47
    assert_same_state(one_by_one, batched)


def test_steps_with_samples_are_batched():
    s = small_session(train=False, sample_spacing=3, history=200)
    calls = []
    original = s._sweep_steps
    s._sweep_steps = lambda n, first, every: (calls.append((n, first, every)),
                                              original(n, first, every))
    s.run_steps(120)
    assert s.step_count == 120 and s.samples_taken == 40
    assert calls and max(n for n, _, _ in calls) >= 60 and all(e == 3 for _, _, e in calls)


def test_local_receptive_field_session_saves_and_resumes(tmp_path):
    from rgflow.core.rbm_local import LocalRBM, field_mask

    straight = small_session(receptive_field=1)
    straight.run_steps(40)
    assert isinstance(straight.trainer.rbm, LocalRBM) and straight.trainer.steps_done > 0
    first = small_session(receptive_field=1)
    first.run_steps(25)
    path = tmp_path / "local.npz"
    first.save(path)
    resumed = Session.load(path)
    assert isinstance(resumed.trainer.rbm, LocalRBM)
    resumed.run_steps(15)
    assert_same_state(straight, resumed)
    arrays, _ = straight.state()
    outside = ~field_mask(8, 1)
    assert not arrays["rbm_W"][outside].any() and arrays["rbm_W"][~outside].all()
    with pytest.raises(UsageError, match="one hidden unit per 2x2 block"):
        SessionConfig(**{**SMALL, "receptive_field": 1, "hidden": 10}).validated()
    with pytest.raises(UsageError):
        SessionConfig(**{**SMALL, "receptive_field": -2}).validated()
    # a global session file whose config is switched to a field it does not respect
    glob = small_session()
    glob.run_steps(25)
    glob.save(tmp_path / "global.npz")
    from rgflow.core.persist import read_save, write_save

    arrays, meta = read_save(tmp_path / "global.npz")
    meta = {k: v for k, v in meta.items() if k not in ("format", "schema", "versions", "arrays")}
    meta["config"] = {**meta["config"], "receptive_field": 1}
    write_save(tmp_path / "bad.npz", arrays, meta)
    with pytest.raises(SaveFileError, match="outside the receptive field"):
        Session.load(tmp_path / "bad.npz")


# ---- the live dataset's spacing follows tau_int -----------------------------------------

def _live(**kw):
    from rgflow.core.exact import TC

    base = dict(L=16, T=TC, algorithm="metropolis", sample_spacing=1, train=False,
                dataset_capacity=400, holdout_every=10, seed=3)
    return Session(SessionConfig(**{**base, **kw}))


def test_live_spacing_is_at_least_two_tau_near_tc():
    """L = 16 at Tc with checkerboard Metropolis: tau_int is several sweeps, so the
    configured spacing of 1 sweep is raised to >= 2 tau_int, and the Frame reports it."""
    from rgflow.core.observables import tau_int

    s = _live()
    s.run_steps(3000)
    assert s.tau_sweeps > 3, s.tau_sweeps
    assert s.live_spacing >= 2 * s.tau_sweeps
    # the estimate is the larger of E's and |m|'s tau_int over the recent history
    n = s.histories["energy"].total
    assert n >= 2000
    frame = s.frame()
    assert frame.sample_spacing == s.live_spacing and frame.tau_int_sweeps == s.tau_sweeps
    assert 0 < frame.independent_samples <= frame.dataset_count
    e = s.histories["energy"].values()[-2000:]
    m = s.histories["abs_m"].values()[-2000:]
    # measured at the last refresh, a few samples ago: the same within its error
    expected = max(tau_int(e)[0], tau_int(m)[0])
    assert s.tau_sweeps == pytest.approx(expected, rel=0.3)


def test_live_spacing_does_not_depend_on_chunking():
    a, b = _live(), _live()
    a.run_steps(2500)
    while b.step_count < 2500:
        b.run_steps(min(37, 2500 - b.step_count))
    assert a.live_spacing == b.live_spacing and a.tau_sweeps == b.tau_sweeps
    np.testing.assert_array_equal(a.dataset, b.dataset)
    np.testing.assert_array_equal(a.spins, b.spins)


def test_live_spacing_survives_save_and_load(tmp_path):
    a = _live()
    a.run_steps(1500)
    path = tmp_path / "s.npz"
    a.save(path)
    b = Session.load(path)
    assert (b.live_spacing, b.tau_sweeps) == (a.live_spacing, a.tau_sweeps)
    a.run_steps(1000)
    b.run_steps(1000)
    np.testing.assert_array_equal(a.dataset, b.dataset)
    assert a.live_spacing == b.live_spacing


def test_changing_temperature_measures_tau_afresh():
    s = _live(algorithm="heatbath")
    s.run_steps(1500)
    assert s.tau_sweeps > 3
    s.set_temperature(50.0)
    since = s.histories["energy"].total
    s.run_steps(1500)
    assert s._tau_since == since
    assert s.tau_sweeps < 2  # the hot dynamics' own tau, not the mix with Tc's


def test_effective_samples():
    from rgflow.core.sampling import effective_samples

    assert effective_samples(100, 10, 2.0) == 100  # spacing >= 2 tau: all independent
    assert effective_samples(100, 2, 10.0) == pytest.approx(10.0)  # tau = 5 samples
    assert effective_samples(100, 1, float("nan")) == 100
