"""Shop metrics (docs/metrics.md) from per-order arrays, for the metrics and cohorts pages.

Inputs are the shop's qualifying orders, one element per order:
  ``customer_index`` — the customer's position in the shop's customer arrays (0..n-1, dense);
  ``order_date`` — ``datetime64`` (any unit; taken at day precision) or whole days since 1970-01-01,
  already in the shop's time zone, since day and month boundaries are the shop's;
  ``order_value`` — the order's value in shop currency (float).
Results are plain frozen dataclasses of lists (``None`` where a figure does not exist, e.g. a
retention rate with nobody to retain), ready for a template or JSON. Everything is a handful of
sorts and ``bincount`` calls: a million orders take well under a second.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]

_EPOCH = dt.date(1970, 1, 1)


# --------------------------------------------------------------------------------------------
# Inputs


def as_day_numbers(order_date: npt.ArrayLike | Sequence[dt.date]) -> IntArray:
    """Whole days since 1970-01-01 from ``datetime64`` values, ``datetime.date`` objects or ints."""
    array = np.asarray(order_date)
    if array.size == 0:
        return np.zeros(array.shape, dtype=np.int64)
    if array.dtype == object:
        array = array.astype("datetime64[D]")
    if np.issubdtype(array.dtype, np.datetime64):
        if np.isnat(array).any():
            raise ValueError("order_date contains NaT; every order needs a date")
        return array.astype("datetime64[D]").astype(np.int64)
    if array.dtype == np.bool_ or not np.issubdtype(array.dtype, np.integer):
        raise TypeError(f"order_date must be datetime64 or whole day numbers, got dtype {array.dtype}")
    return array.astype(np.int64, copy=False)


def _day_number(day: dt.date | int | np.datetime64) -> int:
    if isinstance(day, dt.datetime):
        day = day.date()
    if isinstance(day, dt.date):
        return (day - _EPOCH).days
    return int(as_day_numbers(np.asarray([day]))[0])


def _date(day_number: int) -> dt.date:
    return _EPOCH + dt.timedelta(days=int(day_number))


def _month_numbers(days: IntArray) -> npt.NDArray[np.int32]:
    """Calendar months since January 1970 (0 = 1970-01), as int32.

    Looked up in a table of the days between the first and the last: millions of orders fall on a
    few thousand days, and the datetime64 conversions would make three full-size temporaries."""
    if days.size == 0:
        return np.zeros(days.shape, dtype=np.int32)
    low, high = int(days.min()), int(days.max())
    table = np.arange(low, high + 1).astype("datetime64[D]").astype("datetime64[M]").astype(np.int32)
    offset = days - low
    return table[offset]


def _month_start(month_number: int) -> dt.date:
    return dt.date(1970 + month_number // 12, month_number % 12 + 1, 1)


def _month_end(month_number: int) -> dt.date:
    return _month_start(month_number + 1) - dt.timedelta(days=1)


def _customer_index(customer_index: npt.ArrayLike) -> IntArray:
    customers = np.asarray(customer_index)
    if customers.ndim != 1:
        raise ValueError("customer_index must be one-dimensional (one element per order)")
    if customers.size == 0:
        return np.zeros(0, dtype=np.int64)
    if not np.issubdtype(customers.dtype, np.integer):
        raise TypeError(f"customer_index must hold integers, got dtype {customers.dtype}")
    if customers.min() < 0:
        raise ValueError("customer_index must not be negative")
    return customers.astype(np.int64, copy=False)


def _orders(customer_index: npt.ArrayLike, order_date: npt.ArrayLike) -> tuple[IntArray, IntArray]:
    customers = _customer_index(customer_index)
    days = as_day_numbers(order_date)
    if days.shape != customers.shape:
        raise ValueError(f"one date per order: {customers.size} customer indexes but {days.size} dates")
    return customers, days


def _values(order_value: npt.ArrayLike, size: int) -> FloatArray:
    values = np.asarray(order_value, dtype=np.float64)
    if values.shape != (size,):
        raise ValueError(f"one value per order: {size} orders but {values.size} values")
    if np.isnan(values).any():
        raise ValueError("order_value contains NaN")
    return values


def _sorted_unique(keys: IntArray) -> IntArray:
    # np.unique on a million int64 keys is several times slower than sort + mask in NumPy 2.x
    return _unique_of_sorted(np.sort(keys))


def _unique_of_sorted(ordered: IntArray) -> IntArray:
    if ordered.size == 0:
        return ordered
    keep = np.empty(ordered.size, dtype=np.bool_)
    keep[0] = True
    np.not_equal(ordered[1:], ordered[:-1], out=keep[1:])
    return ordered[keep]


def _rate(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator else None


# --------------------------------------------------------------------------------------------
# Repeat purchase rate and days between orders


def repeat_purchase_rate(customer_index: npt.ArrayLike) -> float:
    """Share of the shop's customers (those with an order) who have two or more orders; 0.0 if none."""
    counts = np.bincount(_customer_index(customer_index))
    buyers = int(np.count_nonzero(counts))
    return float(np.count_nonzero(counts >= 2)) / buyers if buyers else 0.0


