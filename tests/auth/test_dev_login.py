"""The demo's development-only way into the pages: off unless enabled, never in production."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError
from sqlalchemy.orm import Session
from starlette.testclient import TestClient

from app.auth.dev import COOKIE
from app.config import Settings
from app.main import create_app
from app.shopify.oauth import AccessToken
from app.shops.tokens import store_token, token_cipher
from tests.fixtures.factories import create_shop

SHOP = "dev-login.myshopify.com"


def test_dev_login_cannot_be_enabled_in_production() -> None:
    with pytest.raises(ValidationError, match="DEV_LOGIN"):
        Settings(
            app_env="production",
            dev_login=True,
            shopify_api_key="k",
            shopify_api_secret="s" * 40,
            token_encryption_keys=["x"],
            database_url="postgresql://x/y",
        )


def test_dev_login_route_does_not_exist_unless_enabled(client: TestClient) -> None:
    assert client.get("/dev/login", params={"shop": SHOP}, follow_redirects=False).status_code == 404


def _installed(session: Session, settings: Settings) -> None:
    shop = create_shop(session, SHOP)
    token = AccessToken.from_response(
        {"access_token": "shpat_dev", "scope": "read_orders"}, datetime.now(UTC)
    )
    store_token(shop, token, token_cipher(settings))
    session.commit()


def test_dev_login_opens_the_pages_of_an_installed_shop(settings: Settings, session: Session) -> None:
    _installed(session, settings)
    dev = settings.model_copy(update={"dev_login": True})
    with TestClient(create_app(dev)) as client:
        assert client.get("/dev/login", params={"shop": "other.myshopify.com"}).status_code == 404
        response = client.get("/dev/login", params={"shop": SHOP})
        assert response.status_code == 200, response.text
        assert client.get("/api/shop").json()["shop"] == SHOP


def test_a_tampered_dev_cookie_is_refused(settings: Settings, session: Session) -> None:
    _installed(session, settings)
    dev = settings.model_copy(update={"dev_login": True})
    with TestClient(create_app(dev)) as client:
        client.get("/dev/login", params={"shop": SHOP})
        value = client.cookies[COOKIE]
        client.cookies.set(COOKIE, value.replace(SHOP, "other.myshopify.com"))
        response = client.get("/api/shop", headers={"Authorization": "Bearer garbage"})
        assert response.status_code == 401
