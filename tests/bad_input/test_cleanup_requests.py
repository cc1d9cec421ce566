"""The settings action "remove everything this app wrote to Shopify" refuses a request that does not
confirm it or names another shop (a 4xx naming the field), or comes without a valid session token
for the shop (the bounce page, to fetch one): nothing is written (the sync stays on, no job is
queued, no table changes, no call to Shopify)."""

from __future__ import annotations

import html
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.testclient import TestClient

from app.config import Settings
from app.kit.db import write_transaction
from app.models import Shop, ShopCleanup, SyncedSegment
from app.settings.service import get_settings
from shopify_double import DevStore
from tests.admin.conftest import (  # noqa: F401 - the admin page's fixtures
    APP_URL,
    OTHER_SHOP,
    SCOPES,
    SHOP,
    admin_app,
    admin_settings,
    launch,
    session_token,
    shopify_http,
    store,
)
from tests.admin.seed import NOW, seed_shop
from tests.bad_input.conftest import snapshot

GOOD = {"shop": SHOP, "confirm": "remove"}


@pytest.fixture
def page(
    session: Session,
    store: DevStore,  # noqa: F811 - the fixture imported above
    admin_settings: Settings,  # noqa: F811
    admin_app: FastAPI,  # noqa: F811
) -> Iterator[TestClient]:
    """The shop installed with a segment the app created (something a clean-up would remove)."""
    shop = seed_shop(
        session, SHOP, [], settings=admin_settings, access_token=store.issue_access_token(SHOP, SCOPES)
    )
    with write_transaction(admin_app.state.sessionmaker) as s:
        s.add(
            SyncedSegment(
                shop_id=shop.shop_id,
                key="rfm:champions",
                segment_gid="gid://shopify/Segment/1",
                name="RFM · Champions",
                query="customer_tags CONTAINS 'rfm:champions'",
                updated_at=NOW,
            )
        )
    with TestClient(admin_app, base_url=APP_URL, follow_redirects=False) as client:
        yield client


@pytest.mark.parametrize(
    ("query", "form", "status", "words"),
    [
        ({}, {"shop": SHOP}, 422, "confirm: tick the box"),
        ({}, {"shop": SHOP, "confirm": "yes"}, 422, "confirm: tick the box"),
        ({}, {"shop": SHOP, "confirm": ""}, 422, "confirm: tick the box"),
        ({}, {"confirm": "remove"}, 422, "shop: the form must name the shop"),
        ({}, {"shop": OTHER_SHOP, "confirm": "remove"}, 422, "shop: the form must name the shop"),
        ({}, {"shop": "not a shop", "confirm": "remove"}, 422, "shop: the form must name the shop"),
        ({"shop": OTHER_SHOP}, GOOD, 400, "shop parameter does not match"),
        # no valid session token (forged, expired): the bounce page fetches a fresh one, nothing runs
        ({"id_token": "not-a-token"}, GOOD, 302, None),
        ({"id_token": session_token(SHOP, now=0)}, GOOD, 302, None),
    ],
)
def test_a_bad_removal_request_is_refused_and_nothing_is_removed(
    page: TestClient,
    session: Session,
    store: DevStore,  # noqa: F811
    query: dict[str, Any],
    form: dict[str, str],
    status: int,
    words: str | None,
) -> None:
    before = snapshot(session)
    calls = len(store.calls)
    params = launch(id_token=query.get("id_token"))
    if "shop" in query:
        params = params.replace(f"shop={SHOP}", f"shop={query['shop']}")

    response = page.post(f"/app/settings/cleanup?{params}", data=form)

    assert response.status_code == status, response.text
    if words is not None:
        assert words in html.unescape(response.text)
    assert snapshot(session) == before
    assert len(store.calls) == calls


def test_another_shops_session_cannot_remove_this_shops_data(page: TestClient, session: Session) -> None:
    """A merchant signed in to another shop acts on that shop only: naming this shop is refused."""
    response = page.post(f"/app/settings/cleanup?{launch(OTHER_SHOP)}", data=GOOD)

    assert response.status_code == 422
    assert "shop: the form must name the shop you are signed in to (other.myshopify.com)" in response.text
    session.expire_all()
    shop = session.scalars(select(Shop).where(Shop.domain == SHOP)).one()
    assert get_settings(session, shop.shop_id).sync_enabled is True
    assert session.scalars(select(ShopCleanup)).all() == []
    assert len(session.scalars(select(SyncedSegment)).all()) == 1


def test_the_good_request_is_accepted(page: TestClient, session: Session) -> None:
    """The refusals above are of the request, not of every request: the same form confirmed goes."""
    before = snapshot(session)
    response = page.post(f"/app/settings/cleanup?{launch()}", data=GOOD)
    assert response.status_code == 303
    assert snapshot(session) != before