@dataclass(frozen=True, slots=True)
class DaysBetweenOrders:
    per_customer: FloatArray
    """(last − first) / (orders − 1) per customer index; NaN for customers with fewer than 2 orders."""
    repeat_customers: int
    mean: float | None
    """Mean of ``per_customer`` over customers with two or more orders (None if there are none)."""
    median: float | None
    """Median of the same: the shop's typical interval, which the lifecycle stages use."""


def days_between_orders(
    customer_index: npt.ArrayLike, order_date: npt.ArrayLike, customers_count: int | None = None
) -> DaysBetweenOrders:
    """Average days between orders per customer, and its mean and median over repeat customers.

    ``customers_count`` sizes ``per_customer`` (default: highest index + 1).
    """
    customers, days = _orders(customer_index, order_date)
    size = int(customers.max()) + 1 if customers.size else 0
    size = max(size, customers_count or 0)
    counts = np.bincount(customers, minlength=size)
    first = np.full(size, np.iinfo(np.int64).max)
    last = np.full(size, np.iinfo(np.int64).min)
    np.minimum.at(first, customers, days)
    np.maximum.at(last, customers, days)
    per_customer = np.full(size, np.nan)
    repeat = counts >= 2
    per_customer[repeat] = (last[repeat] - first[repeat]) / (counts[repeat] - 1)
    return DaysBetweenOrders(
        per_customer=per_customer,
        repeat_customers=int(np.count_nonzero(repeat)),
        mean=float(per_customer[repeat].mean()) if repeat.any() else None,
        median=float(np.median(per_customer[repeat])) if repeat.any() else None,
    )


def median_days_between_orders(average_days_between_orders: npt.ArrayLike) -> float | None:
    """The shop median from the per-customer aggregate (NaN or None for one-order customers)."""
    values = np.asarray(average_days_between_orders, dtype=np.float64)
    values = values[~np.isnan(values)]
    return float(np.median(values)) if values.size else None


# --------------------------------------------------------------------------------------------
# Retention and churn per period


@dataclass(frozen=True, slots=True)
class RetentionTable:
    period_starts: list[dt.date]
    period_ends: list[dt.date]
    """Inclusive."""
    complete: list[bool]
    """False for a period that runs past ``as_of`` (the current calendar month)."""
    customers: list[int]
    """Customers who ordered in the period."""
    retained: list[int]
    """Of the previous period's customers, those who ordered again in this period (0 for the first)."""
    retention_rate: list[float | None]
    """retained / previous period's customers; None for the first period or after an empty one."""
    churn_rate: list[float | None]
    """1 − retention rate."""


