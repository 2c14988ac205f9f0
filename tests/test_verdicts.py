"""Verdict helpers of `rgflow reproduce` on hand-made readings whose answer is obvious: these
fail if a verdict is inverted or an error bar loses a factor."""

import math

import pytest

from rgflow.core.exact import TC
from rgflow.core.reproduce.verdicts import (
    agreement,
    common_endpoint,
    compare,
    direction,
    distance_to,
    exact_value,
    side_of_tc,
    toward,
)


def m(value, error, bound=None):
    out = {"value": value, "error": error}
    if bound:
        out["bound"] = bound
    return out


@pytest.mark.parametrize("a, b, verdict", [
    (m(2.0, 0.1), m(2.0, 0.1), "consistent"),
    (m(2.5, 0.1), m(2.0, 0.1), "higher"),        # z = +3.5
    (m(1.5, 0.1), m(2.0, 0.1), "lower"),
    # boundary: z = 0.25 / hypot(0.1, 0.1) = 1.77 is consistent; it is 2.5 if the errors were
    # not combined (0.1 alone) and 1.25 if they were added (0.2)
    (m(2.25, 0.1), m(2.0, 0.1), "consistent"),
    (m(2.30, 0.1), m(2.0, 0.1), "higher"),       # z = 2.12: needs both errors in quadrature
    (m(2.5, 0.25), exact_value(2.0), "consistent"),   # z = 2 exactly is still consistent
    (m(2.5, 0.248), exact_value(2.0), "higher"),
    (m(None, None), m(2.0, 0.1), "undetermined"),
    (m(2.0, None), m(2.0, 0.1), "undetermined"),
    # a lower bound (a reading clipped at the top of the range) can only be "higher"
    (m(5.0, 0.1, "lower"), m(3.0, 0.1), "higher"),
    (m(3.0, 0.1, "lower"), m(3.0, 0.1), "undetermined"),
    (m(2.0, 0.1, "lower"), m(3.0, 0.1), "undetermined"),
    (m(1.0, 0.1, "upper"), m(3.0, 0.1), "lower"),
    (m(4.0, 0.1, "upper"), m(3.0, 0.1), "undetermined"),
    # two exact numbers (no error at all): equal is consistent, any difference is decided
    (exact_value(0.125), exact_value(0.125), "consistent"),
    (exact_value(1.0), exact_value(0.125), "higher"),
    (exact_value(0.125), exact_value(1.0), "lower"),
    (exact_value(0.0), exact_value(1.0), "lower"),
])
def test_compare(a, b, verdict):
    assert compare(a, b)["verdict"] == verdict


def test_compare_difference_and_z():
    c = compare(m(2.3, 0.3), m(2.0, 0.4))
    assert c["difference"]["value"] == pytest.approx(0.3)
    assert c["difference"]["error"] == pytest.approx(0.5)
    assert c["z"] == pytest.approx(0.6)


@pytest.mark.parametrize("T, side", [(1.0, "below"), (TC, "at"), (3.0, "above"),
                                     (TC - 1e-3, "below"), (TC + 1e-3, "above")])
def test_side_of_tc(T, side):
    assert side_of_tc(T) == side


@pytest.mark.parametrize("t0, t1, side, word", [
    (m(2.0, 0.01), m(1.5, 0.01), "below", "moves away from Tc"),    # below Tc moving down
    (m(2.0, 0.01), m(2.2, 0.01), "below", "moves toward Tc"),
    (m(2.6, 0.01), m(3.0, 0.01), "above", "moves away from Tc"),
    (m(2.6, 0.01), m(2.4, 0.01), "above", "moves toward Tc"),       # above moving down
    (m(2.0, 0.1), m(2.05, 0.1), "below", "no significant change"),  # equal within error
    (m(2.0, 0.1), m(2.25, 0.1), "below", "no significant change"),  # z = 1.77
    (m(2.0, 0.1), m(2.3, 0.1), "below", "moves toward Tc"),         # z = 2.12
    (m(TC, 0.01), m(2.5, 0.01), "at", "moves up"),
    (m(TC, 0.01), m(2.0, 0.01), "at", "moves down"),
    (m(None, None), m(2.0, 0.01), "below", "undetermined"),
])
def test_direction(t0, t1, side, word):
    assert direction(t0, t1, side)["verdict"] == word


