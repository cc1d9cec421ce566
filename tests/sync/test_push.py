"""Scores into Shopify, asserted on what the double ends up holding."""

from __future__ import annotations

from decimal import Decimal

import pytest

from app.sync.desired import METAFIELD_TYPES
from app.sync.service import sync_status
from tests.sync.conftest import SHOP, World, seed

pytestmark = pytest.mark.both_dbs


def _mutation_calls(world: World) -> list[str]:
    return [c.query for c in world.calls() if c.query.lstrip().startswith("mutation")]


def test_first_sync_writes_every_metafield_with_its_type_and_the_app_tags(world: World) -> None:
    (first, second) = seed(world, 2)
    world.score(
        first, segment="Needs attention", stage="at_risk", predicted_clv=Decimal("123.455"), clv_tier="top-10"
    )

    world.sync()

    held = world.metafields(first)
    assert held["rfm_segment"] == ("single_line_text_field", "Needs attention")
    assert held["lifecycle_stage"] == ("single_line_text_field", "at_risk")
    assert held["predicted_clv"] == ("number_decimal", "123.46")
    assert held["rfm_recency"] == ("number_integer", "4")
    assert held["next_order_date"] == ("date", "2026-04-02")
    assert {k: t for k, (t, _) in held.items()} == METAFIELD_TYPES
    assert world.store.metafield_value(SHOP, world.gid(first), "churn_risk") == "0.2500"
    assert sorted(world.tags(first)) == [
        "clv:top-10",
        "clv:top-25",
        "rfm:needs-attention",
        "stage:at-risk",
        "wholesale",
    ]
    assert "wholesale" in world.tags(second)


def test_unchanged_scores_cause_no_call(world: World) -> None:
    seed(world, 5)
    world.sync()
    before = len(world.calls())

    world.sync()

    assert len(world.calls()) == before


def test_a_changed_value_sends_only_that_metafield_and_tag(world: World) -> None:
    (customer,) = seed(world, 1)
    world.score(customer, segment="Loyal")
    world.sync()
    before = len(world.calls())

    world.score(customer, segment="Champions")
    world.sync()

    calls = world.calls()[before:]
    assert len(calls) == 1
    sent = calls[0].variables or {}
    metafields = [m for k, v in sent.items() if k.endswith("_metafields") for m in v]
    assert [(m["key"], m["value"]) for m in metafields] == [("rfm_segment", "Champions")]
    assert "compareDigest" in metafields[0]
    assert sorted(world.tags(customer)) == ["clv:top-25", "rfm:champions", "stage:active", "wholesale"]


def test_segments_are_created_once_on_the_app_tags(world: World) -> None:
    ids = seed(world, 30)
    world.sync()
    shop = world.store.shop(SHOP)
    by_name = {s.name: s for s in shop.segments.values()}

    assert len(by_name) == 17
    assert by_name["RFM · Champions"].query == "customer_tags CONTAINS 'rfm:champions'"
    members = world.store.segment_member_ids(SHOP, by_name["RFM · Champions"].id)
    assert members == {world.gid(c) for i, c in enumerate(ids) if i % 10 == 0}
    assert world.store.segment_member_ids(SHOP, by_name["CLV · Top 25%"].id) == {
        world.gid(c) for i, c in enumerate(ids) if i % 3 in (0, 1)
    }

    world.score(ids[0], segment="Loyal")
    world.sync()
    assert len(shop.segments) == 17
    assert not [q for q in _mutation_calls(world) if "segmentCreate" in q][17:]


def test_a_segment_name_the_merchant_took_gets_the_app_name(world: World) -> None:
    seed(world, 1)
    world.store.shop(SHOP).segments.clear()
    from shopify_double.state import Segment

    shop = world.store.shop(SHOP)
    mine = Segment(
        id=1,
        name="RFM · Champions",
        query="number_of_orders >= 2",
        creation_date=world.now,
        last_edit_date=world.now,
    )
    shop.segments[1] = mine

    world.sync()

    names = {s.name for s in shop.segments.values()}
    assert "RFM · Champions (RFM & CLV)" in names
    assert shop.segments[1].query == "number_of_orders >= 2"


