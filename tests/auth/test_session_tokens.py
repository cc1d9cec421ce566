"""`CurrentShop`: session-token authentication of fetch and document requests."""

from __future__ import annotations

import time
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
from starlette.testclient import TestClient

from shopify_double import DevStore
from shopify_double.signing import make_session_token
from tests.fixtures.factories import order_payload
from tests.fixtures.webhooks import SECRET, post_webhook

from .conftest import API_KEY, APP_URL, OTHER_SHOP, SHOP, bearer, launch_query

pytestmark = pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")

RETRY = "X-Shopify-Retry-Invalid-Session-Request"


def fetch(browser: TestClient, token: str | None) -> httpx.Response:
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    return browser.get("/api/shop", headers=headers)


def assert_retry_401(response: httpx.Response) -> None:
    assert response.status_code == 401
    assert response.headers[RETRY] == "1"


def test_valid_token_reads_its_shop(browser: TestClient, store: DevStore) -> None:
    response = browser.get("/api/shop", headers=bearer(store))
    assert response.status_code == 200
    assert response.json() == {"shop": SHOP, "customers": 0, "orders": 0}


def test_expired_token_is_401_with_the_retry_header(browser: TestClient) -> None:
    assert_retry_401(fetch(browser, make_session_token(SHOP, API_KEY, SECRET, exp_in=-11)))


def test_token_not_yet_valid_is_refused(browser: TestClient) -> None:
    assert_retry_401(fetch(browser, make_session_token(SHOP, API_KEY, SECRET, nbf_offset=30)))


def test_slightly_future_nbf_is_accepted(browser: TestClient) -> None:
    assert fetch(browser, make_session_token(SHOP, API_KEY, SECRET, nbf_offset=5)).status_code == 200


def test_token_for_another_app_is_refused(browser: TestClient) -> None:
    assert_retry_401(fetch(browser, make_session_token(SHOP, "another-app", SECRET)))


def test_token_signed_by_another_secret_is_refused(browser: TestClient) -> None:
    assert_retry_401(fetch(browser, make_session_token(SHOP, API_KEY, "another-apps-secret-0123456789")))


def test_iss_and_dest_naming_different_shops_is_refused(browser: TestClient) -> None:
    token = make_session_token(SHOP, API_KEY, SECRET, iss=f"https://{OTHER_SHOP}/admin")
    assert_retry_401(fetch(browser, token))


def test_dest_that_is_not_a_shop_is_refused(browser: TestClient) -> None:
    token = make_session_token(
        SHOP, API_KEY, SECRET, iss="https://evil.example.com/admin", dest="https://evil.example.com"
    )
    assert_retry_401(fetch(browser, token))


def test_unsigned_token_is_refused(browser: TestClient) -> None:
    assert_retry_401(fetch(browser, make_session_token(SHOP, API_KEY, SECRET, alg="none")))


@pytest.mark.parametrize("token", ["garbage", "a.b.c", ""])
def test_garbage_token_is_refused(browser: TestClient, token: str) -> None:
    assert_retry_401(fetch(browser, token))


def test_missing_token_is_refused(browser: TestClient) -> None:
    assert_retry_401(fetch(browser, None))


def test_non_bearer_authorization_is_refused(browser: TestClient, store: DevStore) -> None:
    response = browser.get("/api/shop", headers={"Authorization": f"Basic {store.session_token(SHOP)}"})
    assert_retry_401(response)


def test_shop_query_parameter_never_selects_the_shop(browser: TestClient, store: DevStore) -> None:
    response = browser.get("/api/shop", params={"shop": OTHER_SHOP}, headers=bearer(store, SHOP))
    assert response.json()["shop"] == SHOP


def test_a_token_for_shop_a_never_reads_shop_b(browser: TestClient, store: DevStore) -> None:
    browser.get("/api/shop", headers=bearer(store, SHOP))
    browser.get("/api/shop", headers=bearer(store, OTHER_SHOP))
    assert post_webhook(browser, "orders/create", order_payload(1001, 501), OTHER_SHOP).status_code == 200
    assert post_webhook(browser, "orders/create", order_payload(1002, 502), OTHER_SHOP).status_code == 200
    mine = browser.get("/api/shop", headers=bearer(store, SHOP)).json()
    theirs = browser.get("/api/shop", headers=bearer(store, OTHER_SHOP)).json()
    assert mine == {"shop": SHOP, "customers": 0, "orders": 0}
    assert theirs == {"shop": OTHER_SHOP, "customers": 2, "orders": 2}


def test_id_token_query_parameter_authenticates_a_document_request(
    browser: TestClient, store: DevStore
) -> None:
    response = browser.get("/api/shop", params={"id_token": store.session_token(SHOP)})
    assert response.json()["shop"] == SHOP


# -- document loads ------------------------------------------------------------------------------


def test_embedded_document_without_id_token_bounces_with_a_reload_url(
    browser: TestClient, store: DevStore
) -> None:
    query = launch_query(store)
    without = "&".join(part for part in query.split("&") if not part.startswith("id_token="))
    response = browser.get(f"/app?{without}")
    assert response.status_code == 302
    location = urlsplit(response.headers["location"])
    assert location.path == "/auth/session-token"
    params = dict(parse_qsl(location.query))
    assert params["shop"] == SHOP and params["embedded"] == "1" and "id_token" not in params
    reload = urlsplit(params["shopify-reload"])
    assert f"{reload.scheme}://{reload.netloc}{reload.path}" == f"{APP_URL}/app"
    reload_params = dict(parse_qsl(reload.query))
    assert "id_token" not in reload_params and reload_params["shop"] == SHOP


