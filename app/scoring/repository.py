"""SQL for scoring: customer and order arrays in, scores, stage changes, segments, metrics, CLV
fits and backtests out. PostgreSQL moves arrays by binary COPY (``app.kit.pgcopy``); SQLite,
the embedded default for small shops, goes row by row through SQLAlchemy."""

from __future__ import annotations

import datetime as dt
import json
import secrets
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import numpy.typing as npt
from sqlalchemy import Connection, Integer, bindparam, delete, exists, func, select, text, update
from sqlalchemy.orm import Session

from app.kit import pgcopy
from app.kit.pgcopy import NULL_TIME
from app.kit.sql import advisory_lock, lock_key, upsert
from app.models import (
    Backtest,
    ClvFit,
    Customer,
    CustomerScore,
    Order,
    Shop,
    ShopMetricsSnapshot,
    ShopSegment,
    StageChange,
)
from app.models.base import UTCDateTime, table_of
from app.vocabulary import BEHAVIOUR_FLAG_COLUMNS, CLV_TIERS, SEGMENT_NAMES, STAGE_NAMES, THIRDS_GROUP_NAMES

Array = npt.NDArray[Any]
customers = table_of(Customer)
scores = table_of(CustomerScore)
orders = table_of(Order)
_EPOCH: Final = dt.date(1970, 1, 1)
_PG_EPOCH: Final = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
CLV_SOURCES: Final = ("segment_formula", "model")


def is_postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def shop_timezone(session: Session, shop_id: int) -> str:
    name = session.scalar(select(Shop.iana_timezone).where(Shop.shop_id == shop_id)) or "UTC"
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return "UTC"
    return name


def day_number(moment: dt.datetime, tz: str) -> int:
    return (moment.astimezone(ZoneInfo(tz)).date() - _EPOCH).days


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


def _array_literal(names: Sequence[str]) -> str:
    return "ARRAY[" + ", ".join("'" + n.replace("'", "''") + "'" for n in names) + "]::text[]"


# --------------------------------------------------------------------------------------------
# Customers: aggregates and what was stored last time

CUSTOMER_COLUMNS: Final[list[pgcopy.Column]] = [
    ("customer_id", "int8"),
    ("first_day", "int4"),
    ("last_day", "int4"),
    ("orders_count", "int4"),
    ("total_spent", "float8"),
    ("discounted_orders_count", "int4"),
    ("average_days_between_orders", "float8"),
    ("pending", "bool"),
    ("aggregates_updated_at", "timestamptz"),
    ("scored", "bool"),
    ("row_hash", "int8"),
    ("synced_hash", "int8"),
    ("stage", "int2"),
    ("stage_since", "timestamptz"),
    ("values_changed_at", "timestamptz"),
    ("frequency", "int4"),
    ("monetary", "float8"),
    ("orders_last_year", "int4"),
    ("spent_last_year", "float8"),
    ("predicted_clv", "float8"),
    ("predicted_orders", "float8"),
    ("churn_risk", "float8"),
    ("expected_next_order_at", "timestamptz"),
    ("clv_source", "int2"),
]

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
  COALESCE(array_position({_array_literal(STAGE_NAMES)}, s.stage::text) - 1, -1)::int2,
  s.stage_since, s.values_changed_at{{predictions}}
