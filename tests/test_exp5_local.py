"""core/reproduce/exp5_local.py and exp6_finite_size.py: the ensemble over seeds and a flow's
T* on hand-made numbers."""

import numpy as np
import pytest

from rgflow.core.reproduce.exp5_local import ensemble
from rgflow.core.reproduce.exp6_finite_size import _t_star
from rgflow.core.reproduce.presets import get_preset
from rgflow.core.reproduce.verdicts import meas


def test_ensemble_is_the_mean_with_the_standard_error_over_seeds():
    e = ensemble([meas(1.0, 0.5), meas(2.0, 0.5), meas(3.0, 0.5)])
    assert e["value"] == pytest.approx(2.0)
    assert e["error"] == pytest.approx(1.0 / np.sqrt(3))  # std 1, three seeds
    assert [s["value"] for s in e["seeds"]] == [1.0, 2.0, 3.0] and e["n_seeds"] == 3


def test_ensemble_of_one_seed_keeps_its_own_error_and_bounds():
    assert ensemble([meas(1.5, 0.2)])["error"] == pytest.approx(0.2)
    lower = ensemble([meas(4.0, 0.0, "lower"), meas(3.8, 0.0, "lower")])
    assert lower["bound"] == "lower" and lower["value"] == pytest.approx(3.9)
    mixed = ensemble([meas(4.0, 0.0, "lower"), meas(2.0, 0.1)])
    assert mixed["value"] is None  # a bound and a value cannot be averaged
    assert ensemble([meas(None, None)])["value"] is None


def test_t_star_averages_the_last_step_over_starts():
    p = get_preset("tiny")
    N = p.flow_steps
    a = {"T_obs": np.zeros((3, N + 1)), "T_obs_err": np.full((3, N + 1), 0.3),
         "T_obs_bound": np.zeros((3, N + 1), np.int8)}
    a["T_obs"][:, N] = (2.0, 2.3, 2.6)
    t = _t_star(p, a)
    assert t["value"] == pytest.approx(2.3) and t["error"] == pytest.approx(0.3 / np.sqrt(3))
    a["T_obs_bound"][1, N] = 1  # one start read at the end of the thermometer's range
    assert _t_star(p, a)["value"] is None


def test_plan_computes_rg_maps_once_and_shares_the_flow_inputs():
    from rgflow.core.reproduce.plan import build_plan

    p = get_preset("quick")
    stages = {st.name: st for st in build_plan(p)}
    vh = {n: st.settings for n, st in stages.items() if n.startswith("vh-local-")}
    assert len(vh) == (len(p.local_fields) + 1) * p.local_seeds
    with_rg = [n for n, s in vh.items() if s.get("with_rg", True)]
    assert with_rg == [f"vh-local-global-L{p.local_L}-s0"]
    assert all(s["max_configs"] == p.local_vh_configs for s in vh.values())
    fields = {stages[n].settings.get("receptive_field") for n in stages
              if n.startswith("rbm-local-")}
    assert fields == {*p.local_fields, None}
    # experiment 6 at L = flow_L reads experiment 3's thermometer, starts and reference
    flow = stages[f"flowfss-L{p.flow_L}-s0"]
    assert set(flow.inputs) >= {f"thermometer-L{p.flow_L}", f"mc-flowstart-L{p.flow_L}"}
    assert "mcref-flow" in stages and f"mcref-flow-L{p.flow_L}" not in stages
