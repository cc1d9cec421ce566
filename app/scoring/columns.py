"""The column groups a rescore reads and writes, by name (no SQL here: ``compute`` uses them too).

A buyer is read as ``CUSTOMER_COLUMNS``: who they are, their aggregates, whether they have a stored
row, what the last rescore stored to compare with, and the stored values an incremental rescore
keeps for customers it does not recompute. A rescore writes ``SCORE_COLUMNS``."""

from __future__ import annotations

import datetime as dt
from typing import Any, Final

import numpy as np

from app.vocabulary import BEHAVIOUR_FLAG_COLUMNS, BEHAVIOUR_SEGMENT_NAMES

Column = tuple[str, str]
"""(name, PostgreSQL type), as ``app.kit.pgcopy`` moves it (imported by no pure module here)."""
Columns = tuple[Column, ...]
NULL_TIME: Final = np.iinfo(np.int64).min
"""A timestamptz NULL as µs: ``app.kit.pgcopy.NULL_TIME``."""
PG_EPOCH_US: Final = 946_684_800_000_000
"""2000-01-01 in µs since 1970: ``app.kit.pgcopy.PG_EPOCH_US``."""
_PG_EPOCH: Final = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)


def shop_day(stamp: dt.datetime) -> dt.date:
    """The shop's calendar day a stored day-valued column means (``expected_next_order_at``): a
    rescore stores the shop-local day d as d 00:00 UTC, so its UTC date is the day, whatever the
    shop's time zone (converting it to the zone would show the day before west of Greenwich)."""
    return stamp.astimezone(dt.UTC).date()


IDENTITY_COLUMNS: Final[Columns] = (("customer_id", "int8"),)
AGGREGATE_COLUMNS: Final[Columns] = (
    ("first_day", "int4"),
    ("last_day", "int4"),
    ("orders_count", "int4"),
    ("total_spent", "float8"),
    ("discounted_orders_count", "int4"),
    ("average_days_between_orders", "float8"),
    ("pending", "bool"),
    ("aggregates_updated_at", "timestamptz"),
)
"""The customer aggregates (``customers``), days in the shop's time zone."""
SCORED_COLUMNS: Final[Columns] = (("scored", "bool"),)
"""True where the customer has a stored row."""
STORED_STATE_COLUMNS: Final[Columns] = (
    ("row_hash", "int8"),
    ("synced_hash", "int8"),
    ("stage", "int2"),
    ("stage_since", "timestamptz"),
    ("values_changed_at", "timestamptz"),
    ("segment", "int2"),
)
"""What the last rescore stored that every rescore compares with or carries on (``segment``: to
record segment changes)."""
STORED_VALUE_COLUMNS: Final[Columns] = (
    ("frequency", "int4"),
    ("monetary", "float8"),
    ("orders_last_year", "int4"),
    ("spent_last_year", "float8"),
    ("predicted_clv", "float8"),
    ("predicted_orders", "float8"),
    ("churn_risk", "float8"),
    ("expected_next_order_at", "timestamptz"),
    ("clv_source", "int2"),
)
"""Stored values an incremental rescore keeps for the customers it does not recompute."""
CUSTOMER_COLUMNS: Final[Columns] = (
    *IDENTITY_COLUMNS,
    *AGGREGATE_COLUMNS,
    *SCORED_COLUMNS,
    *STORED_STATE_COLUMNS,
    *STORED_VALUE_COLUMNS,
)
STORED_DEFAULTS: Final[dict[str, Any]] = {
    "stage": -1,
    "segment": -1,
    "stage_since": NULL_TIME,
    "values_changed_at": NULL_TIME,
    "churn_risk": np.nan,
    "expected_next_order_at": NULL_TIME,
}
"""The stored columns of a customer without a stored row (others: 0)."""

ORDER_COLUMNS: Final[Columns] = (("customer_id", "int8"), ("day", "int4"), ("value", "float8"))

FLAG_COLUMNS: Final = tuple(BEHAVIOUR_FLAG_COLUMNS[name] for name in BEHAVIOUR_SEGMENT_NAMES)
"""The behaviour flags' columns, in the order of ``app.vocabulary.BEHAVIOUR_SEGMENT_NAMES``."""
SCORE_COLUMNS: Final[Columns] = (
    ("customer_id", "int8"),
    ("frequency", "int4"),
    ("monetary", "float8"),
    ("orders_last_year", "int4"),
    ("spent_last_year", "float8"),
    ("recency_score", "int2"),
    ("frequency_score", "int2"),
    ("monetary_score", "int2"),
    ("fm_score", "int2"),
    ("segment", "int2"),
    ("thirds_group", "int2"),
    ("stage", "int2"),
    ("stage_since", "timestamptz"),
    *((name, "bool") for name in FLAG_COLUMNS),
    ("historic_clv", "float8"),
    ("predicted_clv", "float8"),
    ("predicted_orders", "float8"),
    ("churn_risk", "float8"),
    ("expected_next_order_at", "timestamptz"),
    ("average_days_between_orders", "float8"),
    ("clv_tier", "int2"),
    ("clv_source", "int2"),
    ("row_hash", "int8"),
    ("synced_hash", "int8"),
    ("values_changed_at", "timestamptz"),
)
"""A rescore's output per customer, as ``customer_scores`` stores it (codes for labels)."""


def to_us(moment: dt.datetime | None) -> int:
    """µs since 2000-01-01 UTC (PostgreSQL's binary timestamp), NULL_TIME for None."""
    if moment is None:
        return int(NULL_TIME)
    delta = moment - _PG_EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_us(value: int) -> dt.datetime | None:
    if value == NULL_TIME:
        return None
    return _PG_EPOCH + dt.timedelta(microseconds=int(value))
