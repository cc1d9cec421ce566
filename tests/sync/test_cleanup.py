"""Removing everything the app wrote to Shopify (app/sync/cleanup.py), against the double: the app's
tags, its `$app` metafields and its segments go; the merchant's own tags (even those that share the
prefixes' first letters), metafields and segments stay; the counts shown before are what is
removed; a crash resumes without repeating a customer; the sync does not write anything back."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select

from app.kit.db import write_transaction
from app.models import CustomerSyncState, ShopCleanup, SyncedSegment
from app.settings.service import get_settings
from app.shopify.admin_client import AdminClient
from app.sync import cleanup
from app.sync.push import SyncStopped
from shopify_double.state import Metafield, Segment
from tests.sync.conftest import SHOP, World, seed

MERCHANT = ("vip", "rfm:mine", "stage-manual", "clv:custom", "wholesale")
"""The merchant's own tags, some under the app's prefixes (none is a tag the app writes)."""
MERCHANT_SEGMENT = "Our champions"


def _merchant_data(world: World, customers: list[int]) -> None:
    """A metafield of the merchant's own (namespace "custom", one of the app's key names) on every
    customer, and a segment of theirs on one of the app's tags."""
    shop = world.store.shop(SHOP)
    now = datetime(2026, 3, 1, tzinfo=UTC)
    for customer in customers:
        owner = world.gid(customer)
        shop.metafields[(owner, "custom", "rfm_segment")] = Metafield(
            shop.next_id(), owner, "custom", "rfm_segment", "single_line_text_field", "ours", now, now
        )
    segment_id = shop.next_id()
    shop.segments[segment_id] = Segment(
        segment_id, MERCHANT_SEGMENT, "customer_tags CONTAINS 'rfm:champions'", now, now
    )


def _app_held(world: World) -> tuple[int, int, int]:
    """What the double holds of the app: customers with an app tag, `$app` metafields, app segments."""
    shop = world.store.shop(SHOP)
    tagged = sum(1 for c in world.customers if set(world.tags(c)) - set(MERCHANT))
    metafields = sum(1 for (_, ns, _) in shop.metafields if ns == world.store.app_namespace)
    segments = sum(1 for s in shop.segments.values() if s.name != MERCHANT_SEGMENT)
    return tagged, metafields, segments


def _request(world: World) -> ShopCleanup:
    with write_transaction(world.factory) as session:
        row = cleanup.request_cleanup(session, world.shop_id, world.tick())
        session.expunge(row)
        return row


def _clean(world: World, **kwargs: Any) -> None:
    async def go(admin: AdminClient) -> None:
        for _ in range(50):
            again = await cleanup.clean_up_shop(
                world.factory, admin, world.shop_id, world.token, world.tick, **kwargs
            )
            if again is None:
                return
            world.clock.advance(again)
        raise AssertionError("the clean-up never finished")

    world.run(go)


def _status(world: World) -> cleanup.CleanupStatus:
    with world.factory() as session:
        status = cleanup.cleanup_status(session, world.shop_id)
    assert status is not None
    return status


@pytest.fixture
def synced(world: World) -> World:
    customers = seed(world, 30, merchant_tags=MERCHANT)
    _merchant_data(world, customers)
    world.sync()
    tagged, metafields, segments = _app_held(world)
    assert tagged == 30 and metafields > 200 and segments > 10
    return world


@pytest.mark.both_dbs
def test_the_clean_up_leaves_nothing_of_the_app_and_everything_of_the_merchant(synced: World) -> None:
    world = synced
    _request(world)
    _clean(world)

    assert _app_held(world) == (0, 0, 0)
    shop = world.store.shop(SHOP)
    for customer in world.customers:
        assert sorted(world.tags(customer)) == sorted(MERCHANT)
        assert [(m.namespace, m.key, m.value) for m in shop.metafields_of(world.gid(customer))] == [
            ("custom", "rfm_segment", "ours")
        ]
    assert [s.name for s in shop.segments.values()] == [MERCHANT_SEGMENT]
    with world.factory() as session:
        assert (
            session.scalars(select(CustomerSyncState).where(CustomerSyncState.shop_id == world.shop_id)).all()
            == []
        )
        assert (
            session.scalars(select(SyncedSegment).where(SyncedSegment.shop_id == world.shop_id)).all() == []
        )
    assert _status(world).state == "done"


def test_the_counts_shown_before_are_what_is_removed(synced: World) -> None:
    world = synced
    with world.factory() as session:
        shown = cleanup.what_would_be_removed(session, world.shop_id)
    assert (shown.customers, shown.metafields, shown.segments) == _app_held(world)

    _request(world)
    _clean(world)

    status = _status(world)
    assert status.planned == shown
    assert status.removed == shown
    assert status.refused_customers == 0 and status.error is None and status.percent == 100


