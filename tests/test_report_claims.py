"""End to end from stage outputs to the claims table of report.md: synthetic stage outputs
whose thermometer readings are known (a world where the paper is right, one where it is
wrong, one whose classifier cannot read temperatures) must give the claims table a physicist
expects, with silent thermometers explained."""

import dataclasses
import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from rgflow.core.exact import TC
from rgflow.core.reproduce.claims import (
    INCONCLUSIVE,
    MEASURED,
    NOT_REPRODUCED,
    NOT_RUN,
    REPRODUCED,
)
from rgflow.core.reproduce.exp3_rbm_flow import FLOW_STARTS
from rgflow.core.reproduce.kinds import FLOW_SCALARS
from rgflow.core.reproduce.plan import assign_keys, build_plan
from rgflow.core.reproduce.presets import get_preset
from rgflow.core.reproduce.report import build_report, build_results
from rgflow.core.reproduce.wording import SETTING_WORDS

P = dataclasses.replace(get_preset("tiny"), flow_hidden=(81,), stack_L=None, seeds=1)
STEPS = P.flow_steps
ERR = 0.02  # every temperature reading's error


def out(meta=None, **arrays):
    base = {"seconds": 0.0, "history": [], "n_train": 1, "train_seconds": 0.0}
    return SimpleNamespace(meta=base | (meta or {}), arrays=arrays)


def level(rg_own, rbm_own, rg_ptf, rbm_ptf, L, n_hidden, rbm_prefix="best"):
    def side(prefix, own, ptf):
        numbers = {f"{prefix}_own_block_fraction": own, f"{prefix}_peak_to_far": ptf,
                   f"{prefix}_own_block_mean": 0.8 if prefix == "rg" else 0.6,
                   f"{prefix}_far_mean": 0.45 if prefix == "rg" else 0.6,
                   "best_block_unique_fraction": 1.0, "blocks_claimed_fraction": 1.0}
        errors = {k: 0.002 for k in numbers}
        return {"numbers": numbers, "jackknife_errors": errors}

    return {"level": 1, "b": 2, "L": L, "n_hidden": n_hidden, "n_configs": 300,
            "rg": side("rg", rg_own, rg_ptf), "rbm": side(rbm_prefix, rbm_own, rbm_ptf)}


def thermometer_meta(L, within_one):
    return {"L": L, "fit": {"chance": 1 / len(P.grid), "n_heldout": 2000, "n_train": 8000,
                            "train_accuracy": 0.9, "heldout_accuracy": within_one / 2,
                            "heldout_within_one": within_one}}


def flow_arrays(start_T, final_T, delta_sigma):
    """Readings of both thermometers rising linearly from start_T[i] to final_T[i]."""
    n = len(FLOW_STARTS)
    a = {k: np.full((n, STEPS + 1), ERR) for k in FLOW_SCALARS}
    for i in range(n):
        ramp = np.linspace(start_T[i], final_T[i], STEPS + 1)
        a["T_obs"][i] = a["T_mlp"][i] = ramp
        a["delta_sigma"][i] = delta_sigma
        a["delta_epsilon"][i] = 1.0
        a["abs_m"][i] = 0.5
    a["T_obs_bound"] = np.zeros((n, STEPS + 1), np.int8)
    return a


