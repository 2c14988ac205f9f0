"""Verdicts from numbers with error bars (rgflow.core.reproduce.verdicts): comparisons with
bounds, flows toward or away from Tc."""

import math

import pytest

from rgflow.core.reproduce.markdown import pm
from rgflow.core.reproduce.verdicts import compare, meas, toward


def test_compare_verdicts_and_bounds():
    m = meas
    assert compare(m(1.0, 0.1), m(1.1, 0.1))["verdict"] == "consistent"
    c = compare(m(2.0, 0.1), m(1.0, 0.1))
    assert c["verdict"] == "higher" and c["z"] == pytest.approx(1.0 / math.hypot(0.1, 0.1))
    assert compare(m(0.0, 0.1), m(1.0, 0.1))["verdict"] == "lower"
    # A lower bound can only be concluded higher.
    assert compare(m(6.0, 0.0, "lower"), m(2.0, 0.1))["verdict"] == "higher"
    assert compare(m(2.0, 0.1, "lower"), m(6.0, 0.1))["verdict"] == "undetermined"
    assert compare(m(2.0, 0.1), m(6.0, 0.0, "lower"))["verdict"] == "lower"
    assert compare(m(None, None), m(1.0, 0.1))["verdict"] == "undetermined"
    # A value without an error bar is kept aside, never compared.
    no_err = m(6.06, float("nan"))
    assert no_err["value"] is None and no_err["estimate_without_error"] == 6.06
    assert compare(no_err, m(1.0, 0.1))["verdict"] == "undetermined"
    assert pm(no_err) == "6.06 (no error bar)"
    # Distances: a start clipped at the top of the range moving to near Tc is "toward".
    tw = toward(m(6.0, 0.0, "lower"), m(2.3, 0.05), m(2.27, 0.02))
    assert tw["verdict"] == "toward Tc"
    tw = toward(m(2.3, 0.05), m(6.0, 0.0, "lower"), m(2.27, 0.02))
    assert tw["verdict"] == "away from Tc"
    assert toward(m(2.2, 0.1), m(2.3, 0.1), m(2.27, 0.02))["verdict"] == \
        "no significant change"
    assert toward(m(5.0, 0.1), m(0.4, 0.2), m(2.27, 0.02))["verdict"] == \
        "crossed Tc, ends below"
