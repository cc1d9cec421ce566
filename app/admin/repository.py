"""SQL the embedded page reads (precomputed tables only)."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.models import Customer, Order


def customer_count(session: Session, shop_id: int) -> int:
    """Buyers with aggregates (at least one ledger row once delivered)."""
    return session.scalar(select(func.count()).select_from(Customer).where(Customer.shop_id == shop_id)) or 0


def qualifying_order_count(session: Session, shop_id: int) -> int:
    stmt = select(func.count()).select_from(Order).where(Order.shop_id == shop_id, Order.qualifies)
    return session.scalar(stmt) or 0
