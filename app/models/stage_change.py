from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, PrimaryKeyConstraint, String
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, UTCDateTime
from app.models.shop import ShopId


class StageChange(Base):
    """One lifecycle stage change of one buyer, dated ("entered at-risk this week"), and its cause:
    the buyer's behaviour, or a reclassification by a new model fit (migration 0016)."""

    __tablename__ = "stage_changes"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    )
    shop_id: Mapped[int] = mapped_column(ShopId, ForeignKey("shops.shop_id"), primary_key=True)
    customer_id: Mapped[int] = mapped_column(BigInteger)
    from_stage: Mapped[str | None] = mapped_column(String(16))  # None: first staging
    to_stage: Mapped[str] = mapped_column(String(16))
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # STAGE_CHANGE_CAUSES: "behaviour" (an order, or time without one) or "refit" (a reclassification)
    cause: Mapped[str] = mapped_column(String(16), server_default="behaviour")

    __table_args__ = (
        PrimaryKeyConstraint("shop_id", "id"),
        Index("ix_stage_changes_shop_id_changed_at", "shop_id", "changed_at"),
        Index("ix_stage_changes_shop_id_customer_id", "shop_id", "customer_id"),
    )
