"""What Shopify should hold for one customer: the app's metafields, its tags, and the segments
built on those tags (docs/architecture.md, "sync"). Every tag and segment name comes from
``app.vocabulary``. Pure functions: the sync service diffs this against what was
last written and sends only the difference."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal

from app.vocabulary import (
    CLV_SEGMENT_TITLE,
    CLV_TIER_LABELS,
    CLV_TIER_TAGS,
    DEFAULT_CLV_TAG_PREFIX,
    DEFAULT_RFM_TAG_PREFIX,
    DEFAULT_STAGE_TAG_PREFIX,
    RFM_SEGMENT_TITLE,
    SEGMENT_NAMES,
    SEGMENT_TAGS,
    STAGE_LABELS,
    STAGE_SEGMENT_TITLE,
    STAGE_TAGS,
    TAG_SUFFIXES,
    clv_tiers_held,
    slug,
)

# key → Shopify metafield type, as declared in shopify.app.toml ([customer.metafields.app.*]).
METAFIELD_TYPES: dict[str, str] = {
    "rfm_recency": "number_integer",
    "rfm_frequency": "number_integer",
    "rfm_monetary": "number_integer",
    "rfm_segment": "single_line_text_field",
    "lifecycle_stage": "single_line_text_field",
    "predicted_clv": "number_decimal",
    "historic_clv": "number_decimal",
    "total_clv": "number_decimal",
    "churn_risk": "number_decimal",
    "next_order_date": "date",
}
OPTIONAL_METAFIELDS: frozenset[str] = frozenset({"next_order_date"})
"""Of ``METAFIELD_TYPES``, those written only when the customer has a value (no expected next
order, no date); every other key is written for every scored customer."""


def metafields_expected(customers: int, with_next_order_date: int) -> int:
    """How many of the app's metafields Shopify holds once ``customers`` scored customers are
    synced, ``with_next_order_date`` of them with an expected next order (as ``desired_state``)."""
    return customers * (len(METAFIELD_TYPES) - len(OPTIONAL_METAFIELDS)) + with_next_order_date


@dataclass(frozen=True, slots=True)
class TagPrefixes:
    rfm: str = DEFAULT_RFM_TAG_PREFIX
    stage: str = DEFAULT_STAGE_TAG_PREFIX
    clv: str = DEFAULT_CLV_TAG_PREFIX

    def all(self) -> tuple[str, str, str]:
        return (self.rfm, self.stage, self.clv)


@dataclass(frozen=True, slots=True)
class CustomerValues:
    """The stored scores of one customer that Shopify gets to see."""

    recency_score: int
    frequency_score: int
    monetary_score: int
    segment: str
    stage: str
    predicted_clv: Decimal
    historic_clv: Decimal
    churn_risk: float
    expected_next_order_at: datetime | date | None
    clv_tier: str | None


@dataclass(frozen=True, slots=True)
class DesiredState:
    metafields: dict[str, str]  # key → value as Shopify stores it (a string)
    tags: frozenset[str]


def _decimal(value: Decimal, places: str) -> str:
    return str(Decimal(value).quantize(Decimal(places), rounding=ROUND_HALF_UP))


def desired_state(values: CustomerValues, prefixes: TagPrefixes) -> DesiredState:
    """Shopify's values for one customer. Total CLV is the sum of the two written amounts, so the
    three metafields add up as the merchant reads them; no next-order date ("unlikely to return")
    means no ``next_order_date`` metafield, which the sync then deletes if it wrote one before."""
    historic = _decimal(values.historic_clv, "0.01")
    predicted = _decimal(values.predicted_clv, "0.01")
    metafields = {
        "rfm_recency": str(int(values.recency_score)),
        "rfm_frequency": str(int(values.frequency_score)),
        "rfm_monetary": str(int(values.monetary_score)),
        "rfm_segment": values.segment,
        "lifecycle_stage": values.stage,
        "predicted_clv": predicted,
        "historic_clv": historic,
        "total_clv": str(Decimal(historic) + Decimal(predicted)),
        "churn_risk": _decimal(Decimal(str(min(max(values.churn_risk, 0.0), 1.0))), "0.0001"),
    }
    next_order = values.expected_next_order_at
    if next_order is not None:
        metafields["next_order_date"] = (
            next_order.date() if isinstance(next_order, datetime) else next_order
        ).isoformat()
    tags = {
        prefixes.rfm + SEGMENT_TAGS.get(values.segment, slug(values.segment)),
        prefixes.stage + STAGE_TAGS.get(values.stage, slug(values.stage)),
    }
    tags |= {prefixes.clv + CLV_TIER_TAGS[tier] for tier in clv_tiers_held(values.clv_tier)}
    return DesiredState(metafields, frozenset(tags))


def tag_vocabulary(prefixes: Iterable[str]) -> frozenset[str]:
    """Every tag the app can write under ``prefixes``, lowercased: a prefix followed by a segment,
    stage or CLV tier slug. Nothing else can be an app tag, whatever its first letters."""
    return frozenset(p.lower() + s for p in prefixes if p for s in TAG_SUFFIXES)


def removable(tags: Iterable[str], written: Iterable[str], prefixes: Iterable[str]) -> list[str]:
    """Of ``tags``, those the app may remove: recorded as written by the app (``written``) and, as
    a second guard, in the app's vocabulary under a current or former prefix. Compared without case,
    as Shopify treats tags."""
    record = {t.lower() for t in written}
    vocabulary = tag_vocabulary(prefixes)
    return sorted({t for t in tags if t.lower() in record and t.lower() in vocabulary})


def tag_changes(
    written: Iterable[str], desired: frozenset[str], prefixes: Iterable[str]
) -> tuple[list[str], list[str]]:
    """(to add, to remove), from the tags the app recorded as written. Only those are ever
    removed; a merchant's own tags are never touched."""
    have = {t.lower(): t for t in written}
    want = {t.lower(): t for t in desired}
    add = sorted(t for k, t in want.items() if k not in have)
    remove = removable((t for k, t in have.items() if k not in want), have.values(), prefixes)
    return add, remove


