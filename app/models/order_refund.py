from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import BigInteger, ForeignKey, Index
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, Money, UTCDateTime


class OrderRefund(Base):
    """Refunds seen through `refunds/create`. A refund newer than the order's stored state is
    subtracted from the order's value until an order delivery that already includes it arrives."""

    __tablename__ = "order_refunds"

    shop_id: Mapped[int] = mapped_column(ForeignKey("shops.shop_id"), primary_key=True)
    refund_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    order_id: Mapped[int] = mapped_column(BigInteger)
    amount: Mapped[Decimal] = mapped_column(Money)
    refunded_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (Index("ix_order_refunds_shop_id_order_id", "shop_id", "order_id"),)