FROM customer_scores s
WHERE s.shop_id = %(shop_id)s
"""
_STORED_PREDICTIONS_PG: Final = """,
  s.frequency::int4, s.monetary::float8, s.orders_last_year::int4, s.spent_last_year::float8,
  s.predicted_clv::float8, s.predicted_orders::float8, s.churn_risk::float8,
  COALESCE(s.expected_next_order_at, '-infinity'), (s.clv_source = 'model')::int::int2"""
AGGREGATE_COLUMNS: Final = CUSTOMER_COLUMNS[:9]
STORED_COLUMNS: Final = [("customer_id", "int8"), *CUSTOMER_COLUMNS[10:15]]
PREDICTION_COLUMNS: Final = CUSTOMER_COLUMNS[15:]
STORED_DEFAULTS: Final[dict[str, Any]] = {
    "stage": -1,
    "stage_since": NULL_TIME,
    "values_changed_at": NULL_TIME,
    "churn_risk": np.nan,
    "expected_next_order_at": NULL_TIME,
}


def _fetch_on_own_connection(
    bind: Any, query: str, params: dict[str, Any], columns: list[pgcopy.Column]
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
            aggregates = pgcopy.fetch_columns(session, _AGGREGATES_PG, params, AGGREGATE_COLUMNS)
            return _aligned(aggregates, future.result())
    return _load_customers_sqlite(session, shop_id, tz)


def _stored_query(with_predictions: bool) -> tuple[str, list[pgcopy.Column]]:
    """What the last rescore stored (PostgreSQL): read apart from the aggregates and aligned in
    NumPy (:func:`_aligned`); a join (and an ORDER BY) costs PostgreSQL more than both scans."""
    query = _STORED_PG.format(predictions=_STORED_PREDICTIONS_PG if with_predictions else "")
    return query, STORED_COLUMNS + (PREDICTION_COLUMNS if with_predictions else [])


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
    for name, kind in CUSTOMER_COLUMNS[10:]:
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
    """The aggregates (``AGGREGATE_COLUMNS``) of the buyers marked to score (PostgreSQL), any order."""
    query = _AGGREGATES_PG + " AND c.score_pending"
    return pgcopy.fetch_columns(session, query, {"shop_id": shop_id, "tz": tz}, AGGREGATE_COLUMNS)


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


def clear_pending(session: Session, shop_id: int, customer_ids: Array, updated_at_us: Array) -> None:
    """Unmark the customers scored, unless a webhook rewrote their aggregates since they were read
    (then ``aggregates_updated_at`` differs and the mark stays for the next rescore)."""
    if len(customer_ids) == 0:
        return
    if is_postgres(session):
        # A COPY into a temp table: binding a Python list of a first scoring's 200,000 ids as an
        # array parameter costs more than the update itself.
        session.execute(
            text(
                "CREATE TEMP TABLE IF NOT EXISTS scored_marks "
                "(customer_id int8, aggregates_updated_at timestamptz) ON COMMIT DELETE ROWS"
            )
        )
        session.execute(text("TRUNCATE scored_marks"))
        pgcopy.copy_in(
            session,
            "scored_marks",
            [("customer_id", "int8"), ("aggregates_updated_at", "timestamptz")],
            {"customer_id": customer_ids, "aggregates_updated_at": updated_at_us},
        )
        session.execute(text("ANALYZE scored_marks"))
        session.execute(
            text(
                "UPDATE customers AS c SET score_pending = false FROM scored_marks AS v "
                "WHERE c.shop_id = :shop_id AND c.customer_id = v.customer_id AND c.score_pending "
                "AND c.aggregates_updated_at = v.aggregates_updated_at"
            ),
            {"shop_id": shop_id},
        )
        return
    stmt = (
        update(customers)
        .where(
            customers.c.shop_id == shop_id,
            customers.c.customer_id == bindparam("cid"),
            customers.c.aggregates_updated_at == bindparam("seen", type_=UTCDateTime()),
        )
        .values(score_pending=False)
    )
    session.connection().execute(
        stmt,
        [{"cid": int(c), "seen": from_us(int(u))} for c, u in zip(customer_ids, updated_at_us, strict=True)],
    )


# --------------------------------------------------------------------------------------------
# Orders


ORDER_COLUMNS: Final[list[pgcopy.Column]] = [("customer_id", "int8"), ("day", "int4"), ("value", "float8")]


def _orders_query(tz: str, shop_id: int) -> tuple[str, dict[str, Any]]:
    query = (
        "SELECT o.customer_id::int8, "
        "((o.ordered_at AT TIME ZONE %(tz)s)::date - DATE '1970-01-01')::int4, "
        "o.value::float8 FROM orders o WHERE o.shop_id = %(shop_id)s AND o.qualifies "
        "AND o.customer_id IS NOT NULL"
    )
    return query, {"shop_id": shop_id, "tz": tz}


def load_orders(
    session: Session, shop_id: int, tz: str, customer_ids: Sequence[int] | None = None
) -> dict[str, Array]:
    """The shop's qualifying orders as arrays: customer id, day number in the shop's time zone, value.

    ``customer_ids`` limits them to those customers (the incremental rescore). All of them, on
    PostgreSQL: :func:`_read_in_snapshot` of the two halves of the table at once."""
    if is_postgres(session):
        if customer_ids is None:
            snapshot = _export_snapshot(session)
            with ThreadPoolExecutor(max_workers=2) as pool:
                return _ledger(pool, session, snapshot, shop_id, tz)
        query, params = _orders_query(tz, shop_id)
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
    session: Session, shop_id: int, tz: str, *, with_predictions: bool
) -> tuple[dict[str, Array], LoadedCustomers]:
    """Every qualifying order and every buyer (``load_orders``, ``load_customers``).

    PostgreSQL: the orders (in two halves of the table) and the buyers' aggregates are read at
    the same time on connections of their own, in one snapshot (:func:`_read_in_snapshot`), so
    that they agree: a change committed after it leaves its customer marked for the next rescore.
    What the last rescore stored is read on the rescore's own connection meanwhile."""
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
            AGGREGATE_COLUMNS,
        )
        ledger = pool.submit(_ledger, pool, session, snapshot, shop_id, tz)
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
    engine: Any, snapshot: str, query: str, params: dict[str, Any], columns: list[pgcopy.Column]
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


