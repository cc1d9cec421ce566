"""The customers list past its end: an old link or a list that shrank lands on the last page that
lists customers, never on "Showing 0–9,950 of 7,805"."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from starlette.testclient import TestClient

from tests.admin.conftest import CUSTOMERS, bearer, launch
from tests.admin.seed import SeededShop

LAST_PAGE = -(-CUSTOMERS // 50)


@pytest.mark.both_dbs
def test_a_page_past_the_end_redirects_to_the_last_page(page: TestClient, seeded: SeededShop) -> None:
    response = page.get(f"/app/customers?{launch(page=200, sort='orders', dir='asc')}")
    assert response.status_code == 303
    query = parse_qs(urlsplit(response.headers["location"]).query)
    assert query["page"] == [str(LAST_PAGE)] and query["sort"] == ["orders"] and query["dir"] == ["asc"]
    assert query["shop"] and query["id_token"]  # still an authenticated load of the app

    last = page.get(f"/app/customers?{launch(page=LAST_PAGE, sort='orders', dir='asc')}")
    first = (LAST_PAGE - 1) * 50 + 1
    assert f"Showing {first:,}–{CUSTOMERS:,} of {CUSTOMERS:,} customers." in last.text


@pytest.mark.both_dbs
def test_the_json_list_past_the_end_says_there_is_nothing_there(page: TestClient, seeded: SeededShop) -> None:
    data = page.get("/api/customers?page=200", headers=bearer()).json()
    assert data["customers"] == [] and data["has_next"] is False
    assert data["total"] == CUSTOMERS and data["last_page"] == LAST_PAGE
