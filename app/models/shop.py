from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, UTCDateTime

ShopId = BigInteger().with_variant(Integer(), "sqlite")


class Shop(Base):
    """One installed store. Other tables reference it by `shop_id`."""

    __tablename__ = "shops"

    shop_id: Mapped[int] = mapped_column(ShopId, primary_key=True, autoincrement=True)
    domain: Mapped[str] = mapped_column(String(255), unique=True)
    shopify_shop_id: Mapped[int | None] = mapped_column(BigInteger)
    currency_code: Mapped[str | None] = mapped_column(String(3))
    iana_timezone: Mapped[str | None] = mapped_column(String(64))
    scope: Mapped[str | None] = mapped_column(Text)
    access_token_encrypted: Mapped[str | None] = mapped_column(Text)
    access_token_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    refresh_token_encrypted: Mapped[str | None] = mapped_column(Text)
    refresh_token_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    installed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    uninstalled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_webhook_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Customer rows removed so far (redactions, merges): a rescore that read a removed customer
    # learns of it when it writes (app.scoring.repository.lock_scores).
    customers_removed: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))

    @property
    def is_installed(self) -> bool:
        return self.uninstalled_at is None