def retention_by_period(
    customer_index: npt.ArrayLike,
    order_date: npt.ArrayLike,
    period_days: int | None = None,
    as_of: dt.date | int | np.datetime64 | None = None,
) -> RetentionTable:
    """Retention and churn per period: of the customers who ordered in period p − 1, the share who
    ordered again in period p (retention), and the rest (churn).

    Periods are calendar months by default (the last one partial unless ``as_of`` is a month's last
    day), or, with ``period_days``, consecutive blocks of that many days counted back from ``as_of``
    so that the last block ends on ``as_of`` and every block is complete. ``as_of`` defaults to the
    last order's day; later orders are ignored. Periods run from the first order's to ``as_of``'s,
    empty periods included.
    """
    customers, days = _orders(customer_index, order_date)
    if period_days is not None and period_days < 1:
        raise ValueError("period_days must be a positive number of days")
    if customers.size == 0:
        return RetentionTable([], [], [], [], [], [], [])
    end = int(days.max()) if as_of is None else _day_number(as_of)
    keep = days <= end
    if not keep.all():
        customers, days = customers[keep], days[keep]
    del keep
    if customers.size == 0:
        return RetentionTable([], [], [], [], [], [], [])

    if period_days is None:
        months = _month_numbers(days)
        first_month = int(months.min())
        last_month = int(_month_numbers(np.asarray([end]))[0])
        period: npt.NDArray[np.integer] = months - first_month
        periods = last_month - first_month + 1
        starts = [_month_start(first_month + p) for p in range(periods)]
        ends = [_month_end(first_month + p) for p in range(periods)]
    else:
        back = (end - days) // period_days
        periods = int(back.max()) + 1
        period = periods - 1 - back
        starts = [_date(end - (periods - p) * period_days + 1) for p in range(periods)]
        ends = [_date(end - (periods - 1 - p) * period_days) for p in range(periods)]

    # one key per (customer, period) with an order; consecutive keys k, k + 1 within one customer
    # mean the customer ordered in period p and again in p + 1
    keys = _sorted_unique(customers * periods + period)
    key_period = keys % periods
    active = np.bincount(key_period, minlength=periods)
    again = (keys[1:] == keys[:-1] + 1) & (key_period[:-1] < periods - 1)
    retained = np.bincount(key_period[:-1][again] + 1, minlength=periods)

    as_of_date = _date(end)
    retention: list[float | None] = [None]
    retention += [_rate(int(retained[p]), int(active[p - 1])) for p in range(1, periods)]
    return RetentionTable(
        period_starts=starts,
        period_ends=ends,
        complete=[period_end <= as_of_date for period_end in ends],
        customers=[int(a) for a in active],
        retained=[int(r) for r in retained],
        retention_rate=retention,
        churn_rate=[None if rate is None else 1.0 - rate for rate in retention],
    )


# --------------------------------------------------------------------------------------------
# Revenue share per segment


@dataclass(frozen=True, slots=True)
class SegmentRevenue:
    segments: list[str]
    customers: list[int]
    customer_share: list[float]
    revenue: list[float]
    revenue_share: list[float]
    """Of the shop's revenue; 0.0 throughout when the shop has no revenue."""
    orders: list[int] | None
    average_order_value: list[float | None] | None
    """revenue / orders per segment, when ``orders_count`` was given."""


