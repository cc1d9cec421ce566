from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, UTCDateTime


class OrderImport(Base):
    """The shop's order-history import (one row per shop: the latest run), a resumable state machine:
    queued → running (bulk operation on Shopify) → downloading → ingesting → done | failed.

    `lines_done`/`bytes_done` are the committed position in the bulk file, written in the same
    transaction as the ledger rows they cover, so a crash resumes there without counting twice."""

    __tablename__ = "imports"

    shop_id: Mapped[int] = mapped_column(ForeignKey("shops.shop_id"), primary_key=True)
    run_id: Mapped[str] = mapped_column(String(36))
    state: Mapped[str] = mapped_column(String(16))
    bulk_operation_id: Mapped[str | None] = mapped_column(String(128))
    bulk_status: Mapped[str | None] = mapped_column(String(16))
    bulk_created_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    orders_expected: Mapped[int | None] = mapped_column(BigInteger)
    orders_done: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    lines_done: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    bytes_done: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    last_updated_at_seen: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # set when every line is in the ledger; then the customer aggregates are recomputed in chunks
    ledger_done_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    aggregates_after: Mapped[int | None] = mapped_column(BigInteger)
    attempts: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    error: Mapped[str | None] = mapped_column(Text)
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ready_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
