"""Summaries from order histories and the holdout backtest."""

from __future__ import annotations

import numpy as np

from app.clv import backtest


def test_summary_reproduces_the_published_cdnow_calibration_summary(
    cdnow_transactions, cdnow_summary_with_spend
):
    """cdnow_customers_summary_with_transactions.csv (lifetimes 0.11.3) is this summary of
    CDNOW_sample.txt up to 1997-09-30, in weeks, rounded to 2 decimals."""
    data = cdnow_transactions
    summary = backtest.summarise_transactions(
        data.customer, data.day, data.value, data.calibration_end, time_unit=7.0
    )
    expected = cdnow_summary_with_spend
    np.testing.assert_array_equal(summary.customer, np.arange(1, 2358))
    np.testing.assert_array_equal(summary.x, expected.x)
    np.testing.assert_allclose(summary.t_x, expected.t_x, atol=0.005 + 1e-9)
    np.testing.assert_allclose(summary.T, expected.T, atol=0.005 + 1e-9)
    np.testing.assert_allclose(summary.m, expected.m, atol=0.005 + 1e-9)


def test_same_day_orders_count_once_and_first_order_is_left_out_of_m():
    summary = backtest.summarise_transactions(
        customer=[7, 7, 7, 7, 9],
        time=[0.2, 0.7, 3.0, 12.0, 5.0],
        value=[10.0, 5.0, 30.0, 100.0, 8.0],
        calibration_end=10.0,
    )
    assert summary.customer.tolist() == [7, 9]
    assert summary.x.tolist() == [1.0, 0.0]
    assert summary.t_x.tolist() == [3.0, 0.0]
    assert summary.T.tolist() == [10.0, 5.0]
    assert summary.m.tolist() == [30.0, 0.0]
    assert summary.first_value.tolist() == [15.0, 8.0]


def test_cdnow_backtest_beats_the_naive_forecast(cdnow_transactions):
    data = cdnow_transactions
    result = backtest.backtest(
        data.customer, data.day, data.value, data.calibration_end, data.holdout_end, time_unit=7.0
    )
    assert result.model_used and result.reasons == ()
    assert result.holdout_length == 39.0
    assert result.customer.size == 2357
    assert result.orders.actual_total == float(np.sum(result.actual_orders))
    assert result.orders.mean_absolute_error < result.naive_orders_accuracy.mean_absolute_error
    assert result.revenue.mean_absolute_error < result.naive_revenue_accuracy.mean_absolute_error
    assert abs(result.orders.bias) < abs(result.naive_orders_accuracy.bias)


def test_holdout_orders_are_counted_per_purchase_day_for_known_customers_only():
    result = backtest.backtest(
        customer=[1, 1, 1, 1, 2],
        time=[0.0, 5.0, 11.0, 11.5, 12.0],
        value=[10.0, 10.0, 7.0, 3.0, 50.0],
        calibration_end=10.0,
        holdout_end=20.0,
    )
    assert result.customer.tolist() == [1]
    assert result.actual_orders.tolist() == [1.0]
    assert result.actual_revenue.tolist() == [10.0]


def test_shop_without_enough_history_reports_why_and_uses_the_naive_forecast():
    """Maximum likelihood needs 20 repeat buyers (with the prior a model is fitted from the first)."""
    result = backtest.backtest(
        [1, 1, 2], [0.0, 3.0, 1.0], [5.0, 6.0, 7.0], calibration_end=5.0, holdout_end=10.0, priors=None
    )
    assert not result.model_used
    assert result.reasons and "at least 20" in result.reasons[0]
    np.testing.assert_array_equal(result.predicted_orders, result.naive_orders)
    assert np.all(np.isfinite(result.predicted_revenue))
