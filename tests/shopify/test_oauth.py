"""OAuth calls against a tiny Shopify stand-in speaking HTTP."""

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from app.shopify.oauth import (
    AccessToken,
    OAuthError,
    build_authorize_url,
    exchange_code,
    migrate_to_expiring,
    needs_refresh,
    refresh_access_token,
    token_exchange,
)
from app.shopify.session_token import InvalidSessionToken
from shopify_double.signing import make_session_token

SHOP = "demo.myshopify.com"
API_KEY = "4b7c2f0e9d1a3c5e7f9b2d4a6c8e0f13"
SECRET = "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"
OFFLINE = "urn:shopify:params:oauth:token-type:offline-access-token"
ONLINE = "urn:shopify:params:oauth:token-type:online-access-token"
TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"

EXPIRING_OFFLINE = {
    "access_token": "shpat_new_access_token",
    "scope": "read_orders,write_customers",
    "expires_in": 3600,
    "refresh_token": "shprt_new_refresh_token",
    "refresh_token_expires_in": 7776000,
}


class FakeShopifyOAuth:
    """Answers POST /admin/oauth/access_token like Shopify: only the exact bodies Shopify accepts."""

    GRANTS: dict[str, set[str]] = {
        "code": {"client_id", "client_secret", "code", "expiring"},
        TOKEN_EXCHANGE: {
            "client_id",
            "client_secret",
            "grant_type",
            "subject_token",
            "subject_token_type",
            "requested_token_type",
            "expiring",
        },
        "refresh_token": {"client_id", "client_secret", "grant_type", "refresh_token"},
    }

    def __init__(self, reply: Callable[[dict[str, Any]], Response] | None = None) -> None:
        self.requests: list[tuple[str, dict[str, Any]]] = []
        self.reply = reply or (lambda body: JSONResponse(EXPIRING_OFFLINE))
        self.app = Starlette(routes=[Route("/admin/oauth/access_token", self.access_token, methods=["POST"])])

    async def access_token(self, request: Request) -> Response:
        assert request.headers["content-type"] == "application/json"
        assert request.headers["accept"] == "application/json"
        body = await request.json()
        self.requests.append((request.url.hostname or "", body))
        if set(body) != self.GRANTS[body.get("grant_type", "code")]:
            return JSONResponse({"error": "invalid_request"}, status_code=400)
        if (body["client_id"], body["client_secret"]) != (API_KEY, SECRET):
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        return self.reply(body)

    @property
    def body(self) -> dict[str, Any]:
        [(_, body)] = self.requests
        return body

    def call(self, make_call: Callable[[httpx.AsyncClient, dict[str, Any]], Any]) -> Any:
        async def run() -> Any:
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app)) as client:
                return await make_call(client, {"admin_base_url": lambda shop: f"http://{shop}"})

        return asyncio.run(run())


def test_authorize_url_asks_for_an_offline_token():
    url = build_authorize_url(
        SHOP, API_KEY, ["read_orders", "write_customers"], "https://app.test/cb", "n0nce"
    )
    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc, parts.path) == ("https", SHOP, "/admin/oauth/authorize")
    assert parse_qsl(parts.query, keep_blank_values=True) == [
        ("client_id", API_KEY),
        ("scope", "read_orders,write_customers"),
        ("redirect_uri", "https://app.test/cb"),
        ("state", "n0nce"),
        ("grant_options[]", ""),
    ]


def test_authorize_url_asks_for_an_online_token_per_user():
    url = build_authorize_url(SHOP, API_KEY, ["read_orders"], "https://app.test/cb", "n0nce", online=True)
    assert ("grant_options[]", "per-user") in parse_qsl(urlsplit(url).query)


def test_authorize_url_refuses_an_unvalidated_shop():
    with pytest.raises(ValueError):
        build_authorize_url("evil.com", API_KEY, ["read_orders"], "https://app.test/cb", "n0nce")


def test_code_exchange_posts_the_code_and_asks_for_an_expiring_token():
    fake = FakeShopifyOAuth()
    token = fake.call(lambda client, kw: exchange_code(client, SHOP, API_KEY, SECRET, "c0de", **kw))
    assert fake.requests[0][0] == SHOP
    assert fake.body == {"client_id": API_KEY, "client_secret": SECRET, "code": "c0de", "expiring": "1"}
    assert token.access_token == "shpat_new_access_token"
    assert token.scope == ["read_orders", "write_customers"]


