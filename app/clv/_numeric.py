"""Numerical helpers shared by the CLV models: deduplication of rows and bounded float output."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

FloatArray = NDArray[np.float64]


def as_float_array(values: ArrayLike) -> FloatArray:
    return np.asarray(values, dtype=np.float64)


def collapse_rows(*columns: FloatArray) -> tuple[list[FloatArray], FloatArray, NDArray[np.intp]]:
    """Distinct rows of equally long 1-d columns.

    Returns the distinct rows (one array per column), how many input rows each stands for, and the
    index mapping every input row to its distinct row. A lexsort is used instead of
    ``np.unique(axis=0)``, which is several times slower on millions of rows.
    """
    n = columns[0].shape[0]
    if n == 0:
        empty = np.zeros(0, dtype=np.float64)
        return [empty.copy() for _ in columns], empty, np.zeros(0, dtype=np.intp)
    order = np.lexsort(columns[::-1])
    changed = np.zeros(n, dtype=bool)
    changed[0] = True
    for column in columns:
        sorted_column = column[order]
        changed[1:] |= sorted_column[1:] != sorted_column[:-1]
    starts = np.flatnonzero(changed)
    distinct = [column[order[starts]] for column in columns]
    counts = np.diff(np.append(starts, n)).astype(np.float64)
    group_of_sorted = np.cumsum(changed) - 1
    inverse = np.empty(n, dtype=np.intp)
    inverse[order] = group_of_sorted
    return distinct, counts, inverse


def finite_or(values: FloatArray, fallback: float, lower: float, upper: float) -> FloatArray:
    """Replace NaN/inf by ``fallback`` and clip to [lower, upper]."""
    cleaned = np.where(np.isfinite(values), values, fallback)
    return np.clip(cleaned, lower, upper)


def weighted_sum(weights: FloatArray, values: FloatArray) -> float:
    """sum(weights * values) without BLAS: ``np.dot`` on long vectors may start BLAS threads that
    busy-wait and slow down by 10x when the cores are shared with other work."""
    return float(np.sum(np.multiply(weights, values)))
