"""The Outcomes page renders each stage's "came back" chart and table with the numbers of the
history it reads, in the shop's currency, marks what is not complete yet, and refuses a bad
choice of view or period with a 400 naming the parameter."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.orm import Session
from starlette.testclient import TestClient

from app.config import Settings
from app.models import SegmentChange, StageChange
from app.shops.service import register_shop
from shopify_double import DevStore
from tests.admin.conftest import OTHER_SHOP, launch
from tests.admin.seed import give_token, insert_orders

pytestmark = pytest.mark.both_dbs

ZONE = "America/New_York"


@pytest.fixture
def history(session: Session, store: DevStore, admin_settings: Settings) -> datetime:
    """OTHER_SHOP (euros, New York) with three customers entering At risk, relative to today: two
    140 days ago (one came back 10 days later for 12.50), one 3 days ago (came back yesterday).
    Returns the first entry's time."""
    now = datetime.now(UTC)
    token = store.issue_access_token(OTHER_SHOP, "read_customers")
    shop = register_shop(session, OTHER_SHOP, now, currency_code="EUR", iana_timezone=ZONE)
    give_token(session, shop, admin_settings, token)
    early, late = now - timedelta(days=140), now - timedelta(days=3)
    for customer_id, when in ((1, early), (2, early), (3, late)):
        session.add(
            StageChange(
                shop_id=shop.shop_id,
                customer_id=customer_id,
                from_stage="active",
                to_stage="at_risk",
                changed_at=when,
                cause="behaviour",
            )
        )
    session.add(
        SegmentChange(
            shop_id=shop.shop_id,
            customer_id=1,
            from_segment="Loyal",
            to_segment="At risk",
            changed_at=early,
            cause="behaviour",
        )
    )
    insert_orders(
        session,
        shop.shop_id,
        [
            (1, early + timedelta(days=10), Decimal("12.50"), False),
            (3, now - timedelta(days=1), Decimal("9.00"), False),
        ],
        now,
    )
    session.commit()
    return early


def section(html: str, group: str) -> str:
    match = re.search(rf'<s-section class="outcome" id="outcome-{group}".*?</s-section>', html, re.S)
    assert match, group
    return match.group(0)


def test_each_stage_with_entrants_gets_its_chart_and_numbers(page: TestClient, history: datetime) -> None:
    response = page.get(f"/app/outcomes?{launch(OTHER_SHOP)}")
    assert response.status_code == 200, response.text
    html = response.text
    assert '<s-link href="/app/outcomes?' in html  # in the admin's nav
    at_risk = section(html, "at_risk")
    assert "<svg" in at_risk and "At risk: came back after entering" in at_risk
    month = history.astimezone(ZoneInfo(ZONE)).strftime("%b %Y")
    row = re.search(rf'<tr data-period="[^"]+"><th scope="row">{month}</th>.*?</tr>', at_risk, re.S)
    assert row, month
    cells = re.findall(r'<td class="num[^"]*"[^>]*>(.*?)</td>', row.group(0))
    assert cells == ["2", "1 (50%)", "1 (50%)", "1 (50%)", "€12.50"]
    # the chart: 50 % for each window of that month; the month under way is not complete yet
    assert at_risk.count('data-value="50.0"') == 3
    assert 'class="bar missing"' in at_risk and "not complete yet" in at_risk
    assert "America/New_York" in html and "EUR" in html
    # no stage without entrants gets a chart of zeros
    assert 'id="outcome-lapsed"' not in html


def test_the_segment_view_reads_the_segment_history(page: TestClient, history: datetime) -> None:
    html = page.get(f"/app/outcomes?{launch(OTHER_SHOP, view='segment')}").text
    at_risk = section(html, "at-risk")
    assert "€12.50" in at_risk and "1 (100%)" in at_risk
    assert 'id="outcome-champions"' not in html


def test_by_week_the_last_entrant_is_not_complete_yet(page: TestClient, history: datetime) -> None:
    html = page.get(f"/app/outcomes?{launch(OTHER_SHOP, period='week')}").text
    at_risk = section(html, "at_risk")
    assert "Week of" in at_risk
    rows = re.findall(r'<tr data-period="[^"]+">(.*?)</tr>', at_risk, re.S)
    entered = [re.findall(r'<td class="num[^"]*"[^>]*>(.*?)</td>', row) for row in rows]
    (latest,) = [cells for cells in entered if cells[0] == "1"]  # the 140-day-old entries are not shown
    assert latest[1:] == ['<span class="hint">not complete yet</span>'] * 4


@pytest.mark.parametrize(("name", "value"), [("view", "customers"), ("period", "year"), ("period", "")])
def test_a_bad_choice_is_refused_naming_the_parameter(
    page: TestClient, history: datetime, name: str, value: str
) -> None:
    response = page.get(f"/app/outcomes?{launch(OTHER_SHOP, **{name: value})}")
    assert response.status_code == 400
    assert f"{name}: must be one of" in response.text
