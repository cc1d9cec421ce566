"""The settings action "remove everything this app wrote to Shopify", through the real app and the
worker against the double: the settings page counts what the app wrote, the confirmed post turns
the sync off and queues the removal, the worker removes exactly that, and the Status page shows
the same figures as removed."""

from __future__ import annotations

import re

import httpx
import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session
from starlette.testclient import TestClient

from app.config import Settings
from app.jobs.services import services_factory
from app.kit.db import make_sessionmaker
from app.settings.service import get_settings
from app.sync import service as sync_service
from app.worker import Worker
from shopify_double import DevStore, create_devstore_app
from tests.admin.conftest import OTHER_SHOP, SHOP, SHOP_CURRENCY, SHOP_TIMEZONE, bearer, launch
from tests.admin.seed import NOW, SeededShop
from tests.fixtures.webhooks import SECRET
from tests.sync.conftest import deploy_metafield_definitions

MERCHANT_TAGS = ["vip", "rfm:mine", "stage-manual"]


@pytest.fixture
def store() -> DevStore:
    """The admin tests' store on a plan whose API budget lets 300 customers sync in a moment."""
    s = DevStore(client_id="test-key", client_secret=SECRET)
    s.create_shop(SHOP, currency_code=SHOP_CURRENCY, iana_timezone=SHOP_TIMEZONE, plan="Enterprise")
    s.create_shop(OTHER_SHOP)
    deploy_metafield_definitions(s, SHOP)
    return s


def _work(engine: Engine, settings: Settings, store: DevStore, kind: str) -> None:
    http = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=create_devstore_app(store)), base_url="http://devstore"
    )
    import app.tasks  # noqa: F401 - registers every job kind

    worker = Worker(make_sessionmaker(engine), kinds=[kind], services=services_factory(settings, http=http))
    try:
        worker.run_pending()
    finally:
        worker.close()


def _held(store: DevStore, customers: list[int]) -> tuple[int, int, int]:
    shop = store.shop(SHOP)
    tagged = sum(1 for c in customers if set(shop.customers[c].tags) - set(MERCHANT_TAGS))
    metafields = sum(1 for (_, ns, _) in shop.metafields if ns == store.app_namespace)
    return tagged, metafields, len(shop.segments)


def _number(html: str, element_id: str) -> int:
    match = re.search(rf'id="{element_id}">([\d,]+)<', html)
    assert match is not None, element_id
    return int(match.group(1).replace(",", ""))


def test_the_counts_shown_are_removed_and_the_status_page_says_so(
    page: TestClient,
    seeded: SeededShop,
    session: Session,
    engine: Engine,
    store: DevStore,
    admin_settings: Settings,
) -> None:
    for customer in seeded.customer_ids:
        store.shop(SHOP).customers[customer].tags = list(MERCHANT_TAGS)
    sync_service.enqueue_sync(session, seeded.shop_id, NOW)
    session.commit()
    _work(engine, admin_settings, store, "sync")
    held = _held(store, seeded.customer_ids)
    assert held[0] > 200 and held[1] > 2000 and held[2] > 10

    html = page.get(f"/app/settings?{launch()}").text
    shown = tuple(_number(html, f"cleanup-{what}") for what in ("customers", "metafields", "segments"))
    assert shown == held
    assert "before you uninstall the app" in html and "turns the sync off" in html

    response = page.post(f"/app/settings/cleanup?{launch()}", data={"shop": SHOP, "confirm": "remove"})
    assert response.status_code == 303 and "notice=cleanup-queued" in response.headers["location"]
    session.expire_all()
    assert get_settings(session, seeded.shop_id).sync_enabled is False

    _work(engine, admin_settings, store, "cleanup")

    assert _held(store, seeded.customer_ids) == (0, 0, 0)
    assert all(store.shop(SHOP).customers[c].tags == MERCHANT_TAGS for c in seeded.customer_ids)
    status = page.get(f"/app/status?{launch()}").text
    removed = tuple(
        _number(status, f"cleanup-removed-{what}") for what in ("customers", "metafields", "segments")
    )
    assert removed == shown
    data = page.get("/api/status", headers=bearer()).json()
    assert data["cleanup"]["state"] == "done" and data["cleanup"]["percent"] == 100
    assert data["cleanup"]["removed"] == data["cleanup"]["planned"]
