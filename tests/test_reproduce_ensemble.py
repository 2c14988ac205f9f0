"""Ensembles over training seeds (rgflow.core.reproduce.ensemble): hand-made inputs with known
answers, and a statistical check that the reported error is the scatter of the mean."""

import math

import numpy as np
import pytest

from rgflow.core.reproduce.ensemble import (
    FLOOR_BASIS,
    SEM_BASIS,
    SINGLE_BASIS,
    combined_z,
    ensemble,
    ensemble_tree,
    stack_seeds,
)
from rgflow.core.reproduce.verdicts import compare, meas

CASES = [
    # (per-seed (value, error[, bound]), value, error, seed_spread, within_run_error, n_seeds)
    ([(1.0, 0.1), (3.0, 0.1)], 2.0, 1.0, math.sqrt(2.0), 0.1, 2),
    ([(1.0, 0.0), (2.0, 0.0), (3.0, 0.0), (4.0, 0.0)], 2.5, math.sqrt(5 / 3) / 2,
     math.sqrt(5 / 3), 0.0, 4),
    # seeds that agree better than their own errors: the within-run error is the floor
    ([(5.0, 0.3), (5.0, 0.4)], 5.0, math.sqrt((0.09 + 0.16) / 2) / math.sqrt(2), 0.0,
     math.sqrt((0.09 + 0.16) / 2), 2),
    ([(1.0, 0.3), (1.2, 0.3), (1.1, 0.3)], 1.1, 0.3 / math.sqrt(3), 0.1, 0.3, 3),
    ([(2.0, 0.5)], 2.0, 0.5, None, 0.5, 1),
    # a seed without a value or without an error bar is left out of the mean
    ([(1.0, 0.2), (None, None), (2.0, float("nan")), (3.0, 0.2)], 2.0, 1.0, math.sqrt(2.0),
     0.2, 2),
]


@pytest.mark.parametrize(("seeds", "value", "error", "spread", "within", "n"), CASES)
def test_ensemble_known_answers(seeds, value, error, spread, within, n):
    per_seed = [meas(*s) for s in seeds]
    e = ensemble(per_seed)
    assert e["value"] == pytest.approx(value, abs=1e-12)
    assert e["error"] == pytest.approx(error, abs=1e-12)
    assert e["within_run_error"] == pytest.approx(within, abs=1e-12)
    assert e["n_seeds"] == n
    if spread is None:
        assert "seed_spread" not in e and e["error_basis"] == SINGLE_BASIS
    else:
        assert e["seed_spread"] == pytest.approx(spread, abs=1e-12)
        assert e["error_basis"] == (SEM_BASIS if spread >= within else FLOOR_BASIS)
    assert e["seeds"] == per_seed  # every seed as measured, the unusable ones too


def test_ensemble_bounds():
    lower = ensemble([meas(6.0, 0.0, "lower"), meas(5.0, 0.1)])
    assert lower["bound"] == "lower" and lower["value"] == pytest.approx(5.5)
    # the mean of a lower bound and a measurement is only known from below: "higher" only
    assert compare(lower, meas(2.0, 0.1))["verdict"] == "higher"
    assert compare(lower, meas(9.0, 0.1))["verdict"] == "undetermined"
    mixed = ensemble([meas(6.0, 0.0, "lower"), meas(0.1, 0.0, "upper")])
    assert mixed["value"] is None and mixed["error"] is None
    assert ensemble([meas(None, None), meas(None, None)])["value"] is None


def test_verdicts_follow_the_ensemble_not_one_seed():
    """Two seeds each far from 0 within their own errors, but on opposite sides: the ensemble
    is consistent with 0, and its error is the seeds' scatter, not the runs' errors."""
    e = ensemble([meas(1.0, 0.01), meas(-1.0, 0.01)])
    assert compare(meas(1.0, 0.01), meas(0.0, 0.0))["verdict"] == "higher"
    c = compare(e, meas(0.0, 0.0))
    assert c["verdict"] == "consistent" and c["z"] == 0.0
    assert e["error"] == pytest.approx(1.0)


