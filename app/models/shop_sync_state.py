from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, UTCDateTime


class ShopSyncState(Base):
    """Reconciliation of what webhooks missed: every order updated after `reconciled_through` is
    refetched on the next run (set first by the history import)."""

    __tablename__ = "shop_sync_state"

    shop_id: Mapped[int] = mapped_column(ForeignKey("shops.shop_id"), primary_key=True)
    reconciled_through: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_reconciled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_examined: Mapped[int | None] = mapped_column(Integer)
    last_repaired: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
