"""The scoring rules of the product (RFM, lifecycle stage, behaviour) as pure functions on NumPy arrays.

Every argument is one element per customer of one shop (customers with at least one qualifying
order); every result is an array in the same customer order, so permuting the input permutes the
output. Categorical results are small integer codes (``np.int8``) indexing a tuple of names
(``SEGMENT_NAMES``, ``THIRDS_GROUP_NAMES``, ``STAGE_NAMES``, all from ``app.vocabulary``);
:func:`labels` turns codes into names. Nothing here loops over customers: a shop of 1,000,000
customers scores in a fraction of a second (see ``bench/scoring_rules.py``).

Frequency and monetary arrive already windowed (the shop's window setting): the caller counts orders and
sums their values over the shop's window before calling these.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from types import MappingProxyType
from typing import Final

import numpy as np
import numpy.typing as npt

from app.vocabulary import (
    BEHAVIOUR_SEGMENT_NAMES,
    DEFAULT_GRID,
    RFM_SEGMENT_NAMES,
    SEGMENT_NAMES,  # noqa: F401 - the rules' names, re-exported for callers of the rules
    STAGE_NAMES,
    THIRDS_GROUP_NAMES,
    THIRDS_GROUP_SUMS,
    THIRDS_VIP_GROUP,
    VIP_SEGMENT,
    Grid,
    validate_grid,
)

Codes = npt.NDArray[np.int8]
Flags = npt.NDArray[np.bool_]
FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

# --------------------------------------------------------------------------------------------
# Validation helpers


def _as_1d(values: npt.ArrayLike, name: str, dtype: type[np.generic]) -> npt.NDArray[np.generic]:
    array = np.asarray(values)
    if array.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional (one value per customer), got shape {array.shape}")
    if array.dtype == np.bool_ or not np.issubdtype(array.dtype, np.number):
        raise TypeError(f"{name} must be numeric, got dtype {array.dtype}")
    return array.astype(dtype, copy=False)


def _as_float_or_nan(values: npt.ArrayLike, name: str) -> FloatArray:
    array: FloatArray = _as_1d(values, name, np.float64)  # type: ignore[assignment]
    return array


def _as_float(values: npt.ArrayLike, name: str) -> FloatArray:
    array = _as_float_or_nan(values, name)
    if np.isnan(array).any():
        raise ValueError(f"{name} contains NaN; every customer needs a value")
    return array


def _as_int(values: npt.ArrayLike, name: str) -> IntArray:
    array = np.asarray(values)
    if array.ndim == 1 and np.issubdtype(array.dtype, np.floating):
        if np.isnan(array).any():
            raise ValueError(f"{name} contains NaN; every customer needs a value")
        if (array != np.floor(array)).any():
            raise ValueError(f"{name} must hold whole numbers")
    result: IntArray = _as_1d(array, name, np.int64)  # type: ignore[assignment]
    return result


def _as_scores(values: npt.ArrayLike, name: str, top: int) -> IntArray:
    scores = _as_int(values, name)
    if scores.size and (scores.min() < 1 or scores.max() > top):
        raise ValueError(f"{name} must be scores between 1 and {top}")
    return scores


def _same_length(**arrays: np.ndarray) -> None:
    lengths = {name: len(array) for name, array in arrays.items()}
    if len(set(lengths.values())) > 1:
        described = ", ".join(f"{name}={length}" for name, length in lengths.items())
        raise ValueError(f"arrays must have one element per customer; got lengths {described}")


def labels(codes: npt.ArrayLike, names: Sequence[str]) -> npt.NDArray[np.str_]:
    """Names for an array of codes, e.g. ``labels(segment_codes, SEGMENT_NAMES)``."""
    return np.asarray(names, dtype=np.str_)[np.asarray(codes, dtype=np.intp)]


# --------------------------------------------------------------------------------------------
# Quintile method (the default, as Shopify does)


def strictly_worse_counts(values: npt.ArrayLike, higher_is_better: bool = True) -> IntArray:
    """For each customer, how many customers of the shop are strictly worse on this dimension.

    Tied customers get the same count: the position of the first equal value in the sorted array.
    Searching the sorted values themselves (rather than the unsorted input) keeps the binary searches
    cache-friendly, about twice as fast at a million customers.
    """
    goodness = _as_float(values, "values")
    if not higher_is_better:
        goodness = -goodness
    order = np.argsort(goodness)
    ordered = goodness[order]
    counts = np.empty(goodness.size, dtype=np.int64)
    counts[order] = np.searchsorted(ordered, ordered, side="left")
    return counts


def quintile_scores(values: npt.ArrayLike, higher_is_better: bool = True) -> Codes:
    """RFM score 1..5 by the quintile method (as Shopify does).

    score = 1 + floor(5 × share of customers strictly worse on that dimension), capped at 5. Ties
    share a score; a shop whose customers all tie (or a one-customer shop) scores 1 throughout,
    since nobody is strictly worse. Pass ``higher_is_better=False`` for recency (days since the
    last order), where fewer days is better. Integer arithmetic (5·worse // n) keeps the floor exact.
    """
    worse = strictly_worse_counts(values, higher_is_better)
    n = worse.size
    if n == 0:
        return np.zeros(0, dtype=np.int8)
    scores = np.minimum(1 + (5 * worse) // n, 5)
    return scores.astype(np.int8)


def fm_score(frequency_score: npt.ArrayLike, monetary_score: npt.ArrayLike) -> Codes:
    """FM = round-half-up((F + M) / 2), in integers: (F + M + 1) // 2. (F=3, M=4 gives 4.)"""
    f = _as_scores(frequency_score, "frequency_score", 5)
    m = _as_scores(monetary_score, "monetary_score", 5)
    _same_length(frequency_score=f, monetary_score=m)
    return ((f + m + 1) // 2).astype(np.int8)


# --------------------------------------------------------------------------------------------
# Segment grid (R × FM → name)

SEGMENT_CODES: Final[Mapping[str, int]] = MappingProxyType(
    {name: code for code, name in enumerate(RFM_SEGMENT_NAMES)}
)
"""Segment name → code, for the quintile method's segments and the thirds method's groups."""
CHAMPIONS: Final = SEGMENT_CODES[VIP_SEGMENT]
VIP_CODES: Final = (CHAMPIONS, SEGMENT_CODES[THIRDS_VIP_GROUP])
THIRDS_SEGMENT_CODES: Final = np.array([SEGMENT_CODES[name] for name in THIRDS_GROUP_NAMES], dtype=np.int8)
"""Thirds group code → the group's segment code."""


def segment_lookup_table(grid: Grid = DEFAULT_GRID) -> Codes:
    """The grid as a 6×6 table of segment codes indexed [R, FM] (row and column 0 unused, -1)."""
    checked = validate_grid(grid)
    table = np.full((6, 6), -1, dtype=np.int8)
    for (r, fm), name in checked.items():
        table[r, fm] = SEGMENT_CODES[name]
    return table


def segments(recency_score: npt.ArrayLike, fm: npt.ArrayLike, grid: Grid = DEFAULT_GRID) -> Codes:
    """Segment code (index into ``SEGMENT_NAMES``) of each customer from R and FM, by the grid."""
    r = _as_scores(recency_score, "recency_score", 5)
    f = _as_scores(fm, "fm", 5)
    _same_length(recency_score=r, fm=f)
    codes: Codes = segment_lookup_table(grid)[r, f]
    return codes


# --------------------------------------------------------------------------------------------
# Thirds method (the Shopify blog post)

DAYS_PER_MONTH: Final = 365.25 / 12
"""A month for the thirds recency bins: the mean Gregorian month, 30.4375 days, so 4 months is
121.75 days (0..121 whole days score 3) and 8 months 243.5 days (122..243 score 2; 244+ score 1).
The mean month keeps 12 months equal to one year, which a 30-day month does not."""

TOP: Final = 0
MIDDLE: Final = 1
LOW: Final = 2
_GROUP_BY_SUM: Final = np.full(10, -1, dtype=np.int8)
"""R + F + M (3..9) → group code, looked up rather than branched on."""
for _code, _name in enumerate(THIRDS_GROUP_NAMES):
    _low, _high = THIRDS_GROUP_SUMS[_name]
    _GROUP_BY_SUM[_low : _high + 1] = _code


def thirds_scores(values: npt.ArrayLike, higher_is_better: bool = True) -> Codes:
    """Score 1..3 by cutting the dimension's value range (min..max) into three equal parts.

    A value on a cut point takes the better score (as the recency bins do: "≤ 4 months → 3"). A shop
    whose values all tie (zero range, or one customer) scores 1 throughout, as the quintile method
    does. Comparing 3·(v − min) with the range and twice the range avoids a division, so whole
    numbers on a cut point land exactly.
    """
    goodness = _as_float(values, "values")
    if not higher_is_better:
        goodness = -goodness
    if goodness.size == 0:
        return np.zeros(0, dtype=np.int8)
    low = goodness.min()
    span = goodness.max() - low
    if span == 0:
        return np.ones(goodness.size, dtype=np.int8)
    position = 3 * (goodness - low)
    scores = 1 + (position >= span).astype(np.int8) + (position >= 2 * span).astype(np.int8)
    return scores.astype(np.int8)


def thirds_recency_scores(
    days_since_last_order: npt.ArrayLike, days_per_month: float = DAYS_PER_MONTH
) -> Codes:
    """Recency 1..3 by the fixed bins of the thirds method: ≤ 4 months → 3, ≤ 8 months → 2, older → 1."""
    days = _as_float(days_since_last_order, "days_since_last_order")
    if (days < 0).any():
        raise ValueError("days_since_last_order must not be negative")
    if days_per_month <= 0:
        raise ValueError("days_per_month must be positive")
    scores = 1 + (days <= 8 * days_per_month).astype(np.int8) + (days <= 4 * days_per_month).astype(np.int8)
    return scores.astype(np.int8)


def thirds_group(
    recency_score: npt.ArrayLike, frequency_score: npt.ArrayLike, monetary_score: npt.ArrayLike
) -> Codes:
    """Group code (index into ``THIRDS_GROUP_NAMES``) by R + F + M: 7–9 Top, 5–6 Middle, 3–4 Low."""
    r = _as_scores(recency_score, "recency_score", 3)
    f = _as_scores(frequency_score, "frequency_score", 3)
    m = _as_scores(monetary_score, "monetary_score", 3)
    _same_length(recency_score=r, frequency_score=f, monetary_score=m)
    total = r + f + m
    codes: Codes = _GROUP_BY_SUM[total]
    return codes


# --------------------------------------------------------------------------------------------
# Both methods at once, for the service


@dataclass(frozen=True, slots=True)
class QuintileRfm:
    recency: Codes
    frequency: Codes
    monetary: Codes
    fm: Codes
    segment: Codes
    """Codes into ``SEGMENT_NAMES``."""


@dataclass(frozen=True, slots=True)
class ThirdsRfm:
    recency: Codes
    frequency: Codes
    monetary: Codes
    group: Codes
    """Codes into ``THIRDS_GROUP_NAMES``."""

    @property
    def segment(self) -> Codes:
        """The group as a customer's RFM segment: codes into ``RFM_SEGMENT_NAMES``."""
        codes: Codes = THIRDS_SEGMENT_CODES[self.group]
        return codes


def _within(population: Flags | None, size: int, score: Callable[[Flags | slice], Codes]) -> Codes:
    """Scores computed over ``population`` only (every customer when None); 1 for the others."""
    if population is None:
        return score(slice(None))
    out = np.ones(size, dtype=np.int8)
    out[population] = score(population)
    return out


def window_population(frequency: npt.ArrayLike, window_days: int | None) -> Flags | None:
    """The customers a window's scores rank: those with an order in the window (None: all time,
    everyone). The others score 1 on what the window measures."""
    if window_days is None:
        return None
    return _as_int(frequency, "frequency") > 0


def score_quintile(
    days_since_last_order: npt.ArrayLike,
    frequency: npt.ArrayLike,
    monetary: npt.ArrayLike,
    grid: Grid = DEFAULT_GRID,
    population: Flags | None = None,
) -> QuintileRfm:
    """R, F, M, FM and segment of every customer by the quintile method.

    With ``population`` (a window: :func:`window_population`), the quintiles rank those customers
    only, and every other customer scores 1 on R, F and M: their last order is older than anyone's
    in the window, and they ordered nothing in it."""
    days = _as_float(days_since_last_order, "days_since_last_order")
    freq = _as_float(frequency, "frequency")
    money = _as_float(monetary, "monetary")
    _same_length(days_since_last_order=days, frequency=freq, monetary=money)
    r = _within(population, days.size, lambda rows: quintile_scores(days[rows], higher_is_better=False))
    f = _within(population, days.size, lambda rows: quintile_scores(freq[rows]))
    m = _within(population, days.size, lambda rows: quintile_scores(money[rows]))
    fm = fm_score(f, m)
    return QuintileRfm(recency=r, frequency=f, monetary=m, fm=fm, segment=segments(r, fm, grid))


def score_thirds(
    days_since_last_order: npt.ArrayLike,
    frequency: npt.ArrayLike,
    monetary: npt.ArrayLike,
    days_per_month: float = DAYS_PER_MONTH,
    population: Flags | None = None,
) -> ThirdsRfm:
    """R, F, M and group of every customer by the thirds method.

    With ``population`` (a window: :func:`window_population`), F and M cut the range of those
    customers' values, and every other customer scores 1 on F and M; recency keeps its fixed bins."""
    r = thirds_recency_scores(days_since_last_order, days_per_month)
    freq = _as_float(frequency, "frequency")
    money = _as_float(monetary, "monetary")
    _same_length(days_since_last_order=r, frequency=freq, monetary=money)
    f = _within(population, r.size, lambda rows: thirds_scores(freq[rows]))
    m = _within(population, r.size, lambda rows: thirds_scores(money[rows]))
    return ThirdsRfm(recency=r, frequency=f, monetary=m, group=thirds_group(r, f, m))


# --------------------------------------------------------------------------------------------
# Lifecycle stage

NEW: Final = 0
ACTIVE: Final = 1
AT_RISK: Final = 2
LAPSED: Final = 3
REACTIVATED: Final = 4
NO_STAGE: Final = -1
"""``previous_stage`` of a customer who has never been staged (first scoring, or a new buyer)."""


@dataclass(frozen=True, slots=True)
class StageThresholds:
    """Cut-offs for the lifecycle stage, relative to the shop's own data.

    With a BG/NBD model (a probability alive per customer):
      ``p_alive >= alive_probability`` (0.5: more likely alive than not) → new / active;
      ``lapsed_probability <= p_alive < alive_probability`` → at_risk;
      ``p_alive < lapsed_probability`` (0.2) → lapsed.
    Without a model, and for customers the model says nothing about (see :func:`lifecycle_stages`),
    in multiples of the shop's median days between orders (the "typical interval"):
      ``days <= at_risk_intervals × interval`` (2×) → new / active;
      ``days <= lapsed_intervals × interval`` (4×) → at_risk; beyond → lapsed.
    ``reactivated_intervals`` (1): how many typical intervals a reactivated customer stays so.
    ``fallback_interval_days`` (90): the typical interval of a shop with no repeat buyer yet, which
    has no median to take; then at_risk starts after 180 days and lapsed after 360.
    """

    alive_probability: float = 0.5
    lapsed_probability: float = 0.2
    at_risk_intervals: float = 2.0
    lapsed_intervals: float = 4.0
    reactivated_intervals: float = 1.0
    fallback_interval_days: float = 90.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.lapsed_probability <= self.alive_probability <= 1.0:
            raise ValueError("need 0 <= lapsed_probability <= alive_probability <= 1")
        if not 0.0 < self.at_risk_intervals <= self.lapsed_intervals:
            raise ValueError("need 0 < at_risk_intervals <= lapsed_intervals")
        if self.reactivated_intervals < 0:
            raise ValueError("reactivated_intervals must not be negative")
        if not self.fallback_interval_days > 0:
            raise ValueError("fallback_interval_days must be positive")


@dataclass(frozen=True, slots=True)
class StageResult:
    stage: Codes
    """Codes into ``STAGE_NAMES``."""
    changed: Flags
    """True where the stage differs from ``previous_stage`` (always, for a customer never staged):
    the caller records these changes with today's date."""
    typical_interval_days: float
    """The interval the day-based rules used: the shop median, or the fallback."""


def typical_interval(median_days_between_orders: float | None, thresholds: StageThresholds) -> float:
    """The shop median if it is a positive number, else ``thresholds.fallback_interval_days``.

    A median of 0 (every repeat buyer ordered twice on one day) would make every customer lapse the
    day after their order, so it counts as no median.
    """
    if median_days_between_orders is None or not np.isfinite(median_days_between_orders):
        return thresholds.fallback_interval_days
    if median_days_between_orders <= 0:
        return thresholds.fallback_interval_days
    return float(median_days_between_orders)


def lifecycle_stages(
    orders_count: npt.ArrayLike,
    days_since_last_order: npt.ArrayLike,
    p_alive: npt.ArrayLike | None,
    median_days_between_orders: float | None,
    previous_stage: npt.ArrayLike | None = None,
    days_since_previous_stage_change: npt.ArrayLike | None = None,
    thresholds: StageThresholds = StageThresholds(),  # frozen, so sharing the default is safe
    orders_changed_since_stage: npt.ArrayLike | None = None,
) -> StageResult:
    """Lifecycle stage of every customer, and which customers changed stage.

    Normal rules: a customer likely alive is ``new`` with one order and ``active`` with two or more;
    otherwise ``at_risk`` or ``lapsed`` by the thresholds (see :class:`StageThresholds`). P(alive)
    decides where ``p_alive`` is given and not NaN — except for one-order customers: BG/NBD puts
    P(alive) = 1 for anyone without a repeat purchase (Fader, Hardie & Lee 2005, eq. 13 with x = 0),
    so for them, as where there is no model, the days since the last order against the shop's typical
    interval decide.

    Lapsed stays lapsed until the customer orders again, whatever the model or the interval say:
    unless they ordered after entering it, or their orders changed since
    (``orders_changed_since_stage``: an order dated earlier but delivered since), a lapsed
    customer stays lapsed.
    Reactivation: a customer whose previous stage is ``lapsed`` and who ordered after entering it
    (``days_since_last_order < days_since_previous_stage_change``) becomes ``reactivated`` unless the
    normal rules still say lapsed; a ``reactivated`` customer stays so while
    ``days_since_previous_stage_change < reactivated_intervals × typical interval``, then follows the
    normal rules.

    ``previous_stage`` holds codes (``NO_STAGE`` = -1 for never staged) and
    ``days_since_previous_stage_change`` days (NaN allowed where never staged); both None on a
    shop's first scoring.
    """
    orders = _as_int(orders_count, "orders_count")
    days = _as_float(days_since_last_order, "days_since_last_order")
    _same_length(orders_count=orders, days_since_last_order=days)
    if orders.size and orders.min() < 1:
        raise ValueError("orders_count must be at least 1: stage only customers with a qualifying order")
    if (days < 0).any():
        raise ValueError("days_since_last_order must not be negative")
    interval = typical_interval(median_days_between_orders, thresholds)

    # day-based rule
    at_risk = days > thresholds.at_risk_intervals * interval
    lapsed = days > thresholds.lapsed_intervals * interval
    if p_alive is not None:
        probability = _as_float_or_nan(p_alive, "p_alive")
        _same_length(orders_count=orders, p_alive=probability)
        if ((probability < 0) | (probability > 1)).any():
            raise ValueError("p_alive must lie in [0, 1]")
        use_model = ~np.isnan(probability) & (orders >= 2)
        with np.errstate(invalid="ignore"):
            at_risk = np.where(use_model, probability < thresholds.alive_probability, at_risk)
            lapsed = np.where(use_model, probability < thresholds.lapsed_probability, lapsed)

    stage = np.where(orders >= 2, ACTIVE, NEW).astype(np.int8)
    stage[at_risk] = AT_RISK
    stage[lapsed] = LAPSED

    if previous_stage is None:
        return StageResult(
            stage=stage, changed=np.ones(stage.size, dtype=np.bool_), typical_interval_days=interval
        )

    previous = _as_int(previous_stage, "previous_stage")
    _same_length(orders_count=orders, previous_stage=previous)
    if previous.size and (previous.min() < NO_STAGE or previous.max() >= len(STAGE_NAMES)):
        raise ValueError(f"previous_stage must hold stage codes 0..{len(STAGE_NAMES) - 1} or NO_STAGE (-1)")
    if days_since_previous_stage_change is None:
        since_change = np.full(previous.size, np.nan)
    else:
        since_change = _as_float_or_nan(days_since_previous_stage_change, "days_since_previous_stage_change")
        _same_length(orders_count=orders, days_since_previous_stage_change=since_change)
    staged = previous != NO_STAGE
    if np.isnan(since_change[staged]).any():
        raise ValueError(
            "days_since_previous_stage_change is needed for every customer with a previous stage"
        )

    with np.errstate(invalid="ignore"):
        ordered_since_lapse = (previous == LAPSED) & (days < since_change) & (stage != LAPSED)
        # Only an order brings a lapsed customer back: without one, a new model fit or a shift of
        # the shop's typical interval reads the same history differently, but nobody came back.
        held = (previous == LAPSED) & ~(days < since_change)
    if orders_changed_since_stage is not None:
        changed_orders = np.asarray(orders_changed_since_stage, dtype=np.bool_)
        _same_length(orders_count=orders, orders_changed_since_stage=changed_orders)
        held &= ~changed_orders
    stage[held] = LAPSED
    with np.errstate(invalid="ignore"):
        still_reactivated = (previous == REACTIVATED) & (
            since_change < thresholds.reactivated_intervals * interval
        )
    stage[ordered_since_lapse | still_reactivated] = REACTIVATED
    return StageResult(stage=stage, changed=stage != previous, typical_interval_days=interval)


def likely_to_return(
    orders_count: npt.ArrayLike,
    days_since_last_order: npt.ArrayLike,
    churn_risk: npt.ArrayLike | None,
    typical_interval_days: float,
    thresholds: StageThresholds = StageThresholds(),
) -> Flags:
    """Whether a customer is more likely still buying than gone, as the stages judge it: the model's
    probability alive (1 - ``churn_risk``) is at least ``alive_probability`` for customers with two
    or more orders; for one-order customers (the model's P(alive) is 1 for them, see
    :func:`lifecycle_stages`) and without a model (``churn_risk`` None), the last order is at most
    ``at_risk_intervals`` typical intervals ago."""
    orders = _as_int(orders_count, "orders_count")
    days = _as_float(days_since_last_order, "days_since_last_order")
    recent = days <= thresholds.at_risk_intervals * typical_interval_days
    if churn_risk is None:
        return recent
    churn = _as_float(churn_risk, "churn_risk")
    return np.where(orders >= 2, churn <= 1.0 - thresholds.alive_probability, recent)


def days_to_next_order(
    predicted_orders: npt.ArrayLike, likely: npt.ArrayLike, horizon_days: float, cap_days: float
) -> FloatArray:
    """Whole days from today to the expected next order; NaN for none ("unlikely to return").

    A customer ``likely`` to return (:func:`likely_to_return`) is expected at the predicted spacing of
    their orders, the horizon over the orders predicted in it, rounded up: within the horizon exactly
    when one order or more is predicted in it, and never today. Nobody else gets a date, nor anyone
    whose spacing is beyond ``cap_days`` (or who has no predicted order)."""
    orders = _as_float(predicted_orders, "predicted_orders")
    flags = np.asarray(likely, dtype=np.bool_)
    with np.errstate(divide="ignore", invalid="ignore"):
        days = np.ceil(horizon_days / orders)
    return np.where(flags & (orders > 0) & (days <= cap_days), np.maximum(days, 1.0), np.nan)


# --------------------------------------------------------------------------------------------
# Behaviour segments

TOP_SHARE: Final = 0.10


def top_share(values: npt.ArrayLike, share: float = TOP_SHARE) -> Flags:
    """True for customers in the top ``share`` of the shop on ``values`` (higher is better).

    By the quintile method's rule: a customer is in the top 10% when at least 90% of the shop's
    customers are strictly worse. Tied customers are in or out together; a tie straddling the cut
    stays out, so the segment holds at most 10% of customers, never more. A one-customer shop, or
    one where everybody ties, has nobody in it. Exact in integers: 10·worse >= 9·n for 10%.
    """
    if not 0.0 < share <= 1.0:
        raise ValueError("share must lie in (0, 1]")
    worse = strictly_worse_counts(values)
    n = worse.size
    # share as a fraction p/q, so the comparison worse/n >= 1 - p/q stays in integers
    fraction = Fraction(share).limit_denominator(10_000)
    numerator, denominator = fraction.numerator, fraction.denominator
    result: Flags = worse * denominator >= n * (denominator - numerator)
    return result


def first_time_buyers(orders_count: npt.ArrayLike) -> Flags:
    """Exactly one qualifying order."""
    return _as_int(orders_count, "orders_count") == 1


def repeat_buyers(orders_count: npt.ArrayLike) -> Flags:
    """Two or more qualifying orders."""
    return _as_int(orders_count, "orders_count") >= 2


def big_spenders(total_spent: npt.ArrayLike, share: float = TOP_SHARE) -> Flags:
    """Top 10% on total spent, by :func:`top_share`."""
    return top_share(total_spent, share)


def high_aov(average_order_value: npt.ArrayLike, share: float = TOP_SHARE) -> Flags:
    """Top 10% on average order value, by :func:`top_share`."""
    return top_share(average_order_value, share)


def discount_shoppers(orders_count: npt.ArrayLike, discounted_orders_count: npt.ArrayLike) -> Flags:
    """At least half of the customer's orders discounted (exactly half counts)."""
    orders = _as_int(orders_count, "orders_count")
    discounted = _as_int(discounted_orders_count, "discounted_orders_count")
    _same_length(orders_count=orders, discounted_orders_count=discounted)
    return (orders >= 1) & (2 * discounted >= orders)


def full_price_buyers(orders_count: npt.ArrayLike, discounted_orders_count: npt.ArrayLike) -> Flags:
    """Two or more orders, none discounted."""
    orders = _as_int(orders_count, "orders_count")
    discounted = _as_int(discounted_orders_count, "discounted_orders_count")
    _same_length(orders_count=orders, discounted_orders_count=discounted)
    return (orders >= 2) & (discounted == 0)


def vip(segment: npt.ArrayLike, predicted_clv: npt.ArrayLike, share: float = TOP_SHARE) -> Flags:
    """Champions (by segment code; by the thirds method, the Top group) who are also in the shop's
    top 10% of predicted CLV.

    The top 10% is taken over all scored customers, not over Champions only.
    """
    codes = _as_int(segment, "segment")
    clv = _as_float(predicted_clv, "predicted_clv")
    _same_length(segment=codes, predicted_clv=clv)
    return np.isin(codes, VIP_CODES) & top_share(clv, share)


@dataclass(frozen=True, slots=True)
class BehaviourSegments:
    first_time_buyers: Flags
    repeat_buyers: Flags
    big_spenders: Flags
    high_aov: Flags
    discount_shoppers: Flags
    full_price_buyers: Flags
    vip: Flags


assert tuple(BehaviourSegments.__dataclass_fields__) == BEHAVIOUR_SEGMENT_NAMES


def behaviour_segments(
    orders_count: npt.ArrayLike,
    total_spent: npt.ArrayLike,
    discounted_orders_count: npt.ArrayLike,
    segment: npt.ArrayLike,
    predicted_clv: npt.ArrayLike | None,
) -> BehaviourSegments:
    """All behaviour segments at once. Without a CLV model (``predicted_clv`` None) nobody is VIP.

    Average order value is total spent / orders count (all-time, as the customer aggregates keep it).
    """
    orders = _as_int(orders_count, "orders_count")
    spent = _as_float(total_spent, "total_spent")
    _same_length(orders_count=orders, total_spent=spent)
    if orders.size and orders.min() < 1:
        raise ValueError("orders_count must be at least 1: segment only customers with a qualifying order")
    vips = np.zeros(orders.size, dtype=np.bool_) if predicted_clv is None else vip(segment, predicted_clv)
    return BehaviourSegments(
        first_time_buyers=first_time_buyers(orders),
        repeat_buyers=repeat_buyers(orders),
        big_spenders=big_spenders(spent),
        high_aov=high_aov(spent / orders),
        discount_shoppers=discount_shoppers(orders, discounted_orders_count),
        full_price_buyers=full_price_buyers(orders, discounted_orders_count),
        vip=vips,
    )
