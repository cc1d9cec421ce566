"""A shop scored by the thirds method, on its pages: the groups are the segments everywhere (the
segments table, the grid, the customers filter), never a quintile name."""

from __future__ import annotations

import re

from sqlalchemy import func, select
from sqlalchemy.orm import Session
from starlette.testclient import TestClient

from app.models import CustomerScore
from app.scoring import service as scoring
from app.settings.service import update_settings
from app.vocabulary import SEGMENT_NAMES, THIRDS_GROUP_NAMES
from tests.admin.conftest import CUSTOMERS, bearer, launch
from tests.admin.seed import NOW, SeededShop


def score_by_thirds(session: Session, shop_id: int) -> None:
    update_settings(session, shop_id, {"scoring_method": "thirds"}, NOW)
    scoring.rescore_shop(session, shop_id, NOW, full=True)
    session.commit()


def test_the_overview_of_a_thirds_shop_shows_its_groups_and_its_grid(
    page: TestClient, seeded: SeededShop, session: Session
) -> None:
    score_by_thirds(session, seeded.shop_id)
    html = page.get(f"/app?{launch()}").text
    rows = re.findall(r'<tr data-segment="([^"]+)">', html)
    assert rows == list(THIRDS_GROUP_NAMES)
    assert not set(SEGMENT_NAMES) & set(re.findall(r'data-segment="([^"]+)"', html))
    assert "F + M" in html and "thirds method" in html
    assert "R 3" in html and "R 4" not in html and "FM 5" not in html

    data = page.get("/api/overview", headers=bearer()).json()
    assert sum(s["customers"] for s in data["segments"]) == CUSTOMERS
    assert sum(map(sum, data["rfm_grid"]["customers"])) == CUSTOMERS


def test_the_customers_page_of_a_thirds_shop_filters_by_group(
    page: TestClient, seeded: SeededShop, session: Session
) -> None:
    score_by_thirds(session, seeded.shop_id)
    html = page.get(f"/app/customers?{launch()}").text
    options = re.findall(r'<option value="([^"]+)"', html.split('name="segment"')[1].split("</select>")[0])
    assert options == list(THIRDS_GROUP_NAMES)
    top = page.get("/api/customers?segment=Top", headers=bearer()).json()
    expected = session.scalar(
        select(func.count()).where(CustomerScore.shop_id == seeded.shop_id, CustomerScore.segment == "Top")
    )
    assert top["total"] == expected and expected
    assert {c["segment"] for c in top["customers"]} == {"Top"}


def test_the_settings_page_says_what_each_method_and_the_window_rank(
    page: TestClient, seeded: SeededShop
) -> None:
    html = page.get(f"/app/settings?{launch()}").text
    method = re.search(r'<p class="hint" id="method-help">(.*?)</p>', html, re.S)
    window = re.search(r'<p class="hint" id="window-help">(.*?)</p>', html, re.S)
    assert method is not None and window is not None
    assert "7–9 Top, 5–6 Middle, 3–4 Low" in method.group(1) and "last 4 months" in method.group(1)
    assert "ranks the buyers who ordered within it" in window.group(1).replace("rank the", "ranks the")
    assert "no order in the window" in window.group(1)
    assert "Segment grid (quintile method)" in html
