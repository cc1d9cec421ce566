from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, UTCDateTime
from app.models.shop import ShopId


class ShopPushState(Base):
    """Per shop, the sync of scores back into Shopify: the tag prefixes applied, every former prefix
    the app applied, what the last run saw and did, a running bulk mutation, and how far a manual
    sync has compared the app's record with what Shopify holds."""

    __tablename__ = "shop_push_state"

    shop_id: Mapped[int] = mapped_column(ShopId, ForeignKey("shops.shop_id"), primary_key=True)
    rfm_prefix: Mapped[str] = mapped_column(String(32))
    stage_prefix: Mapped[str] = mapped_column(String(32))
    clv_prefix: Mapped[str] = mapped_column(String(32))
    prefix_generation: Mapped[int] = mapped_column(Integer, default=0)
    former_prefixes: Mapped[str] = mapped_column(Text, default="[]")  # JSON [prefix]
    scores_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # shop_metrics.rescored_at read
    settings_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # shop_settings.updated_at read
    last_sync_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_written: Mapped[int] = mapped_column(Integer, default=0)  # customers written by the last run
    last_error: Mapped[str | None] = mapped_column(Text)
    bulk_phase: Mapped[str | None] = mapped_column(String(16))  # metafields | tags_add | tags_remove
    bulk_operation_id: Mapped[str | None] = mapped_column(String(128))
    bulk_error: Mapped[str | None] = mapped_column(Text)  # parts of the last bulk sync Shopify refused
    repair_after: Mapped[int | None] = mapped_column(BigInteger)  # customer id compared so far; NULL: none
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
