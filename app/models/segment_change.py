from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, PrimaryKeyConstraint, String
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, UTCDateTime
from app.models.shop import ShopId


class SegmentChange(Base):
    """One RFM segment change of one buyer, dated, and its cause: the buyer's behaviour (an order,
    time passing, the shop's other buyers moving the score boundaries) or a settings change (the
    method, window or grid), migration 0018. Ids and names only: what the outcomes page counts."""

    __tablename__ = "segment_changes"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    )
    shop_id: Mapped[int] = mapped_column(ShopId, ForeignKey("shops.shop_id"), primary_key=True)
    customer_id: Mapped[int] = mapped_column(BigInteger)
    from_segment: Mapped[str] = mapped_column(String(24))
    to_segment: Mapped[str] = mapped_column(String(24))
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # SEGMENT_CHANGE_CAUSES: "behaviour" or "settings" (a reclassification by the merchant's settings)
    cause: Mapped[str] = mapped_column(String(16))

    __table_args__ = (
        PrimaryKeyConstraint("shop_id", "id"),
        Index("ix_segment_changes_shop_id_changed_at", "shop_id", "changed_at"),
        Index("ix_segment_changes_shop_id_customer_id", "shop_id", "customer_id"),
    )
