"""SQL for the order ledger."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from app.models import DeletedOrder, Order, OrderRefund
from app.models.base import table_of
from app.sql import advisory_lock, lock_key, upsert

orders = table_of(Order)
refunds = table_of(OrderRefund)
deleted_orders = table_of(DeletedOrder)


def lock_order(session: Session, shop_id: int, order_id: int) -> None:
    advisory_lock(session, [lock_key("order", shop_id, order_id)])


def get(session: Session, shop_id: int, order_id: int) -> Order | None:
    return session.get(Order, (shop_id, order_id))


def is_deleted(session: Session, shop_id: int, order_id: int) -> bool:
    stmt = select(deleted_orders.c.order_id).where(
        deleted_orders.c.shop_id == shop_id, deleted_orders.c.order_id == order_id
    )
    return session.execute(stmt).first() is not None


def save(session: Session, row: dict[str, Any]) -> None:
    keys = ("shop_id", "order_id")
    session.execute(upsert(session, orders, row, keys=keys, update=[c for c in row if c not in keys]))


def update_values(session: Session, shop_id: int, order_id: int, **values: Any) -> None:
    session.execute(
        update(orders).where(orders.c.shop_id == shop_id, orders.c.order_id == order_id).values(**values)
    )


def remove(session: Session, shop_id: int, order_ids: list[int], now: datetime) -> None:
    """Delete ledger rows and their refunds, and remember the ids so they never come back."""
    if not order_ids:
        return
    session.execute(delete(orders).where(orders.c.shop_id == shop_id, orders.c.order_id.in_(order_ids)))
    session.execute(delete(refunds).where(refunds.c.shop_id == shop_id, refunds.c.order_id.in_(order_ids)))
    session.execute(
        upsert(
            session,
            deleted_orders,
            [{"shop_id": shop_id, "order_id": oid, "deleted_at": now} for oid in order_ids],
            keys=("shop_id", "order_id"),
        )
    )


def order_ids_of_customer(session: Session, shop_id: int, customer_id: int) -> list[int]:
    stmt = select(orders.c.order_id).where(orders.c.shop_id == shop_id, orders.c.customer_id == customer_id)
    return list(session.scalars(stmt))


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
    stmt = upsert(session, refunds, row, keys=("shop_id", "refund_id")).returning(refunds.c.refund_id)
    return session.execute(stmt).first() is not None


def refunds_after(session: Session, shop_id: int, order_id: int, after: datetime) -> Decimal:
    """Sum of the order's refunds newer than `after` (not yet reflected in its stored totals)."""
    stmt = select(func.coalesce(func.sum(refunds.c.amount), 0)).where(
        refunds.c.shop_id == shop_id, refunds.c.order_id == order_id, refunds.c.refunded_at > after
    )
    return Decimal(session.scalar(stmt) or 0)


def reassign_customer(session: Session, shop_id: int, from_customer: int, to_customer: int) -> None:
    session.execute(
        update(orders)
        .where(orders.c.shop_id == shop_id, orders.c.customer_id == from_customer)
        .values(customer_id=to_customer)
    )