# --------------------------------------------------------------------------------------------
# Scores

SCORE_COLUMNS: Final[list[pgcopy.Column]] = [
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
    *((column, "bool") for column in BEHAVIOUR_FLAG_COLUMNS.values()),
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
]
_FLAGS: Final = tuple(BEHAVIOUR_FLAG_COLUMNS.values())
_STORED: Final = [
    "frequency",
    "monetary",
    "orders_last_year",
    "spent_last_year",
    "recency_score",
    "frequency_score",
    "monetary_score",
    "rfm_code",
    "fm_score",
    "segment",
    "thirds_group",
    "stage",
    "stage_since",
    *_FLAGS,
    "historic_clv",
    "predicted_clv",
    "predicted_orders",
    "churn_risk",
    "expected_next_order_at",
    "average_days_between_orders",
    "clv_tier",
    "clv_source",
    "row_hash",
    "synced_hash",
    "values_changed_at",
]

_MONEY_PLACES: Final = {"monetary": 4, "spent_last_year": 4, "historic_clv": 4, "predicted_clv": 2}
NOT_EXACT: Final = pgcopy.NOT_EXACT
money_units = pgcopy.money_units
RFM_CODES: Final = tuple(f"{r}{f}{m}" for r in range(1, 6) for f in range(1, 6) for m in range(1, 6))
_LABELS: Final[dict[str, tuple[str | None, ...]]] = {
    "segment": SEGMENT_NAMES,
    "thirds_group": THIRDS_GROUP_NAMES,
    "stage": STAGE_NAMES,
    "clv_tier": (None, *CLV_TIERS),  # code 0 = no tier
    "clv_source": CLV_SOURCES,
}
_NULLABLE: Final = {"expected_next_order_at": "timestamptz?", "average_days_between_orders": "float8?"}
_SCORES_WIRE: Final[list[pgcopy.Column]] = [
    ("shop_id", "int8"),
    *(
        (
            name,
            f"numeric({_MONEY_PLACES[name]})"
            if name in _MONEY_PLACES
            else "text"
            if name in _LABELS
            else _NULLABLE.get(name, kind),
        )
        for name, kind in SCORE_COLUMNS
    ),
    ("rfm_code", "text"),
]