@dataclass(frozen=True, slots=True)
class SegmentSpec:
    key: str  # stable id of the segment within the app ("rfm:champions")
    name: str
    query: str


def segment_specs(prefixes: TagPrefixes, rfm_segments: Iterable[str] = SEGMENT_NAMES) -> list[SegmentSpec]:
    """One Shopify segment per RFM segment of the scoring method in use (``rfm_segments``), per
    lifecycle stage and per CLV tier, each a single clause on the app's tag (so it shows in Shopify
    Email and stays within the 10-clause limit)."""
    # keys ("rfm:champions") identify stored segments, so they never follow the merchant's prefixes
    specs = [
        SegmentSpec(
            rfm_segment_key(name),
            RFM_SEGMENT_TITLE.format(name),
            _tag_query(prefixes.rfm + SEGMENT_TAGS[name]),
        )
        for name in rfm_segments
    ]
    specs += [
        SegmentSpec(
            stage_segment_key(stage),
            STAGE_SEGMENT_TITLE.format(STAGE_LABELS[stage]),
            _tag_query(prefixes.stage + tag),
        )
        for stage, tag in STAGE_TAGS.items()
    ]
    specs += [
        SegmentSpec(
            clv_segment_key(tier),
            CLV_SEGMENT_TITLE.format(CLV_TIER_LABELS[tier]),
            _tag_query(prefixes.clv + tag),
        )
        for tier, tag in CLV_TIER_TAGS.items()
    ]
    return specs


def rfm_segment_key(name: str) -> str:
    """The stored key of the Shopify segment of an RFM segment or thirds group ("rfm:at-risk")."""
    return f"rfm:{SEGMENT_TAGS[name]}"


def stage_segment_key(stage: str) -> str:
    """The stored key of a lifecycle stage's Shopify segment ("stage:at-risk")."""
    return f"stage:{STAGE_TAGS[stage]}"


def clv_segment_key(tier: str) -> str:
    """The stored key of a CLV tier's Shopify segment ("clv:top-10")."""
    return f"clv:{CLV_TIER_TAGS[tier]}"


def _tag_query(tag: str) -> str:
    return "customer_tags CONTAINS '" + tag.replace("\\", "\\\\").replace("'", "\\'") + "'"
