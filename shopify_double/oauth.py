"""The double's OAuth endpoints, answering the way Shopify does.

- ``GET /admin/oauth/authorize?client_id=&scope=&redirect_uri=&state=[&grant_options[]=per-user]``:
  the merchant "approves" at once; answers 302 to ``redirect_uri`` with ``code, hmac, host, shop,
  state, timestamp``, ``hmac`` = lowercase hex HMAC-SHA256 of the sorted, form-encoded other pairs
  under the app's client secret (exactly what the app must verify).
- ``POST /admin/oauth/access_token`` (JSON or form body), by grant:
  * no ``grant_type`` + ``code``: authorization code (single use, expires after 10 minutes);
  * ``urn:ietf:params:oauth:grant-type:token-exchange`` with ``subject_token_type`` ``…:id_token``:
    the session token must be an HS256 JWT signed with the app's secret, ``aud`` = client id,
    ``dest`` = this shop, current (10 s leeway) — else 400 ``{"error": "invalid_subject_token"}``;
    ``requested_token_type`` offline or online;
  * the same grant with ``subject_token_type`` ``…:offline-access-token``: migrates a non-expiring
    offline token to an expiring one (the old token is revoked);
  * ``refresh_token``: rotates (see ``shopify_double/grants.py``).
  ``expiring: "1"`` adds ``expires_in`` (3600), ``refresh_token`` and ``refresh_token_expires_in``.
  Wrong client credentials → 401 ``invalid_client``; a bad code / refresh token → 400 ``invalid_grant``.

Every token is issued through ``DevStore.issue_access_token`` so the Admin GraphQL endpoint accepts
it (and refuses it once expired or revoked).

``install_app`` / ``uninstall_app`` simulate the merchant adding and removing the app (managed
install; uninstall revokes the tokens, refuses token exchange until reinstalled, and sends a signed
``app/uninstalled`` through a ``WebhookSender``). Every shop of the store starts installed.
"""

from __future__ import annotations

import base64
import hmac
import json
import re
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

import jwt
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response

from app.shopify.query_hmac import compute_query_hmac
from shopify_double.grants import ACCESS_TOKEN_TTL, ONLINE_TOKEN_TTL, REFRESH_TOKEN_TTL
from shopify_double.state import DevStore
from shopify_double.webhooks import Delivery, WebhookSender, shop_payload

router = APIRouter()

TOKEN_EXCHANGE_GRANT = "urn:ietf:params:oauth:grant-type:token-exchange"
ID_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:id_token"
OFFLINE_TOKEN_TYPE = "urn:shopify:params:oauth:token-type:offline-access-token"
ONLINE_TOKEN_TYPE = "urn:shopify:params:oauth:token-type:online-access-token"
SESSION_TOKEN_LEEWAY_S = 10

_SCOPE = re.compile(r"^(?:unauthenticated_)?(?:read|write)_[a-z_]+$")


def _shop(request: Request) -> str | None:
    # Imported here: server.py imports this module's router at load time.
    from shopify_double.server import shop_from_request

    return shop_from_request(request)


def _store(request: Request) -> DevStore:
    store: DevStore = request.app.state.store
    return store


def _oauth_error(message: str, status: int = 400) -> PlainTextResponse:
    # Shopify shows the merchant an HTML error page; the text is what matters here.
    return PlainTextResponse(f"Oauth error {message}", status_code=status)


def _error(error: str, description: str, status: int = 400) -> JSONResponse:
    return JSONResponse({"error": error, "error_description": description}, status_code=status)


def admin_host(shop: str) -> str:
    """The ``host`` parameter: unpadded base64 of ``admin.shopify.com/store/<handle>``."""
    raw = f"admin.shopify.com/store/{shop.split('.')[0]}".encode()
    return base64.b64encode(raw).decode().rstrip("=")


def _scopes(value: str) -> frozenset[str] | None:
    scopes = [s.strip() for s in value.split(",") if s.strip()]
    if not scopes or not all(_SCOPE.match(s) for s in scopes):
        return None
    return frozenset(scopes)


def _redirect_allowed(store: DevStore, redirect_uri: str) -> bool:
    parts = urlsplit(redirect_uri)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.fragment:
        return False
    allowed = store.grants.redirect_urls
    return allowed is None or redirect_uri in allowed


