from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, UTCDateTime


class DeletedOrder(Base):
    """Ids of deleted (or redacted) orders, so a late or retried delivery cannot bring one back."""

    __tablename__ = "deleted_orders"

    shop_id: Mapped[int] = mapped_column(ForeignKey("shops.shop_id"), primary_key=True)
    order_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    deleted_at: Mapped[datetime] = mapped_column(UTCDateTime)
