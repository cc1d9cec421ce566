"""Webhooks during the import, the bulk_operations/finish topic, and reconciliation."""

from __future__ import annotations

from starlette.testclient import TestClient

from app.imports import pull
from app.imports.schemas import ImportState
from shopify_double import order_payload
from tests.fixtures.webhooks import post_webhook
from tests.imports.conftest import SHOP, World, expected_aggregates, no_sleep, seed_history


def _step(world: World) -> pull.ImportProgress:
    return world.run(lambda admin: pull.advance_import(world.factory, admin, world.shop_id))


def _finish(world: World) -> pull.ImportProgress:
    return world.run(lambda admin: pull.run_import(world.factory, admin, world.shop_id, sleep=no_sleep))


def _reconcile(world: World) -> pull.ReconcileReport:
    return world.run(lambda admin: pull.reconcile(world.factory, admin, world.shop_id))


def test_webhooks_newer_and_older_than_the_snapshot_are_neither_lost_nor_counted_twice(
    world: World, client: TestClient
) -> None:
    seed_history(world.store, 300)
    store = world.store
    buyers = [o for o in store.shop(SHOP).orders.values() if o.customer_id and not o.cancelled_at]
    late, changed = buyers[0], buyers[1]
    old_payload = order_payload(store, SHOP, late)  # a delivery Shopify will retry much later
    store.update_order(SHOP, late.id, total_price=late.total_price + 5)
    world.run(lambda admin: pull.start_import(world.factory, world.shop_id))
    _step(world)  # the export starts: its file is a snapshot of now
    # After the snapshot: an order changes and its webhook arrives before the file is ingested.
    store.update_order(SHOP, changed.id, cancelled_at=store.now(), financial_status="VOIDED")
    assert (
        post_webhook(client, "orders/cancelled", order_payload(store, SHOP, changed), SHOP).status_code == 200
    )
    # A new order only webhooks know about.
    fresh = store.create_order(SHOP, customer_id=changed.customer_id, total_price="42.00")
    assert post_webhook(client, "orders/create", order_payload(store, SHOP, fresh), SHOP).status_code == 200
    # And the late retry of a state older than the snapshot.
    assert post_webhook(client, "orders/updated", old_payload, SHOP).status_code == 200

    progress = _finish(world)

    assert progress.state == ImportState.done
    assert world.aggregates() == expected_aggregates(store)


def test_the_bulk_finish_webhook_marks_the_running_import_ready_to_download(
    world: World, client: TestClient
) -> None:
    seed_history(world.store, 20)
    world.store.bulk.auto_complete = False
    world.run(lambda admin: pull.start_import(world.factory, world.shop_id))
    _step(world)
    op = world.store.bulk.complete(SHOP, world.import_row().bulk_operation_id or "")
    payload = {
        "admin_graphql_api_id": op.gid,
        "completed_at": "2024-01-01T00:00:00Z",
        "created_at": "2024-01-01T00:00:00Z",
        "error_code": None,
        "status": "completed",
        "type": "query",
    }

    response = post_webhook(client, "bulk_operations/finish", payload, SHOP)

    assert response.status_code == 200
    row = world.import_row()
    assert row.state == ImportState.downloading and row.ready_at is not None
    assert _finish(world).state == ImportState.done


def test_reconciliation_repairs_a_dropped_webhook_and_reports_the_count(world: World) -> None:
    seed_history(world.store, 100)
    _finish(world)
    store = world.store
    order = next(o for o in store.shop(SHOP).orders.values() if o.customer_id and not o.cancelled_at)
    store.update_order(SHOP, order.id, cancelled_at=store.now(), financial_status="VOIDED")  # webhook lost

    report = _reconcile(world)

    assert report.repaired == 1
    assert world.aggregates() == expected_aggregates(store)
    assert _reconcile(world).repaired == 0


def test_reconciliation_refetches_orders_flagged_by_orders_edited(world: World, client: TestClient) -> None:
    seed_history(world.store, 30)
    _finish(world)
    store = world.store
    order = next(o for o in store.shop(SHOP).orders.values() if o.customer_id and not o.cancelled_at)
    _reconcile(world)
    # Move the watermark past the edit so only the stale flag can bring the order back.
    store.update_order(SHOP, order.id, total_price=order.total_price + 7)
    edit = {"order_edit": {"id": 1, "order_id": order.id, "committed_at": store.now().isoformat()}}
    assert post_webhook(client, "orders/edited", edit, SHOP).status_code == 200
    from app.models import ShopSyncState

    with world.factory.begin() as s:
        sync = s.get(ShopSyncState, world.shop_id)
        assert sync is not None
        sync.reconciled_through = store.now()

    report = _reconcile(world)

    assert report.repaired == 1
    assert world.aggregates() == expected_aggregates(store)


def test_reconciliation_reads_a_changed_time_zone_whose_shop_update_was_lost(world: World) -> None:
    import json

    from sqlalchemy import delete, select

    from app.models import Job, Shop
    from app.scoring import service as scoring

    _finish(world)
    with world.factory.begin() as s:
        scoring.rescore_shop(s, world.shop_id, world.store.now(), full=True)
        s.execute(delete(Job).where(Job.shop_id == world.shop_id))
    world.store.update_shop(SHOP, iana_timezone="Asia/Kolkata")  # the shop/update delivery is lost

    _reconcile(world)

    with world.factory() as s:
        assert s.get_one(Shop, world.shop_id).iana_timezone == "Asia/Kolkata"
        job = s.scalars(select(Job).where(Job.shop_id == world.shop_id, Job.kind == scoring.RESCORE)).one()
        assert json.loads(job.payload or "{}") == {"full": True}
