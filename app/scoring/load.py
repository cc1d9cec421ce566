"""Reads of a rescore: the buyers with what was stored for them, the ledger, the marks, in one
snapshot on PostgreSQL. PostgreSQL moves arrays by binary COPY (``app.kit.pgcopy``); SQLite, the
embedded default for small shops, goes row by row through SQLAlchemy."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Final
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt
from sqlalchemy import Connection, func, select, text
from sqlalchemy.orm import Session

from app.kit import pgcopy
from app.models import Customer, CustomerScore, Order, Shop
from app.models.base import table_of
from app.scoring.columns import (
    AGGREGATE_COLUMNS,
    CUSTOMER_COLUMNS,
    IDENTITY_COLUMNS,
    ORDER_COLUMNS,
    STORED_DEFAULTS,
    STORED_STATE_COLUMNS,
    STORED_VALUE_COLUMNS,
    Columns,
    to_us,
)
from app.shops.service import EFFECTIVE_TIMEZONE, is_timezone
from app.vocabulary import RFM_SEGMENT_NAMES, STAGE_NAMES

Array = npt.NDArray[Any]
customers = table_of(Customer)
scores = table_of(CustomerScore)
orders = table_of(Order)
_EPOCH: Final = dt.date(1970, 1, 1)


def is_postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def shop_timezone(session: Session, shop_id: int) -> str:
    """The zone the shop's days are counted in: its own, UTC while it is not known."""
    name = session.scalar(select(Shop.iana_timezone).where(Shop.shop_id == shop_id))
    return name if is_timezone(name) else EFFECTIVE_TIMEZONE


def day_number(moment: dt.datetime, tz: str) -> int:
    return (moment.astimezone(ZoneInfo(tz)).date() - _EPOCH).days


def array_literal(names: Sequence[str]) -> str:
    """A PostgreSQL text[] literal of ``names``."""
    return "ARRAY[" + ", ".join("'" + n.replace("'", "''") + "'" for n in names) + "]::text[]"


# --------------------------------------------------------------------------------------------
# Customers: aggregates and what was stored last time

_AGGREGATES_PG: Final = """
SELECT c.customer_id::int8,
  ((c.first_order_at AT TIME ZONE %(tz)s)::date - DATE '1970-01-01')::int4,
  ((c.last_order_at AT TIME ZONE %(tz)s)::date - DATE '1970-01-01')::int4,
  c.orders_count::int4, c.total_spent::float8, c.discounted_orders_count::int4,
  COALESCE(c.average_days_between_orders, 'NaN')::float8,
  c.score_pending, c.aggregates_updated_at
FROM customers c
WHERE c.shop_id = %(shop_id)s AND c.orders_count > 0
"""
_STORED_PG: Final = f"""
SELECT s.customer_id::int8, s.row_hash::int8, s.synced_hash::int8,
  COALESCE(array_position({array_literal(STAGE_NAMES)}, s.stage::text) - 1, -1)::int2,
  s.stage_since, s.values_changed_at,
  COALESCE(array_position({array_literal(RFM_SEGMENT_NAMES)}, s.segment::text) - 1, -1)::int2{{predictions}}
FROM customer_scores s
WHERE s.shop_id = %(shop_id)s
"""
_STORED_PREDICTIONS_PG: Final = """,
  s.frequency::int4, s.monetary::float8, s.orders_last_year::int4, s.spent_last_year::float8,
  s.predicted_clv::float8, s.predicted_orders::float8, s.churn_risk::float8,
  COALESCE(s.expected_next_order_at, '-infinity'), (s.clv_source = 'model')::int::int2"""
_BUYER_COLUMNS: Final = IDENTITY_COLUMNS + AGGREGATE_COLUMNS
"""The columns of ``_AGGREGATES_PG``."""


def _fetch_on_own_connection(
    bind: Any, query: str, params: dict[str, Any], columns: Columns
) -> dict[str, Array]:
    engine = bind.engine if isinstance(bind, Connection) else bind
    with engine.connect() as connection:
        return pgcopy.fetch_columns(connection, query, params, columns)


