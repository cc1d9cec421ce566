"""The push survives crashes, the cost budget, Shopify's refusals and conflicts, and large syncs."""

from __future__ import annotations

from collections import Counter
from decimal import Decimal
from typing import Any

import pytest

from app.models import Shop
from app.sync import push, service
from app.sync.service import sync_status
from shopify_double.state import metafield_digest
from tests.sync.conftest import SHOP, World, seed, variety


def _written_owners(world: World, start: int = 0) -> Counter[str]:
    """How many times each customer's metafields were sent (call by call)."""
    seen: Counter[str] = Counter()
    for call in world.calls()[start:]:
        for name, value in (call.variables or {}).items():
            if name.endswith("_metafields") and isinstance(value, list):
                for owner in {m["ownerId"] for m in value if "value" in m}:
                    seen[owner] += 1
    return seen


def _snapshot(world: World) -> dict[int, tuple[dict[str, tuple[str, str]], list[str]]]:
    return {c: (world.metafields(c), sorted(world.tags(c))) for c in world.customers}


@pytest.mark.both_dbs
def test_a_crash_between_documents_resumes_without_losing_or_repeating_writes(world: World) -> None:
    seed(world, 60)

    def crash(documents: int) -> None:
        if documents == 3:
            raise push.SyncStopped

    with pytest.raises(push.SyncStopped):
        world.sync(document_fields=4, after_document=crash)
    halfway = _written_owners(world)
    assert 0 < len(halfway) < 60

    world.sync(document_fields=4)

    assert set(_written_owners(world).values()) == {1}
    assert all(len(metafields) >= 8 for metafields, _ in _snapshot(world).values())
    with world.factory() as session:
        assert sync_status(session, world.shop_id).customers_pending == 0


