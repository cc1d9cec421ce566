"""Getting and keeping an Admin API access token.

https://shopify.dev/docs/apps/build/authentication-authorization/access-tokens/token-exchange and
https://shopify.dev/docs/apps/build/authentication-authorization/access-tokens/authorization-code-grant

Embedded installs use token exchange of the session token; the authorization code grant exists only
for the legacy / non-embedded flow. Every token asked for is an *expiring* offline token
(`expiring: "1"`), mandatory for public apps, so each one comes with a refresh token that
rotates on every use: persist the returned pair atomically.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote, urlencode

import httpx

from app.shopify.session_token import InvalidSessionToken
from app.shopify.shop_domain import sanitize_shop_domain

AdminBaseUrl = Callable[[str], str]

DEFAULT_TIMEOUT_SECONDS = 10.0
REFRESH_MARGIN = timedelta(minutes=5)

TOKEN_EXCHANGE_GRANT = "urn:ietf:params:oauth:grant-type:token-exchange"
ID_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:id_token"
OFFLINE_TOKEN_TYPE = "urn:shopify:params:oauth:token-type:offline-access-token"
ONLINE_TOKEN_TYPE = "urn:shopify:params:oauth:token-type:online-access-token"


def default_admin_base_url(shop: str) -> str:
    return f"https://{shop}"


class OAuthError(Exception):
    """Shopify refused an OAuth request, or could not be reached (`status` is None then)."""

    def __init__(self, status: int | None, error: str, description: str | None = None) -> None:
        self.status = status
        self.error = error
        self.description = description
        where = f"HTTP {status}" if status is not None else "no response"
        detail = f"{error}: {description}" if description else error
        super().__init__(f"Shopify OAuth request failed ({where}): {detail}")


@dataclass(frozen=True, slots=True)
class AccessToken:
    access_token: str = field(repr=False)
    scope: list[str]
    expires_at: datetime | None = None  # None: a non-expiring (legacy) offline token
    refresh_token: str | None = field(default=None, repr=False)
    refresh_token_expires_at: datetime | None = None
    associated_user_id: int | None = None  # set for online (per-user) tokens only
    associated_user_scope: list[str] = field(default_factory=list)

    @property
    def is_online(self) -> bool:
        return self.associated_user_id is not None

    @classmethod
    def from_response(cls, payload: Mapping[str, Any], received_at: datetime) -> AccessToken:
        """Build from Shopify's access-token response; `received_at` anchors the `*_in` lifetimes.

        Raises ValueError when the response carries no usable token.
        """
        access_token = payload.get("access_token")
        if not isinstance(access_token, str) or not access_token:
            raise ValueError("response has no access_token")
        user = payload.get("associated_user")
        user_id = user.get("id") if isinstance(user, Mapping) else None
        return cls(
            access_token=access_token,
            scope=_scopes(payload.get("scope")),
            expires_at=_after(received_at, payload.get("expires_in")),
            refresh_token=payload.get("refresh_token") or None,
            refresh_token_expires_at=_after(received_at, payload.get("refresh_token_expires_in")),
            associated_user_id=int(user_id) if user_id is not None else None,
            associated_user_scope=_scopes(payload.get("associated_user_scope")),
        )


def needs_refresh(token: AccessToken, now: datetime, margin: timedelta = REFRESH_MARGIN) -> bool:
    """True when an expiring token is expired or will be within `margin` (the JS lib refreshes early too)."""
    return token.expires_at is not None and now >= token.expires_at - margin


def _scopes(value: Any) -> list[str]:
    if not isinstance(value, str):
        return []
    return [scope.strip() for scope in value.split(",") if scope.strip()]


def _after(start: datetime, seconds: Any) -> datetime | None:
    if seconds is None or isinstance(seconds, bool):
        return None
    try:
        return start + timedelta(seconds=int(seconds))
    except (TypeError, ValueError):
        return None


def _valid_shop(shop: str) -> str:
    sanitized = sanitize_shop_domain(shop)
    if sanitized is None:
        raise ValueError("not a valid <name>.myshopify.com shop domain")
    return sanitized


def build_authorize_url(
    shop: str,
    api_key: str,
    scopes: Sequence[str],
    redirect_uri: str,
    state: str,
    online: bool = False,
    *,
    admin_base_url: AdminBaseUrl = default_admin_base_url,
) -> str:
    """The URL to send the top frame to for the authorization code grant (legacy flow)."""
    query = urlencode(
        [
            ("client_id", api_key),
            ("scope", ",".join(scopes)),
            ("redirect_uri", redirect_uri),
            ("state", state),
            ("grant_options[]", "per-user" if online else ""),
        ],
        quote_via=quote,
    )
    return f"{admin_base_url(_valid_shop(shop))}/admin/oauth/authorize?{query}"


def _redact(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "[redacted]")
    return text


def _error_from(response: httpx.Response, sensitive: Iterable[str]) -> OAuthError:
    error: str = response.reason_phrase or "error"
    description: str | None = None
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, Mapping):
        raw_error = body.get("error", body.get("errors"))
        if raw_error is not None:
            error = str(raw_error)
        if body.get("error_description") is not None:
            description = str(body["error_description"])
    elif response.text.strip():
        description = response.text.strip()[:200]
    return OAuthError(
        response.status_code,
        _redact(error, sensitive)[:200],
        _redact(description, sensitive)[:500] if description else None,
    )


async def _request_token(
    client: httpx.AsyncClient,
    shop: str,
    body: dict[str, str],
    *,
    admin_base_url: AdminBaseUrl,
    timeout: float,
    on_error: Callable[[OAuthError], None] | None = None,
) -> AccessToken:
    url = f"{admin_base_url(_valid_shop(shop))}/admin/oauth/access_token"
    # Lifetimes count from before the request, so a slow response never stretches them.
    sent_at = datetime.now(UTC)
    try:
        response = await client.post(url, json=body, headers={"Accept": "application/json"}, timeout=timeout)
    except httpx.TimeoutException as exc:
        raise OAuthError(None, "timed out") from exc
    except httpx.TransportError as exc:
        raise OAuthError(None, f"transport error ({type(exc).__name__})") from exc
    sensitive = [value for key, value in body.items() if key != "client_id"]
    if not response.is_success:
        error = _error_from(response, sensitive)
        if on_error is not None:
            on_error(error)
        raise error
    try:
        payload = response.json()
    except ValueError:
        raise OAuthError(response.status_code, "response is not JSON") from None
    if not isinstance(payload, Mapping):
        raise OAuthError(response.status_code, "response is not a JSON object")
    try:
        return AccessToken.from_response(payload, sent_at)
    except (TypeError, ValueError) as exc:
        raise OAuthError(response.status_code, f"unexpected token response ({exc})") from None


async def exchange_code(
    client: httpx.AsyncClient,
    shop: str,
    api_key: str,
    secret: str,
    code: str,
    *,
    admin_base_url: AdminBaseUrl = default_admin_base_url,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
) -> AccessToken:
    """Code grant callback: trade `code` for an expiring token (verify HMAC, state and shop first)."""
    body = {"client_id": api_key, "client_secret": secret, "code": code, "expiring": "1"}
    return await _request_token(client, shop, body, admin_base_url=admin_base_url, timeout=timeout)


def _raise_invalid_subject_token(error: OAuthError) -> None:
    if error.status == 400 and error.error == "invalid_subject_token":
        # Same handling as a session token we rejected ourselves: 401 + retry header.
        raise InvalidSessionToken("invalid_subject_token") from error


async def token_exchange(
    client: httpx.AsyncClient,
    shop: str,
    api_key: str,
    secret: str,
    session_token: str,
    online: bool = False,
    *,
    admin_base_url: AdminBaseUrl = default_admin_base_url,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
) -> AccessToken:
    """Exchange a session token (already validated; `shop` taken from its `dest`) for an access token."""
    body = {
        "client_id": api_key,
        "client_secret": secret,
        "grant_type": TOKEN_EXCHANGE_GRANT,
        "subject_token": session_token,
        "subject_token_type": ID_TOKEN_TYPE,
        "requested_token_type": ONLINE_TOKEN_TYPE if online else OFFLINE_TOKEN_TYPE,
        "expiring": "1",
    }
    return await _request_token(
        client,
        shop,
        body,
        admin_base_url=admin_base_url,
        timeout=timeout,
        on_error=_raise_invalid_subject_token,
    )


async def refresh_access_token(
    client: httpx.AsyncClient,
    shop: str,
    api_key: str,
    secret: str,
    refresh_token: str,
    *,
    admin_base_url: AdminBaseUrl = default_admin_base_url,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
) -> AccessToken:
    """Refresh an expiring offline token; the result carries a new refresh token that replaces the old one."""
    body = {
        "client_id": api_key,
        "client_secret": secret,
        "grant_type": "refresh_token",
        "refresh_token": refresh_token,
    }
    return await _request_token(client, shop, body, admin_base_url=admin_base_url, timeout=timeout)


async def migrate_to_expiring(
    client: httpx.AsyncClient,
    shop: str,
    api_key: str,
    secret: str,
    access_token: str,
    *,
    admin_base_url: AdminBaseUrl = default_admin_base_url,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
) -> AccessToken:
    """Swap a non-expiring offline token for an expiring one, without the merchant.

    https://shopify.dev/docs/apps/build/authentication-authorization/migrate-to-expiring-offline-access-tokens
    """
    body = {
        "client_id": api_key,
        "client_secret": secret,
        "grant_type": TOKEN_EXCHANGE_GRANT,
        "subject_token": access_token,
        "subject_token_type": OFFLINE_TOKEN_TYPE,
        "requested_token_type": OFFLINE_TOKEN_TYPE,
        "expiring": "1",
    }
    return await _request_token(client, shop, body, admin_base_url=admin_base_url, timeout=timeout)
