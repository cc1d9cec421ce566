"""The settings and import forms refuse what they cannot take, with a 4xx in plain words and nothing
written: a conversion rate that is no share or percentage, a grid reset that is not one, an import
while one runs, a repeat import without its confirmation."""

from __future__ import annotations

import html
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from fastapi import FastAPI
from sqlalchemy import update
from sqlalchemy.orm import Session
from starlette.testclient import TestClient

from app.config import Settings
from app.imports.service import IMPORT_JOB, queue_import
from app.models import Job, OrderImport
from shopify_double import DevStore
from tests.admin.conftest import (  # noqa: F401 - the admin page's fixtures
    APP_URL,
    SCOPES,
    SHOP,
    admin_app,
    admin_settings,
    launch,
    shopify_http,
    store,
)
from tests.admin.seed import SETTINGS_FORM as FORM
from tests.admin.seed import seed_shop
from tests.bad_input.conftest import snapshot


@pytest.fixture
def shop_id(
    session: Session,
    store: DevStore,  # noqa: F811 - the fixture imported above
    admin_settings: Settings,  # noqa: F811
) -> int:
    shop = seed_shop(
        session, SHOP, [], settings=admin_settings, access_token=store.issue_access_token(SHOP, SCOPES)
    )
    session.commit()
    return shop.shop_id


@pytest.fixture
def page(shop_id: int, admin_app: FastAPI) -> Iterator[TestClient]:  # noqa: F811
    with TestClient(admin_app, base_url=APP_URL, follow_redirects=False) as client:
        yield client


@pytest.mark.parametrize("rate", ["2%%", "150%", "-2%", "1e999%"])
def test_a_conversion_rate_that_is_no_share_or_percentage_is_refused_at_its_field(
    page: TestClient, session: Session, shop_id: int, rate: str
) -> None:
    before = snapshot(session)
    response = page.post(f"/app/settings?{launch()}", data=FORM | {"conversion_rate": rate})

    assert response.status_code == 422
    text = html.unescape(response.text)
    assert 'id="conversion_rate-error">Must be a share above 0 and at most 1 (0.02), or a percentage' in text
    assert snapshot(session) == before


@pytest.mark.parametrize("value", ["yes", ""])
def test_a_grid_reset_that_is_not_one_is_refused(
    page: TestClient, session: Session, shop_id: int, value: str
) -> None:
    before = snapshot(session)
    response = page.post(f"/app/settings?{launch()}", data={"reset_grid": value})

    assert response.status_code == 422 and "reset_grid=1" in response.text
    assert snapshot(session) == before


def test_an_import_while_one_runs_is_refused(page: TestClient, session: Session, shop_id: int) -> None:
    queue_import(session, shop_id, datetime.now(UTC))
    session.commit()
    before = snapshot(session)

    response = page.post(f"/app/status/import?{launch()}", data={"confirm": "import"})

    assert response.status_code == 409 and "already under way" in response.text
    assert snapshot(session) == before


@pytest.mark.parametrize("form", [{}, {"confirm": "IMPORT"}])
def test_a_repeat_import_without_its_confirmation_is_refused(
    page: TestClient, session: Session, shop_id: int, form: dict[str, str]
) -> None:
    queue_import(session, shop_id, datetime.now(UTC))
    session.execute(update(OrderImport).where(OrderImport.shop_id == shop_id).values(state="failed"))
    session.execute(update(Job).where(Job.shop_id == shop_id, Job.kind == IMPORT_JOB).values(state="failed"))
    session.commit()
    before = snapshot(session)

    response = page.post(f"/app/status/import?{launch()}", data=form)

    assert response.status_code == 422 and "confirm: tick the box" in response.text
    assert snapshot(session) == before
