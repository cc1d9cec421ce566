"""Read models over the customer aggregates."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from app.models import Customer, Order


@dataclass(frozen=True)
class ShopSummary:
    customers: int
    repeat_customers: int
    orders: int
    revenue: Decimal
    ledger_rows: int
    median_days_between_orders: float | None
    top_customers: list[tuple[int, int, Decimal]]

    @property
    def average_order_value(self) -> Decimal | None:
        return (self.revenue / self.orders).quantize(Decimal("0.01")) if self.orders else None

    @property
    def repeat_purchase_rate(self) -> float | None:
        return self.repeat_customers / self.customers if self.customers else None


def shop_summary(session: Session, shop_id: int, top: int = 5) -> ShopSummary:
    buyers = (Customer.shop_id == shop_id) & (Customer.orders_count > 0)
    customers, repeat, orders, revenue = session.execute(
        select(
            func.count(),
            func.coalesce(func.sum(case((Customer.orders_count >= 2, 1), else_=0)), 0),
            func.coalesce(func.sum(Customer.orders_count), 0),
            func.coalesce(func.sum(Customer.total_spent), 0),
        ).where(buyers)
    ).one()
    gaps = sorted(
        g
        for g in session.scalars(select(Customer.average_days_between_orders).where(buyers))
        if g is not None
    )
    median = None
    if gaps:
        mid = len(gaps) // 2
        median = gaps[mid] if len(gaps) % 2 else (gaps[mid - 1] + gaps[mid]) / 2
    best = session.execute(
        select(Customer.customer_id, Customer.orders_count, Customer.total_spent)
        .where(buyers)
        .order_by(Customer.total_spent.desc(), Customer.customer_id)
        .limit(top)
    ).all()
    ledger_rows = session.scalar(select(func.count()).select_from(Order).where(Order.shop_id == shop_id)) or 0
    return ShopSummary(
        customers=customers,
        repeat_customers=int(repeat),
        orders=int(orders),
        revenue=Decimal(revenue),
        ledger_rows=ledger_rows,
        median_days_between_orders=median,
        top_customers=[(c, n, Decimal(t)) for c, n, t in best],
    )
