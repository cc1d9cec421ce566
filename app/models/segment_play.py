from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, UTCDateTime
from app.models.shop import ShopId


class SegmentPlay(Base):
    """A shop's own wording of a segment's suggested play; a segment without a row shows the
    default of ``app.vocabulary.SEGMENT_PLAYS``."""

    __tablename__ = "segment_plays"

    shop_id: Mapped[int] = mapped_column(ShopId, ForeignKey("shops.shop_id"), primary_key=True)
    segment: Mapped[str] = mapped_column(String(32), primary_key=True)  # one of RFM_SEGMENT_NAMES
    play: Mapped[str] = mapped_column(String(500))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
