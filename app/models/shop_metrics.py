from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Integer, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, UTCDateTime
from app.models.shop import ShopId


class ShopMetricsSnapshot(Base):
    """The shop's metrics (docs/metrics.md) and cohort table as JSON, and when the shop was last scored."""

    __tablename__ = "shop_metrics"

    shop_id: Mapped[int] = mapped_column(ShopId, ForeignKey("shops.shop_id"), primary_key=True)
    metrics: Mapped[str | None] = mapped_column(Text)  # JSON; None until the first full rescore
    computed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # metrics and full rescore
    rescored_at: Mapped[datetime] = mapped_column(UTCDateTime)  # any rescore
    customers_scored: Mapped[int] = mapped_column(Integer)
    orders_scored: Mapped[int] = mapped_column(Integer)  # qualifying orders behind the scores
    # A random number per rescore: a worker that kept the arrays of the rescore it committed knows
    # by it that no other rescore (or a rollback of its own) came after (migration 0010).
    rescore_token: Mapped[int | None] = mapped_column(BigInteger)
