"""Customer summaries from order histories, and the backtest shown to merchants as "accuracy".

The backtest fits the shop's models on the orders up to a cut-off, predicts the period after it and
compares with what happened, next to the naive forecast "each customer keeps ordering at the rate
they did before" (as in FHL 2005 section 5, where the BG/NBD holdout forecast is judged the same way).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from app.clv import bgnbd
from app.clv._numeric import FloatArray, as_float_array, collapse_rows
from app.clv.clv import DEFAULT_MIN_REPEAT_BUYERS, ShopModels, expected_order_value, fit_shop_models
from app.clv.prior import BUILT_IN_PRIORS, ShopPriors


@dataclass(frozen=True, slots=True)
class CustomerSummary:
    """One row per customer with an order up to ``calibration_end``, in the inputs' customer order.

    x = repeat purchase periods, t_x = time from the first to the last purchase, T = time from the
    first purchase to the end of calibration (both in ``time_unit``), m = mean value of the repeat
    purchases (first purchase excluded, 0 when x = 0), first_value = value of the first purchase.
    """

    customer: NDArray[np.int64]
    x: FloatArray
    t_x: FloatArray
    T: FloatArray
    m: FloatArray
    first_value: FloatArray


def _buckets(
    customer: ArrayLike, time: ArrayLike, value: ArrayLike, period: float
) -> tuple[NDArray[np.int64], FloatArray, FloatArray]:
    """Orders of one customer in the same period merged into one purchase, values summed."""
    customer_arr = np.asarray(customer).astype(np.int64).ravel()
    bucket = np.floor(as_float_array(time).ravel() / period)
    (customer_u, bucket_u), _, inverse = collapse_rows(customer_arr.astype(np.float64), bucket)
    summed = np.bincount(inverse, weights=as_float_array(value).ravel(), minlength=customer_u.size)
    return customer_u.astype(np.int64), bucket_u, summed.astype(np.float64)


def summarise_transactions(
    customer: ArrayLike,
    time: ArrayLike,
    value: ArrayLike,
    calibration_end: float,
    period: float = 1.0,
    time_unit: float = 1.0,
) -> CustomerSummary:
    """(customer, order time, order value) arrays -> per-customer (x, t_x, T, m).

    Follows ``lifetimes.utils.summary_data_from_transaction_data``: times are floored to ``period``
    (default one day, so same-day orders count as one purchase, their values summed); orders after
    ``calibration_end`` are ignored; x = number of distinct purchase periods - 1; t_x and T are
    measured from the first purchase period and divided by ``time_unit`` (7 gives weeks for times
    in days); m = mean value of the purchases after the first, 0 for customers with x = 0.
    Customers are returned sorted by id.
    """
    end_bucket = float(np.floor(calibration_end / period))
    time_arr = as_float_array(time).ravel()
    in_calibration = np.floor(time_arr / period) <= end_bucket
    customer_u, bucket, spent = _buckets(
        np.asarray(customer).ravel()[in_calibration],
        time_arr[in_calibration],
        as_float_array(value).ravel()[in_calibration],
        period,
    )
    # rows are sorted by customer then period, so each customer's first row is their first purchase
    first_row = (
        np.flatnonzero(np.r_[True, customer_u[1:] != customer_u[:-1]]) if customer_u.size else customer_u
    )
    ids = customer_u[first_row]
    purchases = np.diff(np.r_[first_row, customer_u.size])
    last_row = first_row + purchases - 1
    x = (purchases - 1).astype(np.float64)
    first_bucket = bucket[first_row]
    t_x = (bucket[last_row] - first_bucket) * period / time_unit
    T = (end_bucket - first_bucket) * period / time_unit
    total = np.add.reduceat(spent, first_row) if spent.size else np.zeros(0)
    first_value = spent[first_row]
    with np.errstate(invalid="ignore", divide="ignore"):
        m = np.where(x > 0, (total - first_value) / np.maximum(x, 1.0), 0.0)
    return CustomerSummary(ids, x, t_x, T, m.astype(np.float64), first_value.astype(np.float64))


@dataclass(frozen=True, slots=True)
class ForecastAccuracy:
    """Predicted vs actual over the customers of a backtest; MAE and bias are per customer."""

    predicted_total: float
    actual_total: float
    mean_absolute_error: float
    bias: float  # mean of (predicted - actual); positive = over-forecast

    @classmethod
    def compare(cls, predicted: FloatArray, actual: FloatArray) -> ForecastAccuracy:
        if predicted.size == 0:
            return cls(0.0, 0.0, 0.0, 0.0)
        error = predicted - actual
        return cls(
            float(np.sum(predicted)),
            float(np.sum(actual)),
            float(np.mean(np.abs(error))),
            float(np.mean(error)),
        )


@dataclass(frozen=True, slots=True)
class BacktestResult:
    """Per customer (``customer`` ids) and overall: the model's and the naive forecast vs what happened.

    When the shop's models could not be fitted (``model_used`` false, ``reasons`` says why), the
    model columns repeat the naive forecast so nothing is NaN.
    """

    calibration_end: float
    holdout_end: float
    holdout_length: float  # in time_unit
    customer: NDArray[np.int64]
    actual_orders: FloatArray
    predicted_orders: FloatArray
    naive_orders: FloatArray
    actual_revenue: FloatArray
    predicted_revenue: FloatArray
    naive_revenue: FloatArray
    orders: ForecastAccuracy
    revenue: ForecastAccuracy
    naive_orders_accuracy: ForecastAccuracy
    naive_revenue_accuracy: ForecastAccuracy
    model_used: bool
    reasons: tuple[str, ...]
    models: ShopModels


def backtest(
    customer: ArrayLike,
    time: ArrayLike,
    value: ArrayLike,
    calibration_end: float,
    holdout_end: float,
    period: float = 1.0,
    time_unit: float = 1.0,
    min_repeat_buyers: int | None = DEFAULT_MIN_REPEAT_BUYERS,
    priors: ShopPriors | None = BUILT_IN_PRIORS,
) -> BacktestResult:
    """Fit on orders up to ``calibration_end``, predict (calibration_end, holdout_end], compare.

    Only customers whose first order is on or before the cut-off are scored (new customers of the
    holdout period are outside what a per-customer forecast can say). Holdout orders are counted as
    distinct purchase periods, like x. Model forecast: E[Y(h) | x, t_x, T] (FHL eq. 10) orders, each
    worth the Gamma-Gamma conditional expected value (Fader & Hardie 2013 eq. 5). Naive forecast:
    x / T repeat orders per unit of time kept up for the holdout (0 when T = 0), each worth the
    customer's average calibration order (first order included). The models are fitted as
    ``fit_shop_models`` does, with ``priors`` (None: maximum likelihood); times are in days.
    """
    customer_arr = np.asarray(customer).astype(np.int64).ravel()
    time_arr = as_float_array(time).ravel()
    value_arr = as_float_array(value).ravel()
    summary = summarise_transactions(customer_arr, time_arr, value_arr, calibration_end, period, time_unit)
    end_bucket = np.floor(calibration_end / period)
    holdout_bucket = np.floor(holdout_end / period)
    horizon = float(holdout_bucket - end_bucket) * period / time_unit

    bucket_time = np.floor(time_arr / period)
    in_holdout = (bucket_time > end_bucket) & (bucket_time <= holdout_bucket)
    h_customer, _, h_spent = _buckets(
        customer_arr[in_holdout], time_arr[in_holdout], value_arr[in_holdout], period
    )
    position = np.searchsorted(summary.customer, h_customer)
    position_clipped = np.minimum(position, max(summary.customer.size - 1, 0))
    known = (position < summary.customer.size) & (summary.customer[position_clipped] == h_customer)
    n = summary.customer.size
    actual_orders = np.bincount(position[known], minlength=n).astype(np.float64)
    actual_revenue = np.bincount(position[known], weights=h_spent[known], minlength=n).astype(np.float64)

    with np.errstate(invalid="ignore", divide="ignore"):
        naive_rate = np.where(summary.T > 0, summary.x / summary.T, 0.0)
        average_order = (summary.first_value + summary.m * summary.x) / (summary.x + 1.0)
    naive_orders = naive_rate * horizon
    naive_revenue = naive_orders * average_order

    models = fit_shop_models(
        summary.x,
        summary.t_x,
        summary.T,
        summary.m,
        min_repeat_buyers,
        priors=priors,
        days_per_unit=time_unit,
    )
    if models.purchases is not None:
        predicted_orders = bgnbd.expected_purchases(
            models.purchases, horizon, summary.x, summary.t_x, summary.T
        )
        predicted_revenue = predicted_orders * expected_order_value(models, summary.x, summary.m)
    else:
        predicted_orders, predicted_revenue = naive_orders, naive_revenue

    return BacktestResult(
        calibration_end=float(calibration_end),
        holdout_end=float(holdout_end),
        holdout_length=horizon,
        customer=summary.customer,
        actual_orders=actual_orders,
        predicted_orders=predicted_orders,
        naive_orders=naive_orders,
        actual_revenue=actual_revenue,
        predicted_revenue=predicted_revenue,
        naive_revenue=naive_revenue,
        orders=ForecastAccuracy.compare(predicted_orders, actual_orders),
        revenue=ForecastAccuracy.compare(predicted_revenue, actual_revenue),
        naive_orders_accuracy=ForecastAccuracy.compare(naive_orders, actual_orders),
        naive_revenue_accuracy=ForecastAccuracy.compare(naive_revenue, actual_revenue),
        model_used=models.purchases is not None,
        reasons=models.reasons,
        models=models,
    )
