from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, UTCDateTime


class DataRequest(Base):
    """A `customers/data_request` the store owner must be answered for (see `rfm-clv data-request`)."""

    __tablename__ = "data_requests"

    shop_id: Mapped[int] = mapped_column(ForeignKey("shops.shop_id"), primary_key=True)
    data_request_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    customer_id: Mapped[int] = mapped_column(BigInteger)
    orders_requested: Mapped[str | None] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
