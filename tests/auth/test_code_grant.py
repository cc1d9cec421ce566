"""Legacy install: the authorization code grant, against the double."""

from __future__ import annotations

import logging
import time
from http.cookies import SimpleCookie
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
from sqlalchemy.orm import Session
from starlette.testclient import TestClient

from app.config import Settings
from app.shopify.query_hmac import sign_query
from app.shops.repository import get_by_domain
from app.shops.tokens import access_token, token_cipher
from shopify_double import DevStore
from tests.fixtures.webhooks import SECRET

from .conftest import API_KEY, APP_URL, SHOP, host_param

pytestmark = pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")


def begin(browser: TestClient, shop: str = SHOP) -> httpx.Response:
    return browser.get("/auth", params={"shop": shop})


def approve(shopify: TestClient, authorize_url: str) -> str:
    """The merchant approves on Shopify's grant screen; returns the callback query Shopify sends."""
    parts = urlsplit(authorize_url)
    response = shopify.get(f"{parts.path}?{parts.query}", follow_redirects=False)
    assert response.status_code == 302, response.text
    return urlsplit(response.headers["location"]).query


def callback(browser: TestClient, query: str) -> httpx.Response:
    return browser.get(f"/auth/callback?{query}")


def install(browser: TestClient, shopify: TestClient) -> tuple[httpx.Response, str]:
    query = approve(shopify, begin(browser).headers["location"])
    return callback(browser, query), query


def test_begin_redirects_the_top_frame_to_the_grant_screen(
    browser: TestClient, app_settings: Settings
) -> None:
    response = begin(browser)
    assert response.status_code == 302
    url = urlsplit(response.headers["location"])
    assert f"{url.scheme}://{url.netloc}{url.path}" == f"http://devstore/shops/{SHOP}/admin/oauth/authorize"
    params = dict(parse_qsl(url.query, keep_blank_values=True))
    assert params["client_id"] == API_KEY
    assert params["scope"] == app_settings.scopes
    assert params["redirect_uri"] == f"{APP_URL}/auth/callback"
    assert params["grant_options[]"] == ""  # offline token
    assert len(params["state"]) >= 32


def test_state_cookie_is_signed_short_lived_lax_secure_and_path_scoped(browser: TestClient) -> None:
    response = begin(browser)
    header = response.headers["set-cookie"]
    cookie = SimpleCookie(header)["shopify_app_state"]
    state = dict(parse_qsl(urlsplit(response.headers["location"]).query))["state"]
    assert cookie.value.startswith(state + ".") and cookie.value != state
    assert cookie["max-age"] == "60"
    assert cookie["path"] == "/auth/callback"
    assert cookie["samesite"].lower() == "lax"
    assert cookie["secure"] and cookie["httponly"]


def test_each_attempt_gets_a_fresh_state(browser: TestClient) -> None:
    first = dict(parse_qsl(urlsplit(begin(browser).headers["location"]).query))["state"]
    second = dict(parse_qsl(urlsplit(begin(browser).headers["location"]).query))["state"]
    assert first != second


@pytest.mark.parametrize(
    "shop", ["evil.com", "demo.myshopify.com.evil.com", "", "https://x.myshopify.com/path"]
)
def test_begin_refuses_a_bad_shop_domain(browser: TestClient, shop: str) -> None:
    response = begin(browser, shop)
    assert response.status_code == 400
    assert "set-cookie" not in response.headers


def test_callback_stores_an_encrypted_expiring_token_and_opens_the_app_in_the_admin(
    browser: TestClient, shopify: TestClient, store: DevStore, session: Session, app_settings: Settings
) -> None:
    response, _ = install(browser, shopify)
    assert response.status_code == 302
    assert response.headers["location"] == f"https://admin.shopify.com/store/demo/apps/{API_KEY}"
    shop = get_by_domain(session, SHOP)
    assert shop is not None and shop.is_installed
    assert shop.access_token_expires_at is not None and shop.refresh_token_encrypted is not None
    token = access_token(shop, token_cipher(app_settings))
    assert token is not None and token not in shop.access_token_encrypted
    assert store.token_scopes(SHOP, token) == frozenset(app_settings.scopes.split(","))


def test_callback_clears_the_state_cookie(browser: TestClient, shopify: TestClient) -> None:
    response, _ = install(browser, shopify)
    cookie = SimpleCookie(response.headers["set-cookie"])["shopify_app_state"]
    assert cookie.value == "" and cookie["max-age"] == "0"


def test_callback_with_a_tampered_hmac_is_refused(
    browser: TestClient, shopify: TestClient, session: Session
) -> None:
    query = approve(shopify, begin(browser).headers["location"])
    response = callback(browser, query.replace(f"shop={SHOP}", "shop=evil.myshopify.com"))
    assert response.status_code == 400
    assert "hmac" in response.json()["detail"]
    assert get_by_domain(session, SHOP) is None


def test_callback_signed_with_another_secret_is_refused(browser: TestClient) -> None:
    state = dict(parse_qsl(urlsplit(begin(browser).headers["location"]).query))["state"]
    params = {"code": "abc", "host": host_param(SHOP), "shop": SHOP, "state": state}
    query = sign_query({**params, "timestamp": str(int(time.time()))}, "another-apps-secret")
    assert callback(browser, query).status_code == 400


