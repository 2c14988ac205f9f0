"""The claims table's decisions and the thermometer gates on hand-made numbers with obvious
answers (core/SCIENCE.md §6, §9). Each would fail with a verdict inverted, a gate's
threshold moved or an error bar that lost a factor."""

import math

import pytest

from rgflow.core.reproduce.claims import (
    ACCURACY_Z_MIN,
    CALIBRATION_Z_MAX,
    INCONCLUSIVE,
    NOT_REPRODUCED,
    REPRODUCED,
    accuracy_gate,
    away_verdict,
    calibration_gate,
    chance_level,
    combine_thermometers,
    consistent_verdict,
    controls_verdict,
    endpoints_vs_tc,
    flow_to_tc_verdict,
    rbm_global_verdict,
    rg_local_verdict,
    within_one_chance,
)


def m(value, error, bound=None):
    out = {"value": value, "error": error}
    if bound:
        out["bound"] = bound
    return out


# ------------------------------------------------------------------------- gates


@pytest.mark.parametrize("n_t", [2, 3, 8, 60])
def test_within_one_chance_by_enumeration(n_t):
    hits = sum(abs(i - j) <= 1 for i in range(n_t) for j in range(n_t))
    assert within_one_chance(n_t) == pytest.approx(hits / n_t**2)


def _null_sigma(n_t, n):
    p0 = within_one_chance(n_t)
    return p0, math.sqrt(p0 * (1 - p0) / n)


@pytest.mark.parametrize("z, passes", [(ACCURACY_Z_MIN + 0.05, True),
                                       (ACCURACY_Z_MIN - 0.05, False),
                                       (0.0, False), (-3.0, False), (40.0, True)])
def test_accuracy_gate_boundary(z, passes):
    """Accuracy with no error of its own, z null standard deviations above chance."""
    p0, s = _null_sigma(8, 1000)
    g = accuracy_gate(m(p0 + z * s, 0.0), 8, 1000)
    assert g.passed is passes
    assert g.z == pytest.approx(z)
    assert (g.reason == "") is passes


def test_accuracy_gate_combines_the_accuracy_error():
    """sigma = hypot(accuracy error, null spread): with an accuracy error equal to the null
    spread, 6 null sigmas are 6 / sqrt(2) = 4.2 combined ones: silent."""
    p0, s = _null_sigma(8, 1000)
    assert accuracy_gate(m(p0 + 6 * s, 0.0), 8, 1000).passed
    g = accuracy_gate(m(p0 + 6 * s, s), 8, 1000)
    assert not g.passed
    assert g.z == pytest.approx(6 / math.sqrt(2))


def test_a_below_chance_classifier_is_flagged_and_silent():
    """The tiny preset's L = 4 classifier: 0.083 held-out accuracy, chance 0.125."""
    n = 48
    acc = m(0.083, math.sqrt(0.083 * 0.917 / n))
    assert chance_level(acc, 8, n)
    assert not accuracy_gate(m(0.30, math.sqrt(0.3 * 0.7 / n)), 8, n).passed
    assert not chance_level(m(0.9, 0.01), 8, 10_000)


@pytest.mark.parametrize("reading, T, passes", [
    (m(2.0, 0.1), 2.0, True),
    (m(2.29, 0.1), 2.0, True),     # z = 2.9
    (m(2.31, 0.1), 2.0, False),    # z = 3.1
    (m(1.71, 0.1), 2.0, True),
    (m(1.69, 0.1), 2.0, False),
    (m(1.005, 0.08), 2.0, False),  # off by -0.995 at z = -12.4
    (m(6.0, 0.1, "lower"), 5.0, False),  # a range-end bound is not a calibration
])
def test_calibration_gate(reading, T, passes):
    g = calibration_gate(reading, T, "the start")
    assert g.passed is passes
    if not passes:
        assert "the start" in g.reason


def test_calibration_threshold_is_three_sigma():
    assert CALIBRATION_Z_MAX == 3.0
    assert ACCURACY_Z_MIN == 5.0