def test_offline_token_exchange_sends_the_documented_body():
    fake = FakeShopifyOAuth()
    session_token = make_session_token(SHOP, API_KEY, SECRET)
    fake.call(lambda client, kw: token_exchange(client, SHOP, API_KEY, SECRET, session_token, **kw))
    assert fake.body == {
        "client_id": API_KEY,
        "client_secret": SECRET,
        "grant_type": TOKEN_EXCHANGE,
        "subject_token": session_token,
        "subject_token_type": "urn:ietf:params:oauth:token-type:id_token",
        "requested_token_type": OFFLINE,
        "expiring": "1",
    }


def test_offline_token_exchange_returns_an_expiring_token_with_refresh_token():
    fake = FakeShopifyOAuth()
    before = datetime.now(UTC)
    token = fake.call(lambda client, kw: token_exchange(client, SHOP, API_KEY, SECRET, "id.token.jwt", **kw))
    after = datetime.now(UTC)
    assert token.refresh_token == "shprt_new_refresh_token"
    assert token.expires_at is not None and token.refresh_token_expires_at is not None
    assert before + timedelta(seconds=3600) <= token.expires_at <= after + timedelta(seconds=3600)
    assert token.refresh_token_expires_at - token.expires_at == timedelta(seconds=7776000 - 3600)
    assert not token.is_online


def test_online_token_exchange_returns_the_associated_user():
    online = {
        "access_token": "shpua_online",
        "scope": "read_orders",
        "expires_in": 86399,
        "associated_user_scope": "read_orders",
        "associated_user": {"id": 902541635, "email": "staff@example.com", "account_owner": True},
    }
    fake = FakeShopifyOAuth(lambda body: JSONResponse(online))
    token = fake.call(
        lambda client, kw: token_exchange(client, SHOP, API_KEY, SECRET, "id.token.jwt", online=True, **kw)
    )
    assert fake.body["requested_token_type"] == ONLINE
    assert token.associated_user_id == 902541635
    assert token.associated_user_scope == ["read_orders"]
    assert token.refresh_token is None
    assert token.is_online


def test_rejected_session_token_in_exchange_raises_invalid_session_token():
    fake = FakeShopifyOAuth(lambda body: JSONResponse({"error": "invalid_subject_token"}, status_code=400))
    with pytest.raises(InvalidSessionToken, match="invalid_subject_token"):
        fake.call(lambda client, kw: token_exchange(client, SHOP, API_KEY, SECRET, "id.token.jwt", **kw))


def test_wrong_client_secret_raises_oauth_error_with_status_and_shopify_error():
    fake = FakeShopifyOAuth()
    with pytest.raises(OAuthError) as caught:
        fake.call(lambda client, kw: exchange_code(client, SHOP, API_KEY, "shpss_wrong", "c0de", **kw))
    assert (caught.value.status, caught.value.error) == (401, "invalid_client")


def test_oauth_error_message_never_repeats_the_secret():
    def echo(body: dict[str, Any]) -> Response:
        return JSONResponse({"error": "invalid_request", "error_description": f"bad {body}"}, status_code=400)

    fake = FakeShopifyOAuth(echo)
    with pytest.raises(OAuthError) as caught:
        fake.call(lambda client, kw: refresh_access_token(client, SHOP, API_KEY, SECRET, "shprt_old", **kw))
    assert SECRET not in str(caught.value)
    assert "shprt_old" not in str(caught.value)
    assert caught.value.status == 400


def test_non_json_error_page_becomes_oauth_error():
    fake = FakeShopifyOAuth(lambda body: Response("<html>Bad gateway</html>", status_code=502))
    with pytest.raises(OAuthError) as caught:
        fake.call(lambda client, kw: exchange_code(client, SHOP, API_KEY, SECRET, "c0de", **kw))
    assert caught.value.status == 502
    assert "Bad gateway" in str(caught.value)


def test_success_without_access_token_becomes_oauth_error():
    fake = FakeShopifyOAuth(lambda body: JSONResponse({"scope": "read_orders"}))
    with pytest.raises(OAuthError, match="access_token"):
        fake.call(lambda client, kw: exchange_code(client, SHOP, API_KEY, SECRET, "c0de", **kw))


