from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import BigInteger, Boolean, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, Money, UTCDateTime
from app.models.shop import ShopId


class Order(Base):
    """The ledger: one row per (shop, order), the latest state Shopify sent.

    `value` and `qualifies` are derived from the other columns when the row is written, so the
    customer aggregate is a plain SUM/COUNT over qualifying rows."""

    __tablename__ = "orders"

    # No foreign key to shops (migration 0027): every writer locks the shop row once
    # (app.shops.repository.hold_shop), not once per row.
    shop_id: Mapped[int] = mapped_column(ShopId, primary_key=True)
    order_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    customer_id: Mapped[int | None] = mapped_column(BigInteger)
    ordered_at: Mapped[datetime] = mapped_column(UTCDateTime)
    source_updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    test: Mapped[bool] = mapped_column(Boolean)
    financial_status: Mapped[str | None] = mapped_column(String(32))
    current_total: Mapped[Decimal] = mapped_column(Money)
    presentment_total: Mapped[Decimal | None] = mapped_column(Money)
    pending_refunds: Mapped[Decimal] = mapped_column(Money, server_default=text("0"))
    value: Mapped[Decimal] = mapped_column(Money)
    total_discounts: Mapped[Decimal] = mapped_column(Money)
    discount_codes: Mapped[str | None] = mapped_column(Text)
    discounted: Mapped[bool] = mapped_column(Boolean)
    source_name: Mapped[str | None] = mapped_column(String(255))
    qualifies: Mapped[bool] = mapped_column(Boolean)
    # Set by orders/edited when the edit is newer than the stored state; reconciliation refetches.
    stale_since: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (Index("ix_orders_shop_id_customer_id", "shop_id", "customer_id"),)