@dataclass(frozen=True, slots=True)
class LoadedCustomers:
    columns: dict[str, Array]
    """Every buyer (orders_count > 0) sorted by id; the stored columns hold defaults where unscored."""
    stale: list[int]
    """Customers with stored scores who are no longer buyers (cancelled, redacted, merged)."""


def load_customers(
    session: Session, shop_id: int, tz: str, *, with_predictions: bool = True
) -> LoadedCustomers:
    """Every buyer of the shop, sorted by customer id, with what was stored for them last time.

    ``with_predictions`` False (a full rescore recomputes them) leaves the stored windowed values
    and predictions at their defaults and skips reading them."""
    if is_postgres(session):
        params = {"shop_id": shop_id, "tz": tz}
        # What the last rescore stored is read on a second connection at the same time: only the
        # rescore of this shop (one at a time) writes it, so it needs no shared snapshot.
        with ThreadPoolExecutor(max_workers=1) as pool:
            query, wanted = _stored_query(with_predictions)
            future = pool.submit(
                _fetch_on_own_connection, session.get_bind(), query, {"shop_id": shop_id}, wanted
            )
            aggregates = pgcopy.fetch_columns(session, _AGGREGATES_PG, params, _BUYER_COLUMNS)
            return _aligned(aggregates, future.result())
    return _load_customers_sqlite(session, shop_id, tz)


def _stored_query(with_predictions: bool) -> tuple[str, Columns]:
    """What the last rescore stored (PostgreSQL): read apart from the aggregates and aligned in
    NumPy (:func:`_aligned`); a join (and an ORDER BY) costs PostgreSQL more than both scans."""
    query = _STORED_PG.format(predictions=_STORED_PREDICTIONS_PG if with_predictions else "")
    return query, IDENTITY_COLUMNS + STORED_STATE_COLUMNS + (STORED_VALUE_COLUMNS if with_predictions else ())


def _aligned(aggregates: dict[str, Array], stored: dict[str, Array]) -> LoadedCustomers:
    """The buyers' aggregates sorted by id, with what was stored for each (defaults elsewhere)."""
    order = np.argsort(aggregates["customer_id"], kind="stable")
    columns: dict[str, Array] = {}
    for name in list(aggregates):  # one column at a time: the unsorted one goes as it is copied
        columns[name] = aggregates.pop(name)[order]
    del order
    ids = columns["customer_id"]
    position = np.searchsorted(ids, stored["customer_id"])
    clipped = np.minimum(position, max(ids.size - 1, 0))
    found = (ids[clipped] == stored["customer_id"]) if ids.size else np.zeros(position.size, dtype=np.bool_)
    columns["scored"] = np.zeros(ids.size, dtype=np.bool_)
    columns["scored"][clipped[found]] = True
    for name, kind in STORED_STATE_COLUMNS + STORED_VALUE_COLUMNS:
        dtype = np.asarray(stored[name]).dtype if name in stored else np.dtype(pgcopy._NATIVE[kind])
        column = np.full(ids.size, STORED_DEFAULTS.get(name, 0), dtype=dtype)
        if name in stored:
            column[clipped[found]] = stored.pop(name)[found]
        columns[name] = column
    return LoadedCustomers(columns, [int(c) for c in stored["customer_id"][~found]])


