"""The settings form a merchant can't get wrong: every problem at its own field in plain words
(the field marked invalid and described by its error), "2%" read as 2 %, and a change that
rewrites tags or metafields in Shopify saved only after the page said how many customers it
rewrites; the same for "reset to Shopify's default grid"."""

from __future__ import annotations

import html
import re
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from starlette.testclient import TestClient

from app.admin.settings_page import form_values
from app.models import CustomerScore, Job, ShopMetricsSnapshot
from app.settings.service import get_settings, update_settings
from app.vocabulary import DEFAULT_GRID
from tests.admin.conftest import launch
from tests.admin.seed import NOW, SeededShop
from tests.admin.seed import SETTINGS_FORM as FORM

TOKEN = re.compile(r'name="confirm_rewrite" value="([0-9a-f]+)"')


def _grid_form(grid: dict[tuple[int, int], str]) -> dict[str, str]:
    return {f"grid_{r}_{fm}": name for (r, fm), name in grid.items()}


def _pending_jobs(session: Session, shop_id: int) -> list[str]:
    session.expire_all()
    return list(session.scalars(select(Job.kind).where(Job.shop_id == shop_id, Job.state == "pending")))


def _scored(session: Session, shop_id: int) -> int:
    return int(
        session.scalar(
            select(ShopMetricsSnapshot.customers_scored).where(ShopMetricsSnapshot.shop_id == shop_id)
        )
        or 0
    )


def test_each_problem_is_told_at_its_field_without_repeating_its_name(
    page: TestClient, seeded: SeededShop
) -> None:
    form = FORM | {"window_days": "12.5", "lifespan_years": "0"}
    response = page.post(f"/app/settings?{launch()}", data=form)

    assert response.status_code == 422
    text = html.unescape(response.text)
    assert "Window: window" not in text and "lifespan (years) must" not in text
    words = "Must be a whole number of days from 1 to 3660, or empty to count every order."
    inline = f'id="window_days-error">{words}<'
    assert inline in text
    assert 'id="lifespan_years-error">Must be a number of years above 0 and at most 50.<' in text
    field = re.search(r'<input name="window_days"[^>]*>', text)
    assert field is not None
    assert 'aria-invalid="true"' in field[0] and 'aria-describedby="window_days-error ' in field[0]
    # the Polaris field takes it as its `error` (static/polaris.js): tests/admin/test_browser_polaris.py
    summary = text.split('id="settings-errors"')[1].split("</div>")[0]
    assert '<a href="#field-window_days">Window</a>: Must be a whole number' in summary
    assert 'value="12.5"' in text  # what the merchant typed stays in the form
    valid = re.search(r'<input name="clv_horizon_days"[^>]*>', text)
    assert valid is not None and "aria-invalid" not in valid[0]


def test_a_conversion_rate_typed_as_a_percentage_is_saved_as_that_share(
    page: TestClient, seeded: SeededShop, session: Session
) -> None:
    response = page.post(f"/app/settings?{launch()}", data=FORM | {"conversion_rate": "2%"})

    assert response.status_code == 303
    session.expire_all()
    assert get_settings(session, seeded.shop_id).conversion_rate == pytest.approx(0.02)


def test_a_new_method_is_saved_only_after_saying_how_many_customers_it_rewrites(
    page: TestClient, seeded: SeededShop, session: Session
) -> None:
    form = FORM | {"scoring_method": "thirds"}
    jobs = _pending_jobs(session, seeded.shop_id)
    preview = page.post(f"/app/settings?{launch()}", data=form)

    assert preview.status_code == 200
    scored = _scored(session, seeded.shop_id)
    assert f'id="rewrite-customers">{scored:,}<' in preview.text and scored > 0
    assert get_settings(session, seeded.shop_id).scoring_method == "quintile"  # nothing saved yet
    assert _pending_jobs(session, seeded.shop_id) == jobs

    token = TOKEN.search(preview.text)
    assert token is not None
    saved = page.post(f"/app/settings?{launch()}", data=form | {"confirm_rewrite": token[1]})
    assert saved.status_code == 303 and "saved=1" in saved.headers["location"]
    session.expire_all()
    assert get_settings(session, seeded.shop_id).scoring_method == "thirds"
    assert "rescore" in _pending_jobs(session, seeded.shop_id)


