"""The Outcomes page's query parameters: a view or a period the page does not offer is a 400
naming the parameter (never a silent default), and nothing is written."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from fastapi import FastAPI
from sqlalchemy.orm import Session
from starlette.testclient import TestClient

from app.config import Settings
from app.shops.service import register_shop
from shopify_double import DevStore
from tests.admin.conftest import APP_URL, SCOPES, launch
from tests.admin.conftest import SHOP as ADMIN_SHOP
from tests.admin.seed import give_token
from tests.bad_input.conftest import snapshot


@pytest.fixture
def installed(session: Session, store: DevStore, admin_settings: Settings) -> None:
    shop = register_shop(session, ADMIN_SHOP, datetime.now(UTC))
    give_token(session, shop, admin_settings, store.issue_access_token(ADMIN_SHOP, SCOPES))
    session.commit()


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("view", "orders"),
        ("view", "STAGE"),
        ("view", ""),
        ("period", "quarter"),
        ("period", "month\x00"),
        ("period", "x" * 5000),
    ],
)
def test_an_unknown_view_or_period_is_a_400_naming_it(
    admin_app: FastAPI, installed: None, session: Session, name: str, value: str
) -> None:
    before = snapshot(session)
    with TestClient(admin_app, base_url=APP_URL) as page:
        response = page.get(f"/app/outcomes?{launch(**{name: value})}")
    assert response.status_code == 400
    assert f"{name}: must be one of" in response.text
    assert len(response.text) < 2000  # the refused value is not echoed in full
    assert snapshot(session) == before