def test_ensemble_tree_merges_numbers_settings_and_lists():
    trees = [
        {"settings": {"L": 8, "chi2": 1.5}, "x": meas(1.0, 0.1), "rows": [meas(2.0, 0.1)],
         "label": "same", "other": 3},
        {"settings": {"L": 8, "chi2": 2.5}, "x": meas(3.0, 0.1), "rows": [meas(4.0, 0.1)],
         "label": "same", "other": 4},
    ]
    out = ensemble_tree(trees)
    assert out["settings"] == {"L": 8, "chi2": {"seeds": [1.5, 2.5]}}
    assert out["x"]["value"] == pytest.approx(2.0) and out["x"]["n_seeds"] == 2
    assert out["rows"][0]["value"] == pytest.approx(3.0)
    assert out["label"] == "same"
    assert out["other"] == {"seeds": [3, 4]}


def test_combined_z_is_stouffers():
    e = ensemble([meas(z, 1.0) for z in (0.5, 1.5, 1.0, 1.0)])
    assert combined_z(e) == pytest.approx(1.0 * math.sqrt(4))
    assert combined_z(meas(None, None)) is None


def test_stack_seeds():
    per_seed = [{"grid": np.arange(3), "maps": np.full((2, 2), k)} for k in range(3)]
    out = stack_seeds(per_seed, ("grid",))
    np.testing.assert_array_equal(out["grid"], np.arange(3))
    assert out["maps"].shape == (3, 2, 2) and (out["maps"][2] == 2).all()
    np.testing.assert_array_equal(out["seeds"], np.arange(3))


def test_reported_error_matches_the_scatter_of_the_mean():
    """Many repeats of N seeds whose values scatter by a known seed spread plus their own
    within-run noise: the mean squared reported error equals the observed variance of the
    ensemble value, within the sampling error of both."""
    rng = np.random.default_rng(11)
    repeats, n_seeds, seed_sd = 3000, 5, 0.3
    run_err = np.array([0.05, 0.1, 0.2, 0.1, 0.05])
    values, sem2 = [], []
    for _ in range(repeats):
        x = 1.0 + rng.normal(0, seed_sd, n_seeds) + rng.normal(0, run_err)
        e = ensemble([meas(v, s) for v, s in zip(x, run_err, strict=True)])
        values.append(e["value"])
        sem2.append(e["error"] ** 2)
    values, sem2 = np.array(values), np.array(sem2)
    observed = values.var(ddof=1)
    expected = (seed_sd ** 2 + np.mean(run_err ** 2)) / n_seeds  # the true variance
    # sampling error of a variance estimate from `repeats` normal draws, and of mean(SEM²)
    se_observed = observed * math.sqrt(2 / (repeats - 1))
    se_reported = sem2.std(ddof=1) / math.sqrt(repeats)
    assert abs(sem2.mean() - observed) < 3 * math.hypot(se_observed, se_reported)
    assert abs(sem2.mean() - expected) < 3 * se_reported
    assert abs(values.mean() - 1.0) < 3 * math.sqrt(expected / repeats)


def test_two_seeds_with_no_seed_effect_keep_their_coverage():
    """Two seeds whose values differ only by their runs' own noise (σ = 0.1 each, no seed
    effect): the mean's true error is 0.1/√2. s from two values has one degree of freedom, so
    s/√N alone misses the truth by more than 2 reported errors in about 30 % of repeats
    (Student's t, 1 dof); with the within-run floor the misses stay below the normal 4.6 %."""
    rng = np.random.default_rng(5)
    repeats, sigma = 4000, 0.1
    misses = 0
    for _ in range(repeats):
        x = rng.normal(0.0, sigma, 2)
        e = ensemble([meas(float(v), sigma) for v in x])
        misses += abs(e["value"]) > 2 * e["error"]
    # binomial error of a 4.6 % rate over 4000 repeats: 0.0033
    assert misses / repeats < 0.046 + 3 * 0.0033
