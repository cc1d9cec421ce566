"""SQL for the shop_settings table: one row per shop that saved settings."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.kit.sql import upsert
from app.models import ShopSettings
from app.models.base import table_of


def settings_row(session: Session, shop_id: int) -> ShopSettings | None:
    return session.scalar(select(ShopSettings).where(ShopSettings.shop_id == shop_id))


def updated_at(session: Session, shop_id: int) -> datetime | None:
    return session.scalar(select(ShopSettings.updated_at).where(ShopSettings.shop_id == shop_id))


def save_row(session: Session, row: dict[str, Any]) -> None:
    """Insert or replace the shop's row (``row`` holds every column)."""
    keys = [k for k in row if k != "shop_id"]
    session.execute(upsert(session, table_of(ShopSettings), keys=("shop_id",), update=keys), row)
