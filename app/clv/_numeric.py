"""Numerical helpers shared by the CLV models: deduplication of rows, a small Newton minimiser and
bounded float output."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.optimize import minimize

FloatArray = NDArray[np.float64]
_KEY_LIMIT = 2**62


def as_float_array(values: ArrayLike) -> FloatArray:
    return np.asarray(values, dtype=np.float64)


def collapse_rows(*columns: FloatArray) -> tuple[list[FloatArray], FloatArray, NDArray[np.intp]]:
    """Distinct rows of equally long 1-d columns.

    Returns the distinct rows (one array per column), how many input rows each stands for, and the
    index mapping every input row to its distinct row, the distinct rows in lexicographic order.
    Whole non-negative numbers (counts and day numbers, the usual case) are packed into one int64
    key and sorted once; other values take a lexsort. Both are several times faster than
    ``np.unique(axis=0)`` on millions of rows.
    """
    n = columns[0].shape[0]
    if n == 0:
        empty = np.zeros(0, dtype=np.float64)
        return [empty.copy() for _ in columns], empty, np.zeros(0, dtype=np.intp)
    key = _integer_key(columns)
    if key is not None and int(key.max()) < max(4 * n, 1 << 16):
        # keys in a range a few times the row count (day numbers): a table instead of a sort
        table = np.bincount(key)
        distinct_keys = np.flatnonzero(table)
        rank = np.cumsum(table > 0) - 1
        return _decode(distinct_keys, columns), table[distinct_keys].astype(np.float64), rank[key]
    if key is not None:
        order = np.argsort(key)
        sorted_key = key[order]
        changed = np.empty(n, dtype=bool)
        changed[0] = True
        np.not_equal(sorted_key[1:], sorted_key[:-1], out=changed[1:])
        return _groups(columns, order, changed)
    order = np.lexsort(columns[::-1])
    changed = np.zeros(n, dtype=bool)
    changed[0] = True
    for column in columns:
        sorted_column = column[order]
        changed[1:] |= sorted_column[1:] != sorted_column[:-1]
    return _groups(columns, order, changed)


def distinct_rows_with_counts(*columns: FloatArray) -> tuple[list[FloatArray], FloatArray]:
    """The distinct rows and their counts, as ``collapse_rows`` gives them, without the index back
    to the input rows: for whole numbers one plain sort of the packed keys (no argsort)."""
    key = _integer_key(columns) if columns[0].size else None
    if key is None:
        distinct, counts, _ = collapse_rows(*columns)
        return distinct, counts
    key.sort()
    changed = np.empty(key.size, dtype=bool)
    changed[0] = True
    np.not_equal(key[1:], key[:-1], out=changed[1:])
    starts = np.flatnonzero(changed)
    counts = np.diff(np.append(starts, key.size)).astype(np.float64)
    return _decode(key[starts], columns), counts


def _decode(keys: NDArray[np.int64], columns: tuple[FloatArray, ...]) -> list[FloatArray]:
    """The column values packed in ``keys`` by ``_integer_key``."""
    rest = keys
    decoded: list[FloatArray] = []
    for column in columns[:0:-1]:
        rest, value = np.divmod(rest, int(np.max(column)) + 1)
        decoded.append(value.astype(np.float64))
    decoded.append(rest.astype(np.float64))
    return decoded[::-1]


def _integer_key(columns: tuple[FloatArray, ...]) -> NDArray[np.int64] | None:
    """One int64 per row that orders like the rows, or None when a column is not whole numbers >= 0
    or the key would not fit."""
    span = 1
    for column in columns:
        top = float(np.max(column))
        if not (np.isfinite(top) and float(np.min(column)) >= 0 and top < 2**31):
            return None
        if not np.array_equal(np.floor(column), column):
            return None
        span *= int(top) + 1
        if span >= _KEY_LIMIT:
            return None
    key = columns[0].astype(np.int64)
    for column in columns[1:]:
        key *= int(np.max(column)) + 1
        key += column.astype(np.int64)
    return key


def _groups(
    columns: tuple[FloatArray, ...], order: NDArray[np.intp], changed: NDArray[np.bool_]
) -> tuple[list[FloatArray], FloatArray, NDArray[np.intp]]:
    n = order.size
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


@dataclass(frozen=True, slots=True)
class NewtonResult:
    theta: FloatArray
    value: float
    gradient: FloatArray
    iterations: int
    success: bool
    message: str


MAX_STEP = 2.0  # longest Newton step in any log-parameter (a factor e^2)
ValueGradHessian = Callable[[FloatArray, bool], tuple[float, FloatArray, FloatArray | None]]


def newton_minimise(
    fun: ValueGradHessian, theta0: FloatArray, bound: float, gtol: float = 1e-10, max_iter: int = 100
) -> NewtonResult:
    """Minimise a smooth function of a few variables inside the box [-bound, bound]^k by damped Newton
    steps (Levenberg-Marquardt shift when the Hessian is not positive definite) with a backtracking
    line search. ``fun(theta, True)`` returns (value, gradient, Hessian); ``fun(theta, False)`` may
    leave the Hessian out. ``success`` is false when no step inside the box lowers the function
    (e.g. the optimum is on the box): the caller then hands over to a bounded quasi-Newton method
    from ``theta``.

    Near the optimum the steps converge quadratically, so few evaluations reach a gradient of 1e-10;
    no BLAS call is made (on a busy machine BLAS threads of a quasi-Newton solver can spin)."""
    theta = np.clip(np.asarray(theta0, dtype=np.float64), -bound, bound)
    value, grad, hess = fun(theta, True)
    k = theta.size
    for iteration in range(max_iter):
        if not np.isfinite(value) or hess is None or not np.all(np.isfinite(hess)):
            return NewtonResult(theta, value, grad, iteration, False, "non-finite objective")
        if float(np.max(np.abs(grad))) < gtol:
            return NewtonResult(theta, value, grad, iteration, True, "gradient below tolerance")
        step = _damped_step(hess, grad, k)
        slope = float(np.sum(grad * step)) if step is not None else 0.0
        if step is None or not slope < 0:
            return NewtonResult(theta, value, grad, iteration, False, "no descent direction")
        # far from the optimum the Hessian can be nearly singular: no step longer than MAX_STEP
        size = min(1.0, MAX_STEP / float(np.max(np.abs(step))))
        for _ in range(40):
            candidate = theta + size * step
            if not np.any(np.abs(candidate) > bound):
                new_value, new_grad, new_hess = fun(candidate, True)
                if np.isfinite(new_value) and new_value <= value + 1e-4 * size * slope:
                    break
            size *= 0.5
        else:
            return NewtonResult(theta, value, grad, iteration, False, "line search failed")
        if value - new_value <= 1e-15 * max(1.0, abs(value)) and float(np.max(np.abs(size * step))) < 1e-12:
            return NewtonResult(candidate, new_value, new_grad, iteration + 1, True, "no further progress")
        theta, value, grad, hess = candidate, new_value, new_grad, new_hess
    return NewtonResult(theta, value, grad, max_iter, False, "iteration limit")


def _damped_step(hess: FloatArray, grad: FloatArray, k: int) -> FloatArray | None:
    """Solve (H + mu I) p = -g with the smallest mu >= 0 (tried on a doubling scale) that makes the
    matrix positive definite, by a Cholesky factorisation written out for k of 3 or 4."""
    scale = float(np.max(np.abs(np.diag(hess)))) or 1.0
    mu = 0.0
    for _ in range(60):
        shifted = hess + mu * np.eye(k)
        factor = _cholesky(shifted)
        if factor is not None:
            return _cholesky_solve(factor, -grad)
        mu = max(2.0 * mu, 1e-8 * scale)
    return None


def _cholesky(matrix: FloatArray) -> list[list[float]] | None:
    k = matrix.shape[0]
    low = [[0.0] * k for _ in range(k)]
    for i in range(k):
        for j in range(i + 1):
            total = float(matrix[i, j]) - sum(low[i][m] * low[j][m] for m in range(j))
            if i == j:
                if not total > 0:
                    return None
                low[i][i] = total**0.5
            else:
                low[i][j] = total / low[j][j]
    return low


def _cholesky_solve(low: list[list[float]], rhs: FloatArray) -> FloatArray:
    k = len(low)
    y = [0.0] * k
    for i in range(k):
        y[i] = (float(rhs[i]) - sum(low[i][m] * y[m] for m in range(i))) / low[i][i]
    out = [0.0] * k
    for i in reversed(range(k)):
        out[i] = (y[i] - sum(low[m][i] * out[m] for m in range(i + 1, k))) / low[i][i]
    return np.array(out, dtype=np.float64)


def minimise_in_box(fun: ValueGradHessian, theta0: FloatArray, bound: float) -> NewtonResult:
    """``newton_minimise``, handing over to L-BFGS-B (the analytic gradient, the same box) from where
    Newton stopped when it could not finish (e.g. the optimum is on the box); ``iterations`` counts
    both, ``gradient`` is the final one."""
    newton = newton_minimise(fun, theta0, bound)
    if newton.success:
        return newton
    result = minimize(
        lambda t: fun(t, False)[:2],
        newton.theta,
        jac=True,
        method="L-BFGS-B",
        bounds=[(-bound, bound)] * newton.theta.size,
        options={"maxiter": 2000, "ftol": 1e-15, "gtol": 1e-10, "maxcor": 20},
    )
    theta = np.asarray(result.x, dtype=np.float64)
    value, gradient, _ = fun(theta, False)
    return NewtonResult(
        theta, value, gradient, newton.iterations + int(result.nit), bool(result.success), str(result.message)
    )
