"""Tag prefixes the app could not tell from a merchant's own tags: refused at the settings POST with
a 422 that names the field in plain words, and nothing saved."""

from __future__ import annotations

import html
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy.orm import Session
from starlette.testclient import TestClient

from app.config import Settings
from app.settings.schemas import SettingsError, validate
from app.settings.service import get_settings
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


@pytest.fixture
def page(
    session: Session,
    store: DevStore,  # noqa: F811 - the fixture imported above
    admin_settings: Settings,  # noqa: F811
    admin_app: FastAPI,  # noqa: F811
) -> Iterator[TestClient]:
    """The shop installed (a valid offline token held), its settings page behind a session token."""
    seed_shop(session, SHOP, [], settings=admin_settings, access_token=store.issue_access_token(SHOP, SCOPES))
    with TestClient(admin_app, base_url=APP_URL, follow_redirects=False) as client:
        yield client


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("stage_tag_prefix", "v", "must be a word followed by ':', '-' or '_'"),
        ("rfm_tag_prefix", "rfm", "must be a word followed by ':', '-' or '_'"),
        ("clv_tag_prefix", ":", "must start with a letter or digit"),
        ("rfm_tag_prefix", "   ", "must not be empty"),
        ("rfm_tag_prefix", "rfm seg:", "may contain only letters, digits"),
        ("rfm_tag_prefix", "rfm,vip:", "may contain only letters, digits"),
        ("rfm_tag_prefix", "r'fm:", "may contain only letters, digits"),
        ("clv_tag_prefix", "c" * 40 + ":", "must be at most 32 characters"),
        ("clv_tag_prefix", "rfm:", "is the same as the rfm tag prefix"),
        ("clv_tag_prefix", "RFM:", "is the same as the rfm tag prefix"),
        ("stage_tag_prefix", "rfm:stage:", "overlaps the rfm tag prefix"),
        ("rfm_tag_prefix", "s-", None),
    ],
)
def test_a_bad_tag_prefix_is_refused_at_its_field_and_nothing_is_saved(
    page: TestClient, session: Session, field: str, value: str, words: str | None
) -> None:
    form = FORM | {field: value}
    if words is None:  # "s-" against a stage prefix "s-x_": one begins the other
        form["stage_tag_prefix"] = "s-x_"
        field, words = "rfm_tag_prefix", "overlaps the stage tag prefix"

    response = page.post(f"/app/settings?{launch()}", data=form)

    assert response.status_code == 422
    text = html.unescape(response.text)
    assert words.lower() in text.lower()  # told at the field as a sentence of its own
    assert f'id="{field}-error"' in text  # shown at the field
    stored = get_settings(session, _shop_id(session))
    assert (stored.rfm_tag_prefix, stored.stage_tag_prefix, stored.clv_tag_prefix) == (
        "rfm:",
        "stage:",
        "clv:",
    )


def _shop_id(session: Session) -> int:
    from app.shops.repository import get_by_domain

    shop = get_by_domain(session, SHOP)
    assert shop is not None
    return shop.shop_id


def test_prefixes_ending_in_a_separator_are_saved(page: TestClient, session: Session) -> None:
    form = FORM | {"rfm_tag_prefix": "v-", "stage_tag_prefix": "vs_", "clv_tag_prefix": "value:"}

    response = page.post(f"/app/settings?{launch()}", data=form)

    assert response.status_code == 303
    session.expire_all()
    stored = get_settings(session, _shop_id(session))
    assert (stored.rfm_tag_prefix, stored.stage_tag_prefix, stored.clv_tag_prefix) == ("v-", "vs_", "value:")


@pytest.mark.parametrize(
    "changes",
    [
        {"rfm_tag_prefix": "v"},
        {"stage_tag_prefix": "rfm:x:"},
        {"clv_tag_prefix": "Stage:"},
        {"rfm_tag_prefix": "a:", "stage_tag_prefix": "a:b-"},
    ],
)
def test_the_settings_service_refuses_them_too(changes: dict[str, Any]) -> None:
    with pytest.raises(SettingsError) as refused:
        validate(changes)
    assert refused.value.field in changes