def test_a_crash_between_documents_resumes_and_removes_each_customer_once(synced: World) -> None:
    world = synced
    _request(world)

    def crash(documents: int) -> None:
        if documents == 2:
            raise SyncStopped

    with pytest.raises(SyncStopped):
        _clean(world, document_fields=5, after_document=crash)
    assert _status(world).state == "running"
    assert 0 < _app_held(world)[0] < 30

    _clean(world, document_fields=5)

    assert _app_held(world) == (0, 0, 0)
    removals: Counter[str] = Counter()
    deletes: Counter[str] = Counter()
    for call in world.calls():
        for name, value in (call.variables or {}).items():
            if "tagsRemove" in call.query and name.startswith("r") and name.endswith("_id"):
                removals[value] += 1
            if "metafieldsDelete" in call.query and name.startswith("d") and name.endswith("_metafields"):
                deletes.update(f"{item['ownerId']} {item['key']}" for item in value)
    assert set(removals) == {world.gid(c) for c in world.customers}
    assert set(removals.values()) == {1}
    assert set(deletes.values()) == {1}
    status = _status(world)
    assert status.removed == status.planned


def test_the_sync_is_off_afterwards_and_writes_nothing_back(synced: World) -> None:
    world = synced
    _request(world)
    with world.factory() as session:
        assert get_settings(session, world.shop_id).sync_enabled is False
    _clean(world)

    world.score(world.customers[0], segment="Champions", stage="active")
    world.sync()
    world.run_sync_jobs()

    assert _app_held(world) == (0, 0, 0)


def test_turning_the_sync_back_on_writes_everything_again(synced: World) -> None:
    world = synced
    _request(world)
    _clean(world)

    world.settings_change(sync_enabled=True)
    world.sync()

    tagged, metafields, segments = _app_held(world)
    assert tagged == 30 and metafields > 200 and segments > 10
    assert all(set(MERCHANT) <= set(world.tags(c)) for c in world.customers)


def test_the_sync_leaves_the_shop_alone_while_the_clean_up_is_queued(synced: World) -> None:
    world = synced
    _request(world)
    world.settings_change(sync_enabled=True)  # the merchant turns it back on at once
    calls = len(world.calls())

    world.sync()

    assert len(world.calls()) == calls
    _clean(world)
    assert _app_held(world) == (0, 0, 0)


def test_an_uninstalled_shop_is_not_called_and_the_clean_up_says_why(synced: World) -> None:
    world = synced
    _request(world)
    with write_transaction(world.factory) as session:
        from app.models import Shop

        shop = session.get(Shop, world.shop_id)
        assert shop is not None
        shop.uninstalled_at = world.tick()
    calls = len(world.calls())

    _clean(world)

    assert len(world.calls()) == calls
    status = _status(world)
    assert status.state == "failed"
    assert status.error is not None and "uninstalled" in status.error


def _bulk_runs(world: World) -> int:
    return sum(1 for c in world.calls() if "bulkOperationRunMutation" in c.query)


@pytest.mark.both_dbs
def test_many_customers_go_by_bulk_mutation_with_the_same_outcome(synced: World) -> None:
    world = synced
    _request(world)

    _clean(world, bulk_threshold=10, bulk_batch=12)  # two bulk batches of 12, then 6 by documents

    assert _bulk_runs(world) == 4  # metafieldsDelete then tagsRemove, per batch
    assert _app_held(world) == (0, 0, 0)
    assert all(sorted(world.tags(c)) == sorted(MERCHANT) for c in world.customers)
    status = _status(world)
    assert status.state == "done" and status.removed == status.planned and status.refused_customers == 0


def test_a_crash_while_a_bulk_removal_runs_resumes_it_without_starting_it_again(synced: World) -> None:
    world = synced
    _request(world)

    async def one_step(admin: AdminClient) -> float | None:
        return await cleanup.clean_up_shop(
            world.factory, admin, world.shop_id, world.token, world.tick, bulk_threshold=10, bulk_batch=100
        )

    world.store.bulk.auto_complete = False
    assert world.run(one_step) is not None  # the metafields' bulk mutation runs in Shopify
    assert _bulk_runs(world) == 1
    # the worker dies here; Shopify finishes the operation; the job runs again later
    (running,) = world.store.bulk.all(SHOP)
    world.store.bulk.complete(SHOP, running.id)
    world.store.bulk.auto_complete = True

    _clean(world, bulk_threshold=10, bulk_batch=100)

    assert _bulk_runs(world) == 2
    assert _app_held(world) == (0, 0, 0)
    status = _status(world)
    assert status.removed == status.planned


def test_a_refused_token_stops_the_clean_up_with_the_reason_and_frees_the_sync(synced: World) -> None:
    world = synced
    _request(world)
    world.store.revoke(SHOP, world.token)

    _clean(world)

    status = _status(world)
    assert status.state == "failed"
    assert status.error is not None and "reconnect" in status.error
    with world.factory() as session:
        from app.sync import repository as sync_repo

        assert sync_repo.cleanup_active(session, world.shop_id) is False
    assert _app_held(world)[0] == 30  # nothing could be removed: it all stays, as the page says