def test_a_crash_before_a_document_is_recorded_writes_only_that_document_again(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed(world, 60)
    record = service.record_plans
    documents: list[list[int]] = []

    def crash_on_third(session: Any, shop_id: int, plans: Any, now: Any) -> int:
        plans = list(plans)
        if plans and not plans[0].empty:
            documents.append([p.customer_id for p in plans])
            if len(documents) == 3:
                raise push.SyncStopped  # Shopify has the writes, the app never recorded them
        return record(session, shop_id, plans, now)

    monkeypatch.setattr(service, "record_plans", crash_on_third)
    with pytest.raises(push.SyncStopped):
        world.sync(document_fields=4)
    monkeypatch.setattr(service, "record_plans", record)

    world.sync(document_fields=4)

    twice = {owner for owner, n in _written_owners(world).items() if n == 2}
    assert twice == {world.gid(c) for c in documents[2]}
    assert max(_written_owners(world).values()) == 2
    assert len(_written_owners(world)) == 60
    with world.factory() as session:
        assert sync_status(session, world.shop_id).customers_pending == 0


def test_the_cost_budget_is_never_exceeded(world: World) -> None:
    seed(world, 400)

    world.sync()

    calls = world.calls()
    assert not [c for c in calls if c.throttled]
    requested = sum(c.requested_cost for c in calls)
    assert requested > 2000  # more than one bucketful: the client had to wait
    minimum = (requested - 2000) / 100
    assert minimum <= sum(world.slept) <= minimum * 1.2 + 5


def test_a_throttled_reply_is_waited_out(world: World) -> None:
    (customer,) = seed(world, 1)
    world.store.shop(SHOP).bucket.drain()

    world.sync()

    assert [c for c in world.calls() if c.throttled]
    assert world.slept
    assert len(world.metafields(customer)) == 9


@pytest.mark.both_dbs
def test_the_bulk_mutation_path_ends_in_the_same_state_as_call_by_call(world: World) -> None:
    seed(world, 45)
    world.sync(bulk_threshold=10)
    by_bulk = _snapshot(world)
    operations = world.store.bulk.all(SHOP)
    assert {op.type for op in operations} == {"MUTATION"}
    assert {op.status for op in operations} == {"COMPLETED"}
    assert len(world.calls()) < 45

    shop = world.store.shop(SHOP)
    shop.metafields.clear()
    for customer in world.customers:
        shop.customers[customer].tags = ["wholesale"]
    with world.factory.begin() as session:
        session.execute(__import__("sqlalchemy").text("DELETE FROM customer_sync_state"))
    world.sync(bulk_threshold=10_000)

    assert _snapshot(world) == by_bulk


def test_after_a_bulk_sync_the_next_write_carries_shopifys_digest(world: World) -> None:
    ids = seed(world, 15)
    world.sync(bulk_threshold=10)
    start = len(world.calls())

    world.score(ids[0], **(variety(0) | {"segment": "Dormant"}))
    world.sync(bulk_threshold=10)

    sent = [
        m
        for c in world.calls()[start:]
        for k, v in (c.variables or {}).items()
        if k.endswith("_metafields")
        for m in v
    ]
    assert [m["key"] for m in sent] == ["rfm_segment"]
    assert sent[0]["compareDigest"] == metafield_digest("single_line_text_field", "Champions")
    assert world.store.metafield_value(SHOP, world.gid(ids[0]), "rfm_segment") == "Dormant"


def test_a_stale_digest_is_reread_and_the_write_retried_once(world: World) -> None:
    (customer,) = seed(world, 1)
    world.sync()
    ns = world.store.app_namespace
    held = world.store.shop(SHOP).metafields[(world.gid(customer), ns, "rfm_segment")]
    held.value = "Loyal"  # another writer got there in between: our digest is stale

    world.score(customer, segment="Dormant")
    world.sync()

    assert world.store.metafield_value(SHOP, world.gid(customer), "rfm_segment") == "Dormant"
    assert any("SyncDigests" in c.query for c in world.calls())
    assert world.states()[customer].error is None


def test_a_value_shopify_refuses_is_recorded_for_that_customer_only(world: World) -> None:
    first, second = seed(world, 2)
    shop = world.store.shop(SHOP)
    definition = shop.definition_for("CUSTOMER", world.store.app_namespace, "rfm_segment")
    assert definition is not None
    definition.validations["choices"] = '["Loyal", "Active"]'  # index 0 gets "Champions": refused

    world.sync()

    assert world.store.metafield_value(SHOP, world.gid(second), "rfm_segment") == "Loyal"
    assert world.store.metafield_value(SHOP, world.gid(first), "rfm_segment") is None
    with world.factory() as session:
        status = sync_status(session, world.shop_id)
    assert status.customers_refused == 1
    assert status.customers_pending == 1
    assert status.errors[0].startswith(f"Customer {first}: Shopify refused the RFM segment")
    assert "Champions" in status.errors[0]


def test_a_customer_refused_three_times_waits_for_new_values(world: World) -> None:
    (customer,) = seed(world, 1)
    definition = world.store.shop(SHOP).definition_for("CUSTOMER", world.store.app_namespace, "rfm_segment")
    assert definition is not None
    definition.validations["choices"] = '["Loyal"]'
    for _ in range(3):
        world.sync()
    before = len(world.calls())

    world.sync()

    assert len(world.calls()) == before
    with world.factory() as session:
        assert sync_status(session, world.shop_id).customers_pending == 0
    world.score(customer, segment="Loyal")
    world.sync()
    assert world.store.metafield_value(SHOP, world.gid(customer), "rfm_segment") == "Loyal"
    assert world.states()[customer].error is None


def test_a_revoked_token_stops_the_sync_and_is_forgotten(world: World) -> None:
    seed(world, 3)
    world.store.revoke(SHOP)

    assert world.sync() is None

    with world.factory() as session:
        shop = session.get(Shop, world.shop_id)
        assert shop is not None and shop.access_token_encrypted is None
        status = sync_status(session, world.shop_id)
    assert "reconnect" in status.errors[0]
    assert status.customers_pending == 3


def test_money_and_dates_keep_shopifys_formats(world: World) -> None:
    (customer,) = seed(world, 1)
    world.score(customer, predicted_clv=Decimal("1234567.005"), historic_clv=Decimal("0"), churn_risk=1.0)

    world.sync()

    values: dict[str, Any] = {k: v for k, (_, v) in world.metafields(customer).items()}
    assert values["predicted_clv"] == "1234567.01"
    assert values["historic_clv"] == "0.00"
    assert values["churn_risk"] == "1.0000"
