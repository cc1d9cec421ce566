"""What the screens answer when something underneath fails: the database away (503, as /readyz
says), or a stored token the configured keys cannot read (the list without names)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy.orm import Session
from starlette.testclient import TestClient

from app.config import Settings
from app.main import create_app
from app.shopify.token_crypto import generate_key
from app.shops.repository import get_by_domain
from shopify_double import DevStore
from tests.admin.conftest import APP_URL, SCOPES, SHOP, bearer, launch
from tests.admin.seed import SeededShop, give_token

UNREACHABLE = "postgresql://postgres@127.0.0.1:1/none"  # nothing listens on port 1
PAGE = {"Accept": "text/html,application/xhtml+xml;q=0.9,*/*;q=0.8"}


@pytest.fixture
def database_down(admin_settings: Settings, shopify_http: httpx.AsyncClient) -> Iterator[TestClient]:
    down = admin_settings.model_copy(update={"database_url": UNREACHABLE})
    with TestClient(
        create_app(down, http_client=shopify_http), base_url=APP_URL, follow_redirects=False
    ) as c:
        yield c


@pytest.mark.parametrize("path", ["/", "/app/customers", "/app/settings", "/app/status"])
def test_a_page_answers_503_with_a_plain_page_while_the_database_is_down(
    database_down: TestClient, path: str
) -> None:
    response = database_down.get(f"{path}?{launch()}", headers=PAGE)
    assert response.status_code == 503
    assert response.headers["retry-after"] == "30"
    assert response.headers["content-type"].startswith("text/html")
    assert "cannot reach its database" in response.text and "Traceback" not in response.text
    # framed by the shop's admin, so the message shows inside the app
    assert response.headers["content-security-policy"].startswith(f"frame-ancestors https://{SHOP} ")


@pytest.mark.parametrize("path", ["/api/overview", "/api/customers", "/api/shop"])
def test_a_fetch_answers_503_json_while_the_database_is_down(database_down: TestClient, path: str) -> None:
    response = database_down.get(path, headers=bearer())
    assert response.status_code == 503
    assert response.headers["retry-after"] == "30"
    assert response.json() == {
        "detail": "The app cannot reach its database right now. Please try again in a minute."
    }


def test_a_form_post_answers_503_while_the_database_is_down(database_down: TestClient) -> None:
    response = database_down.post(f"/app/status/import?{launch()}", headers=PAGE)
    assert (response.status_code, response.headers["retry-after"]) == (503, "30")
    assert "cannot reach its database" in response.text


# -- a stored token the configured keys cannot read --------------------------------------------


@pytest.fixture
def unreadable_token(seeded: SeededShop, session: Session, store: DevStore, admin_settings: Settings) -> None:
    """The shop's token encrypted with a key that is not (any more) in TOKEN_ENCRYPTION_KEYS."""
    shop = get_by_domain(session, SHOP)
    assert shop is not None
    dropped_key = admin_settings.model_copy(update={"token_encryption_keys": [generate_key()]})
    give_token(session, shop, dropped_key, store.issue_access_token(SHOP, SCOPES))
    session.commit()


def test_the_customers_page_shows_the_list_without_names_when_the_token_cannot_be_read(
    page: TestClient, unreadable_token: None
) -> None:
    response = page.get(f"/app/customers?{launch()}")
    assert response.status_code == 200
    assert len(re.findall(r'<tr data-customer-id="\d+">', response.text)) == 50
    assert "Lovelace" not in response.text
    note = re.search(r'id="names-note"[^>]*>(.*?)</', response.text, re.S)
    assert note is not None and "cannot read the access token" in note.group(1)
    assert "TOKEN_ENCRYPTION_KEYS" in note.group(1)


def test_the_customers_json_has_no_names_and_says_why_when_the_token_cannot_be_read(
    page: TestClient, unreadable_token: None
) -> None:
    data = page.get("/api/customers", headers=bearer()).json()
    assert len(data["customers"]) == 50 and all(c["name"] is None for c in data["customers"])
    assert "cannot read the access token" in data["names_note"]