@pytest.mark.parametrize("per, verdict", [
    ({"a": (REPRODUCED, []), "b": (REPRODUCED, [])}, REPRODUCED),
    ({"a": (NOT_REPRODUCED, []), "b": (NOT_REPRODUCED, [])}, NOT_REPRODUCED),
    ({"a": (REPRODUCED, []), "b": (NOT_REPRODUCED, [])}, INCONCLUSIVE),   # disagree
    ({"a": (REPRODUCED, []), "b": (NOT_REPRODUCED, ["off"])}, REPRODUCED),  # b silent
    ({"a": (REPRODUCED, ["off"]), "b": (NOT_REPRODUCED, ["off"])}, INCONCLUSIVE),
    ({"a": (INCONCLUSIVE, []), "b": (NOT_REPRODUCED, [])}, NOT_REPRODUCED),
    ({"a": (INCONCLUSIVE, []), "b": (INCONCLUSIVE, [])}, INCONCLUSIVE),
])
def test_combine_thermometers(per, verdict):
    v, notes = combine_thermometers(per)
    assert v == verdict
    assert len(notes) >= len(per)


def test_a_silent_thermometer_says_why():
    _, notes = combine_thermometers({"classifier": (REPRODUCED, ["it reads Tc as 3.1"])})
    assert any("classifier thermometer silent: it reads Tc as 3.1" in n for n in notes)


# ------------------------------------------------------------------------- decisions


@pytest.mark.parametrize("own, ptf, verdict", [
    (m(0.30, 0.01), m(2.0, 0.05), REPRODUCED),
    (m(0.0045, 0.001), m(2.0, 0.05), NOT_REPRODUCED),   # own-block fraction uniform
    (m(0.30, 0.01), m(1.02, 0.05), NOT_REPRODUCED),     # no contrast
    (m(0.001, 0.0001), m(2.0, 0.05), NOT_REPRODUCED),   # less on its block than uniform
    (m(0.30, 0.01), m(0.5, 0.05), NOT_REPRODUCED),      # a dip, not a peak
    (m(0.30, 0.01), m(None, None), INCONCLUSIVE),
])
def test_rg_local(own, ptf, verdict):
    assert rg_local_verdict(own, ptf, uniform=4 / 1024) == verdict


@pytest.mark.parametrize("rbm_own, rbm_ptf, verdict", [
    (m(0.01, 0.001), m(1.1, 0.02), REPRODUCED),        # RBM far less local than RG
    (m(0.30, 0.01), m(2.0, 0.05), NOT_REPRODUCED),     # as local as RG
    (m(0.40, 0.01), m(2.5, 0.05), NOT_REPRODUCED),     # more local than RG
    (m(0.01, 0.001), m(2.0, 0.05), INCONCLUSIVE),      # less mass on a block, same contrast
])
def test_rbm_global(rbm_own, rbm_ptf, verdict):
    assert rbm_global_verdict(rbm_own, m(0.30, 0.01), rbm_ptf, m(2.0, 0.05)) == verdict


TC_READING = m(2.27, 0.02)
STARTS = [m(1.0, 0.02), m(5.0, 0.02), m(6.0, 0.01, "lower")]  # low, high, random spins


@pytest.mark.parametrize("starts, finals, where", [
    (STARTS, [m(2.25, 0.02), m(2.3, 0.02), m(2.28, 0.02)], "at Tc"),
    (STARTS, [m(1.2, 0.02), m(4.0, 0.02), m(4.5, 0.02)], "away from Tc"),
    (STARTS, [m(2.27, 0.02), m(4.0, 0.02), m(2.3, 0.02)], "mixed"),
    # the instrument cannot tell the low start from Tc: no conclusion from "consistent"
    ([m(1.0, 2.0), m(5.0, 0.02)], [m(2.25, 0.02), m(2.3, 0.02)], "undetermined"),
    (STARTS, [m(2.25, 0.02), m(6.0, 0.01, "upper"), m(2.3, 0.02)], "undetermined"),
])
def test_endpoints_vs_tc(starts, finals, where):
    assert endpoints_vs_tc(starts, finals, TC_READING) == where


