"""Lifecycle stages (docs/metrics.md): cut-offs from the shop's own data, reactivation and its expiry."""

from __future__ import annotations

import math

import numpy as np
import pytest

from app.scoring.rules import (
    ACTIVE,
    AT_RISK,
    LAPSED,
    NEW,
    NO_STAGE,
    REACTIVATED,
    StageThresholds,
    labels,
    lifecycle_stages,
)
from app.vocabulary import STAGE_NAMES

MEDIAN = 30.0  # the shop's typical interval: at_risk after 60 days, lapsed after 120 (defaults 2x, 4x)


def stage_of(
    orders: int,
    days: float,
    p_alive: float | None = None,
    median: float | None = MEDIAN,
    previous: int | None = None,
    since_change: float = math.nan,
    thresholds: StageThresholds | None = None,
) -> tuple[str, bool]:
    result = lifecycle_stages(
        [orders],
        [days],
        None if p_alive is None else [p_alive],
        median,
        None if previous is None else [previous],
        None if previous is None else [since_change],
        thresholds or StageThresholds(),
    )
    return str(labels(result.stage, STAGE_NAMES)[0]), bool(result.changed[0])


# --- without a model: multiples of the shop's median days between orders --------------------


def test_one_order_recent_customer_is_new() -> None:
    assert stage_of(orders=1, days=10)[0] == "new"


def test_repeat_customer_within_twice_the_median_is_active() -> None:
    assert stage_of(orders=2, days=60)[0] == "active"


def test_customer_past_twice_the_median_is_at_risk() -> None:
    assert stage_of(orders=2, days=61)[0] == "at_risk"


def test_customer_at_four_times_the_median_is_still_at_risk() -> None:
    assert stage_of(orders=3, days=120)[0] == "at_risk"


def test_customer_past_four_times_the_median_is_lapsed() -> None:
    assert stage_of(orders=3, days=121)[0] == "lapsed"


def test_one_order_customer_goes_at_risk_by_the_same_interval_rule() -> None:
    assert stage_of(orders=1, days=61)[0] == "at_risk"


def test_shop_without_repeat_buyers_uses_the_fallback_interval() -> None:
    # no median: 90 days, so at_risk after 180 and lapsed after 360
    assert [stage_of(orders=1, days=d, median=None)[0] for d in (180, 181, 360, 361)] == [
        "new",
        "at_risk",
        "at_risk",
        "lapsed",
    ]


def test_zero_median_counts_as_no_median() -> None:
    result = lifecycle_stages([2], [5], None, 0.0)
    assert result.typical_interval_days == 90.0
    assert result.stage.tolist() == [ACTIVE]


def test_interval_multiples_are_parameters() -> None:
    thresholds = StageThresholds(at_risk_intervals=3.0, lapsed_intervals=5.0)
    assert stage_of(orders=2, days=61, thresholds=thresholds)[0] == "active"
    assert stage_of(orders=2, days=151, thresholds=thresholds)[0] == "lapsed"


# --- with a model: probability alive --------------------------------------------------------


@pytest.mark.parametrize(
    ("p_alive", "stage"),
    [
        (1.0, "active"),
        (0.5, "active"),
        (0.49, "at_risk"),
        (0.2, "at_risk"),
        (0.19, "lapsed"),
        (0.0, "lapsed"),
    ],
)
def test_probability_alive_decides_for_repeat_customers(p_alive: float, stage: str) -> None:
    # days = 500 would be lapsed by the interval rule: the model overrides it
    assert stage_of(orders=4, days=500, p_alive=p_alive)[0] == stage


def test_model_is_ignored_for_one_order_customers_whose_p_alive_is_always_one() -> None:
    assert stage_of(orders=1, days=500, p_alive=1.0)[0] == "lapsed"


def test_missing_probability_falls_back_to_the_interval_rule() -> None:
    assert stage_of(orders=2, days=500, p_alive=math.nan)[0] == "lapsed"


def test_probability_thresholds_are_parameters() -> None:
    thresholds = StageThresholds(alive_probability=0.7, lapsed_probability=0.4)
    assert stage_of(orders=2, days=5, p_alive=0.6, thresholds=thresholds)[0] == "at_risk"
    assert stage_of(orders=2, days=5, p_alive=0.3, thresholds=thresholds)[0] == "lapsed"


def test_probability_outside_zero_to_one_is_rejected() -> None:
    with pytest.raises(ValueError, match=r"p_alive"):
        lifecycle_stages([2], [5], [1.5], MEDIAN)


# --- transitions ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("previous", "orders", "days", "since_change", "stage"),
    [
        (NEW, 2, 3, 40, "active"),  # second order
        (ACTIVE, 2, 61, 61, "at_risk"),  # time passed
        (AT_RISK, 2, 121, 60, "lapsed"),  # more time passed
        (AT_RISK, 3, 0, 30, "active"),  # ordered again before lapsing: no reactivation
        (LAPSED, 3, 2, 100, "reactivated"),  # ordered again after lapsing
        (REACTIVATED, 3, 30, 30, "active"),  # one typical interval later
        (NEW, 1, 61, 61, "at_risk"),  # one-order customer going quiet
    ],
)
def test_stage_transition_is_reported_as_a_change(
    previous: int, orders: int, days: float, since_change: float, stage: str
) -> None:
    assert stage_of(orders=orders, days=days, previous=previous, since_change=since_change) == (stage, True)