def signed_callback_query(store: DevStore, params: dict[str, str]) -> str:
    """``params`` plus Shopify's ``hmac``, keys sorted as Shopify sends them."""
    signed = dict(params)
    signed["hmac"] = compute_query_hmac(params, store.client_secret)
    return urlencode(sorted(signed.items()), quote_via=quote)


@router.get("/admin/oauth/authorize")
async def authorize(request: Request) -> Response:
    store = _store(request)
    shop = _shop(request)
    if shop is None or shop not in store.shops:
        return PlainTextResponse("There's no page at this address", status_code=404)
    query = request.query_params
    if query.get("client_id") != store.client_id:
        return _oauth_error("invalid_request: Could not find Shopify API application with api_key")
    scopes = _scopes(query.get("scope", ""))
    if scopes is None:
        return _oauth_error("invalid_scope: The access scope is invalid")
    redirect_uri = query.get("redirect_uri", "")
    if not _redirect_allowed(store, redirect_uri):
        return _oauth_error("invalid_request: The redirect_uri is not whitelisted")
    state = query.get("state", "")
    if not state:
        return _oauth_error("invalid_request: The state parameter is missing")
    online = query.get("grant_options[]") == "per-user"
    store.grants.uninstalled.discard(shop)  # the merchant approved: the app is installed
    code = store.grants.issue_code(shop, scopes, redirect_uri, online)
    callback = {
        "code": code,
        "host": admin_host(shop),
        "shop": shop,
        "state": state,
        "timestamp": str(int(store.now().timestamp())),
    }
    separator = "&" if urlsplit(redirect_uri).query else "?"
    return RedirectResponse(f"{redirect_uri}{separator}{signed_callback_query(store, callback)}", 302)


async def _body(request: Request) -> dict[str, str] | None:
    raw = await request.body()
    if request.headers.get("content-type", "").startswith("application/json"):
        try:
            payload = json.loads(raw or b"{}")
        except ValueError:
            return None
        if not isinstance(payload, dict):
            return None
        return {str(k): str(v) for k, v in payload.items() if v is not None}
    return dict(parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True))


def _token_response(
    store: DevStore, shop: str, scopes: frozenset[str], *, expiring: bool, online: bool = False
) -> dict[str, Any]:
    token = store.issue_access_token(shop, sorted(scopes))
    scope = ",".join(sorted(scopes))
    body: dict[str, Any] = {"access_token": token, "scope": scope}
    if online:
        store.grants.set_expiry(token, ONLINE_TOKEN_TTL)
        body["expires_in"] = int(ONLINE_TOKEN_TTL.total_seconds())
        body["associated_user_scope"] = scope
        body["associated_user"] = {
            "id": 902541635,
            "first_name": "Dev",
            "last_name": "Store",
            "email": f"owner@{shop}",
            "email_verified": True,
            "account_owner": True,
            "locale": "en",
            "collaborator": False,
        }
    elif expiring:
        body.update(_expiring_fields(store, shop, scopes, token, parent=None))
    return body


def _expiring_fields(
    store: DevStore, shop: str, scopes: frozenset[str], token: str, parent: str | None
) -> dict[str, Any]:
    store.grants.set_expiry(token, ACCESS_TOKEN_TTL)
    return {
        "expires_in": int(ACCESS_TOKEN_TTL.total_seconds()),
        "refresh_token": store.grants.issue_refresh_token(shop, scopes, token, parent),
        "refresh_token_expires_in": int(REFRESH_TOKEN_TTL.total_seconds()),
    }


def _verify_session_token(store: DevStore, shop: str, token: str) -> bool:
    try:
        claims = jwt.decode(
            token,
            store.client_secret,
            algorithms=["HS256"],
            audience=store.client_id,
            options={
                "require": ["iss", "dest", "aud", "sub", "exp", "nbf", "jti", "sid"],
                "verify_exp": False,
                "verify_nbf": False,
                "verify_iat": False,
            },
        )
    except jwt.PyJWTError:
        return False
    now = store.now().timestamp()
    exp, nbf = claims.get("exp"), claims.get("nbf")
    if not isinstance(exp, int | float) or not isinstance(nbf, int | float):
        return False
    if exp <= now - SESSION_TOKEN_LEEWAY_S or nbf > now + SESSION_TOKEN_LEEWAY_S:
        return False
    return claims.get("dest") == f"https://{shop}" and claims.get("iss") == f"https://{shop}/admin"