def test_a_prefix_change_migrates_the_tags_and_segment_queries(world: World) -> None:
    ids = seed(world, 6)
    world.sync()

    world.settings_change(rfm_tag_prefix="seg-", clv_tag_prefix="value_")
    world.sync()

    for customer in ids:
        tags = world.tags(customer)
        assert not any(t.startswith(("rfm:", "clv:")) for t in tags), tags
        assert any(t.startswith("seg-") for t in tags)
        assert "wholesale" in tags
        assert any(t.startswith("stage:") for t in tags)
    queries = {s.name: s.query for s in world.store.shop(SHOP).segments.values()}
    assert queries["RFM · Champions"] == "customer_tags CONTAINS 'seg-champions'"
    assert queries["CLV · Top 10%"] == "customer_tags CONTAINS 'value_top-10'"
    assert len(queries) == 17
    with world.factory() as session:
        assert sync_status(session, world.shop_id).customers_pending == 0


def test_sync_off_deletes_the_segments_and_writes_nothing(world: World) -> None:
    (customer,) = seed(world, 1)
    world.sync()
    assert len(world.store.shop(SHOP).segments) == 17

    world.settings_change(sync_enabled=False)
    world.score(customer, segment="Dormant")
    world.sync()

    assert world.store.shop(SHOP).segments == {}
    assert world.store.metafield_value(SHOP, world.gid(customer), "rfm_segment") == "Champions"


def test_a_removed_score_takes_the_apps_metafields_and_tags_away(world: World) -> None:
    (customer, other) = seed(world, 2)
    world.sync()

    world.drop_score(customer)
    world.sync()

    assert world.metafields(customer) == {}
    assert world.tags(customer) == ["wholesale"]
    assert world.metafields(other)
    assert customer not in world.states()


def test_status_reports_last_sync_and_nothing_pending(world: World) -> None:
    seed(world, 3)
    with world.factory() as session:
        assert sync_status(session, world.shop_id).customers_pending == 3

    world.sync()

    with world.factory() as session:
        status = sync_status(session, world.shop_id)
    assert status.customers_pending == 0
    assert status.last_sync_at is not None
    assert status.last_written == 3
    assert status.errors == []


def test_a_shop_on_thirds_writes_its_groups_as_metafields_tags_and_segments(world: World) -> None:
    ids = seed(world, 3)
    world.sync()
    world.settings_change(scoring_method="thirds")
    for customer, group, scores in zip(
        ids, ("Top", "Middle", "Low"), ((3, 3, 2), (3, 1, 1), (1, 1, 2)), strict=True
    ):
        r, f, m = scores
        world.score(customer, segment=group, recency_score=r, frequency_score=f, monetary_score=m)

    world.sync()

    for customer, group in zip(ids, ("top", "middle", "low"), strict=True):
        assert world.metafields(customer)["rfm_segment"][1] == group.capitalize()
        rfm_tags = [t for t in world.tags(customer) if t.startswith("rfm:")]
        assert rfm_tags == [f"rfm:{group}"]
    assert world.metafields(ids[1])["rfm_recency"] == ("number_integer", "3")
    names = {s.name: s.query for s in world.store.shop(SHOP).segments.values()}
    rfm = sorted(n for n in names if n.startswith("RFM · "))
    assert rfm == ["RFM · Low", "RFM · Middle", "RFM · Top"]
    assert names["RFM · Top"] == "customer_tags CONTAINS 'rfm:top'"
    assert len(names) == 3 + 5 + 2  # the groups, the stages, the CLV tiers


def test_total_clv_is_written_as_historic_plus_predicted(world: World) -> None:
    (customer,) = seed(world, 1)
    world.score(customer, predicted_clv=Decimal("123.455"), historic_clv=Decimal("80.004"))

    world.sync()

    held = world.metafields(customer)
    assert held["historic_clv"] == ("number_decimal", "80.00")
    assert held["predicted_clv"] == ("number_decimal", "123.46")
    assert held["total_clv"] == ("number_decimal", "203.46")


def test_a_customer_unlikely_to_return_loses_the_next_order_date_in_shopify(world: World) -> None:
    (customer,) = seed(world, 1)
    world.score(customer)
    world.sync()
    assert world.metafields(customer)["next_order_date"] == ("date", "2026-04-02")

    world.score(customer, expected_next_order_at=None, churn_risk=0.9)
    world.sync()

    held = world.metafields(customer)
    assert "next_order_date" not in held
    assert held["churn_risk"] == ("number_decimal", "0.9000")
