"""The product's names, in one place: RFM segments and the default segment grid, the thirds-method
groups, lifecycle stages, behaviour segments, CLV tiers, their labels on screen, and the tag slugs
and Shopify segment names derived from them.

Scoring stores these names, settings validates the merchant's grid against them, sync turns them
into tags and segments, the admin pages show their labels; every one of those imports them from
here. This module imports nothing of the app, so that both the settings and the scoring domains
can use it without importing each other in a circle.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

# --------------------------------------------------------------------------------------------
# RFM segments (quintile method) and the default grid

ALL_CUSTOMERS: Final = "All customers"
"""The `shop_segments` row that counts every scored customer (beside one row per RFM segment)."""

SEGMENT_NAMES: Final[tuple[str, ...]] = (
    "Champions",
    "Loyal",
    "Active",
    "Promising",
    "New",
    "Needs attention",
    "Previously loyal",
    "At risk",
    "Almost lost",
    "Dormant",
)
"""Shopify's ten RFM segment names, roughly best to worst: recent and valuable first, then recent
and still light, then slipping, then gone. A segment's code in the scoring rules is its index."""

VIP_SEGMENT: Final = "Champions"
"""The segment whose members in the top 10% of predicted CLV are VIP (by the thirds method, the
best group stands in for it: ``THIRDS_VIP_GROUP``)."""

Grid = Mapping[tuple[int, int], str]
"""A segment grid: (R score, FM score) → segment name, for R and FM in 1..5."""

_GRID_ROWS: Final[dict[int, tuple[str, str, str, str, str]]] = {
    # R: names for FM = 1, 2, 3, 4, 5
    5: ("New", "Promising", "Active", "Champions", "Champions"),
    4: ("Promising", "Promising", "Active", "Loyal", "Champions"),
    3: ("Needs attention", "Needs attention", "Needs attention", "Loyal", "Loyal"),
    2: ("Almost lost", "Almost lost", "At risk", "At risk", "Previously loyal"),
    1: ("Dormant", "Dormant", "At risk", "At risk", "Previously loyal"),
}

DEFAULT_GRID: Final[Grid] = MappingProxyType(
    {(r, fm): name for r, row in _GRID_ROWS.items() for fm, name in enumerate(row, start=1)}
)
"""The default segment grid, keyed by (R, FM), with Shopify's names. Merchants may edit it."""

GRID_CELLS: Final[tuple[tuple[int, int], ...]] = tuple((r, fm) for r in range(5, 0, -1) for fm in range(1, 6))


class GridError(ValueError):
    """A segment grid that is incomplete or names an unknown segment."""


def validate_grid(grid: Grid) -> dict[tuple[int, int], str]:
    """Check that all 25 cells (R 1..5 × FM 1..5) are present and each names a known segment.

    Returns a plain copy of the grid. Raises :class:`GridError` naming the first bad cell.
    """
    if not isinstance(grid, Mapping):
        raise GridError(
            f"segment grid must be a mapping of (R, FM) to a segment name, got {type(grid).__name__}"
        )
    for key in grid:
        if key not in GRID_CELLS:
            raise GridError(
                f"segment grid has an unexpected cell {key!r}; cells are (R, FM) with R and FM in 1..5"
            )
    checked: dict[tuple[int, int], str] = {}
    for r, fm in GRID_CELLS:
        if (r, fm) not in grid:
            raise GridError(f"segment grid cell R={r}, FM={fm} is missing")
        name = grid[(r, fm)]
        if name not in SEGMENT_NAMES:
            known = ", ".join(SEGMENT_NAMES)
            raise GridError(
                f"segment grid cell R={r}, FM={fm} names unknown segment {name!r}; choose one of: {known}"
            )
        checked[(r, fm)] = name
    return checked


# --------------------------------------------------------------------------------------------
# Thirds method

THIRDS_GROUP_NAMES: Final[tuple[str, str, str]] = ("Top", "Middle", "Low")
"""By R + F + M: 7–9 Top, 5–6 Middle, 3–4 Low. A group's code in the scoring rules is its index."""

