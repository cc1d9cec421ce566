"""The double's OAuth bookkeeping: authorization codes, token lifetimes and refresh-token rotation.

Kept apart from the HTTP layer (``shopify_double/oauth.py``) so the rules read on their own:

- an authorization code is single use and expires (``CODE_TTL``);
- an expiring offline token lives ``ACCESS_TOKEN_TTL`` (``expires_in`` 3600) and comes with a
  refresh token living ``REFRESH_TOKEN_TTL`` (~90 days);
- a refresh token rotates on every use; since 2026-08-28 the previous one stays valid until the app
  uses its replacement (lost-response recovery), so using refresh token *n+1* retires refresh
  token *n* — and the access token issued with *n* — while using *n* again mints another *n+1*;
- a non-expiring offline token can be swapped for an expiring one; the old token is revoked.

Access tokens themselves live in ``DevStore._tokens`` (shop and scopes); this module only adds
what Shopify attaches to them (expiry, refresh tokens), keyed by the token string.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

CODE_TTL = timedelta(minutes=10)
ACCESS_TOKEN_TTL = timedelta(hours=1)
ONLINE_TOKEN_TTL = timedelta(hours=24) - timedelta(seconds=1)
REFRESH_TOKEN_TTL = timedelta(days=90)
# The `[access_scopes]` of shopify.app.toml (tests/test_shopify_toml.py keeps them equal).
DEFAULT_APP_SCOPES = "read_orders,read_all_orders,write_customers,read_customer_merge"


@dataclass
class AuthorizationCode:
    shop: str
    scopes: frozenset[str]
    redirect_uri: str
    online: bool
    expires_at: datetime
    used: bool = False


@dataclass
class RefreshToken:
    shop: str
    scopes: frozenset[str]
    expires_at: datetime
    access_token: str  # issued together with this refresh token
    parent: str | None  # the refresh token this one replaced
    retired: bool = False
    children: list[str] = field(default_factory=list)


class OAuthGrants:
    """Codes and refresh tokens of one :class:`DevStore`; ``now`` is the store's clock."""

    def __init__(self, now: Callable[[], datetime]) -> None:
        self.now = now
        # What the app's `shopify.app.toml` would declare: granted on a Shopify-managed install.
        self.app_scopes = DEFAULT_APP_SCOPES
        # `[auth] redirect_urls`; None accepts any http(s) URL (tests may pin the list).
        self.redirect_urls: list[str] | None = None
        # Shops that removed the app: no token exchange until the merchant installs it again
        # (`install_app`, or approving the code grant). Every other shop counts as installed.
        self.uninstalled: set[str] = set()
        self._codes: dict[str, AuthorizationCode] = {}
        self._refresh: dict[str, RefreshToken] = {}
        self._access_expiry: dict[str, datetime] = {}
        self._lock = threading.RLock()

    # -- authorization codes ------------------------------------------------------------------
    def issue_code(self, shop: str, scopes: frozenset[str], redirect_uri: str, online: bool) -> str:
        code = secrets.token_hex(16)
        with self._lock:
            self._codes[code] = AuthorizationCode(shop, scopes, redirect_uri, online, self.now() + CODE_TTL)
        return code

    def redeem_code(self, shop: str, code: str) -> AuthorizationCode | None:
        """The code's grant, once: a second use, another shop or an expired code gives None."""
        with self._lock:
            grant = self._codes.get(code)
            if grant is None or grant.used or grant.shop != shop or self.now() >= grant.expires_at:
                return None
            grant.used = True
            return grant

    # -- access token lifetimes ---------------------------------------------------------------
    def set_expiry(self, access_token: str, ttl: timedelta) -> datetime:
        expires_at = self.now() + ttl
        with self._lock:
            self._access_expiry[access_token] = expires_at
        return expires_at

    def is_expiring(self, access_token: str) -> bool:
        return access_token in self._access_expiry

    def is_expired(self, access_token: str) -> bool:
        expires_at = self._access_expiry.get(access_token)
        return expires_at is not None and self.now() >= expires_at

    # -- refresh tokens -----------------------------------------------------------------------
    def issue_refresh_token(
        self, shop: str, scopes: frozenset[str], access_token: str, parent: str | None = None
    ) -> str:
        token = "shprt_" + secrets.token_hex(16)
        with self._lock:
            self._refresh[token] = RefreshToken(
                shop, scopes, self.now() + REFRESH_TOKEN_TTL, access_token, parent
            )
            if parent is not None:
                self._refresh[parent].children.append(token)
        return token

    def use_refresh_token(self, shop: str, token: str) -> tuple[RefreshToken, list[str]] | None:
        """Validate ``token`` for ``shop``; returns it and the access tokens to revoke now.

        Using a token retires its parent (the app has moved on to the replacement) and the
        parent's other replacements (minted by retries whose response was lost)."""
        with self._lock:
            entry = self._refresh.get(token)
            if entry is None or entry.retired or entry.shop != shop or self.now() >= entry.expires_at:
                return None
            revoke: list[str] = []
            if entry.parent is not None:
                parent = self._refresh[entry.parent]
                for retiring in [entry.parent, *parent.children]:
                    if retiring != token and not self._refresh[retiring].retired:
                        self._refresh[retiring].retired = True
                        revoke.append(self._refresh[retiring].access_token)
            return entry, revoke

    def forget_shop(self, shop: str) -> None:
        """Uninstall: every refresh token and pending code of the shop stops working."""
        with self._lock:
            for entry in self._refresh.values():
                if entry.shop == shop:
                    entry.retired = True
            for grant in self._codes.values():
                if grant.shop == shop:
                    grant.used = True