def _load_customers_sqlite(session: Session, shop_id: int, tz: str) -> LoadedCustomers:
    rows = session.execute(
        select(
            customers.c.customer_id,
            customers.c.first_order_at,
            customers.c.last_order_at,
            customers.c.orders_count,
            customers.c.total_spent,
            customers.c.discounted_orders_count,
            customers.c.average_days_between_orders,
            customers.c.score_pending,
            customers.c.aggregates_updated_at,
            scores.c.customer_id,
            scores.c.row_hash,
            scores.c.synced_hash,
            scores.c.stage,
            scores.c.stage_since,
            scores.c.values_changed_at,
            scores.c.frequency,
            scores.c.monetary,
            scores.c.orders_last_year,
            scores.c.spent_last_year,
            scores.c.predicted_clv,
            scores.c.predicted_orders,
            scores.c.churn_risk,
            scores.c.expected_next_order_at,
            scores.c.clv_source,
            scores.c.segment,
        )
        .select_from(
            customers.outerjoin(
                scores,
                (scores.c.shop_id == customers.c.shop_id) & (scores.c.customer_id == customers.c.customer_id),
            )
        )
        .where(customers.c.shop_id == shop_id, customers.c.orders_count > 0)
        .order_by(customers.c.customer_id)
    ).all()
    stage_codes = {name: code for code, name in enumerate(STAGE_NAMES)}
    segment_codes = {name: code for code, name in enumerate(RFM_SEGMENT_NAMES)}
    values: dict[str, list[Any]] = {name: [] for name, _ in CUSTOMER_COLUMNS}
    for row in rows:
        scored = row[9] is not None
        record = (
            row[0],
            day_number(row[1], tz),
            day_number(row[2], tz),
            row[3],
            float(row[4]),
            row[5],
            np.nan if row[6] is None else row[6],
            bool(row[7]),
            to_us(row[8]),
            scored,
            row[10] or 0,
            row[11] or 0,
            stage_codes.get(row[12], -1) if scored else -1,
            to_us(row[13]),
            to_us(row[14]),
            segment_codes.get(row[24], -1) if scored else -1,
            row[15] or 0,
            float(row[16] or 0),
            row[17] or 0,
            float(row[18] or 0),
            float(row[19] or 0),
            row[20] or 0.0,
            np.nan if row[21] is None else row[21],
            to_us(row[22]),
            1 if row[23] == "model" else 0,
        )
        for (name, _), value in zip(CUSTOMER_COLUMNS, record, strict=True):
            values[name].append(value)
    native = {"int2": np.int16, "int4": np.int32, "int8": np.int64, "float8": np.float64, "bool": np.bool_}
    native["timestamptz"] = np.int64
    columns: dict[str, Array] = {
        name: np.asarray(values[name], dtype=native[kind]) for name, kind in CUSTOMER_COLUMNS
    }
    buyers = set(values["customer_id"])
    stale = session.scalars(select(scores.c.customer_id).where(scores.c.shop_id == shop_id)).all()
    return LoadedCustomers(columns, sorted(int(c) for c in stale if c not in buyers))


def load_pending_buyers(session: Session, shop_id: int, tz: str) -> dict[str, Array]:
    """The id and aggregates (``AGGREGATE_COLUMNS``) of the buyers marked to score (PostgreSQL), any order."""
    query = _AGGREGATES_PG + " AND c.score_pending"
    return pgcopy.fetch_columns(session, query, {"shop_id": shop_id, "tz": tz}, _BUYER_COLUMNS)


def unmarked_buyers_checksum(session: Session, shop_id: int) -> tuple[int, int, int]:
    """(count, sum of ids, sum of ``aggregates_updated_at`` in µs since 2000) over the buyers not
    marked to score: what a webhook, an import, a merge or a redaction would have moved."""
    row = session.execute(
        text(
            "SELECT count(*), COALESCE(sum(c.customer_id), 0), "
            # µs since 1970 per row, exact: the float epoch is within 0.4 µs of it (cheaper than
            # an EXTRACT numeric per row; a sum of intervals overflows at a million customers)
            "COALESCE(sum(round(date_part('epoch', c.aggregates_updated_at) * 1000000)::int8), 0) "
            "FROM customers c WHERE c.shop_id = :shop_id AND c.orders_count > 0 AND NOT c.score_pending"
        ),
        {"shop_id": shop_id},
    ).one()
    count = int(row[0])
    return count, int(row[1]), int(row[2]) - count * int(pgcopy.PG_EPOCH_US)


