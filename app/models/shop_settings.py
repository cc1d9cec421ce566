from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import Boolean, Float, ForeignKey, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, Money, UTCDateTime
from app.models.shop import ShopId


class ShopSettings(Base):
    """The merchant's scoring and CLV settings; a shop without a row uses the defaults."""

    __tablename__ = "shop_settings"

    shop_id: Mapped[int] = mapped_column(ShopId, ForeignKey("shops.shop_id"), primary_key=True)
    scoring_method: Mapped[str] = mapped_column(String(16), server_default=text("'quintile'"))
    window_days: Mapped[int | None] = mapped_column(Integer)  # None: all time
    segment_grid: Mapped[str | None] = mapped_column(Text)  # JSON {"R,FM": name}; None: default grid
    clv_horizon_days: Mapped[int] = mapped_column(Integer, server_default=text("365"))
    lifespan_years: Mapped[float] = mapped_column(Float, server_default=text("3"))
    cac: Mapped[Decimal | None] = mapped_column(Money)
    conversion_rate: Mapped[float | None] = mapped_column(Float)
    rfm_tag_prefix: Mapped[str] = mapped_column(String(32), server_default=text("'rfm:'"))
    stage_tag_prefix: Mapped[str] = mapped_column(String(32), server_default=text("'stage:'"))
    clv_tag_prefix: Mapped[str] = mapped_column(String(32), server_default=text("'clv:'"))
    sync_enabled: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