REF = m(2.27, 0.01)


@pytest.mark.parametrize("t0, t1, word", [
    (m(1.0, 0.01), m(2.0, 0.01), "toward Tc"),           # from below, up
    (m(2.0, 0.01), m(1.0, 0.01), "away from Tc"),        # from below, down
    (m(4.0, 0.01), m(2.5, 0.01), "toward Tc"),           # from above, down towards Tc
    (m(2.5, 0.01), m(4.0, 0.01), "away from Tc"),
    (m(1.0, 0.01), m(3.0, 0.01), "crossed Tc, ends above"),
    (m(3.5, 0.01), m(1.5, 0.01), "crossed Tc, ends below"),
    (m(2.0, 0.1), m(2.02, 0.1), "no significant change"),
    # random spins read as ">= 6" (top of the grid): a lower bound on the distance to Tc
    (m(6.0, 0.01, "lower"), m(2.3, 0.01), "toward Tc"),
    (m(None, None), m(2.3, 0.01), "undetermined"),
])
def test_toward(t0, t1, word):
    assert toward(t0, t1, REF)["verdict"] == word


def test_distance_to_combines_errors_and_keeps_bounds():
    d = distance_to(m(2.0, 0.3), m(2.27, 0.4))
    assert d["value"] == pytest.approx(0.27)
    assert d["error"] == pytest.approx(0.5)
    assert distance_to(m(6.0, 0.1, "lower"), REF)["bound"] == "lower"
    # a lower bound below the reference says nothing about the distance
    assert distance_to(m(2.0, 0.1, "lower"), REF)["value"] is None


@pytest.mark.parametrize("readings, word", [
    ([m(2.2, 0.05), m(2.25, 0.05), m(2.3, 0.05)], "common endpoint"),
    ([m(1.5, 0.05), m(2.3, 0.05), m(3.0, 0.05)], "different endpoints"),
    ([m(2.0, 0.1), m(2.25, 0.1)], "common endpoint"),     # z = 1.77
    ([m(2.0, 0.1), m(2.3, 0.1)], "different endpoints"),  # z = 2.12
    ([m(0.0, 3.0), m(10.0, 4.0)], "common endpoint"),     # z = 10 / 5 = 2 exactly
    # every pair counts: of four, only the last two disagree (z = 0.30 / 0.141 = 2.12;
    # the third is 1.98 from the first two, the fourth 0.14 from them)
    ([m(2.0, 0.1), m(2.0, 0.1), m(2.28, 0.1), m(1.98, 0.1)], "different endpoints"),
    ([m(2.0, 0.1)], "undetermined"),
    ([m(2.0, 0.1), m(6.0, 0.1, "lower")], "undetermined"),
])
def test_common_endpoint(readings, word):
    assert common_endpoint(readings)["verdict"] == word


def test_common_endpoint_weighted_mean():
    c = common_endpoint([m(1.0, 0.1), m(3.0, 0.1), m(2.0, 0.2)])
    # weights 100, 100, 25: mean (100 + 300 + 50) / 225 = 2, error 1 / sqrt(225)
    assert c["weighted_mean"]["value"] == pytest.approx(2.0)
    assert c["weighted_mean"]["error"] == pytest.approx(1 / 15)
    assert c["max_pairwise_z"] == pytest.approx(2.0 / math.sqrt(0.02))


def test_exact_value_has_zero_error():
    assert exact_value(0.125) == {"value": 0.125, "error": 0.0}


@pytest.mark.parametrize("z, word", [(0.0, "consistent"), (2.0, "consistent"),
                                     (-2.0, "consistent"), (2.1, "energy higher"),
                                     (-2.1, "energy lower"), (None, "undetermined"),
                                     (float("nan"), "undetermined")])
def test_agreement_of_the_two_observable_readings(z, word):
    assert agreement(z)["verdict"] == word