def pending_without_orders(session: Session, shop_id: int) -> list[tuple[int, dt.datetime]]:
    """Customers marked to score who no longer have a qualifying order (their scores go)."""
    return [
        (r[0], r[1])
        for r in session.execute(
            select(customers.c.customer_id, customers.c.aggregates_updated_at).where(
                customers.c.shop_id == shop_id, customers.c.score_pending, customers.c.orders_count <= 0
            )
        )
    ]


# --------------------------------------------------------------------------------------------
# Orders


def _orders_query(tz: str, shop_id: int) -> tuple[str, dict[str, Any]]:
    query = (
        "SELECT o.customer_id::int8, "
        "((o.ordered_at AT TIME ZONE %(tz)s)::date - DATE '1970-01-01')::int4, "
        "o.value::float8 FROM orders o WHERE o.shop_id = %(shop_id)s AND o.qualifies "
        "AND o.customer_id IS NOT NULL"
    )
    return query, {"shop_id": shop_id, "tz": tz}


# Below this many orders (the shop's last rescore counted them) a shop's ledger is read as one
# piece: it comes from the index in a few milliseconds, and splitting the read over more
# connections costs more round trips than it saves. Above it, the two halves of the table at once.
SPLIT_LEDGER_ORDERS: Final = 50_000


def _split(expected_orders: int | None) -> bool:
    """Whether to read the ledger in two halves: unless the shop is known to be small."""
    return expected_orders is None or expected_orders >= SPLIT_LEDGER_ORDERS


def load_orders(
    session: Session,
    shop_id: int,
    tz: str,
    customer_ids: Sequence[int] | None = None,
    *,
    expected_orders: int | None = None,
) -> dict[str, Array]:
    """The shop's qualifying orders as arrays: customer id, day number in the shop's time zone, value.

    ``customer_ids`` limits them to those customers (the incremental rescore). All of them, on
    PostgreSQL: :func:`_read_in_snapshot` of the two halves of the table at once, or, for a shop
    known to have fewer than ``SPLIT_LEDGER_ORDERS`` (``expected_orders``), one read on the
    session's own connection."""
    if is_postgres(session):
        if customer_ids is None and _split(expected_orders):
            snapshot = _export_snapshot(session)
            with ThreadPoolExecutor(max_workers=2) as pool:
                return _ledger(pool, session, snapshot, shop_id, tz)
        query, params = _orders_query(tz, shop_id)
        if customer_ids is not None:
            query += " AND o.customer_id = ANY(%(ids)s::int8[])"
            params["ids"] = [int(c) for c in customer_ids]
        return pgcopy.fetch_columns(session, query, params, ORDER_COLUMNS)
    stmt = select(orders.c.customer_id, orders.c.ordered_at, orders.c.value).where(
        orders.c.shop_id == shop_id, orders.c.qualifies, orders.c.customer_id.is_not(None)
    )
    if customer_ids is not None:
        stmt = stmt.where(orders.c.customer_id.in_([int(c) for c in customer_ids]))
    rows = session.execute(stmt).all()
    zone = ZoneInfo(tz)
    return {
        "customer_id": np.asarray([r[0] for r in rows], dtype=np.int64),
        "day": np.asarray([(r[1].astimezone(zone).date() - _EPOCH).days for r in rows], dtype=np.int32),
        "value": np.asarray([float(r[2]) for r in rows], dtype=np.float64),
    }


