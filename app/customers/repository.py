"""SQL for the per-customer aggregates, always derived from the ledger."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal

from sqlalchemy import bindparam, case, delete, func, select
from sqlalchemy.orm import Session

from app.models import Customer, Order
from app.models.base import table_of
from app.sql import advisory_lock, lock_key, upsert

customers = table_of(Customer)
orders = table_of(Order)

AGGREGATE_COLUMNS = (
    "first_order_at",
    "last_order_at",
    "orders_count",
    "total_spent",
    "average_order_value",
    "discounted_orders_count",
    "average_days_between_orders",
    "score_pending",
    "aggregates_updated_at",
)


_aggregate = select(
    func.min(orders.c.ordered_at),
    func.max(orders.c.ordered_at),
    func.count(),
    func.coalesce(func.sum(orders.c.value), 0),
    func.coalesce(func.sum(case((orders.c.discounted, 1), else_=0)), 0),
).where(
    orders.c.shop_id == bindparam("shop_id"),
    orders.c.customer_id == bindparam("customer_id"),
    orders.c.qualifies,
)


def lock_customers(session: Session, shop_id: int, customer_ids: Iterable[int | None]) -> None:
    advisory_lock(session, [lock_key("customer", shop_id, c) for c in customer_ids if c is not None])


def recompute(session: Session, shop_id: int, customer_id: int, now: datetime) -> None:
    """Rewrite one customer's aggregates from their qualifying ledger rows and mark them to score.

    Callers hold the customer's lock, so two deliveries for one buyer never interleave here."""
    params = {"shop_id": shop_id, "customer_id": customer_id}
    first, last, count, total, discounted = session.execute(_aggregate, params).one()
    total = Decimal(total)
    aov = (total / count).quantize(Decimal("0.0001")) if count else None
    gap = None
    if count >= 2:
        gap = (last - first).total_seconds() / 86400 / (count - 1)
    row = {
        "shop_id": shop_id,
        "customer_id": customer_id,
        "first_order_at": first,
        "last_order_at": last,
        "orders_count": count,
        "total_spent": total,
        "average_order_value": aov,
        "discounted_orders_count": int(discounted),
        "average_days_between_orders": gap,
        "score_pending": True,
        "aggregates_updated_at": now,
    }
    session.execute(
        upsert(session, customers, keys=("shop_id", "customer_id"), update=AGGREGATE_COLUMNS), row
    )


def remove(session: Session, shop_id: int, customer_id: int) -> None:
    session.execute(
        delete(customers).where(customers.c.shop_id == shop_id, customers.c.customer_id == customer_id)
    )
