"""The suggested-plays form and the customer list's grid-cell filters refuse bad input with a 4xx
that names the field, and write nothing."""

from __future__ import annotations

import html
from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from sqlalchemy import Engine
from sqlalchemy.orm import Session
from starlette.testclient import TestClient

from app.config import Settings
from app.models import Shop
from app.settings.schemas import PLAY_MAX
from shopify_double import DevStore
from tests.admin.conftest import (  # noqa: F401 - the admin page's fixtures
    APP_URL,
    SCOPES,
    SHOP,
    admin_app,
    admin_settings,
    bearer,
    launch,
    seeds,
    shopify_http,
    store,
)
from tests.admin.seed import SeededShop, give_token, seed_shop
from tests.bad_input.conftest import snapshot
from tests.fixtures.database import restore as put_rows_back
from tests.fixtures.database import snapshot as keep_rows


@pytest.fixture
def page(
    session: Session,
    engine: Engine,
    store: DevStore,  # noqa: F811 - the fixture imported above
    admin_settings: Settings,  # noqa: F811
    admin_app: FastAPI,  # noqa: F811
    seeds: dict[str, SeededShop],  # noqa: F811
) -> Iterator[TestClient]:
    """The shop installed with a few scored buyers, its pages behind a session token. The seeding
    (scores, a fit, a backtest) runs once per process and database; later tests get its rows back."""
    people = [store.create_customer(SHOP, first_name=f"B{i}", last_name="X") for i in range(12)]
    token = store.issue_access_token(SHOP, SCOPES)
    name = f"act_inputs_{engine.dialect.name}"
    kept = seeds.get(name)
    if kept is None or kept.customer_ids != [p.id for p in people]:
        seeds[name] = seed_shop(
            session, SHOP, [p.id for p in people], settings=admin_settings, access_token=token
        )
        keep_rows(engine, name)
    else:
        put_rows_back(engine, name)
        give_token(session, session.get_one(Shop, kept.shop_id), admin_settings, token)
        session.commit()
    with TestClient(admin_app, base_url=APP_URL, follow_redirects=False) as client:
        yield client


@pytest.mark.parametrize(
    ("form", "field", "words"),
    [
        ({"play_at-risk": "x" * (PLAY_MAX + 1)}, "play_at-risk", f"at most {PLAY_MAX} characters"),
        ({"play_new": "Welcome\x00them"}, "play_new", "control characters"),
        ({"play_champions": "ok", "play_loyal": "bell\x07"}, "play_loyal", "control characters"),
        ({"play_vip": "Treat them well"}, "play_vip", "no segment of the scoring method in use"),
        (
            {"play_top": "A thirds group, not a quintile segment"},
            "play_top",
            "no segment of the scoring method",
        ),
    ],
)
def test_a_bad_play_is_refused_at_its_field_and_nothing_is_saved(
    page: TestClient, session: Session, form: dict[str, str], field: str, words: str
) -> None:
    before = snapshot(session)

    response = page.post(f"/app/plays?{launch()}", data=form)

    assert response.status_code == 422
    text = html.unescape(response.text)
    assert words in text and field in text
    assert snapshot(session) == before


@pytest.mark.parametrize(
    ("query", "field", "words"),
    [
        ({"r": "abc"}, "r", "must be a whole number"),
        ({"fm": "4.5"}, "fm", "must be a whole number"),
        ({"r": "-1"}, "r", "must be a whole number"),
        ({"r": "6"}, "r", "must be from 1 to 5"),
        ({"fm": "0"}, "fm", "must be from 1 to 5"),
        ({"r": "4", "fm": "99"}, "fm", "must be from 1 to 5"),
    ],
)
@pytest.mark.parametrize("path", ["/app/customers", "/api/customers", "/app/customers.csv"])
def test_a_bad_grid_cell_is_refused_naming_the_parameter(
    page: TestClient, session: Session, query: dict[str, str], field: str, words: str, path: str
) -> None:
    before = snapshot(session)

    response = page.get(f"{path}?{launch(**query)}", headers=bearer() if path.startswith("/api") else {})

    assert response.status_code == 400
    text = html.unescape(response.text)
    assert f"Query parameter {field}:" in text and words in text
    assert snapshot(session) == before


def test_by_the_thirds_method_a_cell_outside_its_grid_is_refused(page: TestClient, session: Session) -> None:
    from app.scoring import service as scoring
    from app.settings.service import update_settings
    from app.shops.repository import get_by_domain
    from tests.admin.seed import NOW

    shop = get_by_domain(session, SHOP)
    assert shop is not None
    update_settings(session, shop.shop_id, {"scoring_method": "thirds"}, NOW)
    scoring.rescore_shop(session, shop.shop_id, NOW, full=True)
    session.commit()

    for query, words in (({"fm": "1"}, "fm: "), ({"r": "4"}, "r: ")):
        response = page.get(f"/api/customers?{launch(**query)}", headers=bearer())
        assert response.status_code == 400
        assert f"Query parameter {words}" in response.text and "by the thirds method" in response.text
    assert page.get(f"/api/customers?{launch(r=3, fm=6)}", headers=bearer()).status_code == 200