def _scores_wire(shop_id: int, rows: dict[str, Array]) -> dict[str, Any]:
    """The arrays ``copy_in`` sends as customer_scores rows: codes become their names, money exact
    NUMERICs (what ``round(value::numeric, places)`` would store)."""
    wire: dict[str, Any] = {"shop_id": np.full(rows["customer_id"].size, shop_id, dtype=np.int64)}
    for name, _ in SCORE_COLUMNS:
        if name in _LABELS:
            wire[name] = pgcopy.Labels(rows[name], _LABELS[name])
        else:
            wire[name] = rows[name]
    r, f, m = (rows[f"{name}_score"].astype(np.intp) - 1 for name in ("recency", "frequency", "monetary"))
    wire["rfm_code"] = pgcopy.Labels(r * 25 + f * 5 + m, RFM_CODES)
    return wire


def customers_removed(session: Session, shop_id: int) -> int:
    """How many customer rows the shop lost (redactions, merges): read before a rescore reads its
    buyers, compared with :func:`lock_scores`'s answer when it writes."""
    return int(session.scalar(select(Shop.customers_removed).where(Shop.shop_id == shop_id)) or 0)


def lock_scores(session: Session, shop_id: int) -> int:
    """Take the shop's scores lock until the transaction ends, and return ``customers_removed``.

    A rescore takes it before it writes scores, a redaction before it erases them: a rescore
    copies in the rows of customers scored for the first time, and a redaction's delete must not
    run while copied rows it cannot see yet are on their way (it would miss them; a row updated in
    place makes it wait on its own, but not a row inserted). A redaction that committed
    before the lock shows in the count, and the rescore then drops what it wrote for that customer
    (:func:`drop_removed_customers`). The shop's row is locked as a foreign key check would (there
    is none on customer_scores: migration 0008), so the shop cannot be erased under the rescore."""
    query = select(Shop.customers_removed).where(Shop.shop_id == shop_id)
    advisory_lock(session, [lock_key("scores", shop_id)])
    if is_postgres(session):
        query = query.with_for_update(key_share=True)
    removed = session.scalar(query)
    if removed is None:
        raise LookupError(f"shop {shop_id} does not exist: no scores to store")
    return int(removed)


def drop_removed_customers(session: Session, shop_id: int) -> list[int]:
    """Delete the scores (and stage history) of customers whose row is gone: removed after the
    rescore read them. Returns their ids."""
    gone = (
        delete(scores)
        .where(
            scores.c.shop_id == shop_id,
            ~exists().where(customers.c.shop_id == shop_id, customers.c.customer_id == scores.c.customer_id),
        )
        .returning(scores.c.customer_id)
    )
    removed = [int(c) for c in session.execute(gone).scalars()]
    _forget_stage_history(session, shop_id, removed)
    return removed


def write_scores(session: Session, shop_id: int, columns: dict[str, Array], selection: Array) -> int:
    """Store the scores of the customers at positions ``selection`` of ``columns`` (the rows that
    changed; codes become names here; ``columns["is_new"]`` marks customers without a stored row),
    under :func:`lock_scores`. Returns the rows written.

    PostgreSQL, by binary COPY of the exact stored values: new rows straight into the table; rows
    already stored into a temp table of the same shape, then one UPDATE copies them over, column
    for column. Most rows are rewritten daily, so the table keeps room on its pages (fillfactor,
    migration 0011) for each new version next to the old one: an in-place (HOT) update that
    touches no index. Deleting and copying the rows in again costs more: each copied row checks
    the primary key against the deleted one."""
    count = int(selection.size)
    if count == 0:
        return 0
    if not is_postgres(session):
        return _upsert_scores(session, shop_id, {name: values[selection] for name, values in columns.items()})
    size = columns["customer_id"].size
    new = columns["is_new"][selection]
    for rows, stored in ((selection[~new], True), (selection[new], False)):
        if rows.size == 0:
            continue
        part = columns if rows.size == size else {name: values[rows] for name, values in columns.items()}
        wire = _scores_wire(shop_id, part)
        del part
        if stored:
            _update_scores(session, shop_id, wire, few=4 * rows.size <= size)
        else:
            pgcopy.copy_in(session, "customer_scores", _SCORES_WIRE, wire)
        del wire
    return count


