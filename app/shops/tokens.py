"""The shop's offline Admin API token: encrypted at rest, never logged, and kept usable.

`ShopTokens` is the one owner of a stored token's life after install: the worker, the CLI and the
web install flow (`app.auth.service.ShopAuth`) all read, refresh, migrate and clear tokens through
it. Expiring tokens are refreshed within `REFRESH_MARGIN` of their expiry; Shopify rotates the
refresh token on every use, so the new pair is written in one compare-and-set statement the moment
it arrives (a lost pair would lock the shop out until the merchant opens the app again).
https://shopify.dev/docs/apps/build/authentication-authorization/access-tokens/offline-access-tokens
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from functools import lru_cache

import httpx
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from app.config import Settings
from app.kit.db import write_transaction
from app.kit.errors import AppError
from app.models import Shop
from app.shopify.oauth import (
    REFRESH_MARGIN,
    AccessToken,
    OAuthError,
    migrate_to_expiring,
    refresh_access_token,
)
from app.shopify.token_crypto import TokenCipher
from app.shops import repository as repo

log = logging.getLogger(__name__)


class ShopifyTokenError(AppError):
    """Shopify did not issue a token for a reason other than an invalid session token. The detail
    is what the merchant reads; Shopify's own words go to the log only."""

    status_code = 502


TOKEN_UNAVAILABLE = (
    "Shopify did not give the app access to this store just now. Please try again in a minute."
)


class ReauthorizationRequired(AppError):
    """No usable offline token: the merchant has to open the app (token exchange) again."""

    status_code = 401


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