def revenue_share_by_segment(
    segment: npt.ArrayLike,
    revenue: npt.ArrayLike,
    names: Sequence[str] | None = None,
    orders_count: npt.ArrayLike | None = None,
) -> SegmentRevenue:
    """Customers and revenue per segment, and each segment's share of the shop's.

    ``segment`` has one label per customer: integer codes into ``names`` (e.g. segment codes with
    ``SEGMENT_NAMES``) or the names themselves. With ``names`` every named segment is listed in that
    order, empty ones included; without, the distinct labels in sorted order. ``revenue`` is the
    customer's revenue for the period shown (e.g. total spent); ``orders_count`` adds orders and AOV.
    """
    labels = np.asarray(segment)
    spent = np.asarray(revenue, dtype=np.float64)
    if labels.ndim != 1 or spent.shape != labels.shape:
        raise ValueError("segment and revenue need one element per customer")
    if names is None:
        distinct, codes = np.unique(labels, return_inverse=True)
        listed = [str(label) for label in distinct.tolist()]
    elif labels.size and np.issubdtype(labels.dtype, np.integer):
        listed = list(names)
        codes = labels.astype(np.intp)
        if codes.min() < 0 or codes.max() >= len(listed):
            raise ValueError(f"segment codes must lie in 0..{len(listed) - 1}")
    else:
        listed = list(names)
        position = {name: code for code, name in enumerate(listed)}
        distinct, inverse = np.unique(labels.astype(np.str_), return_inverse=True)
        unknown = [str(label) for label in distinct.tolist() if label not in position]
        if unknown:
            raise ValueError(f"segment labels not in names: {', '.join(unknown)}")
        lookup = np.asarray([position[str(label)] for label in distinct.tolist()], dtype=np.intp)
        codes = lookup[inverse]
    count = len(listed)
    customers = np.bincount(codes, minlength=count)
    revenue_by_segment = np.bincount(codes, weights=spent, minlength=count)
    total_customers = int(customers.sum())
    total_revenue = float(revenue_by_segment.sum())
    orders: list[int] | None = None
    aov: list[float | None] | None = None
    if orders_count is not None:
        order_counts = np.asarray(orders_count, dtype=np.int64)
        if order_counts.shape != labels.shape:
            raise ValueError("orders_count needs one element per customer")
        orders_by_segment = np.bincount(codes, weights=order_counts, minlength=count)
        orders = [int(o) for o in orders_by_segment]
        aov = [_rate(float(r), int(o)) for r, o in zip(revenue_by_segment, orders_by_segment, strict=True)]
    return SegmentRevenue(
        segments=listed,
        customers=[int(c) for c in customers],
        customer_share=[int(c) / total_customers if total_customers else 0.0 for c in customers],
        revenue=[float(r) for r in revenue_by_segment],
        revenue_share=[float(r) / total_revenue if total_revenue else 0.0 for r in revenue_by_segment],
        orders=orders,
        average_order_value=aov,
    )


# --------------------------------------------------------------------------------------------
# Cohorts


@dataclass(frozen=True, slots=True)
class CohortTable:
    cohorts: list[dt.date]
    """First day of each cohort's month (the month of its customers' first order), oldest first,
    every month from the first to ``as_of``'s, empty ones included."""
    customers: list[int]
    """Cohort sizes."""
    months_after: list[int]
    """Column headings 0..N (0 = the month of the first order)."""
    active_customers: list[list[int | None]]
    """Cohort customers with an order in that month; None where the month is after ``as_of``."""
    active_share: list[list[float | None]]
    """active_customers / cohort size (month 0 is always 1.0); None for an empty cohort or the future."""
    cumulative_revenue_per_customer: list[list[float | None]]
    """Revenue of the cohort's orders up to and including that month, per cohort customer."""


