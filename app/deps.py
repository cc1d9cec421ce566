"""Request dependencies that read as types: `SessionDep` (from app.kit.web) and `CurrentShop`.

`CurrentShop` authenticates a request by its App Bridge session token
(https://shopify.dev/docs/apps/build/authentication-authorization/session-tokens):
`Authorization: Bearer <token>` on fetch requests, the `id_token` query parameter on the document
load. The shop is the token's `dest` — never a query parameter — and it is installed on the fly
by token exchange when the app holds no usable token for it (Shopify-managed install).

An invalid or missing token:
- fetch request (has `Authorization`) → 401 with `X-Shopify-Retry-Invalid-Session-Request: 1`
  (App Bridge fetches a fresh token and retries);
- document request with `embedded=1` → 302 to the bounce page `/auth/session-token?…&shopify-reload=…`,
  which loads App Bridge, which reloads `shopify-reload` with a fresh `id_token`;
- anything else → 401 with the same header.
"""

from __future__ import annotations

import logging
from typing import Annotated
from urllib.parse import parse_qsl, urlencode

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

from app.auth.dev import dev_session_token
from app.auth.service import ShopAuth
from app.config import Settings
from app.kit.observability import shop_var
from app.kit.web import SessionDep
from app.models import Shop
from app.shopify.session_token import InvalidSessionToken, SessionTokenClaims, decode_session_token

log = logging.getLogger(__name__)

RETRY_HEADER = "X-Shopify-Retry-Invalid-Session-Request"
BOUNCE_PATH = "/auth/session-token"
RELOAD_PARAM = "shopify-reload"

__all__ = ["BOUNCE_PATH", "CurrentShop", "RETRY_HEADER", "SessionDep", "current_shop", "session_claims"]


class SessionTokenRejected(Exception):
    """Answered by `install_session_token_handler`: a bounce redirect or 401 + retry header."""

    def __init__(self, reason: str, bounce_url: str | None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.bounce_url = bounce_url


def shop_auth(request: Request) -> ShopAuth:
    auth: ShopAuth = request.app.state.auth
    return auth


def _token_of(request: Request) -> tuple[str, bool]:
    """(token, came from a fetch request's Authorization header)."""
    header = request.headers.get("authorization")
    if header is not None:
        scheme, _, value = header.partition(" ")
        return (value.strip() if scheme.lower() == "bearer" else ""), True
    return request.query_params.get("id_token", ""), False


def bounce_url(request: Request, settings: Settings) -> str:
    """`/auth/session-token?<query without id_token>&shopify-reload=<this page's URL without id_token>`."""
    params = [
        (key, value)
        for key, value in parse_qsl(request.url.query, keep_blank_values=True)
        if key not in ("id_token", RELOAD_PARAM)
    ]
    reload = f"{settings.app_url.rstrip('/')}{request.url.path}?{urlencode(params)}"
    return f"{BOUNCE_PATH}?{urlencode([*params, (RELOAD_PARAM, reload)])}"


def _rejected(request: Request, reason: str, from_fetch: bool) -> SessionTokenRejected:
    settings: Settings = request.app.state.settings
    embedded_document = not from_fetch and request.query_params.get("embedded") == "1"
    log.info("session token refused on %s: %s", request.url.path, reason)
    return SessionTokenRejected(reason, bounce_url(request, settings) if embedded_document else None)


def session_claims(request: Request) -> tuple[str, SessionTokenClaims]:
    """The request's session token and its verified claims; raises `SessionTokenRejected`."""
    settings: Settings = request.app.state.settings
    token, from_fetch = _token_of(request)
    if settings.dev_login:
        token = dev_session_token(request) or token
    try:
        return token, decode_session_token(token, settings.shopify_api_key, settings.webhook_secrets)
    except InvalidSessionToken as exc:
        raise _rejected(request, exc.reason, from_fetch) from None


async def install_for(request: Request, token: str, claims: SessionTokenClaims) -> Shop:
    """The token's shop with a usable offline token (token exchange when needed)."""
    try:
        return await shop_auth(request).ensure_installed(token, claims)
    except InvalidSessionToken as exc:  # Shopify answered invalid_subject_token
        raise _rejected(request, exc.reason, _token_of(request)[1]) from None


async def current_shop(request: Request) -> Shop:
    token, claims = session_claims(request)
    shop_var.set(claims.shop)  # log lines of this request name the shop
    return await install_for(request, token, claims)


CurrentShop = Annotated[Shop, Depends(current_shop)]


def install_session_token_handler(app: FastAPI) -> None:
    @app.exception_handler(SessionTokenRejected)
    async def _handle(_: Request, exc: SessionTokenRejected) -> Response:
        if exc.bounce_url is not None:
            return RedirectResponse(exc.bounce_url, status_code=302)
        return JSONResponse({"detail": "invalid session token"}, status_code=401, headers={RETRY_HEADER: "1"})
