"""The double's OAuth endpoints answer like Shopify."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx
import pytest
from starlette.testclient import TestClient

from app.shopify.query_hmac import verify_query_hmac
from app.shopify.session_token import decode_session_token
from shopify_double import DevStore, WebhookSender, create_devstore_app
from shopify_double.oauth import (
    ID_TOKEN_TYPE,
    OFFLINE_TOKEN_TYPE,
    ONLINE_TOKEN_TYPE,
    TOKEN_EXCHANGE_GRANT,
    install_app,
    uninstall_app,
)
from shopify_double.signing import make_session_token

SHOP = "demo.myshopify.com"
OTHER = "other.myshopify.com"
CLIENT_ID = "client-id-123"
SECRET = "shpss_devstore_secret_0123456789abcdef"
REDIRECT = "https://app.example.com/auth/callback"
SCOPES = "read_orders,read_customers,write_customers"
TOKEN_URL = f"/shops/{SHOP}/admin/oauth/access_token"


class Clock:
    def __init__(self) -> None:
        self.at = datetime.now(UTC).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.at

    def advance(self, **delta: float) -> None:
        self.at += timedelta(**delta)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(clock: Clock) -> DevStore:
    s = DevStore(client_id=CLIENT_ID, client_secret=SECRET, now=clock)
    s.create_shop(SHOP)
    s.create_shop(OTHER)
    return s


@pytest.fixture
def shopify(store: DevStore) -> Iterator[TestClient]:
    with TestClient(create_devstore_app(store), base_url="http://devstore") as client:
        yield client


def authorize(shopify: TestClient, **overrides: str) -> httpx.Response:
    params = {"client_id": CLIENT_ID, "scope": SCOPES, "redirect_uri": REDIRECT, "state": "nonce-1"}
    params.update(overrides)
    return shopify.get(f"/shops/{SHOP}/admin/oauth/authorize", params=params, follow_redirects=False)


def code_from(response: httpx.Response) -> str:
    return dict(parse_qsl(urlsplit(response.headers["location"]).query))["code"]


def creds(**body: str) -> dict[str, str]:
    return {"client_id": CLIENT_ID, "client_secret": SECRET, **body}


def graphql_status(shopify: TestClient, token: str, shop: str = SHOP) -> int:
    response = shopify.post(
        f"/shops/{shop}/admin/api/2026-10/graphql.json",
        json={"query": "{ shop { myshopifyDomain } }"},
        headers={"X-Shopify-Access-Token": token},
    )
    return response.status_code


def exchange(shopify: TestClient, subject: str, requested: str = OFFLINE_TOKEN_TYPE, **extra: str) -> Any:
    body = creds(
        grant_type=TOKEN_EXCHANGE_GRANT,
        subject_token=subject,
        subject_token_type=ID_TOKEN_TYPE,
        requested_token_type=requested,
        expiring="1",
    )
    body.update(extra)
    return shopify.post(TOKEN_URL, json=body)


# -- authorize ---------------------------------------------------------------------------------


def test_authorize_redirects_to_the_callback_with_a_shopify_signed_query(shopify: TestClient) -> None:
    response = authorize(shopify)
    assert response.status_code == 302
    location = urlsplit(response.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == REDIRECT
    params = dict(parse_qsl(location.query))
    assert sorted(params) == ["code", "hmac", "host", "shop", "state", "timestamp"]
    assert params["shop"] == SHOP and params["state"] == "nonce-1"
    assert verify_query_hmac(location.query, [SECRET], time.time())
    assert not verify_query_hmac(location.query, ["another-secret"], time.time())


def test_authorize_host_is_the_unpadded_base64_admin_url(shopify: TestClient) -> None:
    import base64

    host = dict(parse_qsl(urlsplit(authorize(shopify).headers["location"]).query))["host"]
    assert "=" not in host
    assert base64.b64decode(host + "=" * (-len(host) % 4)).decode() == "admin.shopify.com/store/demo"


@pytest.mark.parametrize(
    "overrides",
    [
        {"client_id": "someone-else"},
        {"scope": ""},
        {"scope": "read orders"},
        {"redirect_uri": "javascript:alert(1)"},
        {"state": ""},
    ],
    ids=["client_id", "empty-scope", "bad-scope", "redirect_uri", "state"],
)
def test_authorize_refuses_a_bad_request(shopify: TestClient, overrides: dict[str, str]) -> None:
    response = authorize(shopify, **overrides)
    assert response.status_code == 400
    assert response.text.startswith("Oauth error")


def test_authorize_refuses_a_redirect_uri_not_in_the_app_config(shopify: TestClient, store: DevStore) -> None:
    store.grants.redirect_urls = ["https://app.example.com/auth/callback"]
    assert authorize(shopify).status_code == 302
    assert authorize(shopify, redirect_uri="https://evil.example.com/cb").status_code == 400


def test_authorize_for_an_unknown_shop_is_404(shopify: TestClient) -> None:
    response = shopify.get(
        "/shops/nope.myshopify.com/admin/oauth/authorize",
        params={"client_id": CLIENT_ID, "scope": SCOPES, "redirect_uri": REDIRECT, "state": "s"},
        follow_redirects=False,
    )
    assert response.status_code == 404


# -- authorization code ------------------------------------------------------------------------


def test_code_gives_an_expiring_offline_token_that_the_api_accepts(shopify: TestClient) -> None:
    response = shopify.post(TOKEN_URL, json=creds(code=code_from(authorize(shopify)), expiring="1"))
    assert response.status_code == 200
    body = response.json()
    assert set(body["scope"].split(",")) == set(SCOPES.split(","))
    assert body["expires_in"] == 3600
    assert body["refresh_token"].startswith("shprt_")
    assert body["refresh_token_expires_in"] == 90 * 86400
    assert graphql_status(shopify, body["access_token"]) == 200


def test_code_without_expiring_gives_a_non_expiring_token(shopify: TestClient) -> None:
    body = shopify.post(TOKEN_URL, json=creds(code=code_from(authorize(shopify)))).json()
    assert set(body) == {"access_token", "scope"}


def test_code_is_single_use(shopify: TestClient) -> None:
    code = code_from(authorize(shopify))
    assert shopify.post(TOKEN_URL, json=creds(code=code, expiring="1")).status_code == 200
    again = shopify.post(TOKEN_URL, json=creds(code=code, expiring="1"))
    assert again.status_code == 400
    assert again.json()["error"] == "invalid_grant"


def test_code_expires(shopify: TestClient, clock: Clock) -> None:
    code = code_from(authorize(shopify))
    clock.advance(minutes=11)
    assert shopify.post(TOKEN_URL, json=creds(code=code, expiring="1")).json()["error"] == "invalid_grant"


def test_code_is_bound_to_its_shop(shopify: TestClient) -> None:
    code = code_from(authorize(shopify))
    other_url = f"/shops/{OTHER}/admin/oauth/access_token"
    assert shopify.post(other_url, json=creds(code=code)).json()["error"] == "invalid_grant"


def test_per_user_grant_gives_an_online_token(shopify: TestClient) -> None:
    code = code_from(authorize(shopify, **{"grant_options[]": "per-user"}))
    body = shopify.post(TOKEN_URL, json=creds(code=code)).json()
    assert body["associated_user"]["id"] and body["associated_user_scope"]
    assert 0 < body["expires_in"] <= 86400 and "refresh_token" not in body


def test_wrong_client_secret_is_invalid_client(shopify: TestClient) -> None:
    code = code_from(authorize(shopify))
    body = {"client_id": CLIENT_ID, "client_secret": "wrong", "code": code}
    response = shopify.post(TOKEN_URL, json=body)
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


def test_form_encoded_body_is_accepted(shopify: TestClient) -> None:
    code = code_from(authorize(shopify))
    response = shopify.post(
        TOKEN_URL,
        content=urlencode(creds(code=code, expiring="1")),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 200


# -- token exchange ----------------------------------------------------------------------------


def test_token_exchange_of_a_session_token_gives_an_expiring_offline_token(
    shopify: TestClient, store: DevStore
) -> None:
    response = exchange(shopify, store.session_token(SHOP))
    assert response.status_code == 200
    body = response.json()
    assert body["expires_in"] == 3600 and body["refresh_token"]
    assert set(body["scope"].split(",")) == set(store.grants.app_scopes.split(","))
    assert graphql_status(shopify, body["access_token"]) == 200


def test_token_exchange_online_gives_a_user_token(shopify: TestClient, store: DevStore) -> None:
    body = exchange(shopify, store.session_token(SHOP), ONLINE_TOKEN_TYPE).json()
    assert "associated_user" in body and "refresh_token" not in body


def test_session_token_minted_by_the_store_is_valid_for_the_app() -> None:
    store = DevStore(client_id=CLIENT_ID, client_secret=SECRET)
    claims = decode_session_token(store.session_token(SHOP, sub="42"), CLIENT_ID, [SECRET])
    assert claims.shop == SHOP and claims.sub == "42"


@pytest.mark.parametrize(
    "make",
    [
        lambda: make_session_token(SHOP, CLIENT_ID, "not-the-app-secret-0123456789abcdef"),
        lambda: make_session_token(SHOP, CLIENT_ID, SECRET, exp_in=-60),
        lambda: make_session_token(SHOP, CLIENT_ID, SECRET, nbf_offset=120),
        lambda: make_session_token(SHOP, "another-app", SECRET),
        lambda: make_session_token(OTHER, CLIENT_ID, SECRET),
        lambda: make_session_token(SHOP, CLIENT_ID, SECRET, omit=["sid"]),
        lambda: "garbage",
    ],
    ids=["secret", "expired", "nbf", "aud", "other-shop", "missing-sid", "garbage"],
)
def test_token_exchange_refuses_an_invalid_subject_token(
    shopify: TestClient, make: Callable[[], str]
) -> None:
    response = exchange(shopify, make())
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_subject_token"


def test_migration_swaps_a_non_expiring_token_and_revokes_it(shopify: TestClient) -> None:
    old = shopify.post(TOKEN_URL, json=creds(code=code_from(authorize(shopify)))).json()["access_token"]
    response = exchange(shopify, old, subject_token_type=OFFLINE_TOKEN_TYPE)
    assert response.status_code == 200
    new = response.json()
    assert new["expires_in"] == 3600 and new["refresh_token"]
    assert graphql_status(shopify, new["access_token"]) == 200
    assert graphql_status(shopify, old) == 401


def test_migration_refuses_an_already_expiring_token(shopify: TestClient, store: DevStore) -> None:
    expiring = exchange(shopify, store.session_token(SHOP)).json()["access_token"]
    response = exchange(shopify, expiring, subject_token_type=OFFLINE_TOKEN_TYPE)
    assert response.json()["error"] == "invalid_subject_token"


# -- refresh -----------------------------------------------------------------------------------


def refresh(shopify: TestClient, token: str) -> httpx.Response:
    return shopify.post(TOKEN_URL, json=creds(grant_type="refresh_token", refresh_token=token))


@pytest.fixture
def first_pair(shopify: TestClient, store: DevStore) -> dict[str, Any]:
    body: dict[str, Any] = exchange(shopify, store.session_token(SHOP)).json()
    return body


def test_refresh_rotates_the_pair(shopify: TestClient, first_pair: dict[str, Any]) -> None:
    response = refresh(shopify, first_pair["refresh_token"])
    assert response.status_code == 200
    second = response.json()
    assert second["access_token"] != first_pair["access_token"]
    assert second["refresh_token"] != first_pair["refresh_token"]
    assert second["expires_in"] == 3600 and second["refresh_token_expires_in"] == 90 * 86400
    assert graphql_status(shopify, second["access_token"]) == 200


def test_previous_refresh_token_stays_valid_until_its_replacement_is_used(
    shopify: TestClient, first_pair: dict[str, Any]
) -> None:
    lost = refresh(shopify, first_pair["refresh_token"]).json()  # response "lost"
    retried = refresh(shopify, first_pair["refresh_token"])  # the app retries with the old one
    assert retried.status_code == 200
    third = refresh(shopify, retried.json()["refresh_token"])
    assert third.status_code == 200
    assert refresh(shopify, first_pair["refresh_token"]).json()["error"] == "invalid_grant"
    assert refresh(shopify, lost["refresh_token"]).json()["error"] == "invalid_grant"


def test_using_the_replacement_retires_the_previous_access_token(
    shopify: TestClient, first_pair: dict[str, Any]
) -> None:
    second = refresh(shopify, first_pair["refresh_token"]).json()
    assert graphql_status(shopify, first_pair["access_token"]) == 200
    refresh(shopify, second["refresh_token"])
    assert graphql_status(shopify, first_pair["access_token"]) == 401


def test_expired_access_token_is_refused_by_the_api(
    shopify: TestClient, first_pair: dict[str, Any], clock: Clock
) -> None:
    clock.advance(hours=1)
    assert graphql_status(shopify, first_pair["access_token"]) == 401
    assert refresh(shopify, first_pair["refresh_token"]).status_code == 200


def test_refresh_token_of_another_shop_is_refused(shopify: TestClient, first_pair: dict[str, Any]) -> None:
    response = shopify.post(
        f"/shops/{OTHER}/admin/oauth/access_token",
        json=creds(grant_type="refresh_token", refresh_token=first_pair["refresh_token"]),
    )
    assert response.json()["error"] == "invalid_grant"


def test_expired_refresh_token_is_refused(
    shopify: TestClient, first_pair: dict[str, Any], clock: Clock
) -> None:
    clock.advance(days=91)
    assert refresh(shopify, first_pair["refresh_token"]).json()["error"] == "invalid_grant"


# -- uninstall ---------------------------------------------------------------------------------


def test_uninstall_revokes_every_token_and_sends_a_signed_app_uninstalled(
    shopify: TestClient, store: DevStore, first_pair: dict[str, Any]
) -> None:
    import asyncio

    received: list[httpx.Request] = []

    def app_endpoint(request: httpx.Request) -> httpx.Response:
        received.append(request)
        return httpx.Response(200)

    async def go() -> None:
        async with httpx.AsyncClient(
            transport=httpx.MockTransport(app_endpoint), base_url="https://app.example.com"
        ) as client:
            delivery = await uninstall_app(store, SHOP, WebhookSender(client, secret=SECRET))
            assert delivery.delivered

    asyncio.run(go())
    assert graphql_status(shopify, first_pair["access_token"]) == 401
    assert refresh(shopify, first_pair["refresh_token"]).json()["error"] == "invalid_grant"
    (request,) = received
    assert request.headers["x-shopify-topic"] == "app/uninstalled"
    assert request.headers["x-shopify-shop-domain"] == SHOP
    from app.shopify.webhook_hmac import verify_webhook_hmac

    assert verify_webhook_hmac(request.content, request.headers["x-shopify-hmac-sha256"], [SECRET])


def test_token_exchange_is_refused_until_the_app_is_installed_again(
    shopify: TestClient, store: DevStore, first_pair: dict[str, Any]
) -> None:
    import asyncio

    async def go() -> None:
        async with httpx.AsyncClient(
            transport=httpx.MockTransport(lambda _: httpx.Response(200)), base_url="https://app.example.com"
        ) as client:
            await uninstall_app(store, SHOP, WebhookSender(client, secret=SECRET))

    asyncio.run(go())
    assert exchange(shopify, store.session_token(SHOP)).json()["error"] == "invalid_subject_token"
    install_app(store, SHOP)
    assert exchange(shopify, store.session_token(SHOP)).status_code == 200
