"""The sync as worker jobs: level-triggered schedule, the worker's async kind, uninstall, redact."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import delete, select
from starlette.testclient import TestClient

import app.tasks  # noqa: F401 - registers every job kind
from app.jobs.services import services_factory
from app.kit.db import write_transaction
from app.models import Job, Shop
from app.shops import service as shops
from app.sync import push
from app.sync.service import REDACT_KEY, SYNC, enqueue_due_syncs
from app.worker import Worker
from shopify_double import create_devstore_app
from tests.fixtures.webhooks import post_webhook
from tests.sync.conftest import SHOP, World, seed


def _due(world: World) -> list[int]:
    with write_transaction(world.factory) as session:
        due = enqueue_due_syncs(session, world.tick())
        session.execute(delete(Job))
    return due


@pytest.mark.both_dbs
def test_a_rescore_leads_to_a_sync_and_a_synced_shop_to_none(world: World) -> None:
    (customer,) = seed(world, 1)
    assert _due(world) == [world.shop_id]

    world.sync()
    assert _due(world) == []

    world.score(customer, segment="Dormant")
    assert _due(world) == [world.shop_id]


def test_a_settings_change_leads_to_a_sync(world: World) -> None:
    seed(world, 1)
    world.sync()

    world.settings_change(rfm_tag_prefix="seg:")

    assert _due(world) == [world.shop_id]


def test_an_uninstalled_shop_gets_no_sync(world: World) -> None:
    seed(world, 1)
    with write_transaction(world.factory) as session:
        shop = session.get(Shop, world.shop_id)
        assert shop is not None
        shops.mark_uninstalled(session, shop, world.tick())

    assert _due(world) == []


def test_the_worker_runs_the_sync_job_against_shopify(world: World) -> None:
    (customer,) = seed(world, 1)
    with write_transaction(world.factory) as session:
        shop = session.get(Shop, world.shop_id)
        assert shop is not None
        shop.access_token_expires_at = datetime.now(UTC) + timedelta(days=1)  # no refresh needed
    http = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=create_devstore_app(world.store)), base_url="http://devstore"
    )
    worker = Worker(world.factory, kinds=[SYNC], services=services_factory(world.settings, http=http))
    try:
        assert worker.run_pending() == 1
    finally:
        worker.close()

    assert world.store.metafield_value(SHOP, world.gid(customer), "rfm_segment") == "Champions"
    with world.factory() as session:
        job = session.scalar(select(Job).where(Job.kind == SYNC))
        assert job is not None and job.state == "done"


def test_customers_redact_removes_the_apps_metafields_and_tags_from_shopify(
    world: World, app: object
) -> None:
    first, second = seed(world, 2)
    world.sync()
    world.settings_change(rfm_tag_prefix="seg:")  # an old prefix may still be on the customer

    with TestClient(app) as client:  # type: ignore[arg-type]
        payload = {
            "shop_id": 1,
            "shop_domain": SHOP,
            "customer": {"id": first},
            "orders_to_redact": [],
        }
        assert post_webhook(client, "customers/redact", payload, SHOP).status_code == 200
    with world.factory() as session:
        job = session.scalar(select(Job).where(Job.key == REDACT_KEY.format(customer_id=first)))
        assert job is not None and job.kind == SYNC and '"redact_customer"' in (job.payload or "")
        recorded = json.loads(job.payload or "{}")["app_tags"]
    assert first not in world.states()
    assert any(t.startswith("rfm:") for t in recorded)

    world.run(
        lambda admin: push.redact_customer(
            world.factory, admin, world.shop_id, SHOP, world.token, first, recorded
        )
    )

    assert world.metafields(first) == {}
    assert world.tags(first) == ["wholesale"]
    assert len(world.metafields(second)) == 10
    assert any(t.startswith("rfm:") for t in world.tags(second))
