"""Install state: register, uninstall, scopes, the shop's currency and time zone, and
re-encrypting the stored tokens under a new key."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, TypeGuard
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import Shop
from app.shopify.admin_client import AdminApiError, AdminClient
from app.shopify.token_crypto import TokenCipher
from app.shops import repository as repo

log = logging.getLogger(__name__)

# The store's currency and IANA time zone: what its money is counted in and where its days begin
# (https://shopify.dev/docs/api/admin-graphql/2026-10/objects/Shop#field-currencyCode,
# https://shopify.dev/docs/api/admin-graphql/2026-10/objects/Shop#field-ianaTimezone).
SHOP_LOCALE: Final = """
query ShopCurrencyAndTimeZone {
  shop { currencyCode ianaTimezone }
}
"""
_CURRENCY_CODE: Final = re.compile(r"[A-Z]{3}")
EFFECTIVE_TIMEZONE: Final = "UTC"
"""Where a shop's days begin while its own time zone is not known."""


@dataclass(frozen=True, slots=True)
class ShopLocale:
    """A shop's currency (ISO 4217) and IANA time zone, as Shopify reports them; None where
    Shopify gave nothing usable (the stored value is then kept)."""

    currency_code: str | None
    iana_timezone: str | None


def is_currency_code(value: object) -> TypeGuard[str]:
    return isinstance(value, str) and _CURRENCY_CODE.fullmatch(value) is not None


def is_timezone(value: object) -> TypeGuard[str]:
    """An IANA zone this process knows (tzdata), so that days can be counted in it."""
    if not isinstance(value, str) or not value or len(value) > 64 or value != value.strip():
        return False
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def locale_from_shop_node(node: Any) -> ShopLocale:
    """The `shop { currencyCode ianaTimezone }` of an Admin GraphQL answer; what is unusable is None."""
    node = node if isinstance(node, dict) else {}
    currency, zone = node.get("currencyCode"), node.get("ianaTimezone")
    return ShopLocale(currency if is_currency_code(currency) else None, zone if is_timezone(zone) else None)


async def read_locale(admin: AdminClient, domain: str, token: str) -> ShopLocale | None:
    """The shop's currency and time zone from Shopify, or None when the call failed (the caller
    goes on: the history import and `shop/update` read them again)."""
    try:
        result = await admin.execute(domain, token, SHOP_LOCALE)
    except AdminApiError as exc:
        log.warning("shop %s: currency and time zone not read: %s", domain, exc)
        return None
    return locale_from_shop_node(result.data.get("shop"))


def effective_timezone(shop: Shop) -> str:
    zone = shop.iana_timezone
    return zone if is_timezone(zone) else EFFECTIVE_TIMEZONE


def record_locale(shop: Shop, locale: ShopLocale) -> bool:
    """Store what Shopify reported. True when the shop's days now begin elsewhere (its effective
    time zone changed): every recency, stage, cohort and "this week" then needs a full rescore."""
    before = effective_timezone(shop)
    if locale.currency_code is not None:
        shop.currency_code = locale.currency_code
    if locale.iana_timezone is not None:
        shop.iana_timezone = locale.iana_timezone
    return effective_timezone(shop) != before


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
