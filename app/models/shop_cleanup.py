from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, UTCDateTime
from app.models.shop import ShopId


class ShopCleanup(Base):
    """Per shop, the merchant's "remove everything this app wrote to Shopify": what the page
    counted when it was asked for (``planned_*``), how far it went (the segments first, then the
    customers by id up to ``after_customer_id``, many at a time by bulk mutation: ``bulk_*``) and
    what Shopify confirmed removed (``removed_*``).
    One row per shop; asking again replaces it."""

    __tablename__ = "shop_cleanups"

    shop_id: Mapped[int] = mapped_column(ShopId, ForeignKey("shops.shop_id"), primary_key=True)
    state: Mapped[str] = mapped_column(String(16))  # queued | running | done | failed
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    after_customer_id: Mapped[int] = mapped_column(BigInteger, default=0)  # customers done up to this id
    planned_customers: Mapped[int] = mapped_column(Integer, default=0)  # customers carrying app tags
    planned_metafields: Mapped[int] = mapped_column(Integer, default=0)
    planned_segments: Mapped[int] = mapped_column(Integer, default=0)
    removed_customers: Mapped[int] = mapped_column(Integer, default=0)  # customers whose app tags went
    removed_metafields: Mapped[int] = mapped_column(Integer, default=0)
    removed_segments: Mapped[int] = mapped_column(Integer, default=0)
    refused_customers: Mapped[int] = mapped_column(Integer, default=0)
    bulk_phase: Mapped[str | None] = mapped_column(String(16))  # deletes | tags_remove | finish
    bulk_operation_id: Mapped[str | None] = mapped_column(String(128))
    bulk_customers: Mapped[str | None] = mapped_column(Text)  # JSON [id]: the customers of the bulk batch
    bulk_lines: Mapped[str | None] = mapped_column(
        Text
    )  # JSON [id]: the customer of each line of the operation
    last_error: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
