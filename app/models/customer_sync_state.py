from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, SmallInteger, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, UTCDateTime
from app.models.shop import ShopId


class CustomerSyncState(Base):
    """What Shopify holds for one customer, as the app last wrote it (the sync's outbox half).

    A customer is due a push when its score's ``synced_hash`` differs from ``synced_hash`` here, when
    the shop's tag prefixes moved on (``prefix_generation``), or when its score row is gone."""

    __tablename__ = "customer_sync_state"

    shop_id: Mapped[int] = mapped_column(ShopId, ForeignKey("shops.shop_id"), primary_key=True)
    customer_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    synced_hash: Mapped[int | None] = mapped_column(BigInteger)  # customer_scores.synced_hash written
    prefix_generation: Mapped[int] = mapped_column(Integer, default=0)
    metafields: Mapped[str] = mapped_column(Text, default="{}")  # JSON {key: value} as Shopify holds it
    digests: Mapped[str] = mapped_column(Text, default="{}")  # JSON {key: compareDigest} Shopify returned
    tags: Mapped[str] = mapped_column(Text, default="[]")  # JSON [tag]: the app tags last set
    inflight: Mapped[str | None] = mapped_column(Text)  # JSON plan handed to a running bulk mutation
    error: Mapped[str | None] = mapped_column(Text)  # the last refusal, in plain words
    error_hash: Mapped[int | None] = mapped_column(BigInteger)  # the synced_hash that was refused
    error_attempts: Mapped[int] = mapped_column(SmallInteger, default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    # The status page's "customers Shopify refused" (count and the newest five) read only the
    # refused rows, not every customer the app wrote to.
    __table_args__ = (
        Index(
            "ix_customer_sync_state_refused",
            "shop_id",
            "updated_at",
            postgresql_where=text("error IS NOT NULL"),
            sqlite_where=text("error IS NOT NULL"),
        ),
    )
