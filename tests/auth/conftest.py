"""The app wired to the Shopify double: the app's outbound httpx client goes to the double's ASGI
app, whose OAuth endpoints know the same client id and secret as the app."""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import Engine
from sqlalchemy.orm import Session
from starlette.testclient import TestClient

from app.config import Settings
from app.main import create_app
from app.models import Shop
from app.shopify.query_hmac import sign_query
from app.shops.repository import get_by_domain
from shopify_double import DevStore, create_devstore_app
from shopify_double.server import IN_PROCESS_BASE_URL_TEMPLATE
from tests.fixtures.webhooks import SECRET

SHOP = "demo.myshopify.com"
OTHER_SHOP = "other.myshopify.com"
API_KEY = "test-key"
APP_URL = "https://app.example.com"


def host_param(shop: str) -> str:
    return base64.b64encode(f"admin.shopify.com/store/{shop.split('.')[0]}".encode()).decode().rstrip("=")


@pytest.fixture
def store() -> DevStore:
    s = DevStore(client_id=API_KEY, client_secret=SECRET)
    s.create_shop(SHOP)
    s.create_shop(OTHER_SHOP)
    return s


@pytest.fixture
def shopify_http(store: DevStore) -> Iterator[httpx.AsyncClient]:
    client = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=create_devstore_app(store)), base_url="http://devstore"
    )
    yield client
    asyncio.run(client.aclose())


@pytest.fixture
def shopify(store: DevStore) -> Iterator[TestClient]:
    """The double, spoken to as a browser would (authorize screen) or as a test inspects it."""
    with TestClient(create_devstore_app(store), base_url="http://devstore") as client:
        yield client


@pytest.fixture
def app_settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={"shopify_admin_base_url_template": IN_PROCESS_BASE_URL_TEMPLATE, "app_url": APP_URL}
    )


@pytest.fixture
def auth_app(app_settings: Settings, shopify_http: httpx.AsyncClient, engine: Engine) -> FastAPI:
    return create_app(app_settings, http_client=shopify_http, engine=engine)


@pytest.fixture
def browser(auth_app: FastAPI) -> Iterator[TestClient]:
    """The merchant's browser on the app: https, so `Secure` cookies are kept and sent back."""
    with TestClient(auth_app, base_url=APP_URL, follow_redirects=False) as client:
        yield client


def launch_query(store: DevStore, shop: str = SHOP, *, id_token: str | None = None, **extra: str) -> str:
    """The App URL query Shopify builds when the merchant opens the app."""
    params: dict[str, Any] = {
        "embedded": "1",
        "host": host_param(shop),
        "id_token": id_token if id_token is not None else store.session_token(shop),
        "locale": "en",
        "session": "0a1b2c3d",
        "shop": shop,
        "timestamp": str(int(time.time())),
    }
    params.update(extra)
    return sign_query(params, SECRET)


def bearer(store: DevStore, shop: str = SHOP, **claims: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {store.session_token(shop, **claims)}"}


def reread(session: Session, shop: str = SHOP) -> Shop:
    """The shop's row as the database now holds it (what another process just wrote)."""
    session.rollback()
    session.expire_all()
    found = get_by_domain(session, shop)
    assert found is not None
    return found
