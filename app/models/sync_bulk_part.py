from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Integer, SmallInteger, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, UTCDateTime
from app.models.shop import ShopId


class SyncBulkPart(Base):
    """One staged file of a bulk sync (docs/operations.md, "Large syncs"): the customers of one
    phase with ids in ``first_customer_id``..``last_customer_id`` whose lines fit under Shopify's
    file limit, and how far it went. ``pending`` → ``staged`` (file uploaded, ``staged_path``) →
    ``running`` (``operation_id``) → ``done``, or ``failed`` when Shopify refused it (``error``).
    The parts of a bulk sync live until it finishes; a crash resumes each from its state."""

    __tablename__ = "sync_bulk_parts"

    shop_id: Mapped[int] = mapped_column(ShopId, ForeignKey("shops.shop_id"), primary_key=True)
    phase: Mapped[str] = mapped_column(String(16), primary_key=True)  # a key of push.BULK_MUTATIONS
    part: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)  # 1, 2, … per phase
    first_customer_id: Mapped[int] = mapped_column(BigInteger)
    last_customer_id: Mapped[int] = mapped_column(BigInteger)
    lines: Mapped[int] = mapped_column(Integer)
    bytes: Mapped[int] = mapped_column(BigInteger)  # the JSONL uploaded, exactly
    name: Mapped[str] = mapped_column(String(64))  # the operation name that finds it in bulkOperations
    state: Mapped[str] = mapped_column(String(16), default="pending")
    staged_path: Mapped[str | None] = mapped_column(Text)
    staged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    operation_id: Mapped[str | None] = mapped_column(String(128))
    attempts: Mapped[int] = mapped_column(SmallInteger, default=0)  # transient failures so far
    error: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
