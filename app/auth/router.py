"""Install routes: the legacy authorization code grant and the session-token bounce page.

- `GET /auth?shop=` → 302 (top level) to Shopify's grant screen, with the state nonce in a
  signed cookie `shopify_app_state` (60 s, SameSite=Lax, Secure, HttpOnly, Path=/auth/callback), as
  Shopify's JS library does. Embedded apps install through Shopify-managed install
  and token exchange instead (`app/deps.py`); this path is kept for non-embedded/legacy installs.
  https://shopify.dev/docs/apps/build/authentication-authorization/get-access-tokens/authorization-code-grant
- `GET /auth/callback` → verify and store the token (`ShopAuth.complete_code_grant`), then into
  the admin.
- `GET /auth/session-token` → the bounce page: App Bridge only.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from app.auth.security import set_frame_ancestors
from app.auth.service import (
    CALLBACK_PATH,
    STATE_COOKIE,
    STATE_COOKIE_MAX_AGE_S,
    ShopAuth,
    embedded_app_url,
)
from app.config import Settings

router = APIRouter()

APP_BRIDGE_URL = "https://cdn.shopify.com/shopifycloud/app-bridge.js"
templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
templates.env.globals.update(app_bridge_url=APP_BRIDGE_URL)


def session_token_bounce(request: Request, shop: str | None) -> Response:
    """The page that only loads App Bridge, which reloads the app with a fresh session token
    (https://shopify.dev/docs/apps/build/authentication-authorization/session-tokens/set-up-session-tokens)."""
    settings: Settings = request.app.state.settings
    response = templates.TemplateResponse(
        request, "session_token_bounce.html", {"api_key": settings.shopify_api_key}
    )
    return set_frame_ancestors(response, shop)


def _auth(request: Request) -> ShopAuth:
    auth: ShopAuth = request.app.state.auth
    return auth


@router.get("/auth")
async def begin_install(request: Request, shop: str | None = None) -> Response:
    url, cookie = _auth(request).begin_code_grant(shop)
    response = RedirectResponse(url, status_code=302)
    response.set_cookie(
        STATE_COOKIE,
        cookie,
        max_age=STATE_COOKIE_MAX_AGE_S,
        path=CALLBACK_PATH,
        secure=True,
        httponly=True,
        samesite="lax",
    )
    return response


@router.get(CALLBACK_PATH)
async def install_callback(request: Request) -> Response:
    settings: Settings = request.app.state.settings
    shop = await _auth(request).complete_code_grant(request.url.query, request.cookies.get(STATE_COOKIE))
    response = RedirectResponse(embedded_app_url(settings, shop.domain), status_code=302)
    response.delete_cookie(STATE_COOKIE, path=CALLBACK_PATH, secure=True, httponly=True, samesite="lax")
    return response


@router.get("/auth/session-token", response_class=HTMLResponse)
async def session_token_bounce_page(request: Request) -> Response:
    return session_token_bounce(request, request.query_params.get("shop"))
