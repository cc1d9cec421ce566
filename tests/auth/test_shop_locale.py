"""The shop's currency and time zone come from Shopify: read at install (token exchange or code
grant), and again when the merchant changes them (`shop/update`); a new time zone rescores the
shop, since every day, week and month boundary moves."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from urllib.parse import urlsplit

import httpx
import pytest
from sqlalchemy import delete, select
from sqlalchemy.orm import Session
from starlette.testclient import TestClient

from app.models import Job
from app.scoring import service as scoring
from shopify_double import DevStore, WebhookSender, shop_update
from tests.fixtures.factories import order_payload
from tests.fixtures.webhooks import SECRET, post_webhook

from .conftest import SHOP, bearer, reread

pytestmark = pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")


def full_rescores(session: Session, shop_id: int) -> list[Job]:
    session.rollback()
    pending = select(Job).where(Job.shop_id == shop_id, Job.kind == scoring.RESCORE, Job.state == "pending")
    return [j for j in session.scalars(pending) if json.loads(j.payload or "{}").get("full")]


def send_shop_update(browser: TestClient, store: DevStore, **changes: str) -> None:
    async def go() -> None:
        transport = httpx.ASGITransport(app=browser.app)
        async with httpx.AsyncClient(transport=transport, base_url="https://app.example.com") as client:
            sender = WebhookSender(client, secret=SECRET, max_retries=0)
            delivery = await shop_update(store, sender, SHOP, **changes)
            assert delivery.delivered, delivery.attempts

    asyncio.run(go())


def test_token_exchange_install_stores_the_shops_currency_and_time_zone(
    browser: TestClient, store: DevStore, session: Session
) -> None:
    store.update_shop(SHOP, currency_code="EUR", iana_timezone="Pacific/Auckland")
    assert browser.get("/api/shop", headers=bearer(store)).status_code == 200
    shop = reread(session)
    assert (shop.currency_code, shop.iana_timezone) == ("EUR", "Pacific/Auckland")


def test_code_grant_install_stores_the_shops_currency_and_time_zone(
    browser: TestClient, shopify: TestClient, store: DevStore, session: Session
) -> None:
    store.update_shop(SHOP, currency_code="JPY", iana_timezone="Asia/Tokyo")
    authorize = urlsplit(browser.get("/auth", params={"shop": SHOP}).headers["location"])
    approved = urlsplit(
        shopify.get(f"{authorize.path}?{authorize.query}", follow_redirects=False).headers["location"]
    )
    assert browser.get(f"/auth/callback?{approved.query}").status_code == 302
    shop = reread(session)
    assert (shop.currency_code, shop.iana_timezone) == ("JPY", "Asia/Tokyo")


def test_shop_update_stores_a_new_currency_without_rescoring(
    browser: TestClient, store: DevStore, session: Session
) -> None:
    browser.get("/api/shop", headers=bearer(store))
    shop_id = reread(session).shop_id
    session.execute(delete(Job).where(Job.shop_id == shop_id))  # what the install queued
    session.commit()
    send_shop_update(browser, store, currency_code="GBP")
    shop = reread(session)
    assert shop.currency_code == "GBP"
    assert full_rescores(session, shop_id) == []


def test_a_new_time_zone_rescores_the_shop_in_its_new_days(
    browser: TestClient, store: DevStore, session: Session
) -> None:
    store.update_shop(SHOP, currency_code="EUR", iana_timezone="UTC")
    browser.get("/api/shop", headers=bearer(store))
    shop_id = reread(session).shop_id
    # March 31, 12:00 UTC: March in UTC, April 1 in Auckland
    order = order_payload(
        7_100_001, 7_200_001, processed_at="2026-03-31T12:00:00Z", updated_at="2026-03-31T12:00:00Z"
    )
    assert post_webhook(browser, "orders/create", order, SHOP).status_code == 200
    now = datetime(2026, 6, 1, tzinfo=UTC)

    def cohort_months() -> list[str]:
        session.rollback()
        metrics = browser.get("/api/metrics", headers=bearer(store)).json()["metrics"]
        cohorts = metrics["shop"]["cohorts"]
        return [m for m, n in zip(cohorts["cohorts"], cohorts["customers"], strict=True) if n]

    scoring.rescore_shop(session, shop_id, now, full=True)
    session.commit()
    assert cohort_months() == ["2026-03-01"]

    send_shop_update(browser, store, iana_timezone="Pacific/Auckland")
    assert reread(session).iana_timezone == "Pacific/Auckland"
    assert len(full_rescores(session, shop_id)) == 1
    scoring.rescore_shop(session, shop_id, now, full=True)
    session.commit()
    assert cohort_months() == ["2026-04-01"]


def test_a_first_install_queues_no_rescore_before_the_import(
    browser: TestClient, store: DevStore, session: Session
) -> None:
    # Nothing is scored yet: the overview keeps counting what the import brings in.
    store.update_shop(SHOP, iana_timezone="Pacific/Auckland")
    browser.get("/api/shop", headers=bearer(store))
    shop = reread(session)
    assert shop.iana_timezone == "Pacific/Auckland"
    assert full_rescores(session, shop.shop_id) == []
