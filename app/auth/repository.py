"""SQL for the shop's stored tokens (the columns live on `shops`)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import update
from sqlalchemy.orm import Session

from app.models import Shop
from app.models.base import table_of

shops = table_of(Shop)


def replace_rotated_tokens(
    session: Session,
    shop_id: int,
    expected_refresh_encrypted: str,
    *,
    access_token_encrypted: str,
    access_token_expires_at: datetime | None,
    refresh_token_encrypted: str | None,
    refresh_token_expires_at: datetime | None,
    scope: str,
) -> bool:
    """Store a refreshed pair in one statement, only if the row still holds the refresh token that
    was spent (compare-and-set). False: another worker rotated first; its pair is the one to use."""
    result = session.execute(
        update(shops)
        .where(
            shops.c.shop_id == shop_id,
            shops.c.refresh_token_encrypted == expected_refresh_encrypted,
            shops.c.uninstalled_at.is_(None),
        )
        .values(
            access_token_encrypted=access_token_encrypted,
            access_token_expires_at=access_token_expires_at,
            refresh_token_encrypted=refresh_token_encrypted,
            refresh_token_expires_at=refresh_token_expires_at,
            scope=scope,
        )
    )
    return bool(getattr(result, "rowcount", 0))