def test_unchanged_stage_is_not_reported() -> None:
    assert stage_of(orders=2, days=10, previous=ACTIVE, since_change=200) == ("active", False)


def test_lapsed_customer_without_a_new_order_stays_lapsed() -> None:
    # last order 300 days ago, lapsed since 100 days: nothing since
    assert stage_of(orders=3, days=300, previous=LAPSED, since_change=100) == ("lapsed", False)


def test_reactivation_needs_an_order_after_entering_lapsed() -> None:
    # last order on the very day the customer lapsed does not count as ordering again
    assert stage_of(orders=3, days=150, previous=LAPSED, since_change=150)[0] == "lapsed"


@pytest.mark.parametrize("p_alive", [0.3, 0.95], ids=["at-risk-by-the-model", "alive-by-the-model"])
def test_a_lapsed_customer_leaves_lapsed_only_by_ordering(p_alive: float) -> None:
    # a new fit (or the model replacing the days rule) reads the same history as likely alive
    assert stage_of(orders=5, days=200, p_alive=p_alive, previous=LAPSED, since_change=60) == (
        "lapsed",
        False,
    )
    assert stage_of(orders=5, days=70, previous=LAPSED, since_change=10) == ("lapsed", False)  # days rule


def test_an_order_delivered_after_the_lapse_brings_the_customer_back_even_if_dated_before() -> None:
    # lapsed half a day ago; an order from yesterday arrived since (a late webhook, a reconciliation)
    late = lifecycle_stages([5], [1], None, MEDIAN, [LAPSED], [0.5], StageThresholds(), [True])
    nothing = lifecycle_stages([5], [1], None, MEDIAN, [LAPSED], [0.5], StageThresholds(), [False])
    assert labels(late.stage, STAGE_NAMES).tolist() == ["active"]
    assert labels(nothing.stage, STAGE_NAMES).tolist() == ["lapsed"]


def test_reactivation_under_a_model_follows_the_order() -> None:
    assert stage_of(orders=5, days=1, p_alive=0.95, previous=LAPSED, since_change=80)[0] == "reactivated"


def test_reactivated_customer_stays_reactivated_within_one_typical_interval() -> None:
    assert stage_of(orders=3, days=29, previous=REACTIVATED, since_change=29) == ("reactivated", False)


def test_reactivated_customer_stays_reactivated_even_if_quiet_within_the_interval() -> None:
    assert stage_of(orders=3, days=29, p_alive=0.1, previous=REACTIVATED, since_change=29)[0] == "reactivated"


def test_reactivation_expires_after_one_typical_interval_into_the_normal_rules() -> None:
    assert stage_of(orders=3, days=70, previous=REACTIVATED, since_change=30) == ("at_risk", True)


def test_reactivation_length_is_a_parameter() -> None:
    thresholds = StageThresholds(reactivated_intervals=2.0)
    assert stage_of(orders=3, days=45, previous=REACTIVATED, since_change=45, thresholds=thresholds)[0] == (
        "reactivated"
    )


def test_first_scoring_reports_every_customer_as_changed() -> None:
    result = lifecycle_stages([1, 2, 3], [5, 5, 500], None, MEDIAN)
    assert result.stage.tolist() == [NEW, ACTIVE, LAPSED]
    assert result.changed.tolist() == [True, True, True]


def test_customer_never_staged_before_is_reported_as_changed() -> None:
    result = lifecycle_stages([1, 2], [5, 5], None, MEDIAN, [NO_STAGE, ACTIVE], [math.nan, 10])
    assert result.changed.tolist() == [True, False]


def test_previous_stage_needs_its_days_since_change() -> None:
    with pytest.raises(ValueError, match="days_since_previous_stage_change"):
        lifecycle_stages([2], [5], None, MEDIAN, [LAPSED], [math.nan])


def test_empty_shop_has_no_stages() -> None:
    result = lifecycle_stages(np.array([], dtype=int), np.array([], dtype=float), None, None)
    assert result.stage.shape == (0,)
    assert result.changed.shape == (0,)


def test_customer_without_an_order_is_rejected() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        lifecycle_stages([0], [5], None, MEDIAN)


def test_inconsistent_probability_thresholds_are_rejected() -> None:
    with pytest.raises(ValueError, match="lapsed_probability <= alive_probability"):
        StageThresholds(alive_probability=0.1, lapsed_probability=0.2)


def test_inconsistent_interval_thresholds_are_rejected() -> None:
    with pytest.raises(ValueError, match="at_risk_intervals <= lapsed_intervals"):
        StageThresholds(at_risk_intervals=5.0, lapsed_intervals=4.0)