THIRDS_VIP_GROUP: Final = "Top"
"""By the thirds method, the group whose members in the top 10% of predicted CLV are VIP."""

THIRDS_GROUP_SUMS: Final[Mapping[str, tuple[int, int]]] = MappingProxyType(
    {"Top": (7, 9), "Middle": (5, 6), "Low": (3, 4)}
)
"""Each group's range of R + F + M (inclusive), as the method defines it."""

# --------------------------------------------------------------------------------------------
# A customer's RFM segment under either method

SCORING_METHODS: Final[tuple[str, str]] = ("quintile", "thirds")

RFM_SEGMENT_NAMES: Final[tuple[str, ...]] = (*SEGMENT_NAMES, *THIRDS_GROUP_NAMES)
"""Every name a customer's RFM segment can hold: the quintile method's segments, then the thirds
method's groups. The `rfm_segment` metafield, the RFM tags and the RFM segments in Shopify take
their names from here; a segment's code in the scoring rules is its index."""

SEGMENTS_OF_METHOD: Final[Mapping[str, tuple[str, ...]]] = MappingProxyType(
    {"quintile": SEGMENT_NAMES, "thirds": THIRDS_GROUP_NAMES}
)
"""The RFM segments a scoring method puts customers in, best first."""

SCORE_RANGE: Final[Mapping[str, int]] = MappingProxyType({"quintile": 5, "thirds": 3})
"""The highest R, F and M score of each method (the lowest is 1)."""

# --------------------------------------------------------------------------------------------
# Lifecycle stages

STAGE_NAMES: Final[tuple[str, ...]] = ("new", "active", "at_risk", "lapsed", "reactivated")
"""As stored and written to the `lifecycle_stage` metafield. A stage's code is its index."""

STAGE_LABELS: Final[Mapping[str, str]] = MappingProxyType(
    {
        "new": "New",
        "active": "Active",
        "at_risk": "At risk",
        "lapsed": "Lapsed",
        "reactivated": "Reactivated",
    }
)

STAGE_CHANGE_CAUSES: Final[tuple[str, str]] = ("behaviour", "refit")
"""Why a stage changed, as stored in `stage_changes.cause`: "behaviour" (the customer ordered, or
time passed without an order) or "refit" (the same history read by a new model fit, or by the
segment formula instead of the model, or the other way round). Only behaviour counts as a movement."""

SEGMENT_CHANGE_CAUSES: Final[tuple[str, str]] = ("behaviour", "settings")
"""Why an RFM segment changed, as stored in `segment_changes.cause`: "behaviour" (the customer
ordered, time passed, or the shop's other buyers moved the score boundaries) or "settings" (the
first rescore after the merchant changed the scoring method, window or grid)."""

# --------------------------------------------------------------------------------------------
# Behaviour segments

BEHAVIOUR_SEGMENT_NAMES: Final[tuple[str, ...]] = (
    "first_time_buyers",
    "repeat_buyers",
    "big_spenders",
    "high_aov",
    "discount_shoppers",
    "full_price_buyers",
    "vip",
)
"""The behaviour segments, as the scoring rules compute them and the shop metrics count them."""

BEHAVIOUR_FLAG_COLUMNS: Final[Mapping[str, str]] = MappingProxyType(
    {
        "first_time_buyers": "first_time_buyer",
        "repeat_buyers": "repeat_buyer",
        "big_spenders": "big_spender",
        "high_aov": "high_aov",
        "discount_shoppers": "discount_shopper",
        "full_price_buyers": "full_price_buyer",
        "vip": "vip",
    }
)
"""Behaviour segment → the customer_scores column flagging a member."""

BEHAVIOUR_LABELS: Final[Mapping[str, str]] = MappingProxyType(
    {
        "first_time_buyers": "First-time buyers",
        "repeat_buyers": "Repeat buyers",
        "big_spenders": "Big spenders",
        "high_aov": "High AOV",
        "discount_shoppers": "Discount shoppers",
        "full_price_buyers": "Full-price buyers",
        "vip": "VIP",
    }
)

