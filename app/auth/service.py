"""Installing the app on a shop: token exchange and the authorization code grant.

Primary path (Shopify-managed install): Shopify installs the app with the scopes of
`shopify.app.toml` without calling us; the first time the merchant opens the app, the page carries
a session token, which `ShopAuth.ensure_installed` exchanges for an *expiring* offline token
(token exchange) and stores, encrypted, on the shop's row. Legacy path (non-embedded installs, or
`use_legacy_install_flow`): the authorization code grant, `begin_code_grant` / `complete_code_grant`.

A stored token's life after install (refresh, migration, clearing a refused one) belongs to
`app.shops.tokens.ShopTokens`, which the worker and the CLI use too; `ShopAuth` keeps one and
adds the two ways a token is first obtained. It commits its own short transactions because a
token Shopify has issued must be persisted before anything else can fail. Tokens never reach a
logger: messages name the shop only.
https://shopify.dev/docs/apps/build/authentication-authorization/get-access-tokens/exchange-tokens
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import secrets
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from urllib.parse import parse_qsl

import httpx
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from app.config import Settings
from app.imports.service import queue_import
from app.kit.db import write_transaction
from app.kit.errors import BadRequest
from app.models import Shop
from app.scoring.service import timezone_changed
from app.shopify.admin_client import AdminClient
from app.shopify.oauth import AccessToken, OAuthError, build_authorize_url, exchange_code, token_exchange
from app.shopify.query_hmac import verify_query_hmac
from app.shopify.session_token import SessionTokenClaims
from app.shopify.shop_domain import sanitize_shop_domain
from app.shopify.token_crypto import TokenDecryptError
from app.shops import repository as shops_repo
from app.shops.service import ShopLocale, read_locale, record_locale, register_shop
from app.shops.tokens import TOKEN_UNAVAILABLE, ShopifyTokenError, ShopTokens, store_token

log = logging.getLogger(__name__)

CALLBACK_PATH = "/auth/callback"
STATE_COOKIE = "shopify_app_state"
STATE_COOKIE_MAX_AGE_S = 60  # what Shopify's JS library uses
USED_STATE_TTL_S = 300  # longer than the cookie and the 90 s HMAC window together


class OAuthCallbackRejected(BadRequest):
    """The code-grant callback failed a check (HMAC, timestamp, shop, state, replay, code)."""


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
    """The web's install paths (token exchange, code grant) over the shop's `ShopTokens`.

    `http` returns the app's shared `httpx.AsyncClient` (injectable in `create_app`).
    """

    def __init__(
        self, settings: Settings, factory: sessionmaker[Session], http: Callable[[], httpx.AsyncClient]
    ) -> None:
        self.settings = settings
        self.factory = factory
        self.tokens = ShopTokens(settings, factory, http)
        self.cipher = self.tokens.cipher
        self.used_states = UsedNonces()

    @property
    def http(self) -> httpx.AsyncClient:
        return self.tokens.http

    @property
    def redirect_uri(self) -> str:
        return self.settings.app_url.rstrip("/") + CALLBACK_PATH

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

    async def _remember_locale(self, shop: Shop, token: AccessToken) -> None:
        """The shop's currency and time zone, read once the token is stored. One attempt: the page
        is waiting, and the history import and `shop/update` read them again."""
        admin = AdminClient(self.http, self.settings, max_attempts=1)
        locale = await read_locale(admin, shop.domain, token.access_token)
        if locale is not None:
            await run_in_threadpool(self._save_locale, shop.shop_id, locale)

    def _save_locale(self, shop_id: int, locale: ShopLocale) -> None:
        with write_transaction(self.factory) as session:
            shop = session.get(Shop, shop_id)
            if shop is not None and record_locale(shop, locale):
                timezone_changed(session, shop_id, datetime.now(UTC))

    # -- public API ------------------------------------------------------------------------------
    async def ensure_installed(self, session_token: str, claims: SessionTokenClaims) -> Shop:
        """The installed shop of a *validated* session token, with a usable offline token.

        No token yet (managed install), uninstalled before, or a refresh Shopify refused: token
        exchange of `session_token`. Raises `InvalidSessionToken` when Shopify answers
        `invalid_subject_token` (respond as for an invalid session token)."""
        domain = claims.shop
        async with self.tokens.shop_lock(domain):
            shop = await run_in_threadpool(self.tokens.load, domain)
            if shop is not None and self.tokens.usable(shop):
                try:
                    kept = await self.tokens.keep_usable(shop, datetime.now(UTC))
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
            await self._remember_locale(shop, token)
            return shop

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
        async with self.tokens.shop_lock(shop):
            saved = await run_in_threadpool(self._save_install, shop, token)
        log.info("shop %s: offline token obtained by authorization code grant", shop)
        await self._remember_locale(saved, token)
        return saved