def world(mixed_final, high_final, low_final, rg_below_final, classifier_off=False,
          within_one=0.8, delta_sigma=0.125, local=(0.2, 2.0), classifier_rg_flat=False):
    """Stage outputs of the preset P with the given flow endpoints (one per start), the
    RG-flow reading of the start below Tc at the last level, and the local RBMs' own-block
    fraction and peak-to-far contrast `local` (the global RBM's: 0.01 and 1.05).
    classifier_rg_flat: the classifier reads every RG level as the level-0 temperature."""
    stages = build_plan(P)
    assign_keys(stages, Path("/nonexistent"))
    actual = {st.base: st.name for st in stages}  # one seed: "vh-L8" is "vh-L8-s0"
    outputs = {st.name: out() for st in stages}
    L = P.corr_sizes[0]
    outputs[actual[f"vh-L{L}"]] = out({"levels": [level(0.30, 0.01, 2.0, 1.05, L, L * L // 4)],
                               "settings": {"rbms": [f"rbm-L{L}-h{L * L // 4}"]}})
    for st in stages:
        if st.kind == "thermometer":
            Lt = int(st.base.removeprefix("thermometer-L"))
            outputs[st.name] = out(thermometer_meta(Lt, within_one),
                                   ref_temperatures=np.asarray(P.grid),
                                   ref_m_mean=np.linspace(1, 0.1, len(P.grid)),
                                   ref_m_err=np.full(len(P.grid), 0.01))
    starts = np.asarray(P.rgT_start_T)
    n_lv = P.rgT_levels + 1
    T = np.stack([np.linspace(starts[0], rg_below_final, n_lv),
                  np.full(n_lv, TC), np.linspace(starts[2], starts[2] + 0.5, n_lv)])
    T_mlp = T - (1.0 if classifier_off else 0.0)
    if classifier_rg_flat:
        T_mlp = np.repeat(T_mlp[:, :1], n_lv, axis=1)
    outputs[actual["rg-temperature"]] = out(
        T_obs=T, T_obs_err=np.full_like(T, ERR), T_mlp=T_mlp, T_mlp_err=np.full_like(T, ERR),
        T_obs_bound=np.zeros(T.shape, np.int8), abs_m=np.full_like(T, 0.5),
        abs_m_err=np.full_like(T, 0.01), start_T=starts,
        level_L=np.array([P.rgT_L // 2 ** k for k in range(n_lv)]))
    ref = {}
    # (Δσ, Δε) of Monte Carlo: Ising's at Tc, off-critical values at the start temperatures
    dims = {"tc": (0.125, 1.0), "low": (0.0, 1.8), "high": (1.2, 1.6)}
    for name, t in (("tc", TC), ("low", P.flow_start_T[0]), ("high", P.flow_start_T[1])):
        for k in FLOW_SCALARS:
            ref[f"{name}_{k}"] = np.array(ERR if k.endswith("_err") else 0.5)
        ref[f"{name}_T_obs"] = np.array(t)
        ref[f"{name}_T_mlp"] = np.array(t - (1.0 if classifier_off else 0.0))
        ref[f"{name}_delta_sigma"], ref[f"{name}_delta_epsilon"] = map(np.array, dims[name])
        ref[f"{name}_T_obs_bound"] = np.array(0, np.int8)
    for st in stages:
        if st.kind == "mc_reference":
            outputs[st.name] = out({"tc": {"n": 100}, "low": {"n": 100}, "high": {"n": 100}},
                                   **ref)
        elif st.base.startswith("vh-local-"):
            Ll = P.local_L
            glob = "-global-" in st.base
            args = (0.30, 0.01, 2.0, 1.05) if glob else (0.30, local[0], 2.0, local[1])
            outputs[st.name] = out({"levels": [level(*args, Ll, Ll * Ll // 4,
                                                     "best" if glob else "rg")]})
        elif st.base.startswith("mc-peak-"):  # a flat specific heat: no T_pc
            Lp = int(st.base.removeprefix("mc-peak-L"))
            outputs[st.name] = out(spins=np.ones((len(P.fss_peak_T), 40, Lp, Lp), np.int8),
                                   temperatures=np.asarray(P.fss_peak_T))
    start_T = (P.flow_start_T[0], P.flow_start_T[1], 3.9)  # random spins read as hot
    finals = {"mixed": mixed_final, "tc": mixed_final, "high": high_final, "low": low_final}
    ranges = [[{"disagreement_sigma": 0.0}] * (STEPS + 1)] * len(FLOW_STARTS)
    for st in stages:
        if st.kind in ("flow", "flow_other"):
            ts = st.base.removeprefix("flow-").split("-h")[0] if st.kind == "flow" else "tc"
            outputs[st.name] = out({"observable_ranges": ranges},
                                   **flow_arrays(start_T, finals[ts], delta_sigma))
    return stages, outputs


def claims_table(stages, outputs):
    results = build_results(P, stages, outputs)
    text = build_report(P, results, {}, [])
    table = text.split("## The paper's claims, as measured")[1].split("\n## ")[0]
    rows = [line.split(" | ") for line in table.splitlines() if re.match(r"\| \d+ \|", line)]
    return {int(r[0].strip("| ")): r[-1].strip(" |*") for r in rows}, table, results


AT_TC = (TC, TC + 0.01, TC - 0.01)


def test_a_world_where_the_paper_is_right():
    verdicts, table, _ = claims_table(*world(AT_TC, (3.5, 3.6, 3.7), (1.2, 1.3, 1.4),
                                             rg_below_final=1.5))
    assert verdicts == {1: REPRODUCED, 2: REPRODUCED, 3: REPRODUCED, 4: REPRODUCED,
                        5: REPRODUCED, 6: REPRODUCED, 7: NOT_RUN, 8: REPRODUCED}
    assert "silent" not in table


def test_a_world_where_the_paper_is_wrong():
    """The mixed RBM ends at T = 1.5 from every start, the controls end at Tc, majority rule
    moves the start below Tc up towards Tc, and the fixed point has Δσ = 0.3."""
    verdicts, _, _ = claims_table(*world((1.5, 1.5, 1.5), AT_TC, AT_TC, rg_below_final=2.2,
                                         delta_sigma=0.3, local=(0.01, 1.0)))
    assert verdicts[8] == NOT_REPRODUCED  # local RBMs no more local than the global one
    assert verdicts[3] == NOT_REPRODUCED
    assert verdicts[4] == NOT_REPRODUCED
    assert verdicts[5] == NOT_REPRODUCED
    assert verdicts[6] == NOT_REPRODUCED


def test_an_uncalibrated_classifier_is_silent_and_says_why():
    """The classifier reads everything 1.0 too cold and is near chance; the observable
    thermometer alone decides, and the report says why the classifier said nothing."""
    verdicts, table, results = claims_table(*world(AT_TC, (3.5, 3.6, 3.7), (1.2, 1.3, 1.4),
                                                   rg_below_final=1.5, classifier_off=True,
                                                   within_one=0.36))
    assert verdicts[3] == REPRODUCED and verdicts[5] == REPRODUCED
    assert "classifier thermometer silent" in table
    assert "not above chance" in table and "beyond ±3" in table
    assert all(not t["accuracy_gate"]["passed"] for t in results["thermometers"].values())


def test_each_thermometer_judges_rg_by_its_own_flow():
    """Majority rule moves the start below Tc down by the observable thermometer, while the
    (silent) classifier reads no change: claim 5 rests on the observable reading alone."""
    verdicts, _, results = claims_table(*world(AT_TC, (3.5, 3.6, 3.7), (1.2, 1.3, 1.4),
                                               rg_below_final=1.5, classifier_off=True,
                                               within_one=0.36, classifier_rg_flat=True))
    assert verdicts[5] == REPRODUCED
    below = results["experiments"]["2_rg_temperature"]["starts"][0]
    assert below["obs_flow"]["verdict"] != below["mlp_flow"]["verdict"]


def test_stacked_rbms_are_measured_without_a_reference():
    p = dataclasses.replace(P, stack_L=8)
    stages = build_plan(p)
    names = {st.base for st in stages}
    assert "vh-stack-L8" in names
    from rgflow.core.reproduce.claims import claim_stacked

    lv = {"settings": {"level": 1}, "rg": {"own_block_fraction": {"value": 0.3, "error": 0.01}},
          "rbm": {"own_block_fraction": {"value": 0.1, "error": 0.01}}}
    assert claim_stacked({"experiments": {"4_stacked": {"levels": [lv]}}}).verdict == MEASURED
    assert claim_stacked({"experiments": {"4_stacked": {"skipped": "no"}}}).verdict == NOT_RUN


@pytest.mark.parametrize("final", [(TC, 3.5, TC), (1.5, TC, TC)])
def test_one_start_away_from_tc_is_not_a_fixed_point_at_tc(final):
    verdicts, _, _ = claims_table(*world(final, (3.5, 3.6, 3.7), (1.2, 1.3, 1.4), 1.5))
    assert verdicts[3] == NOT_REPRODUCED


def test_huge_errors_are_inconclusive():
    global ERR
    old, ERR = ERR, 5.0
    try:
        verdicts, _, _ = claims_table(*world(AT_TC, (3.5, 3.6, 3.7), (1.2, 1.3, 1.4), 1.5))
    finally:
        ERR = old
    assert verdicts[3] == INCONCLUSIVE and verdicts[5] == INCONCLUSIVE


def test_every_setting_has_plain_words():
    assert set(P.settings()) <= set(SETTING_WORDS)


def test_local_fields_verdict_hand_made():
    from rgflow.core.reproduce.claims import local_fields_verdict

    def c(verdict):
        return {"verdict": verdict}

    higher, same, lower, open_ = c("higher"), c("consistent"), c("lower"), c("undetermined")
    assert local_fields_verdict([(higher, higher), (higher, higher)]) == REPRODUCED
    assert local_fields_verdict([(higher, higher), (same, higher)]) == NOT_REPRODUCED
    assert local_fields_verdict([(higher, lower)]) == NOT_REPRODUCED
    assert local_fields_verdict([(higher, higher), (open_, higher)]) == INCONCLUSIVE
    assert local_fields_verdict([]) == NOT_RUN