# --------------------------------------------------------------------------------------------
# CLV tiers

CLV_TIERS: Final[tuple[str, ...]] = ("top-10", "top-25")
"""Narrowest first, as stored (code 1, 2; 0 = none) and as tag slugs."""

CLV_TIER_LABELS: Final[Mapping[str, str]] = MappingProxyType({"top-10": "Top 10%", "top-25": "Top 25%"})
BELOW_CLV_TIERS_LABEL: Final = "Below top 25%"


def clv_tiers_held(tier: str | None) -> tuple[str, ...]:
    """The tiers a customer stored with ``tier`` belongs to: the top 10% are in the top 25% too."""
    return () if tier is None else CLV_TIERS[CLV_TIERS.index(tier) :]


def clv_tiers_within(tier: str) -> tuple[str, ...]:
    """The stored tiers whose customers belong to ``tier`` (the inverse of :func:`clv_tiers_held`)."""
    return CLV_TIERS[: CLV_TIERS.index(tier) + 1]


# --------------------------------------------------------------------------------------------
# Churn-risk bands (the customers list's filter): churn risk = 1 − P(alive), docs/metrics.md

CHURN_RISK_BANDS: Final[Mapping[str, tuple[str, float, float]]] = MappingProxyType(
    {
        "low": ("Low", 0.0, 0.2),
        "medium": ("Medium", 0.2, 0.5),
        "high": ("High", 0.5, 1.0),
    }
)
"""band → (label, from, to): a customer is in the band when from ≤ churn risk < to (the high band
includes 100 %). High starts where the stages stop expecting a next order from a repeat buyer
(probability still buying below 50 %)."""


def churn_risk_band_words(band: str) -> str:
    """The band with its thresholds: "High (50% or more)", "Low (under 20%)"."""
    label, low, high = CHURN_RISK_BANDS[band]
    if low == 0.0:
        return f"{label} (under {high * 100:.0f}%)"
    if high >= 1.0:
        return f"{label} ({low * 100:.0f}% or more)"
    return f"{label} ({low * 100:.0f}% to under {high * 100:.0f}%)"


# --------------------------------------------------------------------------------------------
# Tags and Shopify segments

DEFAULT_RFM_TAG_PREFIX: Final = "rfm:"
DEFAULT_STAGE_TAG_PREFIX: Final = "stage:"
DEFAULT_CLV_TAG_PREFIX: Final = "clv:"


def slug(name: str) -> str:
    """`Needs attention` → `needs-attention`, `at_risk` → `at-risk`: the tag spelling of a name."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


SEGMENT_TAGS: Final[Mapping[str, str]] = MappingProxyType({name: slug(name) for name in RFM_SEGMENT_NAMES})
STAGE_TAGS: Final[Mapping[str, str]] = MappingProxyType({stage: slug(stage) for stage in STAGE_NAMES})
CLV_TIER_TAGS: Final[Mapping[str, str]] = MappingProxyType({tier: slug(tier) for tier in CLV_TIERS})

TAG_SUFFIXES: Final[frozenset[str]] = frozenset(
    [*SEGMENT_TAGS.values(), *STAGE_TAGS.values(), *CLV_TIER_TAGS.values()]
)
"""Every tag the app writes is a prefix followed by one of these."""

LONGEST_TAG_SUFFIX: Final = max(TAG_SUFFIXES, key=len)

RFM_SEGMENT_TITLE: Final = "RFM · {}"
STAGE_SEGMENT_TITLE: Final = "Stage · {}"
CLV_SEGMENT_TITLE: Final = "CLV · {}"
"""Names of the segments the app creates in Shopify, e.g. "RFM · Champions", "CLV · Top 10%"."""

# --------------------------------------------------------------------------------------------
# Suggested plays: what to do with each RFM segment (the default; a shop may reword its own)

SEGMENT_PLAYS: Final[Mapping[str, str]] = MappingProxyType(
    {
        "Champions": "Thank them and ask for a review or a referral; give early access to new products "
        "rather than discounts.",
        "Loyal": "Invite them to a loyalty or VIP programme and recommend products that go with what they "
        "already buy.",
        "Active": "Keep them buying: recommend their next product and remind them before they usually "
        "reorder.",
        "Promising": "Build the habit: a second-order offer or a bundle of their favourite products.",
        "New": "Send a welcome series: how to get the most from their purchase, your story, a reason to "
        "come back.",
        "Needs attention": "Reach out before they slip: a limited-time offer or a personal recommendation "
        "based on their last order.",
        "Previously loyal": "Win them back personally: show what is new since their last order and offer "
        "a thank-you reward.",
        "At risk": "Win them back with an offer: a time-limited discount and a reminder of what they "
        "bought before.",
        "Almost lost": "Try one last win-back with your best offer, then stop mailing them if they do "
        "not respond.",
        "Dormant": "Send a low-cost reactivation email only; do not spend on ads for them.",
        "Top": "Thank them and ask for a review or a referral; give early access to new products.",
        "Middle": "Move them up: recommend products that go with what they bought and remind them before "
        "they usually reorder.",
        "Low": "Send a win-back offer to the recent ones and a low-cost reactivation email to the rest.",
    }
)
"""The default suggested play of every RFM segment and thirds group (``RFM_SEGMENT_NAMES``), in
plain words; the settings domain stores a shop's own wording over it."""

