"""The customers list's query parameters (search, F and M scores, churn-risk band, next-order
window): each bad value is a 400 naming the parameter, on the page, its JSON and the CSV, and
nothing is written nor sent to Shopify."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from fastapi import FastAPI
from sqlalchemy.orm import Session
from starlette.testclient import TestClient

from app.config import Settings
from app.settings.service import update_settings
from app.shops.service import register_shop
from shopify_double import DevStore
from tests.admin.conftest import APP_URL, SCOPES, bearer, launch
from tests.admin.conftest import SHOP as ADMIN_SHOP
from tests.admin.seed import give_token
from tests.bad_input.conftest import snapshot

pytestmark = pytest.mark.both_dbs

BAD = {
    "q": ["x" * 101, "ada\x00", "tab\there"],
    "f": ["0", "6", "two", "-1", "1.5", " 3"],
    "m": ["0", "9", "x"],
    "risk": ["extreme", "LOW", "0.5"],
    "next_days": ["0", "3661", "-5", "7.5", "week"],
}


@pytest.fixture
def installed(session: Session, store: DevStore, admin_settings: Settings) -> None:
    shop = register_shop(session, ADMIN_SHOP, datetime.now(UTC))
    give_token(session, shop, admin_settings, store.issue_access_token(ADMIN_SHOP, SCOPES))
    session.commit()


@pytest.fixture
def page(admin_app: FastAPI) -> TestClient:
    return TestClient(admin_app, base_url=APP_URL, follow_redirects=False)


@pytest.mark.parametrize("field", sorted(BAD))
def test_each_bad_list_parameter_is_a_400_naming_it_and_nothing_happens(
    page: TestClient, installed: None, session: Session, store: DevStore, field: str
) -> None:
    before = snapshot(session)
    calls = len(store.calls)
    failures = []
    for value in BAD[field]:
        for path, headers in (
            (f"/app/customers?{launch(**{field: value})}", {}),
            (f"/app/customers.csv?{launch(**{field: value})}", {}),
            (f"/api/customers?{launch(**{field: value})}", bearer()),
        ):
            response = page.get(path, headers=headers)
            if response.status_code != 400 or f"{field}: " not in response.text:
                failures.append(f"{field}={value!r} {path.split('?')[0]}: {response.status_code}")
    assert not failures, "\n".join(failures)
    assert snapshot(session) == before
    assert len(store.calls) == calls  # no search was sent for a refused request


def test_a_score_above_the_thirds_range_is_refused_for_a_thirds_shop(
    page: TestClient, installed: None, session: Session
) -> None:
    shop_id = register_shop(session, ADMIN_SHOP, datetime.now(UTC)).shop_id
    update_settings(session, shop_id, {"scoring_method": "thirds"}, datetime.now(UTC))
    session.commit()
    response = page.get(f"/api/customers?{launch(f=4)}", headers=bearer())
    assert response.status_code == 400
    assert response.json()["detail"].startswith("f: ") and "1 to 3" in response.json()["detail"]
    assert page.get(f"/api/customers?{launch(f=3)}", headers=bearer()).status_code == 200