_SCORES_UPDATE: Final = (
    f"UPDATE customer_scores AS s SET ({', '.join(_STORED)}) = ({', '.join('t.' + c for c in _STORED)}) "
    "FROM score_rows AS t WHERE s.shop_id = :shop_id AND s.customer_id = t.customer_id"
)


def _update_scores(session: Session, shop_id: int, wire: dict[str, Any], *, few: bool) -> None:
    session.execute(
        text("CREATE TEMP TABLE IF NOT EXISTS score_rows (LIKE customer_scores) ON COMMIT DELETE ROWS")
    )
    session.execute(text("TRUNCATE score_rows"))
    pgcopy.copy_in(session, "score_rows", _SCORES_WIRE, wire)
    # The join with the stored rows fits in memory (the default 4 MB splits a 200,000-row hash
    # in batches written to disk: 2.2 s instead of 1.1 s).
    session.execute(text("SET LOCAL work_mem = '64MB'"))
    if few:
        # A probe of the key for each. The shop's row count in the statistics can be far too low
        # (autovacuum has not analyzed a first scoring's rows yet), and the planner would then hash
        # every stored row of the shop to update a thousand.
        session.execute(text("SET LOCAL enable_hashjoin = off"))
        session.execute(text("SET LOCAL enable_mergejoin = off"))
    session.execute(text(_SCORES_UPDATE), {"shop_id": shop_id})
    if few:
        session.execute(text("RESET enable_hashjoin"))
        session.execute(text("RESET enable_mergejoin"))


def _upsert_scores(session: Session, shop_id: int, rows: dict[str, Array]) -> int:
    """SQLite (one writer at a time): the changed rows upserted through SQLAlchemy."""
    records = []
    for i in range(int(rows["customer_id"].size)):
        record: dict[str, Any] = {"shop_id": shop_id}
        for name, kind in SCORE_COLUMNS:
            value = rows[name][i]
            if kind == "timestamptz":
                record[name] = from_us(int(value))
            elif kind == "bool":
                record[name] = bool(value)
            elif kind in ("int2", "int4", "int8"):
                record[name] = int(value)
            else:
                record[name] = float(value)
        record["rfm_code"] = f"{record['recency_score']}{record['frequency_score']}{record['monetary_score']}"
        for name, labels in _LABELS.items():
            record[name] = labels[record[name]]
        for money, places in _MONEY_PLACES.items():
            record[money] = _decimal(record[money], places)
        if np.isnan(record["average_days_between_orders"]):
            record["average_days_between_orders"] = None
        records.append(record)
    session.execute(upsert(session, scores, keys=("shop_id", "customer_id"), update=_STORED), records)
    return len(records)


def _decimal(value: float, places: int) -> Any:
    from decimal import Context, Decimal

    return Decimal(repr(round(value, places))).quantize(Decimal(1).scaleb(-places), context=Context(prec=40))


def delete_scores(session: Session, shop_id: int, customer_ids: Sequence[int]) -> list[int]:
    if not customer_ids:
        return []
    gone = (
        delete(scores)
        .where(scores.c.shop_id == shop_id, scores.c.customer_id.in_([int(c) for c in customer_ids]))
        .returning(scores.c.customer_id)
    )
    removed = [int(c) for c in session.execute(gone).scalars()]
    _forget_stage_history(session, shop_id, removed)
    return removed


