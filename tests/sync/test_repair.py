""" "Sync to Shopify now" repairs drift: what Shopify holds is compared with the app's record, and
app tags or metafields removed in Shopify are written again; merchant tags stay, customers in step
get no write."""

from __future__ import annotations

import pytest

from app.admin.service import request_sync
from app.kit.db import write_transaction
from tests.sync.conftest import SHOP, World, seed

pytestmark = pytest.mark.both_dbs


def _press_sync_now(world: World) -> None:
    with write_transaction(world.factory) as session:
        assert request_sync(session, world.shop_id, world.tick())


def _mutations(world: World, since: int) -> list[str]:
    return [c.query for c in world.calls()[since:] if c.query.lstrip().startswith("mutation")]


def _drift(world: World, customer_id: int, *, prefix: str, metafield: str) -> None:
    """The merchant (or another app) removes an app tag and an app metafield in Shopify."""
    shop = world.store.shop(SHOP)
    tags = shop.customers[customer_id].tags
    tags.remove(next(t for t in tags if t.startswith(prefix)))
    del shop.metafields[(world.gid(customer_id), world.store.app_namespace, metafield)]


def test_sync_now_writes_back_an_app_tag_and_metafield_removed_in_shopify(world: World) -> None:
    first, second, third = seed(world, 3, merchant_tags=("vip", "rfm-fan", "wholesale"))
    world.sync()
    held = {c: (sorted(world.tags(c)), world.metafields(c)) for c in (first, second, third)}
    _drift(world, second, prefix="rfm:", metafield="predicted_clv")
    before = len(world.calls())

    _press_sync_now(world)
    world.sync()

    assert {c: (sorted(world.tags(c)), world.metafields(c)) for c in (first, second, third)} == held
    written = _mutations(world, before)
    assert len(written) == 1  # one document, for the one customer that drifted
    sent = [c.variables for c in world.calls()[before:] if c.query in written]
    assert world.gid(second) in str(sent)
    assert world.gid(first) not in str(sent) and world.gid(third) not in str(sent)


def test_sync_now_without_drift_writes_nothing(world: World) -> None:
    seed(world, 4, merchant_tags=("vip",))
    world.sync()
    before = len(world.calls())

    _press_sync_now(world)
    world.sync()

    assert _mutations(world, before) == []
    reads = [c.query for c in world.calls()[before:]]
    assert len(reads) == 1 and "SyncRepairRead" in reads[0]  # one paged read of four customers


def test_a_merchant_edit_of_an_app_metafield_is_set_back(world: World) -> None:
    (customer,) = seed(world, 1)
    world.sync()
    shop = world.store.shop(SHOP)
    metafield = shop.metafields[(world.gid(customer), world.store.app_namespace, "rfm_segment")]
    metafield.value = "Dormant"

    _press_sync_now(world)
    world.sync()

    assert world.store.metafield_value(SHOP, world.gid(customer), "rfm_segment") == "Champions"


def test_drift_on_many_customers_goes_through_the_bulk_mutation(world: World) -> None:
    ids = seed(world, 6, merchant_tags=("vip",))
    world.sync()
    held = {c: (sorted(world.tags(c)), world.metafields(c)) for c in ids}
    for customer in ids[:4]:
        _drift(world, customer, prefix="stage:", metafield="churn_risk")
    before = len(world.calls())

    _press_sync_now(world)
    world.sync(bulk_threshold=2)

    assert {c: (sorted(world.tags(c)), world.metafields(c)) for c in ids} == held
    assert any("bulkOperationRunMutation" in q for q in _mutations(world, before))
    assert not any("SyncBatch" in q for q in _mutations(world, before))