def test_embedded_document_with_an_expired_id_token_bounces(browser: TestClient, store: DevStore) -> None:
    expired = make_session_token(SHOP, API_KEY, SECRET, exp_in=-60)
    response = browser.get(f"/?{launch_query(store, id_token=expired)}")
    assert response.status_code == 302
    assert response.headers["location"].startswith("/auth/session-token?")
    assert expired not in response.headers["location"]


def test_bounce_page_renders_only_app_bridge(browser: TestClient) -> None:
    response = browser.get("/auth/session-token", params={"shop": SHOP, "shopify-reload": f"{APP_URL}/"})
    assert response.status_code == 200
    body = response.text
    assert (
        f'<script data-api-key="{API_KEY}" src="https://cdn.shopify.com/shopifycloud/app-bridge.js"></script>'
        in body
    )
    assert "polaris" not in body and "<body" not in body


def test_embedded_document_with_an_invalid_host_renders_the_app_bridge_page(
    browser: TestClient, store: DevStore
) -> None:
    response = browser.get(f"/?{launch_query(store, host='bm90LWEtc2hvcGlmeS1ob3N0LmNvbQ')}")
    assert response.status_code == 200
    assert "data-api-key" in response.text and "customer-count" not in response.text


def test_embedded_document_with_an_invalid_shop_renders_the_app_bridge_page(
    browser: TestClient, store: DevStore
) -> None:
    response = browser.get(f"/?{launch_query(store, shop='evil.example.com')}")
    assert response.status_code == 200
    assert "data-api-key" in response.text
    assert response.headers["content-security-policy"] == "frame-ancestors 'none';"


def test_shop_parameter_that_differs_from_the_token_is_refused(browser: TestClient, store: DevStore) -> None:
    query = launch_query(store, SHOP, id_token=store.session_token(OTHER_SHOP))
    assert browser.get(f"/?{query}").status_code == 400


def test_embedded_page_shows_the_shops_customer_count(browser: TestClient, store: DevStore) -> None:
    browser.get("/api/shop", headers=bearer(store))
    post_webhook(browser, "orders/create", order_payload(1001, 501), SHOP)
    response = browser.get(f"/?{launch_query(store)}")
    assert response.status_code == 200
    assert '<strong id="customer-count">1</strong>' in response.text


def test_embedded_page_loads_app_bridge_and_polaris_in_head(browser: TestClient, store: DevStore) -> None:
    body = browser.get(f"/?{launch_query(store)}").text
    head = body.split("</head>")[0]
    assert f'<meta name="shopify-api-key" content="{API_KEY}">' in head
    bridge = head.index('<script src="https://cdn.shopify.com/shopifycloud/app-bridge.js"></script>')
    assert bridge < head.index('<script src="https://cdn.shopify.com/shopifycloud/polaris.js"></script>')


def test_direct_visit_with_a_shop_is_sent_into_the_admin(browser: TestClient) -> None:
    response = browser.get("/", params={"shop": SHOP})
    assert response.status_code == 302
    assert response.headers["location"] == f"https://admin.shopify.com/store/demo/apps/{API_KEY}"


def test_launch_timestamp_is_not_what_authenticates(browser: TestClient, store: DevStore) -> None:
    # An old launch URL with a fresh id_token still opens: the session token is the credential.
    query = launch_query(store, timestamp=str(int(time.time()) - 3600))
    assert browser.get(f"/?{query}").status_code == 200


# -- CSP ------------------------------------------------------------------------------------------


def test_embedded_page_may_be_framed_only_by_its_shop_and_the_admin(
    browser: TestClient, store: DevStore
) -> None:
    response = browser.get(f"/?{launch_query(store)}")
    assert response.headers["content-security-policy"] == (
        f"frame-ancestors https://{SHOP} https://admin.shopify.com;"
    )


def test_csp_follows_the_shop(browser: TestClient, store: DevStore) -> None:
    response = browser.get(f"/?{launch_query(store, OTHER_SHOP)}")
    assert response.headers["content-security-policy"] == (
        f"frame-ancestors https://{OTHER_SHOP} https://admin.shopify.com;"
    )


def test_non_embedded_page_may_not_be_framed(browser: TestClient) -> None:
    response = browser.get("/")
    assert response.status_code == 200
    assert response.headers["content-security-policy"] == "frame-ancestors 'none';"


def test_bounce_page_csp_names_the_shop(browser: TestClient) -> None:
    response = browser.get("/auth/session-token", params={"shop": SHOP})
    assert response.headers["content-security-policy"] == (
        f"frame-ancestors https://{SHOP} https://admin.shopify.com;"
    )


def test_bounce_page_with_an_injected_shop_is_not_framable(browser: TestClient) -> None:
    response = browser.get("/auth/session-token", params={"shop": "x.myshopify.com; script-src *"})
    assert response.headers["content-security-policy"] == "frame-ancestors 'none';"


def test_json_responses_carry_no_frame_policy(browser: TestClient, store: DevStore) -> None:
    assert "content-security-policy" not in browser.get("/api/shop", headers=bearer(store)).headers