def test_callback_with_a_stale_timestamp_is_refused(browser: TestClient) -> None:
    state = dict(parse_qsl(urlsplit(begin(browser).headers["location"]).query))["state"]
    params = {"code": "abc", "host": host_param(SHOP), "shop": SHOP, "state": state}
    query = sign_query({**params, "timestamp": str(int(time.time()) - 91)}, SECRET)
    response = callback(browser, query)
    assert response.status_code == 400 and "hmac" in response.json()["detail"]


def test_callback_signed_with_the_old_secret_is_accepted_during_a_rotation(
    app_settings: Settings, shopify_http: httpx.AsyncClient, shopify: TestClient, store: DevStore
) -> None:
    from app.main import create_app

    rotated = app_settings.model_copy(
        update={"shopify_api_secret": "new-secret-after-rotation", "shopify_api_secret_old": SECRET}
    )
    with TestClient(
        create_app(rotated, http_client=shopify_http), base_url=APP_URL, follow_redirects=False
    ) as rotating:
        query = approve(shopify, begin(rotating).headers["location"])  # the double still signs with SECRET
        # The code exchange itself needs the secret Shopify knows; the double still has SECRET.
        store.client_secret = "new-secret-after-rotation"
        response = rotating.get(f"/auth/callback?{query}", follow_redirects=False)
    assert response.status_code == 302


def test_callback_with_another_state_is_refused(browser: TestClient, shopify: TestClient) -> None:
    begin(browser)  # the browser's cookie holds this attempt's state
    parts = urlsplit(
        begin(TestClient(browser.app, base_url=APP_URL, follow_redirects=False)).headers["location"]
    )
    query = approve(shopify, f"{parts.path}?{parts.query}")  # someone else's attempt
    response = callback(browser, query)
    assert response.status_code == 400 and "state" in response.json()["detail"]


def test_callback_without_the_state_cookie_is_refused(browser: TestClient, shopify: TestClient) -> None:
    query = approve(shopify, begin(browser).headers["location"])
    browser.cookies.clear()
    assert callback(browser, query).status_code == 400


def test_callback_with_an_expired_state_cookie_is_refused(
    browser: TestClient, shopify: TestClient, app_settings: Settings
) -> None:
    from app.auth.service import sign_state_cookie

    query = approve(shopify, begin(browser).headers["location"])
    state = dict(parse_qsl(query))["state"]
    browser.cookies.clear()
    browser.cookies.set(
        "shopify_app_state", sign_state_cookie(state, SECRET, time.time() - 61), path="/auth/callback"
    )
    assert callback(browser, query).status_code == 400


def test_callback_with_a_forged_state_cookie_is_refused(browser: TestClient, shopify: TestClient) -> None:
    from app.auth.service import sign_state_cookie

    query = approve(shopify, begin(browser).headers["location"])
    state = dict(parse_qsl(query))["state"]
    browser.cookies.clear()
    browser.cookies.set(
        "shopify_app_state", sign_state_cookie(state, "not-the-secret", time.time()), path="/auth/callback"
    )
    assert callback(browser, query).status_code == 400


def test_replayed_callback_is_refused(browser: TestClient, shopify: TestClient) -> None:
    first, query = install(browser, shopify)
    assert first.status_code == 302
    # An attacker holding the URL and the (not yet expired) cookie value replays both.
    state = dict(parse_qsl(query))["state"]
    from app.auth.service import sign_state_cookie

    browser.cookies.set(
        "shopify_app_state", sign_state_cookie(state, SECRET, time.time()), path="/auth/callback"
    )
    replay = callback(browser, query)
    assert replay.status_code == 400 and "already used" in replay.json()["detail"]


def test_reused_code_is_refused(browser: TestClient, shopify: TestClient, session: Session) -> None:
    first, query = install(browser, shopify)
    assert first.status_code == 302
    # A new attempt (fresh state, valid cookie and signature) carrying the spent code.
    state = dict(parse_qsl(urlsplit(begin(browser).headers["location"]).query))["state"]
    params = dict(parse_qsl(query))
    params.pop("hmac")
    params.update(state=state, timestamp=str(int(time.time())))
    response = callback(browser, sign_query(params, SECRET))
    assert response.status_code == 400 and "refused the authorization code" in response.json()["detail"]


def test_shopifys_words_on_a_refused_code_go_to_the_log_only(
    browser: TestClient, shopify: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    _, query = install(browser, shopify)
    state = dict(parse_qsl(urlsplit(begin(browser).headers["location"]).query))["state"]
    params = dict(parse_qsl(query))
    params.pop("hmac")
    params.update(state=state, timestamp=str(int(time.time())))
    with caplog.at_level(logging.WARNING, logger="app.auth.service"):
        response = callback(browser, sign_query(params, SECRET))
    assert response.status_code == 400
    assert "invalid_grant" not in response.text
    assert "invalid_grant" in caplog.text


def test_callback_with_a_bad_shop_domain_is_refused(browser: TestClient) -> None:
    state = dict(parse_qsl(urlsplit(begin(browser).headers["location"]).query))["state"]
    params = {"code": "abc", "host": host_param(SHOP), "shop": "evil.example.com", "state": state}
    response = callback(browser, sign_query({**params, "timestamp": str(int(time.time()))}, SECRET))
    assert response.status_code == 400 and "shop" in response.json()["detail"]
