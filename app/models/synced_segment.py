from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, UTCDateTime
from app.models.shop import ShopId


class SyncedSegment(Base):
    """A segment the app created in Shopify (one per RFM segment, stage and CLV tier)."""

    __tablename__ = "synced_segments"

    shop_id: Mapped[int] = mapped_column(ShopId, ForeignKey("shops.shop_id"), primary_key=True)
    key: Mapped[str] = mapped_column(String(64), primary_key=True)  # SegmentSpec.key, "rfm:champions"
    segment_gid: Mapped[str] = mapped_column(String(128))
    name: Mapped[str] = mapped_column(String(255))
    query: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
