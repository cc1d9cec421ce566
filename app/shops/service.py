"""Install state: register, uninstall, scopes, and re-encrypting the stored tokens under a new key."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import Shop
from app.shopify.token_crypto import TokenCipher
from app.shops import repository as repo


def register_shop(session: Session, domain: str, now: datetime, **fields: object) -> Shop:
    """Create the shop, or mark a returning one installed again."""
    shop = repo.get_by_domain(session, domain)
    if shop is None:
        return repo.create(session, domain, now, **fields)
    for key, value in fields.items():
        setattr(shop, key, value)
    shop.uninstalled_at = None
    shop.installed_at = now
    session.flush()
    return shop


def mark_uninstalled(session: Session, shop: Shop, now: datetime) -> None:
    """app/uninstalled: Shopify has already revoked our token. Data stays until shop/redact
    (sent 48 h later unless the merchant reinstalls)."""
    shop.uninstalled_at = now
    shop.access_token_encrypted = None
    shop.access_token_expires_at = None
    shop.refresh_token_encrypted = None
    shop.refresh_token_expires_at = None


def record_scopes(shop: Shop, scopes: list[str]) -> None:
    """app/scopes_update: the merchant granted or revoked optional scopes."""
    shop.scope = ",".join(scopes)


def rotate_token_encryption(session: Session, cipher: TokenCipher) -> int:
    """Re-encrypt every stored token with the cipher's first key (after adding a new key)."""
    count = 0
    for shop in session.scalars(select(Shop).where(Shop.access_token_encrypted.is_not(None))):
        shop.access_token_encrypted = cipher.rotate(shop.access_token_encrypted)  # type: ignore[arg-type]
        if shop.refresh_token_encrypted is not None:
            shop.refresh_token_encrypted = cipher.rotate(shop.refresh_token_encrypted)
        count += 1
    return count
