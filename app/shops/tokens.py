"""The shop's offline Admin API token: encrypted at rest, never logged."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import datetime
from functools import lru_cache

from sqlalchemy.orm import Session

from app.config import Settings
from app.models import Shop
from app.shopify.oauth import AccessToken
from app.shopify.token_crypto import TokenCipher
from app.shops import repository as repo


def token_cipher(settings: Settings) -> TokenCipher:
    return _cipher(tuple(settings.token_encryption_keys), settings.app_env, settings.shopify_api_secret)


@lru_cache(maxsize=8)
def _cipher(keys: tuple[str, ...], env: str, secret: str) -> TokenCipher:
    if keys:
        return TokenCipher.from_keys(list(keys))
    if env == "production":  # Settings refuses this already; keep the rule where the key is used too
        raise RuntimeError("TOKEN_ENCRYPTION_KEYS must be set in production")
    derived = base64.urlsafe_b64encode(hashlib.sha256(b"rfm-clv dev token key:" + secret.encode()).digest())
    return TokenCipher.from_keys([derived.decode()])


def store_token(shop: Shop, token: AccessToken, cipher: TokenCipher) -> None:
    shop.access_token_encrypted = cipher.encrypt(token.access_token)
    shop.access_token_expires_at = token.expires_at
    shop.refresh_token_encrypted = cipher.encrypt(token.refresh_token) if token.refresh_token else None
    shop.refresh_token_expires_at = token.refresh_token_expires_at
    shop.scope = ",".join(token.scope)


def access_token(shop: Shop, cipher: TokenCipher) -> str | None:
    if shop.access_token_encrypted is None:
        return None
    return cipher.decrypt(shop.access_token_encrypted)


def refresh_token(shop: Shop, cipher: TokenCipher) -> str | None:
    if shop.refresh_token_encrypted is None:
        return None
    return cipher.decrypt(shop.refresh_token_encrypted)


def token_expired(shop: Shop, now: datetime) -> bool:
    return shop.access_token_expires_at is not None and shop.access_token_expires_at <= now


def forget_refused_token(session: Session, shop_id: int, refused: str, cipher: TokenCipher) -> bool:
    """The Admin API answered 401 for `refused`: drop the shop's tokens, so that the next page load
    exchanges new ones (docs/architecture.md, install paths), but only while the stored token is
    still that one. Web, worker and CLI all clear through here: a 401 for an old token must not
    wipe the one another path has just refreshed. True when the tokens were dropped."""
    stored = repo.stored_access_token(session, shop_id)
    if stored is None or not hmac.compare_digest(cipher.decrypt(stored).encode(), refused.encode()):
        return False
    return repo.forget_tokens(session, shop_id, stored)
