"""Installing the app on a shop and keeping the shop's offline token valid (PLATFORM.md §1, §4–§6).

Primary path (Shopify-managed install): Shopify installs the app with the scopes of
`shopify.app.toml` without calling us; the first time the merchant opens the app, the page carries
a session token, which `ShopAuth.ensure_installed` exchanges for an *expiring* offline token
(token exchange) and stores, encrypted, on the shop's row. Legacy path (non-embedded installs, or
`use_legacy_install_flow`): the authorization code grant, `begin_code_grant` / `complete_code_grant`.

Expiring tokens are refreshed within `REFRESH_MARGIN` of their expiry; Shopify rotates the refresh
token on every use, so the new pair is written in one compare-and-set statement the moment it
arrives (a lost pair would lock the shop out until the merchant opens the app again).

`ShopAuth` is the one place in the app that talks to Shopify's OAuth endpoints; it commits its own
short transactions because a token Shopify has issued must be persisted before anything else can
fail. Tokens never reach a logger: messages name the shop only.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import logging
import secrets
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from urllib.parse import parse_qsl

import httpx
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from app.auth import repository as auth_repo
from app.config import Settings
from app.imports.service import queue_import
from app.kit.db import write_transaction
from app.kit.errors import AppError, BadRequest
from app.models import Shop
from app.shopify.oauth import (
    REFRESH_MARGIN,
    AccessToken,
    OAuthError,
    build_authorize_url,
    exchange_code,
    migrate_to_expiring,
    refresh_access_token,
    token_exchange,
)
from app.shopify.query_hmac import verify_query_hmac
from app.shopify.session_token import SessionTokenClaims
from app.shopify.shop_domain import sanitize_shop_domain
from app.shopify.token_crypto import TokenDecryptError
from app.shops import repository as shops_repo
from app.shops.service import register_shop
from app.shops.tokens import forget_refused_token, store_token, token_cipher

log = logging.getLogger(__name__)

CALLBACK_PATH = "/auth/callback"
STATE_COOKIE = "shopify_app_state"
STATE_COOKIE_MAX_AGE_S = 60  # what Shopify's JS library uses
USED_STATE_TTL_S = 300  # longer than the cookie and the 90 s HMAC window together


class OAuthCallbackRejected(BadRequest):
    """The code-grant callback failed a check (HMAC, timestamp, shop, state, replay, code)."""


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


# -- the state nonce of the code grant ---------------------------------------------------------


def _cookie_signature(payload: str, secret: str) -> str:
    digest = hmac.new(secret.encode(), f"{STATE_COOKIE}={payload}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def sign_state_cookie(state: str, secret: str, now: float) -> str:
    """`<state>.<expiry>.<signature>`: the expiry is signed too, so a cookie kept past its
    `Max-Age` by a client is still refused."""
    payload = f"{state}.{int(now) + STATE_COOKIE_MAX_AGE_S}"
    return f"{payload}.{_cookie_signature(payload, secret)}"


def read_state_cookie(value: str | None, secrets_: tuple[str, ...], now: float) -> str | None:
    """The state nonce of a genuine, unexpired cookie, else None."""
    if not value or value.count(".") < 2:
        return None
    payload, signature = value.rsplit(".", 1)
    state, expires = payload.rsplit(".", 1)
    valid = False
    for secret in secrets_:
        valid |= hmac.compare_digest(_cookie_signature(payload, secret).encode(), signature.encode())
    if not valid or not expires.isdigit() or now > int(expires) or not state:
        return None
    return state


class UsedNonces:
    """State nonces already spent by a callback (in-process; Shopify's single-use codes stop a
    replay across processes too)."""

    def __init__(self, ttl: float = USED_STATE_TTL_S) -> None:
        self.ttl = ttl
        self._until: dict[str, float] = {}
        self._lock = threading.Lock()

    def consume(self, nonce: str, now: float) -> bool:
        """True the first time `nonce` is seen within the TTL."""
        with self._lock:
            for seen, until in list(self._until.items()):
                if until < now:
                    del self._until[seen]
            if nonce in self._until:
                return False
            self._until[nonce] = now + self.ttl
            return True


def embedded_app_url(settings: Settings, shop: str) -> str:
    """Where the merchant sees the app inside the admin, built from the validated shop alone: the
    launch URL's `host` is unsigned on a plain visit, so it never chooses where a redirect goes."""
    handle = shop.removesuffix(".myshopify.com")
    return f"https://admin.shopify.com/store/{handle}/apps/{settings.shopify_api_key}"