def test_refresh_sends_the_refresh_token_grant():
    fake = FakeShopifyOAuth()
    fake.call(lambda client, kw: refresh_access_token(client, SHOP, API_KEY, SECRET, "shprt_old", **kw))
    assert fake.body == {
        "client_id": API_KEY,
        "client_secret": SECRET,
        "grant_type": "refresh_token",
        "refresh_token": "shprt_old",
    }


def test_refresh_returns_the_rotated_refresh_token():
    fake = FakeShopifyOAuth()
    token = fake.call(
        lambda client, kw: refresh_access_token(client, SHOP, API_KEY, SECRET, "shprt_old", **kw)
    )
    assert token.refresh_token == "shprt_new_refresh_token"
    assert token.access_token == "shpat_new_access_token"


def test_migration_exchanges_the_non_expiring_token_for_an_expiring_one():
    fake = FakeShopifyOAuth()
    token = fake.call(
        lambda client, kw: migrate_to_expiring(client, SHOP, API_KEY, SECRET, "shpat_legacy", **kw)
    )
    assert fake.body == {
        "client_id": API_KEY,
        "client_secret": SECRET,
        "grant_type": TOKEN_EXCHANGE,
        "subject_token": "shpat_legacy",
        "subject_token_type": OFFLINE,
        "requested_token_type": OFFLINE,
        "expiring": "1",
    }
    assert token.expires_at is not None


def test_calls_refuse_an_unvalidated_shop():
    fake = FakeShopifyOAuth()
    with pytest.raises(ValueError):
        fake.call(lambda client, kw: exchange_code(client, "evil.com", API_KEY, SECRET, "c0de", **kw))
    assert fake.requests == []


def run_with_transport(handler: Callable[[httpx.Request], httpx.Response], **kwargs: Any) -> AccessToken:
    async def run() -> AccessToken:
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
            return await exchange_code(client, SHOP, API_KEY, SECRET, "c0de", **kwargs)

    return asyncio.run(run())


def test_calls_carry_a_timeout():
    seen: dict[str, Any] = {}

    def handler(request: httpx.Request) -> httpx.Response:
        seen.update(request.extensions["timeout"])
        return httpx.Response(200, json=EXPIRING_OFFLINE)

    run_with_transport(handler, timeout=3.0)
    assert seen == {"connect": 3.0, "read": 3.0, "write": 3.0, "pool": 3.0}


def test_timeout_becomes_oauth_error_without_status():
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    with pytest.raises(OAuthError, match="timed out") as caught:
        run_with_transport(handler)
    assert caught.value.status is None


def test_default_admin_base_url_is_the_shop_over_https():
    urls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        urls.append(str(request.url))
        return httpx.Response(200, json=EXPIRING_OFFLINE)

    run_with_transport(handler)
    assert urls == [f"https://{SHOP}/admin/oauth/access_token"]


def test_access_token_repr_hides_the_tokens():
    token = AccessToken.from_response(EXPIRING_OFFLINE, datetime(2026, 10, 1, tzinfo=UTC))
    assert "shpat_new_access_token" not in repr(token)
    assert "shprt_new_refresh_token" not in repr(token)
    assert "read_orders" in repr(token)


def test_token_expiring_within_the_margin_needs_refresh():
    token = AccessToken.from_response(EXPIRING_OFFLINE, datetime(2026, 10, 1, tzinfo=UTC))
    assert needs_refresh(token, datetime(2026, 10, 1, 0, 56, tzinfo=UTC))


def test_token_far_from_expiry_does_not_need_refresh():
    token = AccessToken.from_response(EXPIRING_OFFLINE, datetime(2026, 10, 1, tzinfo=UTC))
    assert not needs_refresh(token, datetime(2026, 10, 1, 0, 54, tzinfo=UTC))


def test_non_expiring_token_never_needs_refresh():
    token = AccessToken.from_response(
        {"access_token": "shpat_legacy", "scope": "read_orders"}, datetime.now(UTC)
    )
    assert token.expires_at is None
    assert not needs_refresh(token, datetime(2030, 1, 1, tzinfo=UTC))
