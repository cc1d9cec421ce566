"""The product's names live in app/vocabulary.py only: pinned to the product specification (copied
into tests/data/product_vocabulary.json), and every tag and Shopify segment the sync writes is
built from them."""

from __future__ import annotations

import ast
import json
from dataclasses import replace
from decimal import Decimal
from itertools import product
from pathlib import Path

import pytest

from app import vocabulary as v
from app.sync.desired import CustomerValues, TagPrefixes, desired_state, segment_specs, tag_vocabulary

ROOT = Path(__file__).resolve().parents[1]
SPEC = json.loads((ROOT / "tests" / "data" / "product_vocabulary.json").read_text())


def test_the_default_grid_is_the_specified_five_by_five_grid() -> None:
    specified = {
        (int(r), fm): name for r, row in SPEC["segment_grid"].items() for fm, name in enumerate(row, start=1)
    }
    assert dict(v.DEFAULT_GRID) == specified
    assert set(v.GRID_CELLS) == set(specified)


def test_the_segment_names_are_the_ten_names_of_the_grid() -> None:
    grid_names = {name for row in SPEC["segment_grid"].values() for name in row}
    assert len(v.SEGMENT_NAMES) == len(set(v.SEGMENT_NAMES)) == 10
    assert set(v.SEGMENT_NAMES) == grid_names
    assert SPEC["vip_segment"] == v.VIP_SEGMENT


def test_the_thirds_groups_and_the_five_stages_are_the_specified_ones() -> None:
    assert list(v.THIRDS_GROUP_NAMES) == SPEC["thirds_groups"]
    assert list(v.STAGE_NAMES) == SPEC["stages"]
    assert set(v.STAGE_LABELS) == set(v.STAGE_NAMES)
    assert v.STAGE_LABELS["at_risk"] == "At risk"


def test_the_behaviour_segments_are_the_specified_seven_with_their_words() -> None:
    assert [v.BEHAVIOUR_LABELS[name].lower() for name in v.BEHAVIOUR_SEGMENT_NAMES] == [
        label.lower() for label in SPEC["behaviour_segments"]
    ]
    assert set(v.BEHAVIOUR_FLAG_COLUMNS) == set(v.BEHAVIOUR_SEGMENT_NAMES)


def test_the_clv_tiers_are_top_10_and_top_25_with_their_tags_and_segment_names() -> None:
    assert v.CLV_TIERS == ("top-10", "top-25")
    assert v.clv_tiers_held("top-10") == ("top-10", "top-25")  # the top 10% are in the top 25%
    assert v.clv_tiers_held("top-25") == ("top-25",)
    assert v.clv_tiers_held(None) == ()
    assert v.clv_tiers_within("top-25") == ("top-10", "top-25")
    specs = {s.name: s.query for s in segment_specs(TagPrefixes())}
    assert set(SPEC["shopify_segment_names"]) <= set(specs)
    assert specs["RFM · Champions"] == SPEC["shopify_segment_query"]


def test_the_specified_tags_are_what_the_app_writes_under_the_default_prefixes() -> None:
    values = CustomerValues(5, 5, 5, "Champions", "at_risk", Decimal(1), Decimal(1), 0.5, None, "top-10")
    assert desired_state(values, TagPrefixes()).tags == set(SPEC["tags"])


@pytest.mark.parametrize("prefixes", [TagPrefixes(), TagPrefixes("seg-", "life/", "value_")])
def test_every_tag_the_sync_writes_is_a_prefix_and_a_vocabulary_slug(prefixes: TagPrefixes) -> None:
    written: set[str] = set()
    base = CustomerValues(1, 1, 1, "", "", Decimal(0), Decimal(0), 0.0, None, None)
    for segment, stage, tier in product(v.SEGMENT_NAMES, v.STAGE_NAMES, (None, *v.CLV_TIERS)):
        written |= desired_state(replace(base, segment=segment, stage=stage, clv_tier=tier), prefixes).tags
    expected = (
        {prefixes.rfm + v.SEGMENT_TAGS[n] for n in v.SEGMENT_NAMES}
        | {prefixes.stage + v.STAGE_TAGS[s] for s in v.STAGE_NAMES}
        | {prefixes.clv + v.CLV_TIER_TAGS[t] for t in v.CLV_TIERS}
    )
    assert written == expected
    assert {t.lower() for t in written} <= tag_vocabulary(prefixes.all())


def test_the_shopify_segments_are_one_per_name_of_the_vocabulary() -> None:
    prefixes = TagPrefixes("seg-", "life/", "value_")
    specs = segment_specs(prefixes)
    expected = (
        [(v.RFM_SEGMENT_TITLE.format(n), prefixes.rfm + v.SEGMENT_TAGS[n]) for n in v.SEGMENT_NAMES]
        + [
            (v.STAGE_SEGMENT_TITLE.format(v.STAGE_LABELS[s]), prefixes.stage + v.STAGE_TAGS[s])
            for s in v.STAGE_NAMES
        ]
        + [
            (v.CLV_SEGMENT_TITLE.format(v.CLV_TIER_LABELS[t]), prefixes.clv + v.CLV_TIER_TAGS[t])
            for t in v.CLV_TIERS
        ]
    )
    assert [(s.name, s.query) for s in specs] == [
        (name, f"customer_tags CONTAINS '{tag}'") for name, tag in expected
    ]


# Names that are also ordinary words or identifiers elsewhere ("new", "active", a column called
# "vip", the thirds groups' tag slugs "middle" and "low" beside SVG's text-anchor="middle") cannot be
# told from a copy by their spelling; every other name may appear only here.
_ORDINARY = {
    "new",
    "active",
    "lapsed",
    "top",
    "middle",
    "low",
    *v.BEHAVIOUR_SEGMENT_NAMES,
    *v.BEHAVIOUR_FLAG_COLUMNS.values(),
}


def test_no_module_of_the_app_spells_a_name_of_the_vocabulary_itself() -> None:
    names = (
        set(v.SEGMENT_NAMES)
        | set(v.THIRDS_GROUP_NAMES)
        | set(v.STAGE_NAMES)
        | set(v.STAGE_LABELS.values())
        | set(v.BEHAVIOUR_LABELS.values())
        | set(v.CLV_TIERS)
        | set(v.CLV_TIER_LABELS.values())
        | {v.BELOW_CLV_TIERS_LABEL}
        | set(v.TAG_SUFFIXES)
    ) - _ORDINARY
    copies = [
        f"{path.relative_to(ROOT)}:{node.lineno} {node.value!r}"
        for path in sorted((ROOT / "app").rglob("*.py"))
        if path != ROOT / "app" / "vocabulary.py"
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in names
    ]
    templates = [
        f"{path.relative_to(ROOT)} {name!r}"
        for path in sorted((ROOT / "app").rglob("*.html"))
        for name in sorted(names)
        if f'"{name}"' in path.read_text() or f"'{name}'" in path.read_text()
    ]
    assert copies + templates == []
