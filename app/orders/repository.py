"""SQL for the order ledger. Statements are built once (bound parameters): this is the webhook
hot path."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal
from typing import Any

from psycopg import AsyncConnection
from sqlalchemy import Row, bindparam, delete, exists, func, literal, select, update
from sqlalchemy.orm import Session

from app.kit.sql import advisory_lock, execute, fetch_one, lock_key, upsert
from app.models import DeletedOrder, Order, OrderRefund
from app.models.base import table_of

orders = table_of(Order)
refunds = table_of(OrderRefund)
deleted_orders = table_of(DeletedOrder)
ORDER_KEYS = ("shop_id", "order_id")

_this_order = (orders.c.shop_id == bindparam("shop_id")) & (orders.c.order_id == bindparam("order_id"))
_get = select(orders).where(_this_order)
_is_deleted = select(deleted_orders.c.order_id).where(
    deleted_orders.c.shop_id == bindparam("shop_id"), deleted_orders.c.order_id == bindparam("order_id")
)
_pending_refunds = (
    select(func.coalesce(func.sum(refunds.c.amount), 0))
    .where(
        refunds.c.shop_id == bindparam("shop_id"),
        refunds.c.order_id == bindparam("order_id"),
        refunds.c.refunded_at > bindparam("after", type_=refunds.c.refunded_at.type),
    )
    .scalar_subquery()
)
_one_row = select(literal(1).label("one")).subquery()
# Everything an incoming order delivery must know, in one round trip: the stored row (if any),
# whether the id was deleted, and the refunds newer than the delivery.
_read_for_delivery = select(
    orders,
    exists()
    .where(
        deleted_orders.c.shop_id == bindparam("shop_id"), deleted_orders.c.order_id == bindparam("order_id")
    )
    .label("deleted"),
    _pending_refunds.label("pending_refunds_after"),
).select_from(_one_row.outerjoin(orders, _this_order))
_refunds_after = select(func.coalesce(func.sum(refunds.c.amount), 0)).where(
    refunds.c.shop_id == bindparam("shop_id"),
    refunds.c.order_id == bindparam("order_id"),
    refunds.c.refunded_at > bindparam("after", type_=refunds.c.refunded_at.type),
)


def lock_orders(session: Session, shop_id: int, order_ids: Iterable[int]) -> None:
    """Lock orders. Every path takes its order locks before any customer lock (and the customer
    locks in one statement): one order for all, so no two writers wait on each other in a circle.
    Whoever changes an order row holds its lock, so what is read under it stays true."""
    advisory_lock(session, [lock_key("order", shop_id, o) for o in order_ids])


def read_for_delivery(session: Session, shop_id: int, order_id: int, after: datetime) -> Row[Any]:
    """One row: the stored order's columns (all None when there is none), `deleted`, and
    `pending_refunds_after` (refunds newer than `after`, in presentment money)."""
    params = {"shop_id": shop_id, "order_id": order_id, "after": after}
    return fetch_one(session, _read_for_delivery, params)


def get(session: Session, shop_id: int, order_id: int) -> Row[Any] | None:
    return session.connection().execute(_get, {"shop_id": shop_id, "order_id": order_id}).first()


def is_deleted(session: Session, shop_id: int, order_id: int) -> bool:
    return session.execute(_is_deleted, {"shop_id": shop_id, "order_id": order_id}).first() is not None


def save(session: Session, row: dict[str, Any]) -> None:
    """The caller holds the shop's row (``app.shops.repository.hold_shop``): the ledger has no
    foreign key to shops (migration 0027)."""
    # Never older over newer, even if a bulk import wrote the row after this delivery read it.
    update_columns = [c for c in row if c not in ORDER_KEYS]
    stmt = upsert(session, orders, keys=ORDER_KEYS, update=update_columns, only_if_newer="source_updated_at")
    execute(session, stmt, row)


def update_values(session: Session, shop_id: int, order_id: int, **values: Any) -> None:
    stmt = update(orders).where(orders.c.shop_id == shop_id, orders.c.order_id == order_id).values(**values)
    session.execute(stmt)


def remove(session: Session, shop_id: int, order_ids: list[int], now: datetime) -> None:
    """Delete ledger rows and their refunds, and remember the ids so they never come back."""
    if not order_ids:
        return
    session.execute(delete(orders).where(orders.c.shop_id == shop_id, orders.c.order_id.in_(order_ids)))
    session.execute(delete(refunds).where(refunds.c.shop_id == shop_id, refunds.c.order_id.in_(order_ids)))
    session.execute(
        upsert(session, deleted_orders, keys=ORDER_KEYS),
        [{"shop_id": shop_id, "order_id": oid, "deleted_at": now} for oid in order_ids],
    )


def order_ids_of_customers(session: Session, shop_id: int, customer_ids: Iterable[int]) -> set[int]:
    stmt = select(orders.c.order_id).where(
        orders.c.shop_id == shop_id, orders.c.customer_id.in_(sorted(set(customer_ids)))
    )
    return set(session.scalars(stmt))


def add_refund(
    session: Session, shop_id: int, refund_id: int, order_id: int, amount: Decimal, at: datetime
) -> bool:
    """Insert a refund once; False when it was already there (a repeated delivery)."""
    row = {
        "shop_id": shop_id,
        "refund_id": refund_id,
        "order_id": order_id,
        "amount": amount,
        "refunded_at": at,
    }
    stmt = upsert(session, refunds, keys=("shop_id", "refund_id")).returning(refunds.c.refund_id)
    return session.execute(stmt, row).first() is not None


def refunds_after(session: Session, shop_id: int, order_id: int, after: datetime) -> Decimal:
    """Sum of the order's refunds newer than `after` (not yet reflected in its stored totals)."""
    total = session.scalar(_refunds_after, {"shop_id": shop_id, "order_id": order_id, "after": after})
    return Decimal(total or 0)


def reassign_customer(session: Session, shop_id: int, from_customer: int, to_customer: int) -> None:
    session.execute(
        update(orders)
        .where(orders.c.shop_id == shop_id, orders.c.customer_id == from_customer)
        .values(customer_id=to_customer)
    )


_INGEST_ORDER = (
    "SELECT rfm_ingest_order(%(domain)s, %(now)s, %(touch)s, %(order_id)s, %(customer_id)s,"
    " %(ordered_at)s, %(source_updated_at)s, %(cancelled_at)s, %(test)s, %(financial_status)s,"
    " %(current_total)s, %(presentment_total)s, %(total_discounts)s, %(discount_codes)s, %(discounted)s,"
    " %(source_name)s, %(value)s, %(qualifies)s)"
)


async def ingest_order(
    conn: AsyncConnection[Any], domain: str, row: dict[str, Any], now: datetime, *, touch: bool
) -> str:
    """One call of `rfm_ingest_order` (PostgreSQL, app/orders/ingest_order.sql): its answer, an
    outcome name."""
    params = {**row, "domain": domain, "now": now, "touch": touch}
    cur = await conn.execute(_INGEST_ORDER, params, prepare=True)
    answer = await cur.fetchone()
    assert answer is not None  # a function call returns one row
    return str(answer[0])