def _forget_stage_history(session: Session, shop_id: int, customer_ids: Sequence[int]) -> None:
    """Stage history goes with the customer row (redaction, merge), not with a cancelled order."""
    if not customer_ids:
        return
    changes = table_of(StageChange)
    session.execute(
        delete(changes).where(
            changes.c.shop_id == shop_id,
            changes.c.customer_id.in_(list(customer_ids)),
            ~exists().where(customers.c.shop_id == shop_id, customers.c.customer_id == changes.c.customer_id),
        )
    )


def erase_customer(session: Session, shop_id: int, customer_id: int) -> None:
    """Everything scoring holds about one customer (for ``customers/redact``), under
    :func:`lock_scores`."""
    lock_scores(session, shop_id)
    session.execute(delete(scores).where(scores.c.shop_id == shop_id, scores.c.customer_id == customer_id))
    changes = table_of(StageChange)
    session.execute(delete(changes).where(changes.c.shop_id == shop_id, changes.c.customer_id == customer_id))


def insert_stage_changes(
    session: Session, shop_id: int, customer_ids: Array, from_stage: Array, to_stage: Array, now: dt.datetime
) -> int:
    count = len(customer_ids)
    if count == 0:
        return 0
    if is_postgres(session):
        session.execute(
            text(
                "CREATE TEMP TABLE IF NOT EXISTS stage_rows "
                "(customer_id int8, from_stage int2, to_stage int2) ON COMMIT DELETE ROWS"
            )
        )
        session.execute(text("TRUNCATE stage_rows"))
        columns: list[pgcopy.Column] = [("customer_id", "int8"), ("from_stage", "int2"), ("to_stage", "int2")]
        arrays = {"customer_id": customer_ids, "from_stage": from_stage, "to_stage": to_stage}
        pgcopy.copy_in(session, "stage_rows", columns, arrays)
        names = _array_literal(STAGE_NAMES)
        session.execute(
            text(
                "INSERT INTO stage_changes (shop_id, customer_id, from_stage, to_stage, changed_at) "
                f"SELECT :shop_id, t.customer_id, ({names})[NULLIF(t.from_stage + 1, 0)], "
                f"({names})[t.to_stage + 1], :now FROM stage_rows t"
            ),
            {"shop_id": shop_id, "now": now},
        )
        return count
    session.execute(
        table_of(StageChange).insert(),
        [
            {
                "shop_id": shop_id,
                "customer_id": int(c),
                "from_stage": None if f < 0 else STAGE_NAMES[int(f)],
                "to_stage": STAGE_NAMES[int(t)],
                "changed_at": now,
            }
            for c, f, t in zip(customer_ids, from_stage, to_stage, strict=True)
        ],
    )
    return count


# --------------------------------------------------------------------------------------------
# Segments, metrics


def replace_segments(session: Session, shop_id: int, rows: list[dict[str, Any]]) -> None:
    table = table_of(ShopSegment)
    session.execute(delete(table).where(table.c.shop_id == shop_id))
    if rows:
        session.execute(table.insert(), [{"shop_id": shop_id, **row} for row in rows])


def save_metrics(
    session: Session,
    shop_id: int,
    now: dt.datetime,
    customers_scored: int,
    orders_scored: int,
    metrics: dict[str, Any] | None,
) -> int:
    """Record a rescore; with ``metrics`` (a full rescore) also the metrics JSON and its time.
    Returns the rescore's token (``ShopMetricsSnapshot.rescore_token``)."""
    token = secrets.randbits(63)
    row: dict[str, Any] = {
        "shop_id": shop_id,
        "rescored_at": now,
        "customers_scored": customers_scored,
        "orders_scored": orders_scored,
        "rescore_token": token,
    }
    update_columns = ["rescored_at", "customers_scored", "orders_scored", "rescore_token"]
    if metrics is not None:
        row |= {"metrics": json.dumps(metrics, separators=(",", ":")), "computed_at": now}
        update_columns += ["metrics", "computed_at"]
    session.execute(
        upsert(session, table_of(ShopMetricsSnapshot), keys=("shop_id",), update=update_columns), row
    )
    return token


