"""A shop counts in its own money and its own days: a shop in euros in Auckland sees euros, its
recency, cohorts, months and weeks begin at Auckland midnight, and a shop west of Greenwich sees
the same next-order day on the page, in the CSV export and in the metafield."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.testclient import TestClient

from app.admin import router as admin_router
from app.config import Settings
from app.models import CustomerScore
from app.shops.service import register_shop
from app.sync.desired import CustomerValues, TagPrefixes, desired_state
from shopify_double import DevStore
from tests.admin.conftest import SCOPES, launch
from tests.admin.seed import give_token, insert_orders, score

pytestmark = pytest.mark.both_dbs  # days are counted in SQL on PostgreSQL, in Python on SQLite

AUCKLAND = "kiwi-euros.myshopify.com"
UTC_TWIN = "utc-twin.myshopify.com"
LOS_ANGELES = "la-yen.myshopify.com"

# Auckland is UTC+13 until April 5, 2026, then UTC+12.
NOW = datetime(2026, 5, 20, 12, 30, tzinfo=UTC)  # May 21, 00:30 in Auckland; May 20 in UTC
ORDERS = [
    # (customer, when, value): customer 1's only order is on March 31 in UTC, April 1 in Auckland
    (1, datetime(2026, 3, 31, 12, 0, tzinfo=UTC), Decimal("40.00")),
    # customers 2 and 3 order two hours apart, on either side of Auckland's midnight of May 20
    (2, datetime(2026, 5, 19, 10, 30, tzinfo=UTC), Decimal("25.50")),
    (3, datetime(2026, 5, 19, 12, 30, tzinfo=UTC), Decimal("1234.56")),
    (4, datetime(2026, 2, 10, 0, 0, tzinfo=UTC), Decimal("60.00")),
    (4, datetime(2026, 3, 15, 0, 0, tzinfo=UTC), Decimal("60.00")),
]
CUSTOMER_BASE = 8_100_000


def _seed(
    session: Session, store: DevStore, settings: Settings, domain: str, currency: str, zone: str
) -> int:
    """The shop as the install and the import leave it (its currency and zone read from Shopify),
    with ORDERS in its ledger, scored at NOW."""
    store.create_shop(domain, currency_code=currency, iana_timezone=zone)
    shop = register_shop(session, domain, NOW, currency_code=currency, iana_timezone=zone)
    give_token(session, shop, settings, store.issue_access_token(domain, SCOPES))
    session.commit()
    insert_orders(session, shop.shop_id, [(CUSTOMER_BASE + c, t, v, False) for c, t, v in ORDERS], NOW)
    session.commit()
    score(session, shop.shop_id, NOW)
    return shop.shop_id


def _recency(session: Session, shop_id: int) -> dict[int, int]:
    rows = session.execute(
        select(CustomerScore.customer_id, CustomerScore.recency_score).where(CustomerScore.shop_id == shop_id)
    )
    return {customer_id - CUSTOMER_BASE: r for customer_id, r in rows}


def _row_cells(html: str, table_id: str) -> dict[str, list[str]]:
    """The rows of a table on the page: row header → its cells' text."""
    table = html.split(f'id="{table_id}"', 1)[1].split("</table>", 1)[0]
    rows = {}
    for row in re.findall(r"<tr>(.*?)</tr>", table, re.S):
        header = re.search(r'<th scope="row">(.*?)</th>', row, re.S)
        if header:
            rows[header.group(1).strip()] = [c.strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
    return rows


def _visible_text(html: str) -> str:
    body = re.sub(r"<(script|style)\b.*?</\1>", "", html, flags=re.S)
    return re.sub(r"<[^>]+>", " ", body)


@pytest.fixture
def auckland(session: Session, store: DevStore, admin_settings: Settings) -> int:
    return _seed(session, store, admin_settings, AUCKLAND, "EUR", "Pacific/Auckland")


def test_recency_counts_the_shops_days(
    auckland: int, session: Session, store: DevStore, admin_settings: Settings
) -> None:
    # Two hours apart, but on two Auckland days: the later buyer is strictly more recent there,
    # while a shop counting UTC days sees the same day and gives both the same R.
    twin = _seed(session, store, admin_settings, UTC_TWIN, "EUR", "UTC")
    in_auckland, in_utc = _recency(session, auckland), _recency(session, twin)
    assert in_auckland[3] > in_auckland[2]
    assert in_utc[3] == in_utc[2]


def test_cohorts_and_months_begin_at_the_shops_midnight(auckland: int, page: TestClient) -> None:
    html = page.get(f"/app/cohorts?{launch(AUCKLAND)}").text
    cohorts = _row_cells(html, "cohort-revenue")
    # March 31, 12:00 UTC is April 1 in Auckland: customer 1 starts the April cohort
    assert {month: cells[0] for month, cells in cohorts.items()} == {
        "Feb 2026": "1",
        "Mar 2026": "0",
        "Apr 2026": "1",
        "May 2026": "2",
    }
    buyers = {month[:7]: cells[0] for month, cells in _row_cells(html, "retention").items()}
    assert (buyers["2026-03"], buyers["2026-04"]) == ("1", "1")


def test_money_is_the_shops_currency_on_every_page(auckland: int, page: TestClient) -> None:
    for path in ("/app", "/app/customers", "/app/cohorts", "/app/accuracy", "/app/settings"):
        text = _visible_text(page.get(f"{path}?{launch(AUCKLAND)}").text)
        assert "$" not in text, path
    customers = page.get(f"/app/customers?{launch(AUCKLAND)}&sort=historic_clv").text
    assert "€1,234.56" in customers
    assert "€" in _visible_text(page.get(f"/app?{launch(AUCKLAND)}").text)


def test_last_orders_and_this_week_are_auckland_days(
    auckland: int, page: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    customers = page.get(f"/app/customers?{launch(AUCKLAND)}").text
    assert "Apr 1, 2026" in customers and "Mar 31, 2026" not in customers
    monkeypatch.setattr(admin_router, "_now", lambda: NOW)
    overview = page.get(f"/app?{launch(AUCKLAND)}").text
    assert "Since May 15, 2026:" in overview  # Thursday May 21 in Auckland and the six days before


def test_the_status_page_names_the_shops_currency_and_time_zone(auckland: int, page: TestClient) -> None:
    html = page.get(f"/app/status?{launch(AUCKLAND)}").text
    assert re.search(r'id="shop-currency">EUR<', html)
    assert re.search(r'id="shop-timezone">Pacific/Auckland:', html)


def test_the_next_order_day_is_the_same_on_the_page_in_the_csv_and_in_the_metafield(
    session: Session, store: DevStore, admin_settings: Settings, page: TestClient
) -> None:
    # May 20, 12:30 UTC is 05:30 in Los Angeles: a day stored as midnight UTC must not be shown
    # as the evening before.
    shop_id = _seed(session, store, admin_settings, LOS_ANGELES, "JPY", "America/Los_Angeles")
    local_today = date(2026, 5, 20)
    rows = session.scalars(select(CustomerScore).where(CustomerScore.shop_id == shop_id)).all()
    html = page.get(f"/app/customers?{launch(LOS_ANGELES)}").text
    exported = list(csv.DictReader(io.StringIO(page.get(f"/app/customers.csv?{launch(LOS_ANGELES)}").text)))
    in_csv = {int(r["customer_id"]): r["expected_next_order_date"] for r in exported}
    dated = [r for r in rows if r.expected_next_order_at is not None]
    assert dated
    for r in dated:
        metafield = desired_state(
            CustomerValues(
                recency_score=r.recency_score,
                frequency_score=r.frequency_score,
                monetary_score=r.monetary_score,
                segment=r.segment,
                stage=r.stage,
                predicted_clv=r.predicted_clv,
                historic_clv=r.historic_clv,
                churn_risk=r.churn_risk,
                expected_next_order_at=r.expected_next_order_at,
                clv_tier=r.clv_tier,
            ),
            TagPrefixes(),
        ).metafields["next_order_date"]
        day = date.fromisoformat(metafield)
        assert day >= local_today
        assert in_csv[r.customer_id] == metafield
        row = html.split(f'data-customer-id="{r.customer_id}"', 1)[1].split("</tr>", 1)[0]
        assert f'data-col="next_order">{day.strftime("%b %-d, %Y")}</td>' in row
    assert "¥1,235" in html  # 1,234.56 yen: yen have no minor unit