# -- the service -------------------------------------------------------------------------------


class ShopAuth:
    """Token lifecycle for every shop: install (token exchange or code grant), refresh, migrate.

    `http` returns the app's shared `httpx.AsyncClient` (injectable in `create_app`).
    """

    def __init__(
        self, settings: Settings, factory: sessionmaker[Session], http: Callable[[], httpx.AsyncClient]
    ) -> None:
        self.settings = settings
        self.factory = factory
        self._http = http
        self.cipher = token_cipher(settings)
        self.used_states = UsedNonces()
        self._locks: dict[tuple[int, str], asyncio.Lock] = {}

    @property
    def http(self) -> httpx.AsyncClient:
        return self._http()

    @property
    def redirect_uri(self) -> str:
        return self.settings.app_url.rstrip("/") + CALLBACK_PATH

    @asynccontextmanager
    async def _shop_lock(self, domain: str) -> AsyncIterator[None]:
        # One token operation per shop at a time in this process (two requests opening the app
        # together must not both spend the refresh token); across processes the compare-and-set
        # write decides.
        key = (id(asyncio.get_running_loop()), domain)
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            yield

    # -- reading ---------------------------------------------------------------------------------
    def _load(self, domain: str) -> Shop | None:
        with self.factory() as session:
            return shops_repo.get_by_domain(session, domain)

    def _usable(self, shop: Shop | None) -> bool:
        return shop is not None and shop.is_installed and shop.access_token_encrypted is not None

    @staticmethod
    def _needs_refresh(shop: Shop, now: datetime) -> bool:
        expires = shop.access_token_expires_at
        return expires is not None and now >= expires - REFRESH_MARGIN

    # -- writing ---------------------------------------------------------------------------------
    def _save_install(self, domain: str, token: AccessToken) -> Shop:
        for attempt in (1, 2):
            try:
                with write_transaction(self.factory) as session:
                    shop = shops_repo.get_by_domain(session, domain)
                    fresh_install = shop is None or not shop.is_installed
                    if fresh_install:
                        shop = register_shop(session, domain, datetime.now(UTC))
                    assert shop is not None
                    store_token(shop, token, self.cipher)
                    session.flush()
                    if fresh_install:
                        # Segments from day one: the order history comes by bulk operation.
                        queue_import(session, shop.shop_id, datetime.now(UTC))
                    return shop
            except IntegrityError:
                # Another process created the row at the same moment; the second pass updates it.
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def _save_rotation(self, shop: Shop, token: AccessToken) -> Shop:
        assert shop.refresh_token_encrypted is not None
        with write_transaction(self.factory) as session:
            stored = auth_repo.replace_rotated_tokens(
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
        reloaded = self._load(shop.domain)
        assert reloaded is not None
        return reloaded

    def _save_migration(self, shop: Shop, token: AccessToken) -> Shop:
        with write_transaction(self.factory) as session:
            current = session.get(Shop, shop.shop_id)
            if current is not None and current.access_token_encrypted == shop.access_token_encrypted:
                store_token(current, token, self.cipher)
        reloaded = self._load(shop.domain)
        assert reloaded is not None
        return reloaded

    def _forget(self, shop: Shop) -> None:
        if shop.access_token_encrypted is None:
            return
        with write_transaction(self.factory) as session:
            shops_repo.forget_tokens(session, shop.shop_id, shop.access_token_encrypted)

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
        """Swap a legacy non-expiring token for an expiring one (mandatory by 2027-01-01, §1);
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

    async def _keep_usable(self, shop: Shop, now: datetime) -> Shop | None:
        """The shop with a current token (migrated or refreshed when due), or None when only a
        token exchange can give it one."""
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
    async def ensure_installed(self, session_token: str, claims: SessionTokenClaims) -> Shop:
        """The installed shop of a *validated* session token, with a usable offline token.

        No token yet (managed install), uninstalled before, or a refresh Shopify refused: token
        exchange of `session_token`. Raises `InvalidSessionToken` when Shopify answers
        `invalid_subject_token` (respond as for an invalid session token, §5)."""
        domain = claims.shop
        async with self._shop_lock(domain):
            shop = await run_in_threadpool(self._load, domain)
            if shop is not None and self._usable(shop):
                try:
                    kept = await self._keep_usable(shop, datetime.now(UTC))
                except TokenDecryptError:
                    # The key that encrypted the stored pair is gone from TOKEN_ENCRYPTION_KEYS: a
                    # fresh token, stored under the current key, is the way back.
                    log.warning("shop %s: stored token unreadable with the configured keys", domain)
                    kept = None
                if kept is not None:
                    return kept
            try:
                token = await token_exchange(
                    self.http,
                    domain,
                    self.settings.shopify_api_key,
                    self.settings.shopify_api_secret,
                    session_token,
                    admin_base_url=self.settings.admin_base_url,
                )
            except OAuthError as exc:
                log.warning("shop %s: token exchange failed: %s", domain, exc)
                raise ShopifyTokenError(TOKEN_UNAVAILABLE) from None
            shop = await run_in_threadpool(self._save_install, domain, token)
            log.info("shop %s: offline token obtained by token exchange", domain)
            return shop

    async def access_token(self, domain: str) -> str:
        """A valid offline Admin API token for `domain` (refreshed first when within the margin).

        For workers and the Admin API client. Raises `ReauthorizationRequired` when there is none
        (not installed, uninstalled, or Shopify refused the refresh)."""
        async with self._shop_lock(domain):
            shop = await run_in_threadpool(self._load, domain)
            if shop is None or not self._usable(shop):
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
        page load exchanges a new one (PLATFORM §6)."""
        async with self._shop_lock(domain):
            shop = await run_in_threadpool(self._load, domain)
            if shop is not None:
                await run_in_threadpool(self._forget_refused, shop.shop_id, token)

    def _forget_refused(self, shop_id: int, token: str) -> None:
        with write_transaction(self.factory) as session:
            forget_refused_token(session, shop_id, token, self.cipher)

    # -- legacy: authorization code grant ------------------------------------------------------
    def begin_code_grant(self, shop_param: str | None, now: float | None = None) -> tuple[str, str]:
        """(authorize URL, state cookie value) for a top-level redirect to Shopify's grant screen."""
        shop = sanitize_shop_domain(shop_param)
        if shop is None:
            raise BadRequest("shop must be a <name>.myshopify.com domain")
        state = secrets.token_urlsafe(32)
        url = build_authorize_url(
            shop,
            self.settings.shopify_api_key,
            [s.strip() for s in self.settings.scopes.split(",") if s.strip()],
            self.redirect_uri,
            state,
            admin_base_url=self.settings.admin_base_url,
        )
        now = time.time() if now is None else now
        return url, sign_state_cookie(state, self.settings.shopify_api_secret, now)

    async def complete_code_grant(
        self, raw_query: str, state_cookie: str | None, now: float | None = None
    ) -> Shop:
        """Verify the callback (HMAC within 90 s, shop, state in constant time, not replayed),
        trade the code for an expiring offline token and store it."""
        now = time.time() if now is None else now
        if not verify_query_hmac(raw_query, self.settings.webhook_secrets, now):
            raise OAuthCallbackRejected("callback signature (hmac) is invalid or too old")
        params = dict(parse_qsl(raw_query, keep_blank_values=True))
        shop = sanitize_shop_domain(params.get("shop"))
        if shop is None or shop != params.get("shop", "").lower():
            raise OAuthCallbackRejected("shop is not a <name>.myshopify.com domain")
        expected = read_state_cookie(state_cookie, self.settings.webhook_secrets, now)
        given = params.get("state", "")
        if expected is None or not hmac.compare_digest(expected.encode(), given.encode()):
            raise OAuthCallbackRejected("state does not match this browser's install attempt")
        if not self.used_states.consume(given, now):
            raise OAuthCallbackRejected("this callback was already used")
        code = params.get("code", "")
        if not code:
            raise OAuthCallbackRejected("callback carries no code")
        try:
            token = await exchange_code(
                self.http,
                shop,
                self.settings.shopify_api_key,
                self.settings.shopify_api_secret,
                code,
                admin_base_url=self.settings.admin_base_url,
            )
        except OAuthError as exc:
            log.warning("shop %s: code exchange failed: %s", shop, exc)
            if exc.status is not None and exc.status < 500:
                raise OAuthCallbackRejected(
                    "Shopify refused the authorization code; start the installation again"
                ) from None
            raise ShopifyTokenError(TOKEN_UNAVAILABLE) from None
        async with self._shop_lock(shop):
            saved = await run_in_threadpool(self._save_install, shop, token)
        log.info("shop %s: offline token obtained by authorization code grant", shop)
        return saved