def test_a_grid_change_counts_the_customers_of_the_cells_it_renames(
    page: TestClient, seeded: SeededShop, session: Session
) -> None:
    grid = dict(DEFAULT_GRID) | {(5, 4): "Loyal", (5, 5): "Loyal", (1, 1): "At risk"}
    moved = session.scalar(
        select(func.count()).where(
            CustomerScore.shop_id == seeded.shop_id,
            func.coalesce(CustomerScore.recency_score * 10 + CustomerScore.fm_score, 0).in_([54, 55, 11]),
        )
    )
    preview = page.post(f"/app/settings?{launch()}", data=FORM | _grid_form(grid))

    assert preview.status_code == 200 and moved
    assert f'id="rewrite-customers">{moved:,}<' in preview.text
    assert f"{moved:,} customers move to another segment" in preview.text


def test_a_confirmation_of_another_change_does_not_save_this_one(
    page: TestClient, seeded: SeededShop, session: Session
) -> None:
    first = page.post(f"/app/settings?{launch()}", data=FORM | {"scoring_method": "thirds"})
    token = TOKEN.search(first.text)
    assert token is not None
    other = FORM | {"clv_horizon_days": "180", "confirm_rewrite": token[1]}
    response = page.post(f"/app/settings?{launch()}", data=other)

    assert response.status_code == 200 and 'id="settings-confirm"' in response.text
    session.expire_all()
    assert get_settings(session, seeded.shop_id).clv_horizon_days == 365


@pytest.mark.parametrize(
    "change",
    [
        {"lifespan_years": "4", "cac": "25", "conversion_rate": "0.03"},  # nothing written to Shopify
        {"rfm_tag_prefix": "seg:"},  # no customer carries the app's tags yet: nothing to rewrite
        {"scoring_method": "thirds", "sync_enabled": None},  # the sync goes off: nothing written now
    ],
)
def test_a_change_that_rewrites_nothing_in_shopify_is_saved_at_once(
    page: TestClient, seeded: SeededShop, session: Session, change: dict[str, Any]
) -> None:
    form = {k: v for k, v in (FORM | change).items() if v is not None}
    response = page.post(f"/app/settings?{launch()}", data=form)
    assert response.status_code == 303


def test_reset_to_the_default_grid_shows_the_customers_it_moves_then_saves_it(
    page: TestClient, seeded: SeededShop, session: Session
) -> None:
    update_settings(session, seeded.shop_id, {"segment_grid": dict(DEFAULT_GRID) | {(5, 5): "Loyal"}}, NOW)
    session.commit()
    settings_page = page.get(f"/app/settings?{launch()}").text
    assert 'id="reset-grid-form"' in settings_page and 'name="reset_grid" value="1"' in settings_page

    preview = page.post(f"/app/settings?{launch()}", data={"reset_grid": "1"})
    assert preview.status_code == 200
    in_cell = session.scalar(
        select(func.count()).where(
            CustomerScore.shop_id == seeded.shop_id,
            CustomerScore.recency_score == 5,
            CustomerScore.fm_score == 5,
        )
    )
    assert f'id="rewrite-customers">{in_cell:,}<' in preview.text
    session.expire_all()
    assert get_settings(session, seeded.shop_id).segment_grid[(5, 5)] == "Loyal"  # not yet

    # the preview's form holds the default grid and the confirmation: saving it confirms
    token = TOKEN.search(preview.text)
    assert token is not None
    shown = form_values(get_settings(session, seeded.shop_id))
    typed = {k: v for k, v in shown.items() if isinstance(v, str)} | {"sync_enabled": "on"}
    form = typed | _grid_form(dict(DEFAULT_GRID)) | {"confirm_rewrite": token[1]}
    assert page.post(f"/app/settings?{launch()}", data=form).status_code == 303
    session.expire_all()
    assert dict(get_settings(session, seeded.shop_id).segment_grid) == dict(DEFAULT_GRID)
