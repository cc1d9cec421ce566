"""What Shopify should hold for a customer: metafield values, app tags, segments (docs/metrics.md)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.sync.desired import (
    METAFIELD_TYPES,
    CustomerValues,
    TagPrefixes,
    desired_state,
    segment_specs,
    tag_changes,
)
from app.vocabulary import slug

VALUES = CustomerValues(
    recency_score=5,
    frequency_score=4,
    monetary_score=3,
    segment="Needs attention",
    stage="at_risk",
    predicted_clv=Decimal("123.455"),
    historic_clv=Decimal("80"),
    churn_risk=0.123456,
    expected_next_order_at=datetime(2026, 12, 24, 23, 30, tzinfo=UTC),
    clv_tier="top-10",
)


def test_metafield_values_are_strings_in_shopifys_formats() -> None:
    state = desired_state(VALUES, TagPrefixes())
    assert state.metafields == {
        "rfm_recency": "5",
        "rfm_frequency": "4",
        "rfm_monetary": "3",
        "rfm_segment": "Needs attention",
        "lifecycle_stage": "at_risk",
        "predicted_clv": "123.46",
        "historic_clv": "80.00",
        "total_clv": "203.46",
        "churn_risk": "0.1235",
        "next_order_date": "2026-12-24",
    }
    assert set(state.metafields) <= set(METAFIELD_TYPES)


def test_tags_carry_the_merchants_prefixes() -> None:
    state = desired_state(VALUES, TagPrefixes(rfm="seg/", stage="life/", clv="value/"))
    assert state.tags == {"seg/needs-attention", "life/at-risk", "value/top-10", "value/top-25"}


def test_top_25_tier_gets_one_clv_tag() -> None:
    tags = desired_state(replace(VALUES, clv_tier="top-25"), TagPrefixes()).tags
    assert {t for t in tags if t.startswith("clv:")} == {"clv:top-25"}


def test_no_tier_gets_no_clv_tag() -> None:
    assert not any(
        t.startswith("clv:") for t in desired_state(replace(VALUES, clv_tier=None), TagPrefixes()).tags
    )


def test_missing_next_order_date_is_not_sent() -> None:
    assert (
        "next_order_date"
        not in desired_state(replace(VALUES, expected_next_order_at=None), TagPrefixes()).metafields
    )


def test_tag_changes_never_touch_merchant_tags() -> None:
    add, remove = tag_changes(
        ["VIP-manual", "rfm:loyal", "Stage:At-Risk", "wholesale"],
        frozenset({"rfm:champions", "stage:at-risk"}),
        TagPrefixes().all(),
    )
    assert add == ["rfm:champions"]
    assert remove == ["rfm:loyal"]


def test_prefix_change_removes_tags_with_the_former_prefix() -> None:
    add, remove = tag_changes(["rfm:loyal", "keep-me"], frozenset({"seg:loyal"}), ("seg:", "rfm:"))
    assert (add, remove) == (["seg:loyal"], ["rfm:loyal"])


@given(
    merchant=st.lists(st.text(alphabet="abcdefgh-", min_size=1, max_size=8), max_size=6),
    app=st.lists(st.sampled_from(["rfm:loyal", "rfm:new", "stage:lapsed", "clv:top-25"]), max_size=4),
    want=st.sets(st.sampled_from(["rfm:loyal", "rfm:champions", "stage:new", "clv:top-10"])),
)
def test_applying_tag_changes_gives_merchant_tags_plus_desired(
    merchant: list[str], app: list[str], want: set[str]
) -> None:
    current = merchant + app
    add, remove = tag_changes(current, frozenset(want), TagPrefixes().all())
    after = {t.lower() for t in current if t not in remove} | {t.lower() for t in add}
    assert after == {t.lower() for t in merchant} | want


@pytest.mark.parametrize(
    ("name", "tag"),
    [
        ("Champions", "champions"),
        ("Needs attention", "needs-attention"),
        ("Previously loyal", "previously-loyal"),
        ("At risk", "at-risk"),
    ],
)
def test_slug(name: str, tag: str) -> None:
    assert slug(name) == tag


def test_segment_specs_are_unique_single_clause_tag_queries() -> None:
    specs = segment_specs(TagPrefixes())
    assert len(specs) == 10 + 5 + 2  # ten RFM segments, five stages, two CLV tiers
    assert len({s.name for s in specs}) == len(specs)
    assert len({s.key for s in specs}) == len(specs)
    champions = next(s for s in specs if s.key == "rfm:champions")
    assert (champions.name, champions.query) == ("RFM · Champions", "customer_tags CONTAINS 'rfm:champions'")
    assert all(s.query.count("CONTAINS") == 1 for s in specs)


def test_only_tags_of_the_apps_vocabulary_are_removed_whatever_their_first_letters() -> None:
    # a record that somehow names a merchant tag ("vip") still cannot remove it: the app never writes it
    add, remove = tag_changes(["vip", "vegan", "vnew", "v-merchant-own"], frozenset({"vactive"}), ("v", "v-"))
    assert (add, remove) == (["vactive"], ["vnew"])