# Shopify Flow triggers: one `flow_trigger` extension each (extensions/<handle>/shopify.extension.toml)
# https://shopify.dev/docs/apps/build/flow/triggers/reference . A trigger field's key may hold
# only letters and spaces (Shopify CLI's flow_trigger schema); the customer reference is sent as
# `customer_id`. The toml files and these names are held together by tests/sync/test_flow_extensions.py.

FLOW_SEGMENT_CHANGED: Final = "rfm-segment-changed"
FLOW_STAGE_CHANGED: Final = "lifecycle-stage-changed"
FLOW_CHURN_RISK_CROSSED: Final = "churn-risk-crossed"
FLOW_CLV_TIER_CHANGED: Final = "clv-tier-changed"
FLOW_TRIGGER_HANDLES: Final[tuple[str, ...]] = (
    FLOW_SEGMENT_CHANGED,
    FLOW_STAGE_CHANGED,
    FLOW_CHURN_RISK_CROSSED,
    FLOW_CLV_TIER_CHANGED,
)
FLOW_CUSTOMER_FIELD: Final = "customer_id"

FLOW_TRIGGER_FIELDS: Final[Mapping[str, tuple[str, ...]]] = MappingProxyType(
    {
        FLOW_SEGMENT_CHANGED: (
            "Previous segment",
            "New segment",
            "Recency score",
            "Frequency score",
            "Monetary score",
            "Predicted CLV",
            "Churn risk",
            "Currency",
        ),
        FLOW_STAGE_CHANGED: ("Previous stage", "New stage", "Predicted CLV", "Churn risk", "Currency"),
        FLOW_CHURN_RISK_CROSSED: (
            "Previous churn risk",
            "Churn risk",
            "Threshold",
            "Direction",
            "Lifecycle stage",
            "Predicted CLV",
            "Currency",
        ),
        FLOW_CLV_TIER_CHANGED: ("Previous tier", "New tier", "Predicted CLV", "Churn risk", "Currency"),
    }
)
"""Each trigger's fields besides the customer reference, as its toml declares them."""

CHURN_RISK_THRESHOLDS: Final[tuple[float, ...]] = (0.5, 0.8)
"""Churn risk (1 - P(alive)) levels whose crossing fires the churn trigger: 0.5 is "more likely
gone than not", 0.8 "very likely gone"."""
CHURN_ROSE: Final = "rose above"
CHURN_FELL: Final = "fell below"
NO_STAGE_LABEL: Final = "None"
"""A Flow text field's value where a customer had no stage, segment or tier before."""
