"""The CLV models' numerical helpers: the three ways of finding distinct rows agree, and the Newton
minimiser converges or hands over."""

from __future__ import annotations

import numpy as np
import pytest

from app.clv._numeric import FloatArray, collapse_rows, distinct_rows_with_counts, newton_minimise


def _reference(*columns: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rows, inverse, counts = np.unique(np.c_[columns], axis=0, return_inverse=True, return_counts=True)
    return rows, counts, inverse.ravel()


@pytest.mark.parametrize(
    "columns",
    [
        # day numbers: the table path
        lambda rng: (rng.integers(0, 5, 3000), rng.integers(0, 30, 3000), rng.integers(0, 30, 3000)),
        # whole numbers over a wide range: the sorted-key path
        lambda rng: (rng.integers(0, 5, 3000), rng.integers(0, 10**6, 3000), rng.integers(0, 3, 3000)),
        # fractions and negatives: the lexsort path
        lambda rng: (rng.integers(0, 3, 3000), rng.integers(-2, 3, 3000) / 2, rng.integers(0, 4, 3000) / 3),
    ],
)
def test_every_path_finds_the_same_distinct_rows(columns) -> None:
    data = tuple(np.asarray(c, dtype=np.float64) for c in columns(np.random.default_rng(5)))
    rows, counts, inverse = _reference(*data)
    distinct, found_counts, found_inverse = collapse_rows(*data)
    np.testing.assert_array_equal(np.c_[tuple(distinct)], rows)
    np.testing.assert_array_equal(found_counts, counts)
    np.testing.assert_array_equal(found_inverse, inverse)
    only, only_counts = distinct_rows_with_counts(*data)
    np.testing.assert_array_equal(np.c_[tuple(only)], rows)
    np.testing.assert_array_equal(only_counts, counts)


def _quadratic(centre: FloatArray):
    scales = np.array([1.0, 100.0, 0.01])

    def fun(theta: FloatArray, hessian: bool):
        d = theta - centre
        return float(np.sum(scales * d * d)), 2 * scales * d, np.diag(2 * scales) if hessian else None

    return fun


def test_newton_reaches_an_inside_optimum_and_hands_over_one_outside_the_box() -> None:
    inside = newton_minimise(_quadratic(np.array([1.0, -2.0, 3.0])), np.zeros(3), bound=5.0)
    assert inside.success and np.allclose(inside.theta, [1.0, -2.0, 3.0], atol=1e-9)
    outside = newton_minimise(_quadratic(np.array([1.0, -2.0, 30.0])), np.zeros(3), bound=5.0)
    assert not outside.success and np.all(np.abs(outside.theta) <= 5.0)
