"""Shopify-managed install: token exchange of the session token, refresh, migration."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import update
from sqlalchemy.orm import Session
from starlette.testclient import TestClient

from app.auth.service import ShopAuth
from app.config import Settings
from app.main import create_app
from app.models import Shop
from app.shopify.oauth import AccessToken
from app.shopify.token_crypto import generate_key
from app.shops.repository import get_by_domain
from app.shops.tokens import ReauthorizationRequired, access_token, refresh_token, store_token, token_cipher
from shopify_double import DevStore
from shopify_double.signing import make_session_token
from tests.fixtures.factories import create_shop

from .conftest import API_KEY, APP_URL, SHOP, bearer, launch_query

pytestmark = [pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")]


def stored(session: Session, settings: Settings) -> tuple[Shop, str | None, str | None]:
    session.rollback()
    session.expire_all()  # the identity map keeps the row as first read otherwise
    shop = get_by_domain(session, SHOP)
    assert shop is not None
    cipher = token_cipher(settings)
    return shop, access_token(shop, cipher), refresh_token(shop, cipher)


def expire_soon(session: Session, minutes: float = 2) -> None:
    session.execute(
        update(Shop)
        .where(Shop.domain == SHOP)
        .values(access_token_expires_at=datetime.now(UTC) + timedelta(minutes=minutes))
    )
    session.commit()


def test_first_open_exchanges_the_session_token_for_an_expiring_offline_token(
    browser: TestClient, store: DevStore, session: Session, app_settings: Settings
) -> None:
    response = browser.get(f"/?{launch_query(store)}")
    assert response.status_code == 200
    shop, token, refresh = stored(session, app_settings)
    assert shop.is_installed
    assert store.token_scopes(SHOP, token) is not None
    assert refresh is not None and refresh.startswith("shprt_")
    assert shop.access_token_expires_at is not None
    assert timedelta(minutes=55) < shop.access_token_expires_at - datetime.now(UTC) <= timedelta(hours=1)
    assert shop.refresh_token_expires_at is not None


def test_first_fetch_also_installs(browser: TestClient, store: DevStore) -> None:
    response = browser.get("/api/shop", headers=bearer(store))
    assert response.status_code == 200
    assert response.json()["shop"] == SHOP


def test_an_installed_shop_is_not_exchanged_again(
    browser: TestClient, store: DevStore, session: Session, app_settings: Settings
) -> None:
    browser.get("/api/shop", headers=bearer(store))
    _, first, _ = stored(session, app_settings)
    browser.get("/api/shop", headers=bearer(store))
    _, second, _ = stored(session, app_settings)
    assert first == second


OLD_SECRET = "secret-before-the-rotation-0123456789"


@pytest.fixture
def rotating_browser(app_settings: Settings, shopify_http: httpx.AsyncClient) -> Iterator[TestClient]:
    """The app still accepts the previous secret; Shopify (the double) no longer signs with it."""
    settings = app_settings.model_copy(update={"shopify_api_secret_old": OLD_SECRET})
    with TestClient(
        create_app(settings, http_client=shopify_http), base_url=APP_URL, follow_redirects=False
    ) as client:
        yield client


def test_invalid_subject_token_from_shopify_is_a_401_with_the_retry_header(
    rotating_browser: TestClient, session: Session
) -> None:
    token = make_session_token(SHOP, API_KEY, OLD_SECRET)  # valid for the app, refused by Shopify
    response = rotating_browser.get("/api/shop", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    assert response.headers["X-Shopify-Retry-Invalid-Session-Request"] == "1"
    assert get_by_domain(session, SHOP) is None


def test_invalid_subject_token_on_the_document_load_bounces(
    rotating_browser: TestClient, store: DevStore
) -> None:
    query = launch_query(store, id_token=make_session_token(SHOP, API_KEY, OLD_SECRET))
    response = rotating_browser.get(f"/?{query}")
    assert response.status_code == 302
    assert response.headers["location"].startswith("/auth/session-token?")


def test_token_within_the_margin_is_refreshed_and_the_rotated_pair_stored(
    browser: TestClient, store: DevStore, session: Session, app_settings: Settings
) -> None:
    browser.get("/api/shop", headers=bearer(store))
    _, old_access, old_refresh = stored(session, app_settings)
    expire_soon(session)
    assert browser.get("/api/shop", headers=bearer(store)).status_code == 200
    shop, new_access, new_refresh = stored(session, app_settings)
    assert new_access != old_access and new_refresh != old_refresh
    assert store.token_scopes(SHOP, new_access) is not None
    assert shop.access_token_expires_at is not None
    assert shop.access_token_expires_at - datetime.now(UTC) > timedelta(minutes=55)


def test_refused_refresh_falls_back_to_token_exchange(
    browser: TestClient, store: DevStore, session: Session, app_settings: Settings
) -> None:
    browser.get("/api/shop", headers=bearer(store))
    expire_soon(session)
    store.grants.forget_shop(SHOP)  # every refresh token of the shop now invalid
    assert browser.get("/api/shop", headers=bearer(store)).status_code == 200
    _, token, refresh = stored(session, app_settings)
    assert store.token_scopes(SHOP, token) is not None and refresh is not None


def test_non_expiring_token_is_migrated_on_open(
    browser: TestClient, store: DevStore, session: Session, app_settings: Settings
) -> None:
    legacy = store.issue_access_token(SHOP, "read_orders,read_customers")

    shop = create_shop(session, SHOP)
    store_token(
        shop,
        AccessToken(access_token=legacy, scope=["read_orders", "read_customers"]),
        token_cipher(app_settings),
    )
    session.commit()
    assert browser.get("/api/shop", headers=bearer(store)).status_code == 200
    shop, token, refresh = stored(session, app_settings)
    assert token != legacy and refresh is not None and shop.access_token_expires_at is not None
    assert store.token_scopes(SHOP, legacy) is None  # Shopify revoked the old one


# -- ShopTokens.access_token: what workers and the Admin API client call ---------------------------


def run_access_token(app: FastAPI, domain: str = SHOP) -> str:
    auth: ShopAuth = app.state.auth
    return asyncio.run(auth.tokens.access_token(domain))


def test_access_token_returns_the_stored_token(
    auth_app: FastAPI, browser: TestClient, store: DevStore, session: Session, app_settings: Settings
) -> None:
    browser.get("/api/shop", headers=bearer(store))
    _, token, _ = stored(session, app_settings)
    assert run_access_token(auth_app) == token


def test_access_token_refreshes_within_the_margin(
    auth_app: FastAPI, browser: TestClient, store: DevStore, session: Session, app_settings: Settings
) -> None:
    browser.get("/api/shop", headers=bearer(store))
    _, old, _ = stored(session, app_settings)
    expire_soon(session)
    token = run_access_token(auth_app)
    assert token != old and store.token_scopes(SHOP, token) is not None
    assert stored(session, app_settings)[1] == token


def test_access_token_for_a_shop_never_opened_requires_reauthorization(auth_app: FastAPI) -> None:
    with pytest.raises(ReauthorizationRequired):
        run_access_token(auth_app)


def test_access_token_after_a_refused_refresh_drops_the_pair_and_requires_reauthorization(
    auth_app: FastAPI, browser: TestClient, store: DevStore, session: Session, app_settings: Settings
) -> None:
    browser.get("/api/shop", headers=bearer(store))
    expire_soon(session)
    store.grants.forget_shop(SHOP)
    with pytest.raises(ReauthorizationRequired):
        run_access_token(auth_app)
    shop, token, refresh = stored(session, app_settings)
    assert token is None and refresh is None and shop.is_installed


def test_invalidate_access_token_forgets_the_token_shopify_refused(
    auth_app: FastAPI, browser: TestClient, store: DevStore, session: Session, app_settings: Settings
) -> None:
    browser.get("/api/shop", headers=bearer(store))
    token = run_access_token(auth_app)
    auth: ShopAuth = auth_app.state.auth
    asyncio.run(auth.tokens.invalidate_access_token(SHOP, "some-other-token"))
    assert stored(session, app_settings)[1] == token
    asyncio.run(auth.tokens.invalidate_access_token(SHOP, token))
    assert stored(session, app_settings)[1] is None


@pytest.mark.both_dbs
def test_a_refresh_that_lost_the_race_keeps_the_winners_pair(
    auth_app: FastAPI, browser: TestClient, store: DevStore, session: Session, app_settings: Settings
) -> None:
    browser.get("/api/shop", headers=bearer(store))
    before, _, _ = stored(session, app_settings)
    session.expunge(before)  # what this worker read before calling Shopify
    cipher = token_cipher(app_settings)
    # Another worker rotated first and stored its pair.
    session.execute(
        update(Shop)
        .where(Shop.shop_id == before.shop_id)
        .values(
            access_token_encrypted=cipher.encrypt("shpat_winner"),
            refresh_token_encrypted=cipher.encrypt("shprt_winner"),
        )
    )
    session.commit()
    late = AccessToken(access_token="shpat_late", scope=["read_orders"], refresh_token="shprt_late")
    auth: ShopAuth = auth_app.state.auth
    after = auth.tokens._save_rotation(before, late)  # noqa: SLF001 - the write step of a refresh
    assert access_token(after, cipher) == "shpat_winner"
    assert refresh_token(after, cipher) == "shprt_winner"


SHOPIFY_WORDS = "internal shard db-7 timed out (request 8f2c)"


@pytest.fixture
def failing_shopify(app_settings: Settings) -> Iterator[TestClient]:
    """Shopify answers every token request with an error of its own words."""

    def answer(request: httpx.Request) -> httpx.Response:
        assert request.url.path.endswith("/admin/oauth/access_token")
        return httpx.Response(500, json={"error": "server_error", "error_description": SHOPIFY_WORDS})

    http = httpx.AsyncClient(transport=httpx.MockTransport(answer))
    with TestClient(
        create_app(app_settings, http_client=http), base_url=APP_URL, follow_redirects=False
    ) as client:
        yield client
    asyncio.run(http.aclose())


def test_a_failed_token_exchange_shows_the_page_a_plain_message(
    failing_shopify: TestClient, store: DevStore, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="app.auth.service"):
        response = failing_shopify.get(f"/?{launch_query(store)}", headers={"Accept": "text/html"})
    assert response.status_code == 502 and response.headers["content-type"].startswith("text/html")
    assert "Please try again in a minute" in response.text
    assert SHOPIFY_WORDS not in response.text and "server_error" not in response.text
    assert SHOPIFY_WORDS in caplog.text and SHOP in caplog.text


def test_a_failed_token_exchange_on_a_fetch_answers_plain_json(
    failing_shopify: TestClient, store: DevStore, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="app.auth.service"):
        response = failing_shopify.get("/api/shop", headers=bearer(store))
    assert response.status_code == 502
    assert "Please try again in a minute" in response.json()["detail"]
    assert SHOPIFY_WORDS not in response.text and SHOPIFY_WORDS in caplog.text


def test_a_stored_token_the_keys_cannot_read_is_exchanged_anew_when_due(
    browser: TestClient, store: DevStore, session: Session, app_settings: Settings
) -> None:
    dropped_key = app_settings.model_copy(update={"token_encryption_keys": [generate_key()]})
    shop = create_shop(session, SHOP)
    store_token(
        shop,
        AccessToken(
            access_token=store.issue_access_token(SHOP, "read_orders"),
            scope=["read_orders"],
            expires_at=datetime.now(UTC) + timedelta(minutes=2),  # within the refresh margin
            refresh_token="shprt_unreadable",
        ),
        token_cipher(dropped_key),
    )
    session.commit()
    assert browser.get("/api/shop", headers=bearer(store)).status_code == 200
    _, token, refresh = stored(session, app_settings)  # readable with the configured keys again
    assert store.token_scopes(SHOP, token) is not None and refresh is not None