def metrics_row(session: Session, shop_id: int) -> ShopMetricsSnapshot | None:
    return session.get(ShopMetricsSnapshot, shop_id)


# --------------------------------------------------------------------------------------------
# CLV fits and backtests


def latest_fit(session: Session, shop_id: int) -> ClvFit | None:
    return session.scalar(
        select(ClvFit)
        .where(ClvFit.shop_id == shop_id)
        .order_by(ClvFit.fitted_at.desc(), ClvFit.id.desc())
        .limit(1)
    )


def add_fit(session: Session, row: dict[str, Any]) -> ClvFit:
    fit = ClvFit(**row)
    session.add(fit)
    session.flush()
    return fit


def add_backtest(session: Session, row: dict[str, Any]) -> Backtest:
    backtest = Backtest(**row)
    session.add(backtest)
    session.flush()
    return backtest


def latest_backtest(session: Session, shop_id: int) -> Backtest | None:
    return session.scalar(
        select(Backtest)
        .where(Backtest.shop_id == shop_id)
        .order_by(Backtest.computed_at.desc(), Backtest.id.desc())
        .limit(1)
    )


# --------------------------------------------------------------------------------------------
# What the schedules look for


def shops_with_pending_customers(session: Session) -> list[int]:
    # One index probe per shop (ix_customers_shop_id_score_pending is partial on score_pending).
    shop_ids = select(Shop.shop_id).where(Shop.uninstalled_at.is_(None))
    return [
        int(s)
        for s in session.scalars(
            shop_ids.where(
                exists().where(customers.c.shop_id == Shop.shop_id, customers.c.score_pending)
            ).order_by(Shop.shop_id)
        )
    ]


def shops_due_full_rescore(session: Session, scored_before: dt.datetime) -> list[int]:
    """Installed shops with buyers whose last full rescore is older than ``scored_before``."""
    snapshot = table_of(ShopMetricsSnapshot)
    last_full = select(snapshot.c.computed_at).where(snapshot.c.shop_id == Shop.shop_id).scalar_subquery()
    stmt = select(Shop.shop_id).where(
        Shop.uninstalled_at.is_(None),
        exists().where(customers.c.shop_id == Shop.shop_id),
        (last_full.is_(None)) | (last_full < scored_before),
    )
    return [int(s) for s in session.scalars(stmt.order_by(Shop.shop_id))]


def shops_due_fit(session: Session, fitted_before: dt.datetime, growth: float) -> list[int]:
    """Installed shops with scores whose last fit is older than ``fitted_before``, or whose ledger
    grew by more than ``growth`` (a share) since that fit."""
    snapshot = table_of(ShopMetricsSnapshot)
    fits = table_of(ClvFit)
    newest = (
        select(fits.c.fitted_at, fits.c.orders)
        .where(fits.c.shop_id == Shop.shop_id)
        .order_by(fits.c.fitted_at.desc(), fits.c.id.desc())
        .limit(1)
        .correlate(Shop)
    )
    fitted_at = newest.with_only_columns(fits.c.fitted_at).scalar_subquery()
    fitted_orders = newest.with_only_columns(fits.c.orders).scalar_subquery()
    stmt = (
        select(Shop.shop_id)
        .join(snapshot, snapshot.c.shop_id == Shop.shop_id)
        .where(
            Shop.uninstalled_at.is_(None),
            fitted_at.is_(None)
            | (fitted_at < fitted_before)
            | (snapshot.c.orders_scored > (fitted_orders * (1 + growth)).cast(Integer)),
        )
    )
    return [int(s) for s in session.scalars(stmt.order_by(Shop.shop_id))]
