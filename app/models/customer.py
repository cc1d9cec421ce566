from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import BigInteger, Boolean, Float, Index, Integer, text
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, Money, SumOfMoney, UTCDateTime
from app.models.shop import ShopId


class Customer(Base):
    """A buyer's aggregates over their qualifying ledger rows; always equal to a recomputation."""

    __tablename__ = "customers"

    # No foreign key to shops (migration 0027): every writer locks the shop row once
    # (app.shops.repository.hold_shop), not once per row.
    shop_id: Mapped[int] = mapped_column(ShopId, primary_key=True)
    customer_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    first_order_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_order_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    orders_count: Mapped[int] = mapped_column(Integer)
    total_spent: Mapped[Decimal] = mapped_column(SumOfMoney)
    average_order_value: Mapped[Decimal | None] = mapped_column(Money)
    discounted_orders_count: Mapped[int] = mapped_column(Integer)
    average_days_between_orders: Mapped[float | None] = mapped_column(Float)
    score_pending: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    aggregates_updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        Index(
            "ix_customers_shop_id_score_pending",
            "shop_id",
            postgresql_where=text("score_pending"),
            sqlite_where=text("score_pending"),
        ),
    )
