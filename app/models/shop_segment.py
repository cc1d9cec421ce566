from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import Float, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, SumOfMoney, UTCDateTime
from app.models.shop import ShopId


class ShopSegment(Base):
    """The overview's segments table: one row per RFM segment, and one for the whole shop
    (`segment` = "All customers", `position` 0), with the segment formula and acquisition economics."""

    __tablename__ = "shop_segments"

    shop_id: Mapped[int] = mapped_column(ShopId, ForeignKey("shops.shop_id"), primary_key=True)
    segment: Mapped[str] = mapped_column(String(32), primary_key=True)
    position: Mapped[int] = mapped_column(Integer)
    customers: Mapped[int] = mapped_column(Integer)
    customer_share: Mapped[float] = mapped_column(Float)
    orders: Mapped[int] = mapped_column(Integer)
    revenue: Mapped[Decimal] = mapped_column(SumOfMoney)
    revenue_share: Mapped[float] = mapped_column(Float)
    average_order_value: Mapped[Decimal | None] = mapped_column(SumOfMoney)
    average_predicted_clv: Mapped[Decimal | None] = mapped_column(SumOfMoney)
    average_historic_clv: Mapped[Decimal | None] = mapped_column(SumOfMoney)
    purchase_frequency: Mapped[float | None] = mapped_column(Float)  # orders per customer per year
    customer_value: Mapped[Decimal | None] = mapped_column(SumOfMoney)  # per year
    formula_clv: Mapped[Decimal | None] = mapped_column(SumOfMoney)  # customer value × lifespan
    ltv_to_cac: Mapped[float | None] = mapped_column(Float)
    max_cpc: Mapped[Decimal | None] = mapped_column(SumOfMoney)
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime)