def cohort_table(
    customer_index: npt.ArrayLike,
    order_date: npt.ArrayLike,
    order_value: npt.ArrayLike,
    as_of: dt.date | int | np.datetime64 | None = None,
    max_months_after: int | None = None,
) -> CohortTable:
    """Customers by calendar month of first order × calendar months after.

    A customer is "still buying" in month k when they have an order in the calendar month k months
    after their first order's month. ``as_of`` defaults to the last order's day; later orders are
    ignored, and months after ``as_of``'s month are None. ``max_months_after`` caps the columns.
    """
    customers, days = _orders(customer_index, order_date)
    values = _values(order_value, customers.size)
    if max_months_after is not None and max_months_after < 0:
        raise ValueError("max_months_after must not be negative")
    if customers.size == 0:
        return CohortTable([], [], [], [], [], [])
    end = int(days.max()) if as_of is None else _day_number(as_of)
    keep = days <= end
    if not keep.all():
        customers, days, values = customers[keep], days[keep], values[keep]
    del keep
    if customers.size == 0:
        return CohortTable([], [], [], [], [], [])

    # Millions of orders: one full-size temporary at a time, int32 where the numbers are small.
    months = _month_numbers(days)
    first_month_of = np.full(int(customers.max()) + 1, np.iinfo(np.int64).max)
    np.minimum.at(first_month_of, customers, months)
    oldest = int(months.min())
    last = int(_month_numbers(np.asarray([end]))[0])
    rows = last - oldest + 1
    columns = rows if max_months_after is None else min(rows, max_months_after + 1)

    buyer_first_month = np.where(first_month_of == np.iinfo(np.int64).max, 0, first_month_of).astype(np.int32)
    first_month_of_order = buyer_first_month[customers]
    del buyer_first_month
    months_after = months - first_month_of_order
    del months
    in_table = months_after < columns
    everything = bool(in_table.all())
    cell = first_month_of_order - oldest
    del first_month_of_order
    cell *= columns
    cell += months_after
    revenue = np.bincount(
        cell if everything else cell[in_table],
        weights=values if everything else values[in_table],
        minlength=rows * columns,
    )
    del cell
    cumulative = np.cumsum(revenue.reshape(rows, columns), axis=1)

    buyers = np.flatnonzero(first_month_of != np.iinfo(np.int64).max)
    sizes = np.bincount(first_month_of[buyers] - oldest, minlength=rows)
    # distinct (customer, month after) pairs, each counted in its cohort's cell
    pair_keys = customers * columns if everything else customers[in_table] * columns
    pair_keys += months_after if everything else months_after[in_table]
    del months_after, in_table
    pair_keys.sort()
    pairs = _unique_of_sorted(pair_keys)
    del pair_keys
    pair_customers = pairs // columns
    active = np.bincount(
        (first_month_of[pair_customers] - oldest) * columns + pairs % columns, minlength=rows * columns
    ).reshape(rows, columns)

    active_rows: list[list[int | None]] = []
    share_rows: list[list[float | None]] = []
    revenue_rows: list[list[float | None]] = []
    for row in range(rows):
        observable = min(columns, last - (oldest + row) + 1)
        size = int(sizes[row])
        future: list[None] = [None] * (columns - observable)
        active_rows.append([int(a) for a in active[row, :observable]] + future)
        if size:
            share_rows.append([int(a) / size for a in active[row, :observable]] + future)
            revenue_rows.append([float(r) / size for r in cumulative[row, :observable]] + future)
        else:
            share_rows.append([None] * columns)
            revenue_rows.append([None] * columns)
    return CohortTable(
        cohorts=[_month_start(oldest + row) for row in range(rows)],
        customers=[int(s) for s in sizes],
        months_after=list(range(columns)),
        active_customers=active_rows,
        active_share=share_rows,
        cumulative_revenue_per_customer=revenue_rows,
    )


# --------------------------------------------------------------------------------------------
# All the shop metrics at once


@dataclass(frozen=True, slots=True)
class ShopMetrics:
    customers: int
    orders: int
    revenue: float
    repeat_purchase_rate: float
    average_days_between_orders: float | None
    median_days_between_orders: float | None
    retention: RetentionTable
    cohorts: CohortTable


def shop_metrics(
    customer_index: npt.ArrayLike,
    order_date: npt.ArrayLike,
    order_value: npt.ArrayLike,
    as_of: dt.date | int | np.datetime64 | None = None,
    period_days: int | None = None,
    max_months_after: int | None = None,
) -> ShopMetrics:
    """The order-based shop metrics (revenue share per segment needs the scores: see
    :func:`revenue_share_by_segment`). Repeat rate and intervals use all the orders given."""
    customers, days = _orders(customer_index, order_date)
    values = _values(order_value, customers.size)
    intervals = days_between_orders(customers, days)
    return ShopMetrics(
        customers=int(np.count_nonzero(np.bincount(customers))) if customers.size else 0,
        orders=int(customers.size),
        revenue=float(values.sum()),
        repeat_purchase_rate=repeat_purchase_rate(customers),
        average_days_between_orders=intervals.mean,
        median_days_between_orders=intervals.median,
        retention=retention_by_period(customers, days, period_days=period_days, as_of=as_of),
        cohorts=cohort_table(customers, days, values, as_of=as_of, max_months_after=max_months_after),
    )
