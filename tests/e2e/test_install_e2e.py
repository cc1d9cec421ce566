"""End to end over HTTP, in process: the app and the Shopify double each behind an ASGI transport.

The app's outbound httpx client is injected (`create_app(settings, http_client=...)`) and points at
the double (`shopify_admin_base_url_template = "http://devstore/shops/{shop}"`); the "browser" is
an httpx client on the app. Install by the code grant (legacy) and by token exchange (managed
install), open the embedded page with a session token minted by the double, receive a signed
webhook from the double's `WebhookSender`, and see the order counted.
"""

from __future__ import annotations

import asyncio
import base64
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from sqlalchemy import update

from app.auth.service import ShopAuth
from app.config import Settings
from app.main import create_app
from app.models import Shop
from app.shopify.query_hmac import sign_query
from shopify_double import DevStore, WebhookSender, create_devstore_app, graphql_url, order_payload
from shopify_double.server import IN_PROCESS_BASE_URL_TEMPLATE

pytestmark = [
    pytest.mark.both_dbs,
    pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning"),
]

APP_URL = "https://rfm-clv.example.com"
LEGACY_SHOP = "legacy-shop.myshopify.com"
MANAGED_SHOP = "managed-shop.myshopify.com"


def launch(store: DevStore, shop: str, secret: str) -> str:
    host = base64.b64encode(f"admin.shopify.com/store/{shop.split('.')[0]}".encode()).decode().rstrip("=")
    params = {
        "embedded": "1",
        "host": host,
        "id_token": store.session_token(shop),
        "locale": "en",
        "shop": shop,
        "timestamp": str(int(time.time())),
    }
    return sign_query(params, secret)


async def graphql(shopify: httpx.AsyncClient, shop: str, token: str, query: str) -> dict[str, Any]:
    response = await shopify.post(
        graphql_url(shop, IN_PROCESS_BASE_URL_TEMPLATE),
        json={"query": query},
        headers={"X-Shopify-Access-Token": token},
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def install_by_code_grant(browser: httpx.AsyncClient, shopify: httpx.AsyncClient, shop: str) -> None:
    begin = await browser.get("/auth", params={"shop": shop})
    assert begin.status_code == 302
    grant_screen = await shopify.get(begin.headers["location"])  # the merchant approves
    assert grant_screen.status_code == 302
    callback = urlsplit(grant_screen.headers["location"])
    assert f"{callback.scheme}://{callback.netloc}{callback.path}" == f"{APP_URL}/auth/callback"
    done = await browser.get(f"{callback.path}?{callback.query}")  # the state cookie rides along
    assert done.status_code == 302, done.text
    assert done.headers["location"].endswith("/apps/test-key")


async def scenario(settings: Settings, store: DevStore) -> None:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=create_devstore_app(store)), base_url="http://devstore"
    ) as shopify:
        app = create_app(settings, http_client=shopify)
        auth: ShopAuth = app.state.auth
        try:
            async with httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url=APP_URL, follow_redirects=False
            ) as browser:
                # 1. Legacy install, over HTTP: /auth → Shopify's grant screen → /auth/callback.
                await install_by_code_grant(browser, shopify, LEGACY_SHOP)
                legacy_token = await auth.tokens.access_token(LEGACY_SHOP)
                body = await graphql(shopify, LEGACY_SHOP, legacy_token, "{ shop { myshopifyDomain } }")
                assert body["data"] == {"shop": {"myshopifyDomain": LEGACY_SHOP}}

                # 2. Managed install: the merchant opens the app; token exchange happens on the way.
                page = await browser.get(f"/?{launch(store, MANAGED_SHOP, settings.shopify_api_secret)}")
                assert page.status_code == 200, page.text
                assert page.headers["content-security-policy"] == (
                    f"frame-ancestors https://{MANAGED_SHOP} https://admin.shopify.com;"
                )
                assert '<strong id="customer-count">0</strong>' in page.text
                token = await auth.tokens.access_token(MANAGED_SHOP)
                assert store.token_scopes(MANAGED_SHOP, token) == frozenset(settings.scopes.split(","))

                # 3. Shopify sends a signed orders/create; the app counts it.
                customer = store.create_customer(MANAGED_SHOP)
                order = store.create_order(
                    MANAGED_SHOP, customer_id=customer.id, total_price=Decimal("42.50")
                )
                sender = WebhookSender(browser, secret=store.client_secret, max_retries=0)
                delivery = await sender.send(
                    "/webhooks", "orders/create", MANAGED_SHOP, order_payload(store, MANAGED_SHOP, order)
                )
                assert delivery.delivered, delivery.attempts
                fetch = await browser.get(
                    "/api/shop", headers={"Authorization": f"Bearer {store.session_token(MANAGED_SHOP)}"}
                )
                assert fetch.json() == {"shop": MANAGED_SHOP, "customers": 1, "orders": 1}
                page = await browser.get(f"/app?{launch(store, MANAGED_SHOP, settings.shopify_api_secret)}")
                assert '<strong id="customer-count">1</strong>' in page.text
                assert '<strong id="order-count">1</strong>' in page.text

                # 4. The other shop's session token sees only its own (empty) shop.
                other = await browser.get(
                    "/api/shop", headers={"Authorization": f"Bearer {store.session_token(LEGACY_SHOP)}"}
                )
                assert other.json() == {"shop": LEGACY_SHOP, "customers": 0, "orders": 0}

                # 5. The token the install obtained gets Shopify's validation errors, not data.
                unknown = await graphql(shopify, MANAGED_SHOP, token, "{ shop { name financialStatus } }")
                assert "data" not in unknown
                assert unknown["errors"][0]["extensions"]["code"] == "undefinedField"
                wrong_type = await graphql(
                    shopify, MANAGED_SHOP, token, '{ customers(first: "ten") { nodes { id } } }'
                )
                assert wrong_type["errors"][0]["extensions"]["code"] == "argumentLiteralsIncompatible"
                valid = await graphql(
                    shopify, MANAGED_SHOP, token, "{ customers(first: 5) { nodes { id } } }"
                )
                assert valid["data"]["customers"]["nodes"] == [{"id": customer.gid}]

                # 6. Near its expiry the token is refreshed before use, and the new one works.
                with app.state.sessionmaker.begin() as session:
                    session.execute(
                        update(Shop)
                        .where(Shop.domain == MANAGED_SHOP)
                        .values(access_token_expires_at=datetime.now(UTC) + timedelta(minutes=2))
                    )
                refreshed = await auth.tokens.access_token(MANAGED_SHOP)
                assert refreshed != token
                assert (await graphql(shopify, MANAGED_SHOP, refreshed, "{ shop { name } }"))["data"]
        finally:
            app.state.engine.dispose()


def test_install_open_and_count_an_order_end_to_end(settings: Settings) -> None:
    store = DevStore(client_id=settings.shopify_api_key, client_secret=settings.shopify_api_secret)
    store.create_shop(LEGACY_SHOP)
    store.create_shop(MANAGED_SHOP)
    store.grants.redirect_urls = [f"{APP_URL}/auth/callback"]  # `[auth] redirect_urls`
    configured = settings.model_copy(
        update={"shopify_admin_base_url_template": IN_PROCESS_BASE_URL_TEMPLATE, "app_url": APP_URL}
    )
    asyncio.run(scenario(configured, store))
