from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, UTCDateTime
from app.models.shop import ShopId


class ShopMetricsSnapshot(Base):
    """The shop's PRODUCT §5 metrics and cohort table as JSON, and when the shop was last scored."""

    __tablename__ = "shop_metrics"

    shop_id: Mapped[int] = mapped_column(ShopId, ForeignKey("shops.shop_id"), primary_key=True)
    metrics: Mapped[str | None] = mapped_column(Text)  # JSON; None until the first full rescore
    computed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # metrics and full rescore
    rescored_at: Mapped[datetime] = mapped_column(UTCDateTime)  # any rescore
    customers_scored: Mapped[int] = mapped_column(Integer)
    orders_scored: Mapped[int] = mapped_column(Integer)  # qualifying orders behind the scores
