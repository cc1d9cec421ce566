"""Writes of a rescore: the scores (binary COPY of new rows, an in-place UPDATE of stored ones),
the marks it clears, the stage changes, the segments and the metrics; and the shop's scores lock
that a redaction takes too. SQLite goes row by row through SQLAlchemy."""

from __future__ import annotations

import datetime as dt
import json
import secrets
from collections.abc import Sequence
from typing import Any, Final

import numpy as np
import numpy.typing as npt
from sqlalchemy import bindparam, delete, exists, select, text, update
from sqlalchemy.orm import Session

from app.kit import pgcopy
from app.kit.sql import advisory_lock, lock_key, upsert
from app.models import (
    Customer,
    CustomerScore,
    FlowTriggerEvent,
    SegmentChange,
    Shop,
    ShopMetricsSnapshot,
    ShopSegment,
    StageChange,
)
from app.models.base import UTCDateTime, table_of
from app.scoring.columns import FLAG_COLUMNS, SCORE_COLUMNS, Columns, from_us, to_us
from app.scoring.load import array_literal, is_postgres
from app.vocabulary import (
    CLV_TIERS,
    RFM_SEGMENT_NAMES,
    SEGMENT_CHANGE_CAUSES,
    STAGE_CHANGE_CAUSES,
    STAGE_NAMES,
    THIRDS_GROUP_NAMES,
)

Array = npt.NDArray[Any]
customers = table_of(Customer)
scores = table_of(CustomerScore)
CLV_SOURCES: Final = ("segment_formula", "model")


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
# Scores

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
    *FLAG_COLUMNS,
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
    "segment": RFM_SEGMENT_NAMES,
    "thirds_group": THIRDS_GROUP_NAMES,
    "stage": STAGE_NAMES,
    "clv_tier": (None, *CLV_TIERS),
    "clv_source": CLV_SOURCES,
}
_NULLABLE: Final = {"expected_next_order_at": "timestamptz?", "average_days_between_orders": "float8?"}
_SCORES_WIRE: Final[Columns] = (
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
)


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


def lock_scores(session: Session, shop_id: int) -> int:
    """Take the shop's scores lock until the transaction ends, and return ``customers_removed``.

    A rescore takes it before it writes scores, a redaction before it erases them: a rescore
    copies in the rows of customers scored for the first time, and a redaction's delete must not
    run while copied rows it cannot see yet are on their way (it would miss them; a row updated in
    place makes it wait on its own, but not a row inserted). A redaction that committed
    before the lock shows in the count, and the rescore then drops what it wrote for that customer
    (:func:`drop_removed_customers`). On PostgreSQL the shop's row is read ``FOR NO KEY UPDATE``
    (SQLAlchemy's ``key_share=True``), the lock a removal's update of the count takes too
    (``app.customers.repository.remove``): a removal in flight is waited for and shows in the
    count, a later one waits for the rescore to commit. A foreign key check's lighter ``FOR KEY
    SHARE`` would let the count move under the rescore. It also keeps the shop from being erased
    under the rescore (customer_scores has no foreign key to shops: migration 0008)."""
    query = select(Shop.customers_removed).where(Shop.shop_id == shop_id)
    advisory_lock(session, [lock_key("scores", shop_id)])
    if is_postgres(session):
        query = query.with_for_update(key_share=True)  # FOR NO KEY UPDATE
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
    """Stage and segment history (and the Flow triggers queued for them) go with the customer row
    (redaction, merge), not with a cancelled order."""
    if not customer_ids:
        return
    for table in (table_of(StageChange), table_of(SegmentChange), table_of(FlowTriggerEvent)):
        session.execute(
            delete(table).where(
                table.c.shop_id == shop_id,
                table.c.customer_id.in_(list(customer_ids)),
                ~exists().where(
                    customers.c.shop_id == shop_id, customers.c.customer_id == table.c.customer_id
                ),
            )
        )


def erase_customer(session: Session, shop_id: int, customer_id: int) -> None:
    """Everything scoring holds about one customer (for ``customers/redact``), under
    :func:`lock_scores`."""
    lock_scores(session, shop_id)
    session.execute(delete(scores).where(scores.c.shop_id == shop_id, scores.c.customer_id == customer_id))
    for table in (table_of(StageChange), table_of(SegmentChange), table_of(FlowTriggerEvent)):
        session.execute(delete(table).where(table.c.shop_id == shop_id, table.c.customer_id == customer_id))


