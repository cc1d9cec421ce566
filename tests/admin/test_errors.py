"""What the screens answer when something underneath fails: the database away (503, as /readyz
says), or a stored token the configured keys cannot read (the list without names)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from starlette.testclient import TestClient

from app.config import Settings
from app.main import create_app
from tests.admin.conftest import APP_URL, SHOP, bearer, launch

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