def load_orders_and_customers(
    session: Session, shop_id: int, tz: str, *, with_predictions: bool, expected_orders: int | None = None
) -> tuple[dict[str, Array], LoadedCustomers]:
    """Every qualifying order and every buyer (``load_orders``, ``load_customers``).

    PostgreSQL: the orders (in two halves of the table) and the buyers' aggregates are read at
    the same time on connections of their own, in one snapshot (:func:`_read_in_snapshot`), so
    that they agree: a change committed after it leaves its customer marked for the next rescore.
    What the last rescore stored is read on the rescore's own connection meanwhile. A shop known to
    be small (``expected_orders``, see ``load_orders``) has its ledger read in one piece."""
    if not is_postgres(session):
        return load_orders(session, shop_id, tz), load_customers(
            session, shop_id, tz, with_predictions=with_predictions
        )
    snapshot = _export_snapshot(session)
    engine = _engine(session)
    with ThreadPoolExecutor(max_workers=3) as pool:
        aggregates = pool.submit(
            _read_in_snapshot,
            engine,
            snapshot,
            _AGGREGATES_PG,
            {"shop_id": shop_id, "tz": tz},
            _BUYER_COLUMNS,
        )
        if _split(expected_orders):
            ledger = pool.submit(_ledger, pool, session, snapshot, shop_id, tz)
        else:
            query, params = _orders_query(tz, shop_id)
            ledger = pool.submit(_read_in_snapshot, engine, snapshot, query, params, ORDER_COLUMNS)
        query, wanted = _stored_query(with_predictions)
        stored = pgcopy.fetch_columns(session, query, {"shop_id": shop_id}, wanted)
        loaded = _aligned(aggregates.result(), stored)
        return ledger.result(), loaded


def _engine(session: Session) -> Any:
    bind = session.get_bind()
    return bind.engine if isinstance(bind, Connection) else bind


def _export_snapshot(session: Session) -> str:
    """The snapshot of the session's transaction, for other connections to read in (it stays
    importable while that transaction is open; the rescore's is, until it commits)."""
    return str(session.scalar(text("SELECT pg_export_snapshot()")))


def _read_in_snapshot(
    engine: Any, snapshot: str, query: str, params: dict[str, Any], columns: Columns
) -> dict[str, Array]:
    """``fetch_columns`` on a connection of its own that sees exactly ``snapshot``."""
    with engine.connect() as connection:
        connection = connection.execution_options(isolation_level="REPEATABLE READ")
        with connection.begin():
            connection.exec_driver_sql("SET TRANSACTION SNAPSHOT '" + snapshot.replace("'", "''") + "'")
            connection.exec_driver_sql("SET TRANSACTION READ ONLY")
            return pgcopy.fetch_columns(connection, query, params, columns)


def _ledger(
    pool: ThreadPoolExecutor, session: Session, snapshot: str, shop_id: int, tz: str
) -> dict[str, Array]:
    """Every qualifying order of the shop, read as the two halves of the orders table (by block)
    at once, in one snapshot, and put back in table order. A shop's ledger is most of a big
    table's rows; one scan of it is a single core's work (PostgreSQL 15 has no parallel
    ``string_agg``). A small shop's orders come from the index either way."""
    engine = _engine(session)
    with engine.connect() as connection:
        blocks = int(
            connection.scalar(text("SELECT pg_relation_size('orders') / current_setting('block_size')::int8"))
            or 0
        )
    query, params = _orders_query(tz, shop_id)
    middle = f"'({blocks // 2},0)'::tid"
    first = pool.submit(
        _read_in_snapshot, engine, snapshot, f"{query} AND o.ctid < {middle}", params, ORDER_COLUMNS
    )
    second = _read_in_snapshot(engine, snapshot, f"{query} AND o.ctid >= {middle}", params, ORDER_COLUMNS)
    earlier = first.result()
    return {name: np.concatenate([earlier[name], second[name]]) for name, _ in ORDER_COLUMNS}


def qualifying_orders_count(session: Session, shop_id: int) -> int:
    total = session.scalar(
        select(func.coalesce(func.sum(customers.c.orders_count), 0)).where(customers.c.shop_id == shop_id)
    )
    return int(total or 0)


def customers_removed(session: Session, shop_id: int) -> int:
    """How many customer rows the shop lost (redactions, merges): read before a rescore reads its
    buyers, compared with :func:`lock_scores`'s answer when it writes."""
    return int(session.scalar(select(Shop.customers_removed).where(Shop.shop_id == shop_id)) or 0)
