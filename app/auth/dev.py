"""Development-only way into the embedded pages without the Shopify admin (the demo's local URL).

Inside Shopify, App Bridge hands the page a fresh session token for every request. Outside it
(`rfm-clv demo`), `/dev/login?shop=…` sets a signed cookie naming the shop, and each request then
gets a session token minted with the app's own secret — the same token Shopify would send — which
goes through the normal validation. Mounted only when `DEV_LOGIN=1`, which `Settings` refuses
outside `APP_ENV=development`, and only for shops that are installed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
import uuid
from urllib.parse import urlencode

import jwt
from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse

from app.config import Settings
from app.kit.errors import BadRequest, NotFound
from app.shopify.shop_domain import sanitize_shop_domain

COOKIE = "rfm_dev_shop"
MAX_AGE_S = 8 * 3600
router = APIRouter(prefix="/dev", include_in_schema=False)


def _sign(value: str, secret: str) -> str:
    return hmac.new(secret.encode(), b"dev-login:" + value.encode(), hashlib.sha256).hexdigest()


def dev_cookie(shop: str, secret: str, now: float) -> str:
    value = f"{shop}|{int(now) + MAX_AGE_S}"
    return f"{value}|{_sign(value, secret)}"


def dev_shop(request: Request) -> str | None:
    """The shop of a valid dev-login cookie, when dev login is enabled."""
    settings: Settings = request.app.state.settings
    raw = request.cookies.get(COOKIE)
    if not settings.dev_login or not raw or raw.count("|") != 2:
        return None
    shop, expires, signature = raw.split("|")
    if not hmac.compare_digest(signature, _sign(f"{shop}|{expires}", settings.shopify_api_secret)):
        return None
    if not expires.isdigit() or int(expires) < time.time():
        return None
    return sanitize_shop_domain(shop)


def dev_session_token(request: Request) -> str | None:
    """A freshly minted session token for the dev-login shop (or None)."""
    shop = dev_shop(request)
    if shop is None:
        return None
    settings: Settings = request.app.state.settings
    return _session_token(shop, settings.shopify_api_key, settings.shopify_api_secret, time.time())


def _session_token(shop: str, api_key: str, secret: str, now: float) -> str:
    """What App Bridge would send for `shop`: the claims of
    https://shopify.dev/docs/apps/build/authentication-authorization/session-tokens, one minute."""
    issued = int(now)
    claims = {
        "iss": f"https://{shop}/admin",
        "dest": f"https://{shop}",
        "aud": api_key,
        "sub": "1",
        "exp": issued + 60,
        "nbf": issued,
        "iat": issued,
        "jti": str(uuid.uuid4()),
        "sid": uuid.uuid4().hex,
    }
    return jwt.encode(claims, secret, algorithm="HS256")


@router.get("/login")
def login(request: Request, shop: str) -> RedirectResponse:
    settings: Settings = request.app.state.settings
    valid = sanitize_shop_domain(shop)
    if valid is None:
        raise BadRequest("not a shop domain")
    from app.shops import repository as shops_repo

    with request.app.state.sessionmaker() as session:
        installed = shops_repo.get_by_domain(session, valid)
        if installed is None or not installed.is_installed:
            raise NotFound(f"{valid} has not installed the app")
    handle = valid.split(".")[0]
    host = base64.b64encode(f"admin.shopify.com/store/{handle}".encode()).decode().rstrip("=")
    response = RedirectResponse(
        "/app?" + urlencode({"embedded": "1", "shop": valid, "host": host}), status_code=302
    )
    response.set_cookie(
        COOKIE,
        dev_cookie(valid, settings.shopify_api_secret, time.time()),
        max_age=MAX_AGE_S,
        httponly=True,
        samesite="lax",
    )
    return response
