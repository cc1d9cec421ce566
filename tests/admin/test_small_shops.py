"""Pages of an empty shop (no buyers, scored or not yet), of tiny shops (5 and 20 buyers) and of a
shop scored in the middle of a month: every page has a real empty state, says when there is not
enough data yet, and never shows a figure of a month that is not over as if it were."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from sqlalchemy.orm import Session
from starlette.testclient import TestClient

from app.config import Settings
from app.shops.repository import get_by_domain
from app.shops.service import register_shop
from shopify_double import DevStore
from tests.admin.conftest import OTHER_SHOP, bearer, launch
from tests.admin.seed import give_token, seed_shop

PAGES = ["/app", "/app/customers", "/app/cohorts", "/app/accuracy", "/app/settings", "/app/status"]
MID_MONTH = datetime(2026, 11, 14, 15, 0, tzinfo=UTC)


def other_shop(
    session: Session, store: DevStore, settings: Settings, buyers: int | None, now: datetime = MID_MONTH
) -> None:
    """OTHER_SHOP installed with ``buyers`` buyers of a two-year history, scored at ``now``
    (None: installed, nothing imported or scored yet)."""
    token = store.issue_access_token(OTHER_SHOP, "read_customers")
    if buyers is None:
        shop = register_shop(session, OTHER_SHOP, now, currency_code="USD", iana_timezone="UTC")
    else:
        seed_shop(session, OTHER_SHOP, list(range(9_100_001, 9_100_001 + buyers)), now=now)
        found = get_by_domain(session, OTHER_SHOP)
        assert found is not None
        shop = found
    give_token(session, shop, settings, token)
    session.commit()


def get(page: TestClient, path: str) -> str:
    response = page.get(f"{path}?{launch(OTHER_SHOP)}")
    assert response.status_code == 200, (path, response.status_code)
    return response.text


@pytest.mark.parametrize("buyers", [None, 0])
def test_every_page_of_a_shop_without_buyers_says_so(
    page: TestClient, session: Session, store: DevStore, admin_settings: Settings, buyers: int | None
) -> None:
    other_shop(session, store, admin_settings, buyers)
    overview = get(page, "/app")
    assert "All customers" not in overview and "100.0%" not in overview
    assert 'class="cell"' not in overview  # no heat map of zeros
    assert "No buyers yet" in overview or "No scores yet" in overview
    customers = get(page, "/app/customers")
    assert "No buyers scored yet" in customers and "Showing" not in customers
    cohorts = get(page, "/app/cohorts")
    assert "No orders yet" in cohorts or "No metrics yet" in cohorts
    assert "%" not in re.sub(r"<style.*?</style>", "", cohorts, flags=re.S).split("<h1>")[1]
    for path in ("/app/accuracy", "/app/settings", "/app/status"):
        get(page, path)
    assert page.get("/api/overview", headers=bearer(OTHER_SHOP)).json()["customers_scored"] == 0


def test_five_buyers_get_no_tenths_of_the_clv_distribution(
    page: TestClient, session: Session, store: DevStore, admin_settings: Settings
) -> None:
    other_shop(session, store, admin_settings, 5)
    overview = get(page, "/app")
    assert "by tenth of customers" not in overview
    assert "Not enough customers yet" in overview
    assert (
        page.get("/api/overview", headers=bearer(OTHER_SHOP)).json()["predicted_clv"].get("deciles") is None
    )


def test_twenty_buyers_get_tenths_made_of_their_own_values(
    page: TestClient, session: Session, store: DevStore, admin_settings: Settings
) -> None:
    other_shop(session, store, admin_settings, 20)
    data = page.get("/api/overview", headers=bearer(OTHER_SHOP)).json()
    assert data["customers_scored"] == 20
    listed = page.get("/api/customers?page=1", headers=bearer(OTHER_SHOP)).json()["customers"]
    values = {round(c["predicted_clv"], 2) for c in listed}
    # each tenth's top is a customer's own predicted CLV, never a value between two customers
    assert {round(v, 2) for v in data["predicted_clv"]["deciles"]} <= values
    assert "by tenth of customers" in get(page, "/app")


def test_the_month_under_way_has_no_retention_rate_and_no_cohort_cells(
    page: TestClient, session: Session, store: DevStore, admin_settings: Settings
) -> None:
    other_shop(session, store, admin_settings, 80)
    html = get(page, "/app/cohorts")
    row = re.search(r'<tr class="partial"><th scope="row">2026-11 \(so far\)</th>(.*?)</tr>', html, re.S)
    assert row is not None and "month not over" in row.group(1) and "%" not in row.group(1)
    assert "the share who ordered again" in html and "1 − retention" in html
    # the cells of November 2026 (cohort month + months after) are blank: no tooltip, no value
    for months_after, cohort in enumerate(
        ["Nov 2026", "Oct 2026", "Sep 2026", "Aug 2026", "Jul 2026", "Jun 2026", "May 2026"]
    ):
        assert f"<title>{cohort}, {months_after}:" not in html
    assert "<title>Oct 2026, 0:" in html or "<title>Sep 2026, 0:" in html
    assert "November 2026 is not over yet" in html


@pytest.mark.parametrize("buyers", [5, 20])
def test_every_page_of_a_tiny_shop_shows_real_numbers(
    page: TestClient, session: Session, store: DevStore, admin_settings: Settings, buyers: int
) -> None:
    other_shop(session, store, admin_settings, buyers)
    for path in PAGES:
        text = re.sub(r"<(script|style)\b.*?</\1>", "", get(page, path), flags=re.S)
        visible = re.sub(r"<[^>]+>", " ", text)
        assert not re.search(r"\b(nan|NaN|None|inf)\b", visible), path
    overview = page.get("/api/overview", headers=bearer(OTHER_SHOP)).json()
    assert overview["customers_scored"] == buyers
    assert sum(s["customers"] for s in overview["segments"]) == buyers
