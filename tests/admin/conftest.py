"""The embedded page against a seeded shop: the app's outbound client goes to the Shopify double
(which knows the shop's customers by name), the shop holds a valid offline token, and requests
carry real session tokens signed with the app's secret."""

from __future__ import annotations

import asyncio
import base64
import threading
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import Engine
from sqlalchemy.orm import Session
from starlette.testclient import TestClient

from app.config import Settings
from app.main import create_app
from app.models import Shop
from shopify_double import DevStore, create_devstore_app
from shopify_double.server import IN_PROCESS_BASE_URL_TEMPLATE
from shopify_double.signing import make_session_token
from tests.admin.seed import SeededShop, give_token, seed_shop
from tests.fixtures.database import restore, snapshot
from tests.fixtures.webhooks import SECRET

SHOP = "demo.myshopify.com"
OTHER_SHOP = "other.myshopify.com"
API_KEY = "test-key"
APP_URL = "https://app.example.com"
SCOPES = "read_orders,read_all_orders,read_customers,write_customers"
CUSTOMERS = 300
# The seeded shop counts in euros and Berlin days (the README's screenshots come from it).
SHOP_CURRENCY = "EUR"
SHOP_TIMEZONE = "Europe/Berlin"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "browser: drives the pages in headless Chromium (/usr/bin/chromium)")


def host_param(shop: str) -> str:
    return base64.b64encode(f"admin.shopify.com/store/{shop.split('.')[0]}".encode()).decode().rstrip("=")


def session_token(shop: str = SHOP, **claims: Any) -> str:
    claims.setdefault("now", time.time())
    return make_session_token(shop, API_KEY, SECRET, **claims)


def launch(shop: str = SHOP, *, id_token: str | None = None, **extra: Any) -> str:
    """The launch query a page load carries (shop, host, embedded, id_token) plus ``extra``."""
    params = {
        "embedded": "1",
        "host": host_param(shop),
        "id_token": id_token if id_token is not None else session_token(shop),
        "shop": shop,
    }
    params.update({k: str(v) for k, v in extra.items()})
    return urlencode(params)


def bearer(shop: str = SHOP) -> dict[str, str]:
    return {"Authorization": f"Bearer {session_token(shop)}"}


@pytest.fixture
def store() -> DevStore:
    s = DevStore(client_id=API_KEY, client_secret=SECRET)
    s.create_shop(SHOP, currency_code=SHOP_CURRENCY, iana_timezone=SHOP_TIMEZONE)
    s.create_shop(OTHER_SHOP)
    return s


@pytest.fixture
def admin_settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={"shopify_admin_base_url_template": IN_PROCESS_BASE_URL_TEMPLATE, "app_url": APP_URL}
    )


@pytest.fixture(scope="session")
def seeds() -> dict[str, SeededShop]:
    """The seeded shops of this session whose database state `restore` puts back."""
    return {}


@pytest.fixture
def seeded(
    session: Session, engine: Engine, store: DevStore, admin_settings: Settings, seeds: dict[str, SeededShop]
) -> SeededShop:
    """The demo shop: CUSTOMERS buyers known to the double by name, two years of orders, scored.

    Seeding (scoring, a fit, a backtest) costs seconds, so it runs once per session and database
    and each test gets a copy of its rows (`restore`), holding this test's token for the double."""
    people = [
        store.create_customer(SHOP, first_name=f"Ada{i}", last_name="Lovelace", email=f"ada{i}@example.com")
        for i in range(CUSTOMERS)
    ]
    token = store.issue_access_token(SHOP, SCOPES)
    customer_ids = [p.id for p in people]
    name = f"admin_{engine.dialect.name}"
    kept = seeds.get(name)
    if kept is None or kept.customer_ids != customer_ids:
        shop = seed_shop(
            session,
            SHOP,
            customer_ids,
            currency_code=SHOP_CURRENCY,
            iana_timezone=SHOP_TIMEZONE,
            settings=admin_settings,
            access_token=token,
        )
        snapshot(engine, name)
        seeds[name] = shop
        return shop
    restore(engine, name)
    give_token(session, session.get_one(Shop, kept.shop_id), admin_settings, token)
    session.commit()
    return kept


@pytest.fixture
def shopify_http(store: DevStore) -> Iterator[httpx.AsyncClient]:
    client = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=create_devstore_app(store)), base_url="http://devstore"
    )
    yield client
    # on a thread of its own: the browser tests keep Playwright's event loop running in this one
    closing = threading.Thread(target=asyncio.run, args=(client.aclose(),))
    closing.start()
    closing.join()


@pytest.fixture
def admin_app(admin_settings: Settings, shopify_http: httpx.AsyncClient) -> FastAPI:
    return create_app(admin_settings, http_client=shopify_http)


@pytest.fixture
def page(admin_app: FastAPI) -> Iterator[TestClient]:
    with TestClient(admin_app, base_url=APP_URL, follow_redirects=False) as client:
        yield client