def _token_exchange(store: DevStore, shop: str, body: dict[str, str]) -> JSONResponse:
    subject = body.get("subject_token", "")
    subject_type = body.get("subject_token_type")
    requested = body.get("requested_token_type")
    expiring = body.get("expiring") == "1"
    if requested not in (OFFLINE_TOKEN_TYPE, ONLINE_TOKEN_TYPE):
        return _error("invalid_request", "requested_token_type is not supported")
    if subject_type == ID_TOKEN_TYPE:
        if not _verify_session_token(store, shop, subject):
            return _error("invalid_subject_token", "The subject token is invalid or has expired")
        if shop in store.grants.uninstalled:
            return _error("invalid_subject_token", "The app is not installed on this shop")
        scopes = frozenset(s for s in store.grants.app_scopes.split(",") if s)
        online = requested == ONLINE_TOKEN_TYPE
        return JSONResponse(_token_response(store, shop, scopes, expiring=expiring, online=online))
    if subject_type == OFFLINE_TOKEN_TYPE and requested == OFFLINE_TOKEN_TYPE:
        scopes_of_old = store.token_scopes(shop, subject)
        if scopes_of_old is None or store.grants.is_expiring(subject) or not expiring:
            return _error("invalid_subject_token", "The subject token cannot be migrated")
        store.revoke(shop, subject)
        return JSONResponse(_token_response(store, shop, scopes_of_old, expiring=True))
    return _error("invalid_request", "subject_token_type is not supported")


def _refresh(store: DevStore, shop: str, body: dict[str, str]) -> JSONResponse:
    used = store.grants.use_refresh_token(shop, body.get("refresh_token", ""))
    if used is None:
        return _error("invalid_grant", "The refresh token is invalid, expired or revoked")
    entry, revoked = used
    for old in revoked:
        store.revoke(shop, old)
    token = store.issue_access_token(shop, sorted(entry.scopes))
    refreshed = {"access_token": token, "scope": ",".join(sorted(entry.scopes))}
    refreshed.update(_expiring_fields(store, shop, entry.scopes, token, parent=body["refresh_token"]))
    return JSONResponse(refreshed)


@router.post("/admin/oauth/access_token")
async def access_token(request: Request) -> Response:
    store = _store(request)
    shop = _shop(request)
    if shop is None or shop not in store.shops:
        return PlainTextResponse("There's no page at this address", status_code=404)
    body = await _body(request)
    if body is None:
        return _error("invalid_request", "The request body is not valid JSON")
    client_ok = hmac.compare_digest(body.get("client_id", "").encode(), store.client_id.encode())
    secret_ok = hmac.compare_digest(body.get("client_secret", "").encode(), store.client_secret.encode())
    if not (client_ok and secret_ok):
        return _error("invalid_client", "Client credentials are invalid", 401)
    grant_type = body.get("grant_type")
    if grant_type is None and "code" in body:
        grant = store.grants.redeem_code(shop, body["code"])
        if grant is None:
            return _error("invalid_grant", "The authorization code was not found or was already used")
        expiring = body.get("expiring") == "1"
        return JSONResponse(
            _token_response(store, shop, grant.scopes, expiring=expiring, online=grant.online)
        )
    if grant_type == TOKEN_EXCHANGE_GRANT:
        return _token_exchange(store, shop, body)
    if grant_type == "refresh_token":
        return _refresh(store, shop, body)
    return _error("unsupported_grant_type", "The grant type is not supported")


def uninstall_payload(store: DevStore, shop: str) -> dict[str, Any]:
    """The ``app/uninstalled`` body: the shop object."""
    return shop_payload(store.shop(shop))


def install_app(store: DevStore, shop: str) -> None:
    """Shopify-managed install: Shopify installs the app with its configured scopes without
    calling it; the app gets its token by token exchange the first time the merchant opens it."""
    store.create_shop(shop)
    store.grants.uninstalled.discard(shop)


async def uninstall_app(
    store: DevStore, shop: str, sender: WebhookSender, url: str = "/webhooks"
) -> Delivery:
    """The merchant removes the app: every token of the shop stops working, token exchange is
    refused until the app is installed again, then Shopify sends ``app/uninstalled`` (by then the
    app can no longer call the API)."""
    store.revoke(shop)
    store.grants.uninstalled.add(shop)
    return await sender.send(url, "app/uninstalled", shop, uninstall_payload(store, shop))
