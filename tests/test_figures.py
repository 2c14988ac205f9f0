"""The ensemble drawing shared by every figure of `rgflow reproduce`: mean over seeds and its
standard error, computed as the report computes them (core/SCIENCE.md §8)."""

import numpy as np
import pytest

from rgflow.core.reproduce.figures import ensemble_mean, seed_values


def test_mean_and_standard_error_over_seeds():
    values = [[1.0, 2.0, 5.0], [3.0, np.nan, 5.0], [2.0, 4.0, 5.0]]
    errors = np.full((3, 3), 0.1)
    mean, err = ensemble_mean(values, errors)
    np.testing.assert_allclose(mean[[0, 2]], [2.0, 5.0])
    # s = 1 over the values 1, 3, 2: error s / sqrt(3); equal values: zero spread
    np.testing.assert_allclose(err[[0, 2]], [1 / np.sqrt(3), 0.0])
    assert np.isnan(mean[1]) and np.isnan(err[1])  # one seed has no value there


def test_one_seed_keeps_its_own_error():
    mean, err = ensemble_mean([[2.0, 3.0]], [[0.2, 0.3]])
    np.testing.assert_array_equal(mean, [2.0, 3.0])
    np.testing.assert_array_equal(err, [0.2, 0.3])


@pytest.mark.parametrize("m, values", [
    ({"value": 2.0, "error": 0.1}, [2.0]),
    ({"value": 2.0, "error": 0.1, "seeds": [{"value": 1.0}, {"value": 3.0}]}, [1.0, 3.0]),
    ({"value": None, "error": None}, [None]),
])
def test_seed_values(m, values):
    assert seed_values(m) == values
