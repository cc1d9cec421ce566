"""The fast per-customer summary (``app.clv.summary.clv_summary``) against the reference summary:
the plain computation of (frequency, recency, T, monetary) per customer from an order ledger, the
way ``lifetimes.utils.summary_data_from_transaction_data`` does it with daily periods."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from app.clv.backtest import summarise_transactions
from app.clv.summary import clv_summary

CUSTOMERS = 10


def reference_summary(
    orders: list[tuple[int, int, float]], today: int
) -> dict[int, tuple[float, float, float, float]]:
    """{customer: (frequency, recency, T, monetary)}, one order at a time: orders after ``today``
    are left out; orders of one customer on one day are one purchase, their values summed;
    frequency = purchases - 1; recency = last purchase day - first; T = today - first; monetary =
    the mean value of the purchases after the first, 0 for a customer with one purchase."""
    spent_on: dict[int, dict[int, float]] = defaultdict(lambda: defaultdict(float))
    for customer, day, value in orders:
        if day <= today:
            spent_on[customer][day] += value
    summary = {}
    for customer, by_day in spent_on.items():
        days = sorted(by_day)
        first, last = days[0], days[-1]
        repeat = [by_day[d] for d in days[1:]]
        monetary = sum(repeat) / len(repeat) if repeat else 0.0
        summary[customer] = (float(len(days) - 1), float(last - first), float(today - first), monetary)
    return summary


ledgers = st.lists(
    # few days and customers: same-day orders (ties) and one-order customers are common
    st.tuples(st.integers(0, CUSTOMERS - 1), st.integers(0, 60), st.floats(0, 500, allow_nan=False)),
    min_size=0,
    max_size=40,
)


@settings(max_examples=200, deadline=None)
@given(ledgers, st.integers(30, 70))
def test_the_fast_summary_equals_the_reference_summary(
    orders: list[tuple[int, int, float]], today: int
) -> None:
    index = np.array([o[0] for o in orders], dtype=np.int64)
    day = np.array([o[1] for o in orders], dtype=np.int64)
    value = np.array([o[2] for o in orders], dtype=np.float64)

    has, x, t_x, T, m = clv_summary(index, day, value, CUSTOMERS, today)

    reference = reference_summary(orders, today)
    assert set(np.flatnonzero(has).tolist()) == set(reference)
    for customer, (frequency, recency, age, monetary) in reference.items():
        assert (x[customer], t_x[customer], T[customer]) == (frequency, recency, age)
        assert np.isclose(m[customer], monetary)
    assert not np.any(x[~has]) and not np.any(t_x[~has]) and not np.any(T[~has]) and not np.any(m[~has])


def test_same_day_orders_are_one_purchase_and_a_single_order_customer_has_no_repeat_value() -> None:
    index = np.array([0, 0, 0, 1])
    day = np.array([3, 3, 10, 5])
    value = np.array([20.0, 5.0, 40.0, 99.0])

    has, x, t_x, T, m = clv_summary(index, day, value, 2, 12)

    assert has.tolist() == [True, True]
    assert (x.tolist(), t_x.tolist(), T.tolist(), m.tolist()) == (
        [1.0, 0.0],
        [7.0, 0.0],
        [9.0, 7.0],
        [40.0, 0.0],
    )


@settings(max_examples=60, deadline=None)
@given(ledgers, st.integers(30, 70))
def test_the_fast_summary_equals_summarise_transactions(
    orders: list[tuple[int, int, float]], today: int
) -> None:
    index = np.array([o[0] for o in orders], dtype=np.int64)
    day = np.array([o[1] for o in orders], dtype=np.int64)
    value = np.array([o[2] for o in orders], dtype=np.float64)
    has, x, t_x, T, m = clv_summary(index, day, value, CUSTOMERS, today)
    reference = summarise_transactions(index, day.astype(float), value, float(today))
    assert np.array_equal(np.flatnonzero(has), reference.customer)
    for ours, theirs in ((x, reference.x), (t_x, reference.t_x), (T, reference.T), (m, reference.m)):
        assert np.allclose(ours[has], theirs)