@pytest.mark.parametrize("where, verdict", [("at Tc", REPRODUCED),
                                            ("away from Tc", NOT_REPRODUCED),
                                            ("mixed", NOT_REPRODUCED),
                                            ("undetermined", INCONCLUSIVE)])
def test_flow_to_tc(where, verdict):
    assert flow_to_tc_verdict(where) == verdict


@pytest.mark.parametrize("wheres, verdict", [
    (["away from Tc", "away from Tc"], REPRODUCED),
    (["away from Tc", "at Tc"], NOT_REPRODUCED),
    (["at Tc", "at Tc"], NOT_REPRODUCED),
    (["away from Tc", "mixed"], INCONCLUSIVE),
    (["away from Tc", "undetermined"], INCONCLUSIVE),
    ([], INCONCLUSIVE),
])
def test_controls(wheres, verdict):
    assert controls_verdict(wheres) == verdict


@pytest.mark.parametrize("dirs, verdict", [
    (["moves away from Tc", "moves away from Tc"], REPRODUCED),
    (["moves away from Tc", "moves toward Tc"], NOT_REPRODUCED),
    (["moves toward Tc", "moves toward Tc"], NOT_REPRODUCED),
    (["moves away from Tc", "no significant change"], INCONCLUSIVE),
    (["undetermined", "moves away from Tc"], INCONCLUSIVE),
    ([], INCONCLUSIVE),
])
def test_rg_away(dirs, verdict):
    assert away_verdict(dirs) == verdict


FAR = [m(0.0, 0.0), m(1.2, 0.03)]  # Monte Carlo at the start temperatures (T = 1, T = 5)


@pytest.mark.parametrize("pairs, verdict", [
    ([(m(0.13, 0.01), m(0.125, 0.005), FAR), (m(1.0, 0.05), m(0.98, 0.05), [m(1.8, 0.03)])],
     REPRODUCED),
    ([(m(0.30, 0.01), m(0.125, 0.005), FAR), (m(1.0, 0.05), m(0.98, 0.05), [])],
     NOT_REPRODUCED),
    # 0.155 vs 0.125: z = 0.03 / hypot(0.01, 0.01) = 2.12 (1.5 if the errors were added)
    ([(m(0.155, 0.01), m(0.125, 0.01), FAR)], NOT_REPRODUCED),
    ([(m(0.15, 0.01), m(0.125, 0.01), FAR)], REPRODUCED),
    # consistent with Tc (z = 1.8) but also with T = 5 (z = -2.2 just resolves it) and
    # not with T = 1 ... an error bar this wide cannot tell Tc from T = 5:
    ([(m(0.58, 0.26), m(0.077, 0.004), [m(0.0, 0.0), m(1.1, 0.03)])], INCONCLUSIVE),
    # ... nor from T = 1 here (z = 1.2 against 0.0)
    ([(m(0.3, 0.25), m(0.125, 0.005), FAR)], INCONCLUSIVE),
    # a final consistent with an alternative but significantly off Tc is still a "no"
    ([(m(1.2, 0.03), m(0.125, 0.005), FAR)], NOT_REPRODUCED),
    ([(m(None, None), m(0.125, 0.005), FAR)], INCONCLUSIVE),
    ([], INCONCLUSIVE),
])
def test_scaling_dimensions(pairs, verdict):
    assert consistent_verdict(pairs) == verdict


def test_accuracy_gate_with_no_spread_at_all():
    """Two grid points: every guess is within one step (chance 1) and a perfect classifier
    has no error, so sigma = 0: the gate must say 'not above chance', not divide by zero."""
    gate = accuracy_gate({"value": 1.0, "error": 0.0}, 2, 100)
    assert not gate.passed and gate.z == 0.0
