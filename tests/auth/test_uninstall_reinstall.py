"""Uninstall (the double revokes and sends app/uninstalled), then install again on the same row."""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

import pytest
from sqlalchemy.orm import Session
from starlette.testclient import TestClient

from app.config import Settings
from app.shops.tokens import access_token, token_cipher
from shopify_double import DevStore, WebhookSender
from shopify_double.oauth import install_app, uninstall_app
from tests.fixtures.webhooks import SECRET

from .conftest import SHOP, bearer, launch_query, reread

pytestmark = pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")


def uninstall(browser: TestClient, store: DevStore) -> None:
    import httpx

    async def go() -> None:
        transport = httpx.ASGITransport(app=browser.app)
        async with httpx.AsyncClient(transport=transport, base_url="https://app.example.com") as client:
            delivery = await uninstall_app(store, SHOP, WebhookSender(client, secret=SECRET, max_retries=0))
            assert delivery.delivered, delivery.attempts

    asyncio.run(go())


def test_uninstall_marks_the_shop_and_wipes_its_tokens(
    browser: TestClient, store: DevStore, session: Session
) -> None:
    browser.get("/api/shop", headers=bearer(store))
    uninstall(browser, store)
    shop = reread(session)
    assert not shop.is_installed
    assert shop.access_token_encrypted is None and shop.refresh_token_encrypted is None


def test_reinstall_by_token_exchange_reuses_the_shop_row(
    browser: TestClient, store: DevStore, session: Session, app_settings: Settings
) -> None:
    browser.get("/api/shop", headers=bearer(store))
    first = reread(session)
    uninstall(browser, store)
    install_app(store, SHOP)  # the merchant adds the app again (Shopify-managed install)
    response = browser.get(f"/?{launch_query(store)}")
    assert response.status_code == 200
    shop = reread(session)
    assert shop.shop_id == first.shop_id and shop.is_installed
    token = access_token(shop, token_cipher(app_settings))
    assert store.token_scopes(SHOP, token) is not None


def test_reinstall_by_code_grant_after_uninstall(
    browser: TestClient, shopify: TestClient, store: DevStore, session: Session
) -> None:
    browser.get("/api/shop", headers=bearer(store))
    uninstall(browser, store)
    authorize = urlsplit(browser.get("/auth", params={"shop": SHOP}).headers["location"])
    approved = urlsplit(
        shopify.get(f"{authorize.path}?{authorize.query}", follow_redirects=False).headers["location"]
    )
    assert browser.get(f"/auth/callback?{approved.query}").status_code == 302
    shop = reread(session)
    assert shop.is_installed and shop.access_token_encrypted is not None


def test_while_uninstalled_token_exchange_is_refused_and_nothing_is_stored(
    browser: TestClient, store: DevStore, session: Session
) -> None:
    browser.get("/api/shop", headers=bearer(store))
    uninstall(browser, store)
    response = browser.get("/api/shop", headers=bearer(store))
    assert response.status_code == 401
    assert response.headers["X-Shopify-Retry-Invalid-Session-Request"] == "1"
    shop = reread(session)
    assert not shop.is_installed and shop.access_token_encrypted is None


def test_after_reinstall_a_fetch_with_a_session_token_installs_again(
    browser: TestClient, store: DevStore, session: Session
) -> None:
    browser.get("/api/shop", headers=bearer(store))
    uninstall(browser, store)
    install_app(store, SHOP)
    assert browser.get("/api/shop", headers=bearer(store)).status_code == 200
    assert reread(session).is_installed