class ShopTokens:
    """A usable offline token for a shop: read, refreshed when due, migrated from a non-expiring
    one, cleared when Shopify refuses it. It commits its own short transactions, because a token
    Shopify has issued must be persisted before anything else can fail.

    `http` returns the `httpx.AsyncClient` to call Shopify with (the app's shared one on the web).
    """

    def __init__(
        self, settings: Settings, factory: sessionmaker[Session], http: Callable[[], httpx.AsyncClient]
    ) -> None:
        self.settings = settings
        self.factory = factory
        self._http = http
        self.cipher = token_cipher(settings)
        self._locks: dict[tuple[int, str], asyncio.Lock] = {}

    @property
    def http(self) -> httpx.AsyncClient:
        return self._http()

    @asynccontextmanager
    async def shop_lock(self, domain: str) -> AsyncIterator[None]:
        """One token operation per shop at a time in this process (two requests opening the app
        together must not both spend the refresh token); across processes the compare-and-set
        write decides."""
        key = (id(asyncio.get_running_loop()), domain)
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            yield

    # -- reading ---------------------------------------------------------------------------------
    def load(self, domain: str) -> Shop | None:
        with self.factory() as session:
            return repo.get_by_domain(session, domain)

    @staticmethod
    def usable(shop: Shop | None) -> bool:
        return shop is not None and shop.is_installed and shop.access_token_encrypted is not None

    @staticmethod
    def _needs_refresh(shop: Shop, now: datetime) -> bool:
        expires = shop.access_token_expires_at
        return expires is not None and now >= expires - REFRESH_MARGIN

    # -- writing ---------------------------------------------------------------------------------
    def _save_rotation(self, shop: Shop, token: AccessToken) -> Shop:
        assert shop.refresh_token_encrypted is not None
        with write_transaction(self.factory) as session:
            stored = repo.replace_rotated_tokens(
                session,
                shop.shop_id,
                shop.refresh_token_encrypted,
                access_token_encrypted=self.cipher.encrypt(token.access_token),
                access_token_expires_at=token.expires_at,
                refresh_token_encrypted=self.cipher.encrypt(token.refresh_token)
                if token.refresh_token
                else None,
                refresh_token_expires_at=token.refresh_token_expires_at,
                scope=",".join(token.scope),
            )
        if not stored:
            log.info("shop %s: another worker refreshed the token first; using its pair", shop.domain)
        reloaded = self.load(shop.domain)
        assert reloaded is not None
        return reloaded

    def _save_migration(self, shop: Shop, token: AccessToken) -> Shop:
        with write_transaction(self.factory) as session:
            current = session.get(Shop, shop.shop_id)
            if current is not None and current.access_token_encrypted == shop.access_token_encrypted:
                store_token(current, token, self.cipher)
        reloaded = self.load(shop.domain)
        assert reloaded is not None
        return reloaded

    def _forget(self, shop: Shop) -> None:
        if shop.access_token_encrypted is None:
            return
        with write_transaction(self.factory) as session:
            repo.forget_tokens(session, shop.shop_id, shop.access_token_encrypted)

    # -- Shopify calls ---------------------------------------------------------------------------
    async def _refresh(self, shop: Shop, now: datetime) -> Shop | None:
        """The shop with a refreshed token, or None when Shopify refused the refresh token (the
        stored pair is then dropped) or there is none left to use."""
        refresh_expires = shop.refresh_token_expires_at
        if shop.refresh_token_encrypted is None or (refresh_expires is not None and now >= refresh_expires):
            await run_in_threadpool(self._forget, shop)
            return None
        try:
            token = await refresh_access_token(
                self.http,
                shop.domain,
                self.settings.shopify_api_key,
                self.settings.shopify_api_secret,
                self.cipher.decrypt(shop.refresh_token_encrypted),
                admin_base_url=self.settings.admin_base_url,
            )
        except OAuthError as exc:
            if exc.status in (400, 401):
                log.warning("shop %s: Shopify refused the refresh token (%s)", shop.domain, exc.error)
                await run_in_threadpool(self._forget, shop)
                return None
            log.warning("shop %s: token refresh failed: %s", shop.domain, exc)
            raise ShopifyTokenError(TOKEN_UNAVAILABLE) from None
        return await run_in_threadpool(self._save_rotation, shop, token)

    async def _migrate(self, shop: Shop) -> Shop:
        """Swap a legacy non-expiring token for an expiring one (mandatory by 2027-01-01,
        https://shopify.dev/docs/apps/build/authentication-authorization/access-tokens/offline-access-tokens);
        fail-soft: the old token keeps working until then."""
        assert shop.access_token_encrypted is not None
        try:
            token = await migrate_to_expiring(
                self.http,
                shop.domain,
                self.settings.shopify_api_key,
                self.settings.shopify_api_secret,
                self.cipher.decrypt(shop.access_token_encrypted),
                admin_base_url=self.settings.admin_base_url,
            )
        except OAuthError as exc:
            log.warning("shop %s: migration to an expiring token failed (%s)", shop.domain, exc.error)
            return shop
        return await run_in_threadpool(self._save_migration, shop, token)

    async def keep_usable(self, shop: Shop, now: datetime) -> Shop | None:
        """The shop with a current token (migrated or refreshed when due), or None when only a
        token exchange can give it one. The caller holds `shop_lock`."""
        if shop.access_token_expires_at is None:
            return await self._migrate(shop)
        if not self._needs_refresh(shop, now):
            return shop
        try:
            return await self._refresh(shop, now)
        except ShopifyTokenError:
            if now < shop.access_token_expires_at:
                return shop  # still valid; try again on the next request
            raise

    # -- public API ------------------------------------------------------------------------------
    async def access_token(self, domain: str) -> str:
        """A valid offline Admin API token for `domain` (refreshed first when within the margin).

        Raises `ReauthorizationRequired` when there is none (not installed, uninstalled, or
        Shopify refused the refresh)."""
        async with self.shop_lock(domain):
            shop = await run_in_threadpool(self.load, domain)
            if shop is None or not self.usable(shop):
                raise ReauthorizationRequired(f"{domain} has no offline token; open the app to install")
            now = datetime.now(UTC)
            if shop.access_token_expires_at is None:
                shop = await self._migrate(shop)
            elif self._needs_refresh(shop, now):
                try:
                    refreshed = await self._refresh(shop, now)
                except ShopifyTokenError:
                    if now >= shop.access_token_expires_at:
                        raise
                    refreshed = shop
                if refreshed is None:
                    raise ReauthorizationRequired(f"{domain}: Shopify refused the refresh token")
                shop = refreshed
            assert shop.access_token_encrypted is not None
            return self.cipher.decrypt(shop.access_token_encrypted)

    async def invalidate_access_token(self, domain: str, token: str) -> None:
        """The Admin API answered 401 for `token`: drop it (if still the stored one) so the next
        page load exchanges a new one."""
        async with self.shop_lock(domain):
            shop = await run_in_threadpool(self.load, domain)
            if shop is not None:
                await run_in_threadpool(self._forget_refused, shop.shop_id, token)

    def _forget_refused(self, shop_id: int, token: str) -> None:
        with write_transaction(self.factory) as session:
            forget_refused_token(session, shop_id, token, self.cipher)
