"""SQL for the shop_settings table: one row per shop that saved settings."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from app.kit.sql import upsert
from app.models import SegmentPlay, ShopSettings
from app.models.base import table_of


def settings_row(session: Session, shop_id: int) -> ShopSettings | None:
    return session.scalar(select(ShopSettings).where(ShopSettings.shop_id == shop_id))


def updated_at(session: Session, shop_id: int) -> datetime | None:
    return session.scalar(select(ShopSettings.updated_at).where(ShopSettings.shop_id == shop_id))


def save_row(session: Session, row: dict[str, Any]) -> None:
    """Insert or replace the shop's row (``row`` holds every column)."""
    keys = [k for k in row if k != "shop_id"]
    session.execute(upsert(session, table_of(ShopSettings), keys=("shop_id",), update=keys), row)


def plays(session: Session, shop_id: int) -> dict[str, str]:
    """{segment: the shop's own play} for the segments the merchant reworded."""
    stmt = select(SegmentPlay.segment, SegmentPlay.play).where(SegmentPlay.shop_id == shop_id)
    return {segment: play for segment, play in session.execute(stmt)}


def save_play(session: Session, shop_id: int, segment: str, play: str | None, now: datetime) -> None:
    """Store the shop's play for the segment; None removes it (the default shows again)."""
    if play is None:
        session.execute(
            delete(SegmentPlay).where(SegmentPlay.shop_id == shop_id, SegmentPlay.segment == segment)
        )
        return
    row = {"shop_id": shop_id, "segment": segment, "play": play, "updated_at": now}
    session.execute(
        upsert(session, table_of(SegmentPlay), keys=("shop_id", "segment"), update=("play", "updated_at")),
        row,
    )
