"""SQL for the history import: many ledger rows at once with the webhook path's rules, the
set-based recomputation of customer aggregates, and the import / reconciliation state rows.

The bulk ledger write keeps the rules of `app.orders.service.apply_order`:
- the shop's row is held first (`app.shops.repository.hold_shop`): the ledger and the customers
  have no foreign key to shops (migration 0027), so a batch checks the shop once, not per row;
- a tombstoned (deleted or redacted) order is never written, even when its deletion commits while
  the batch runs (the batch re-checks tombstones after its upsert, in the same transaction);
- a row is only overwritten by a strictly newer `updated_at`
  (`ON CONFLICT … DO UPDATE … WHERE orders.source_updated_at < excluded.source_updated_at`);
- `value`, `pending_refunds` and `qualifies` are derived exactly as the service derives them.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, cast

import psycopg
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    MetaData,
    String,
    Table,
    Text,
    bindparam,
    select,
    text,
    update,
)
from sqlalchemy.engine import CursorResult
from sqlalchemy.orm import Session
from sqlalchemy.schema import CreateTable

from app.customers import repository as customers_repo
from app.imports.schemas import LEDGER_COLUMNS, LedgerRow, LedgerText
from app.kit.sql import upsert
from app.models import Order, OrderImport, ShopSyncState
from app.models.base import Money, UTCDateTime, table_of
from app.orders.schemas import order_counts, refunds_in_shop_money
from app.shops import repository as shops_repo

orders = table_of(Order)

_VALUE = LEDGER_COLUMNS.index("value")
_PENDING = LEDGER_COLUMNS.index("pending_refunds")
_QUALIFIES = LEDGER_COLUMNS.index("qualifies")


# The staging table: PostgreSQL gets it by COPY and drops it at commit; SQLite keeps one per
# connection and empties it for each batch.
_stage_meta = MetaData()
_stage_columns: list[Column[Any]] = [
    Column("order_id", BigInteger, primary_key=True),
    Column("customer_id", BigInteger),
    Column("ordered_at", UTCDateTime),
    Column("source_updated_at", UTCDateTime),
    Column("cancelled_at", UTCDateTime),
    Column("test", Boolean),
    Column("financial_status", String(32)),
    Column("current_total", Money),
    Column("presentment_total", Money),
    Column("pending_refunds", Money),
    Column("value", Money),
    Column("total_discounts", Money),
    Column("discount_codes", Text),
    Column("discounted", Boolean),
    Column("source_name", String(255)),
    Column("qualifies", Boolean),
]
# PostgreSQL's stage has no primary key to maintain during the COPY: the batch holds one row per
# order id already (app.imports.lines), and the statements below join it whole. It takes the
# ledger's COPY text as it is, `shop_id` first (`LedgerText`); the upsert reads `:shop_id` instead.
stage_pg = Table(
    "import_stage",
    _stage_meta,
    Column("shop_id", BigInteger),
    *[Column(c.name, c.type, primary_key=False) for c in _stage_columns],
    prefixes=["TEMPORARY"],
    postgresql_on_commit="DROP",
)
stage_sqlite = Table("import_stage", MetaData(), *[c._copy() for c in _stage_columns], prefixes=["TEMPORARY"])

_set_ledger = ", ".join(f"{c} = excluded.{c}" for c in LEDGER_COLUMNS if c != "order_id")
_cols = ", ".join(LEDGER_COLUMNS)
_MERGE = text(
    f"""
    INSERT INTO orders (shop_id, {_cols})
    SELECT :shop_id, {_cols} FROM import_stage s
    WHERE NOT EXISTS (
        SELECT 1 FROM deleted_orders d WHERE d.shop_id = :shop_id AND d.order_id = s.order_id
    )
    ORDER BY s.order_id
    ON CONFLICT (shop_id, order_id) DO UPDATE SET {_set_ledger},
        stale_since = CASE WHEN orders.stale_since > excluded.source_updated_at
                           THEN orders.stale_since END
    WHERE orders.source_updated_at < excluded.source_updated_at
    """
)
# A deletion that committed while the upsert ran: its tombstone is visible to this new statement.
_DROP_TOMBSTONED = text(
    """
    DELETE FROM orders WHERE shop_id = :shop_id AND order_id IN (
        SELECT s.order_id FROM import_stage s
        JOIN deleted_orders d ON d.shop_id = :shop_id AND d.order_id = s.order_id)
    """
)
_PENDING_REFUNDS = text(
    """
    SELECT s.order_id, SUM(r.amount) FROM import_stage s
    JOIN order_refunds r ON r.shop_id = :shop_id AND r.order_id = s.order_id
                         AND r.refunded_at > s.source_updated_at
    GROUP BY s.order_id
    """
).columns(order_id=BigInteger, amount=Money)


# A batch whose order-id range has nothing in the ledger, its tombstones or its refunds (a shop's
# first import; webhooks write few orders meanwhile) has no conflicts, no deleted order and no
# pending refund to meet: the upsert's rules all hold for a plain insert, so its COPY text goes
# straight into the ledger, without the stage and the upsert's speculative insertion. A row that a
# delivery inserts after this check fails the COPY, which then rolls back to a savepoint and takes
# the upsert; a deletion that commits meanwhile is caught after the COPY as after the upsert.
_RANGE_IS_NEW = text(
    """
    SELECT NOT EXISTS (SELECT 1 FROM orders
                       WHERE shop_id = :shop_id AND order_id BETWEEN :first AND :last)
       AND NOT EXISTS (SELECT 1 FROM deleted_orders
                       WHERE shop_id = :shop_id AND order_id BETWEEN :first AND :last)
       AND NOT EXISTS (SELECT 1 FROM order_refunds
                       WHERE shop_id = :shop_id AND order_id BETWEEN :first AND :last)
    """
)
_DROP_TOMBSTONED_RANGE = text(
    """
    DELETE FROM orders WHERE shop_id = :shop_id AND order_id IN (
        SELECT d.order_id FROM deleted_orders d
        WHERE d.shop_id = :shop_id AND d.order_id BETWEEN :first AND :last)
    """
)


def write_ledger_text(session: Session, shop_id: int, ledger: LedgerText) -> int:
    """Upsert a batch of ledger rows given as COPY text (one row per order id, in ascending order
    id: the lock order) in the caller's transaction; PostgreSQL only. Returns how many rows were
    inserted or overwritten (see :func:`write_ledger_rows`)."""
    if not ledger.rows:
        return 0
    shops_repo.hold_shop(session, shop_id)
    bounds = {"shop_id": shop_id, "first": ledger.first, "last": ledger.last}
    if session.scalar(_RANGE_IS_NEW, bounds):
        try:
            with session.begin_nested():
                _copy(session, f"COPY orders (shop_id, {_cols}) FROM STDIN", ledger.data)
        except psycopg.errors.UniqueViolation:
            pass
        else:
            dropped = cast(CursorResult[Any], session.execute(_DROP_TOMBSTONED_RANGE, bounds)).rowcount
            return ledger.rows - max(dropped or 0, 0)
    return write_ledger_rows(session, shop_id, ledger)


def _copy(session: Session, statement: str, data: bytes) -> None:
    raw = session.connection().connection.dbapi_connection
    assert raw is not None
    with raw.cursor() as cur, cur.copy(statement) as copy:  # type: ignore[attr-defined]
        copy.write(data)


def write_ledger_rows(session: Session, shop_id: int, rows: Sequence[LedgerRow] | LedgerText) -> int:
    """Upsert many ledger rows (one per order id) in the caller's transaction; returns how many
    rows were inserted or overwritten. Customer aggregates are NOT touched (see
    :func:`recompute_customers`). On PostgreSQL the rows may come as COPY text
    (``app.imports.schemas.LedgerText``), sent in one piece."""
    if not len(rows):
        return 0
    shops_repo.hold_shop(session, shop_id)
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        # the upsert sorts the batch by order id (the lock order): in memory, not in a temp file
        session.execute(text("SET LOCAL work_mem = '64MB'"))
        session.execute(CreateTable(stage_pg, if_not_exists=True))
        session.execute(text("TRUNCATE import_stage"))
        if isinstance(rows, LedgerText):
            _copy(session, f"COPY import_stage (shop_id, {_cols}) FROM STDIN", rows.data)
        else:
            raw = session.connection().connection.dbapi_connection
            assert raw is not None
            with raw.cursor() as cur, cur.copy(f"COPY import_stage ({_cols}) FROM STDIN") as copy:  # type: ignore[attr-defined]
                for row in rows:
                    copy.write_row(row)
    else:
        if isinstance(rows, LedgerText):
            raise ValueError("COPY text rows are for PostgreSQL only")
        session.execute(CreateTable(stage_sqlite, if_not_exists=True))
        session.execute(stage_sqlite.delete())
        session.execute(stage_sqlite.insert(), [dict(zip(LEDGER_COLUMNS, row, strict=True)) for row in rows])
    return _merge_stage(session, shop_id)


def _merge_stage(session: Session, shop_id: int) -> int:
    _apply_pending_refunds(session, shop_id)
    written = cast(CursorResult[Any], session.execute(_MERGE, {"shop_id": shop_id})).rowcount
    session.execute(_DROP_TOMBSTONED, {"shop_id": shop_id})
    return max(written or 0, 0)


def _apply_pending_refunds(session: Session, shop_id: int) -> None:
    """Refunds seen through `refunds/create` that are newer than the incoming order state still
    lower its value (the service's rule); there are few, so they are fixed row by row."""
    pending = session.execute(_PENDING_REFUNDS, {"shop_id": shop_id}).all()
    if not pending:
        return
    stage = stage_pg if session.get_bind().dialect.name == "postgresql" else stage_sqlite
    for order_id, presentment_amount in pending:
        row = session.execute(
            select(
                stage.c.customer_id,
                stage.c.test,
                stage.c.cancelled_at,
                stage.c.financial_status,
                stage.c.current_total,
                stage.c.presentment_total,
            ).where(stage.c.order_id == order_id)
        ).one()
        total = Decimal(row.current_total)
        amount = refunds_in_shop_money(
            Decimal(presentment_amount),
            total,
            Decimal(row.presentment_total) if row.presentment_total is not None else None,
        )
        qualifies = order_counts(
            customer_id=row.customer_id,
            test=row.test,
            cancelled_at=row.cancelled_at,
            financial_status=row.financial_status,
            current_total=total,
            pending_refunds=amount,
        )
        session.execute(
            update(stage)
            .where(stage.c.order_id == order_id)
            .values(pending_refunds=amount, value=max(total - amount, Decimal(0)), qualifies=qualifies)
        )


# -- customer aggregates, set-based ---------------------------------------------------------------

_CUSTOMER_IDS = text(
    """
    SELECT customer_id FROM orders
    WHERE shop_id = :shop_id AND customer_id IS NOT NULL AND customer_id > :after
    UNION
    SELECT customer_id FROM customers WHERE shop_id = :shop_id AND customer_id > :after
    ORDER BY 1
    """
)


def customer_ids(session: Session, shop_id: int, after: int | None) -> list[int]:
    """Every customer of the shop with ledger rows or aggregates, ascending, above `after`."""
    params = {"shop_id": shop_id, "after": after if after is not None else -1}
    return list(session.scalars(_CUSTOMER_IDS, params))


def refresh_statistics(session: Session) -> None:
    """After a bulk load the planner's row estimates for the ledger are far off (it would sort the
    shop's whole ledger for every chunk of customers); ANALYZE samples it in well under a second."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("ANALYZE orders"))


def recompute_customers(session: Session, shop_id: int, customer_ids: Sequence[int], now: datetime) -> None:
    """Rewrite the aggregates of `customer_ids` from the ledger with the webhook path's own
    set-based statement (one statement per chunk, so the numbers are the same by construction),
    under the same per-customer locks: a delivery for one of them waits for this transaction and
    then recomputes from what it wrote. Keep `customer_ids` to a few thousand (one lock each).

    Only customers with scores are marked to score: the others are scored by the full rescore the
    import asks for when it is done (``app.customers.repository.recompute``)."""
    if not customer_ids:
        return
    customers_repo.lock_customers(session, shop_id, customer_ids)
    shops_repo.hold_shop(session, shop_id)
    customers_repo.recompute(session, shop_id, customer_ids, now, mark_unscored=False)


# -- import and reconciliation state ----------------------------------------------------------------


def get_import(session: Session, shop_id: int, *, for_update: bool = False) -> OrderImport | None:
    stmt = select(OrderImport).where(OrderImport.shop_id == shop_id)
    if for_update:
        stmt = stmt.with_for_update()
    return session.scalars(stmt).first()


def ensure_import_row(session: Session, shop_id: int, run_id: str, now: datetime) -> None:
    """Create the shop's import row if missing (state `done` so that a start resets it); two
    concurrent starts do not collide."""
    row = {
        "shop_id": shop_id,
        "run_id": run_id,
        "state": "done",
        "requested_at": now,
        "updated_at": now,
        "orders_done": 0,
        "lines_done": 0,
        "bytes_done": 0,
        "attempts": 0,
    }
    session.execute(upsert(session, table_of(OrderImport), keys=("shop_id",)), row)


def active_import_shop_ids(session: Session, states: Sequence[str]) -> list[int]:
    return list(session.scalars(select(OrderImport.shop_id).where(OrderImport.state.in_(list(states)))))


def get_sync_state(session: Session, shop_id: int) -> ShopSyncState | None:
    return session.get(ShopSyncState, shop_id)


def sync_state_for_update(session: Session, shop_id: int) -> ShopSyncState:
    session.execute(upsert(session, table_of(ShopSyncState), keys=("shop_id",)), {"shop_id": shop_id})
    state = session.scalars(
        select(ShopSyncState).where(ShopSyncState.shop_id == shop_id).with_for_update()
    ).one()
    return state


_STALE = select(orders.c.order_id).where(
    orders.c.shop_id == bindparam("shop_id"), orders.c.stale_since.is_not(None)
)


def stale_order_ids(session: Session, shop_id: int) -> list[int]:
    return list(session.scalars(_STALE, {"shop_id": shop_id}))