def insert_stage_changes(
    session: Session,
    shop_id: int,
    customer_ids: Array,
    from_stage: Array,
    to_stage: Array,
    now: dt.datetime,
    cause: Array | None = None,
) -> int:
    """Record stage changes dated ``now``; ``cause`` codes into ``STAGE_CHANGE_CAUSES`` (None: all
    behaviour)."""
    count = len(customer_ids)
    if count == 0:
        return 0
    if cause is None:
        cause = np.zeros(count, dtype=np.int16)
    if is_postgres(session):
        session.execute(
            text(
                "CREATE TEMP TABLE IF NOT EXISTS stage_rows "
                "(customer_id int8, from_stage int2, to_stage int2, cause int2) ON COMMIT DELETE ROWS"
            )
        )
        session.execute(text("TRUNCATE stage_rows"))
        columns: list[pgcopy.Column] = [
            ("customer_id", "int8"),
            ("from_stage", "int2"),
            ("to_stage", "int2"),
            ("cause", "int2"),
        ]
        arrays = {"customer_id": customer_ids, "from_stage": from_stage, "to_stage": to_stage, "cause": cause}
        pgcopy.copy_in(session, "stage_rows", columns, arrays)
        names, causes = array_literal(STAGE_NAMES), array_literal(STAGE_CHANGE_CAUSES)
        session.execute(
            text(
                "INSERT INTO stage_changes (shop_id, customer_id, from_stage, to_stage, changed_at, cause) "
                f"SELECT :shop_id, t.customer_id, ({names})[NULLIF(t.from_stage + 1, 0)], "
                f"({names})[t.to_stage + 1], :now, ({causes})[t.cause + 1] FROM stage_rows t"
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
                "cause": STAGE_CHANGE_CAUSES[int(why)],
            }
            for c, f, t, why in zip(customer_ids, from_stage, to_stage, cause, strict=True)
        ],
    )
    return count


def insert_segment_changes(
    session: Session,
    shop_id: int,
    customer_ids: Array,
    from_segment: Array,
    to_segment: Array,
    now: dt.datetime,
    cause: str,
) -> int:
    """Record RFM segment changes (codes into ``RFM_SEGMENT_NAMES``) dated ``now``, all with one
    ``cause`` of ``SEGMENT_CHANGE_CAUSES``."""
    if cause not in SEGMENT_CHANGE_CAUSES:
        raise ValueError(f"unknown segment change cause {cause!r}")
    count = len(customer_ids)
    if count == 0:
        return 0
    if is_postgres(session):
        # Straight into the table (binary COPY, names from the codes): no temp table in between.
        columns: list[pgcopy.Column] = [
            ("shop_id", "int8"),
            ("customer_id", "int8"),
            ("from_segment", "text"),
            ("to_segment", "text"),
            ("changed_at", "timestamptz"),
            ("cause", "text"),
        ]
        arrays = {
            "shop_id": np.full(count, shop_id, dtype=np.int64),
            "customer_id": np.asarray(customer_ids, dtype=np.int64),
            "from_segment": pgcopy.Labels(from_segment, RFM_SEGMENT_NAMES),
            "to_segment": pgcopy.Labels(to_segment, RFM_SEGMENT_NAMES),
            "changed_at": np.full(count, to_us(now), dtype=np.int64),
            "cause": pgcopy.Labels(np.full(count, SEGMENT_CHANGE_CAUSES.index(cause)), SEGMENT_CHANGE_CAUSES),
        }
        pgcopy.copy_in(session, "segment_changes", columns, arrays)
        return count
    session.execute(
        table_of(SegmentChange).insert(),
        [
            {
                "shop_id": shop_id,
                "customer_id": int(c),
                "from_segment": RFM_SEGMENT_NAMES[int(f)],
                "to_segment": RFM_SEGMENT_NAMES[int(t)],
                "changed_at": now,
                "cause": cause,
            }
            for c, f, t in zip(customer_ids, from_segment, to_segment, strict=True)
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
    *,
    full: bool = False,
) -> int:
    """Record a rescore; with ``metrics`` also the metrics JSON of this run, and with ``full`` (its
    order-history metrics are new) the time of the full rescore (``computed_at``).
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
        row["metrics"] = json.dumps(metrics, separators=(",", ":"))
        update_columns.append("metrics")
    if full:
        row["computed_at"] = now
        update_columns.append("computed_at")
    session.execute(
        upsert(session, table_of(ShopMetricsSnapshot), keys=("shop_id",), update=update_columns), row
    )
    return token
