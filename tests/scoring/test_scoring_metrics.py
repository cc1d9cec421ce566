"""Shop metrics and cohorts (docs/metrics.md) against hand counts."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from app.scoring.metrics import (
    as_day_numbers,
    cohort_table,
    days_between_orders,
    median_days_between_orders,
    repeat_purchase_rate,
    retention_by_period,
    revenue_share_by_segment,
    shop_metrics,
)
from app.scoring.rules import SEGMENT_CODES
from app.vocabulary import SEGMENT_NAMES

# A small shop, by hand (2024 is a leap year):
#   customer 0: Jan 5 ($10), Feb 10 ($20), Mar 15 ($30)   70 days / 2 = 35 between orders
#   customer 1: Jan 20 ($50)
#   customer 2: Feb 1 ($40), Feb 21 ($10), Mar 12 ($15)   40 days / 2 = 20
#   customer 3: Mar 3 ($25), Apr 10 ($5)                   38 days / 1 = 38
ORDERS = [
    (0, "2024-01-05", 10.0),
    (1, "2024-01-20", 50.0),
    (2, "2024-02-01", 40.0),
    (0, "2024-02-10", 20.0),
    (2, "2024-02-21", 10.0),
    (3, "2024-03-03", 25.0),
    (2, "2024-03-12", 15.0),
    (0, "2024-03-15", 30.0),
    (3, "2024-04-10", 5.0),
]
CUSTOMER = np.array([c for c, _, _ in ORDERS])
DATE = np.array([d for _, d, _ in ORDERS], dtype="datetime64[D]")
VALUE = np.array([v for _, _, v in ORDERS])


def test_repeat_purchase_rate_is_the_share_of_customers_with_two_orders() -> None:
    assert repeat_purchase_rate(CUSTOMER) == 0.75


def test_repeat_purchase_rate_ignores_indexes_without_orders() -> None:
    assert repeat_purchase_rate([0, 0, 5]) == 0.5


def test_days_between_orders_per_customer() -> None:
    result = days_between_orders(CUSTOMER, DATE)
    assert result.per_customer[[0, 2, 3]].tolist() == [35.0, 20.0, 38.0]
    assert np.isnan(result.per_customer[1])


def test_average_days_between_orders_is_the_mean_over_repeat_customers() -> None:
    result = days_between_orders(CUSTOMER, DATE)
    assert result.repeat_customers == 3
    assert result.mean == pytest.approx((35 + 20 + 38) / 3)


def test_shop_median_days_between_orders_is_over_repeat_customers() -> None:
    assert days_between_orders(CUSTOMER, DATE).median == 35.0


def test_median_from_the_customer_aggregates_skips_one_order_customers() -> None:
    assert median_days_between_orders([35.0, np.nan, 20.0, 38.0]) == 35.0


def test_no_repeat_customers_means_no_average_interval() -> None:
    result = days_between_orders([0, 1], np.array(["2024-01-01", "2024-02-01"], dtype="datetime64[D]"))
    assert (result.mean, result.median, result.repeat_customers) == (None, None, 0)


def test_monthly_retention_and_churn_by_hand() -> None:
    # Jan {0, 1}; Feb {0, 2}: 0 came back (1 of 2); Mar {0, 2, 3}: 0 and 2 came back (2 of 2);
    # Apr {3}: 3 came back (1 of 3)
    table = retention_by_period(CUSTOMER, DATE)
    assert table.period_starts == [dt.date(2024, m, 1) for m in (1, 2, 3, 4)]
    assert table.period_ends[-1] == dt.date(2024, 4, 30)
    assert table.customers == [2, 2, 3, 1]
    assert table.retained == [0, 1, 2, 1]
    assert table.retention_rate == [None, 0.5, 1.0, pytest.approx(1 / 3)]
    assert table.churn_rate == [None, 0.5, 0.0, pytest.approx(2 / 3)]


def test_monthly_retention_marks_the_current_month_incomplete() -> None:
    assert retention_by_period(CUSTOMER, DATE).complete == [True, True, True, False]


def test_thirty_day_retention_counts_back_from_as_of() -> None:
    # as_of Apr 10; block k = (Apr 10 - day) // 30, oldest first:
    #   Dec 13 - Jan 11: {0};     Jan 12 - Feb 10: {1, 2, 0}
    #   Feb 11 - Mar 11: {2, 3};  Mar 12 - Apr 10: {2, 0, 3}
    table = retention_by_period(CUSTOMER, DATE, period_days=30, as_of=dt.date(2024, 4, 10))
    assert table.period_starts == [
        dt.date(2023, 12, 13),
        dt.date(2024, 1, 12),
        dt.date(2024, 2, 11),
        dt.date(2024, 3, 12),
    ]
    assert table.period_ends[-1] == dt.date(2024, 4, 10)
    assert table.customers == [1, 3, 2, 3]
    assert table.retained == [0, 1, 1, 2]
    assert table.retention_rate == [None, 1.0, pytest.approx(1 / 3), 1.0]
    assert table.complete == [True, True, True, True]


def test_retention_after_an_empty_period_has_no_rate() -> None:
    days = np.array(["2024-01-03", "2024-03-03"], dtype="datetime64[D]")
    table = retention_by_period([0, 0], days)
    assert table.customers == [1, 0, 1]
    assert table.retention_rate == [None, 0.0, None]


def test_retention_ignores_orders_after_as_of() -> None:
    table = retention_by_period(CUSTOMER, DATE, as_of=dt.date(2024, 2, 29))
    assert table.customers == [2, 2]
    assert table.complete == [True, True]


def test_cohort_table_by_hand() -> None:
    # cohorts by first order: Jan {0, 1}, Feb {2}, Mar {3}, Apr {} ; as_of April
    table = cohort_table(CUSTOMER, DATE, VALUE)
    assert table.cohorts == [dt.date(2024, m, 1) for m in (1, 2, 3, 4)]
    assert table.customers == [2, 1, 1, 0]
    assert table.months_after == [0, 1, 2, 3]
    assert table.active_customers == [
        [2, 1, 1, 0],
        [1, 1, 0, None],
        [1, 1, None, None],
        [0, None, None, None],
    ]
    assert table.active_share == [
        [1.0, 0.5, 0.5, 0.0],
        [1.0, 1.0, 0.0, None],
        [1.0, 1.0, None, None],
        [None, None, None, None],
    ]


def test_cohort_cumulative_revenue_per_customer_by_hand() -> None:
    # Jan cohort: Jan 10 + 50, Feb + 20, Mar + 30 over 2 customers; Feb cohort: 40 + 10, then + 15;
    # Mar cohort: 25, then + 5
    table = cohort_table(CUSTOMER, DATE, VALUE)
    assert table.cumulative_revenue_per_customer == [
        [30.0, 40.0, 55.0, 55.0],
        [50.0, 65.0, 65.0, None],
        [25.0, 30.0, None, None],
        [None, None, None, None],
    ]


def test_cohort_table_counts_a_customer_once_per_month() -> None:
    # customer 2 ordered twice in February: one active customer, both orders' revenue
    table = cohort_table(CUSTOMER, DATE, VALUE)
    assert table.active_customers[1][0] == 1
    assert table.cumulative_revenue_per_customer[1][0] == 50.0


def test_cohort_table_caps_months_after() -> None:
    table = cohort_table(CUSTOMER, DATE, VALUE, max_months_after=1)
    assert table.months_after == [0, 1]
    assert table.active_share[0] == [1.0, 0.5]
    assert table.cumulative_revenue_per_customer[0] == [30.0, 40.0]


def test_cohort_table_ignores_orders_after_as_of() -> None:
    table = cohort_table(CUSTOMER, DATE, VALUE, as_of=np.datetime64("2024-02-29"))
    assert table.customers == [2, 1]
    assert table.active_share == [[1.0, 0.5], [1.0, None]]


def test_revenue_share_per_segment_by_code() -> None:
    champions, promising, dormant = (SEGMENT_CODES[n] for n in ("Champions", "Promising", "Dormant"))
    result = revenue_share_by_segment(
        [champions, champions, dormant, promising], [100.0, 50.0, 25.0, 25.0], SEGMENT_NAMES, [4, 2, 1, 1]
    )
    by_name = dict(zip(result.segments, result.revenue_share, strict=True))
    assert result.segments == list(SEGMENT_NAMES)
    assert (by_name["Champions"], by_name["Dormant"], by_name["Promising"], by_name["Loyal"]) == (
        0.75,
        0.125,
        0.125,
        0.0,
    )
    assert result.customers[SEGMENT_CODES["Champions"]] == 2
    assert result.customer_share[SEGMENT_CODES["Champions"]] == 0.5
    assert result.average_order_value is not None
    assert result.average_order_value[SEGMENT_CODES["Champions"]] == 25.0
    assert result.average_order_value[SEGMENT_CODES["Loyal"]] is None


def test_revenue_share_per_segment_by_name_without_a_list_of_names() -> None:
    result = revenue_share_by_segment(["Top", "Low", "Top"], [30.0, 10.0, 60.0])
    assert result.segments == ["Low", "Top"]
    assert result.revenue_share == [0.1, 0.9]
    assert result.orders is None


def test_revenue_share_rejects_a_label_outside_the_names() -> None:
    with pytest.raises(ValueError, match="Whales"):
        revenue_share_by_segment(["Champions", "Whales"], [1.0, 2.0], SEGMENT_NAMES)


def test_revenue_share_of_a_shop_without_revenue_is_zero() -> None:
    result = revenue_share_by_segment([0, 1], [0.0, 0.0], ["a", "b"])
    assert result.revenue_share == [0.0, 0.0]


def test_dates_may_be_day_numbers_or_datetime64() -> None:
    by_number = cohort_table(CUSTOMER, DATE.astype(np.int64), VALUE)
    by_timestamp = cohort_table(CUSTOMER, DATE.astype("datetime64[s]") + np.timedelta64(3600, "s"), VALUE)
    assert by_number == cohort_table(CUSTOMER, DATE, VALUE) == by_timestamp


def test_dates_may_be_python_dates() -> None:
    days = [dt.date(2024, 1, 1), dt.datetime(2024, 1, 2, 23, 59)]
    assert as_day_numbers(days).tolist() == [19723, 19724]


def test_shop_metrics_bundle_the_order_metrics() -> None:
    result = shop_metrics(CUSTOMER, DATE, VALUE)
    assert (result.customers, result.orders, result.revenue) == (4, 9, 205.0)
    assert result.repeat_purchase_rate == 0.75
    assert result.median_days_between_orders == 35.0
    assert result.retention.customers == [2, 2, 3, 1]
    assert result.cohorts.customers == [2, 1, 1, 0]


def test_empty_shop_metrics() -> None:
    no_orders = np.array([], dtype=np.int64)
    result = shop_metrics(no_orders, no_orders, np.array([], dtype=float))
    assert (result.customers, result.orders, result.repeat_purchase_rate) == (0, 0, 0.0)
    assert result.average_days_between_orders is None
    assert result.retention.customers == []
    assert result.cohorts.cohorts == []


def test_one_order_shop_metrics() -> None:
    result = shop_metrics([0], np.array(["2024-05-05"], dtype="datetime64[D]"), [12.5])
    assert result.repeat_purchase_rate == 0.0
    assert result.retention.retention_rate == [None]
    assert result.cohorts.active_share == [[1.0]]
    assert result.cohorts.cumulative_revenue_per_customer == [[12.5]]


def test_orders_need_one_date_each() -> None:
    with pytest.raises(ValueError, match="one date per order"):
        days_between_orders([0, 1], [19000])
