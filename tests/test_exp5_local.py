"""core/reproduce/exp5_local.py and exp6_finite_size.py: a flow's T* on hand-made numbers and
the stages the plan gives the two experiments."""

import numpy as np
import pytest

from rgflow.core.reproduce.exp6_finite_size import _t_star
from rgflow.core.reproduce.presets import get_preset


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
    assert len(vh) == (len(p.local_fields) + 1) * p.seeds
    with_rg = [n for n, s in vh.items() if s.get("with_rg", True)]
    assert with_rg == [f"vh-local-global-L{p.local_L}-s{k}" for k in range(p.seeds)]
    assert all(s["max_configs"] == p.local_vh_configs for s in vh.values())
    fields = {stages[n].settings.get("receptive_field") for n in stages
              if n.startswith("rbm-local-")}
    assert fields == {*p.local_fields, None}
    # experiment 6 at L = flow_L reads experiment 3's thermometer, starts and reference
    flow = stages[f"flowfss-L{p.flow_L}-s0"]
    assert set(flow.inputs) >= {f"thermometer-L{p.flow_L}-s0", f"mc-flowstart-L{p.flow_L}-s0"}
    assert "mcref-flow-s0" in stages and f"mcref-flow-L{p.flow_L}-s0" not in stages
