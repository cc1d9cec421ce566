"""Per-customer (x, t_x, T, m) from an order ledger, fast: the summary the models take.

The same numbers as ``app.clv.backtest.summarise_transactions`` with a period of one day, which
follows ``lifetimes.utils.summary_data_from_transaction_data``: same-day orders are one purchase
(their values summed), x = purchases - 1 (frequency), t_x = last - first purchase day (recency),
T = today - first purchase day, m = mean value of the purchases after the first (0 when x = 0).
For customers as dense indexes and whole day numbers, one integer sort replaces the float
lexsort: 3x faster at a shop's millions of orders.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[Any]


def clv_summary(
    customer_index: npt.ArrayLike, day: npt.ArrayLike, value: npt.ArrayLike, customers: int, today: int
) -> tuple[Array, Array, Array, Array, Array]:
    """(has orders, x, t_x, T, m) per customer index 0..customers-1, in days, from the orders up to
    ``today`` (customer index, day number, value per order, in any order)."""
    index = np.asarray(customer_index, dtype=np.int64)
    days = np.asarray(day)
    values = np.asarray(value, dtype=np.float64)
    if days.size and days.max() > today:
        keep = days <= today
        index, days, values = index[keep], days[keep], values[keep]
    has = np.zeros(customers, dtype=np.bool_)
    x, t_x, T, m = (np.zeros(customers) for _ in range(4))
    if index.size == 0:
        return has, x, t_x, T, m
    low = int(days.min())
    span = today - low + 1
    # At 5M orders each full-size temporary is 40 MB: made in place and dropped as soon as done.
    key = index * span
    key += days
    key -= low
    order = np.argsort(key, kind="stable")
    key = key[order]
    values = values[order]
    del order
    boundary = np.empty(key.size, dtype=np.bool_)
    boundary[0] = True
    np.not_equal(key[1:], key[:-1], out=boundary[1:])
    starts = np.flatnonzero(boundary)
    del boundary
    spent = np.add.reduceat(values, starts)
    del values
    purchase_day = key[starts]
    del key, starts
    purchase_customer = purchase_day // span
    purchase_day -= purchase_customer * span
    purchase_day += low
    first = np.flatnonzero(np.r_[True, purchase_customer[1:] != purchase_customer[:-1]])
    owner = purchase_customer[first]
    count = np.diff(np.r_[first, purchase_customer.size])
    last = first + count - 1
    has[owner] = True
    x[owner] = count - 1
    t_x[owner] = purchase_day[last] - purchase_day[first]
    T[owner] = today - purchase_day[first]
    total = np.add.reduceat(spent, first)
    with np.errstate(invalid="ignore", divide="ignore"):
        m[owner] = np.where(count > 1, (total - spent[first]) / np.maximum(count - 1, 1), 0.0)
    return has, x, t_x, T, m
