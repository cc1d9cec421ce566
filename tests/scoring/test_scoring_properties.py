"""Properties of the scoring rules and metrics over arbitrary shops (hypothesis)."""

from __future__ import annotations

import math
from collections import defaultdict

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from app.scoring import metrics, rules

values_of_a_shop = st.lists(
    st.one_of(
        st.integers(min_value=0, max_value=40).map(float),  # many ties, as order counts have
        st.floats(min_value=-1e9, max_value=1e9, allow_nan=False, allow_subnormal=False),
    ),
    min_size=1,
    max_size=60,
)
permutation_seed = st.integers(min_value=0, max_value=2**32 - 1)


def _permuted(values: list[float], seed: int) -> tuple[np.ndarray, np.ndarray]:
    array = np.asarray(values)
    order = np.random.default_rng(seed).permutation(array.size)
    return array, order


def _never_lower_for_a_better_value(values: np.ndarray, scores: np.ndarray) -> bool:
    order = np.argsort(values, kind="stable")
    return bool((np.diff(scores[order].astype(int)) >= 0).all())


# --- quintile -------------------------------------------------------------------------------


@given(values_of_a_shop, st.booleans())
def test_quintile_scores_lie_in_one_to_five(values: list[float], higher_is_better: bool) -> None:
    scores = rules.quintile_scores(values, higher_is_better)
    assert scores.min() >= 1 and scores.max() <= 5


@given(values_of_a_shop)
def test_quintile_scores_match_the_formula_as_written(values: list[float]) -> None:
    n = len(values)
    expected = [min(5, 1 + math.floor(5 * sum(w < v for w in values) / n)) for v in values]
    assert rules.quintile_scores(values).tolist() == expected


@given(values_of_a_shop)
def test_quintile_better_value_never_scores_lower(values: list[float]) -> None:
    array = np.asarray(values)
    assert _never_lower_for_a_better_value(array, rules.quintile_scores(array))
    assert _never_lower_for_a_better_value(-array, rules.quintile_scores(array, higher_is_better=False))


@given(values_of_a_shop)
def test_quintile_ties_share_a_score(values: list[float]) -> None:
    scores = rules.quintile_scores(values)
    by_value: dict[float, set[int]] = defaultdict(set)
    for value, score in zip(values, scores.tolist(), strict=True):
        by_value[value].add(score)
    assert all(len(s) == 1 for s in by_value.values())


@given(values_of_a_shop, permutation_seed)
def test_quintile_permuting_customers_permutes_scores(values: list[float], seed: int) -> None:
    array, order = _permuted(values, seed)
    assert (rules.quintile_scores(array[order]) == rules.quintile_scores(array)[order]).all()


# --- thirds ---------------------------------------------------------------------------------


@given(values_of_a_shop, st.booleans())
def test_thirds_scores_lie_in_one_to_three(values: list[float], higher_is_better: bool) -> None:
    scores = rules.thirds_scores(values, higher_is_better)
    assert scores.min() >= 1 and scores.max() <= 3


@given(values_of_a_shop)
def test_thirds_better_value_never_scores_lower(values: list[float]) -> None:
    array = np.asarray(values)
    assert _never_lower_for_a_better_value(array, rules.thirds_scores(array))
    assert _never_lower_for_a_better_value(-array, rules.thirds_scores(array, higher_is_better=False))


@given(values_of_a_shop, permutation_seed)
def test_thirds_permuting_customers_permutes_scores(values: list[float], seed: int) -> None:
    array, order = _permuted(values, seed)
    assert (rules.thirds_scores(array[order]) == rules.thirds_scores(array)[order]).all()


@given(st.lists(st.floats(min_value=0, max_value=5000, allow_nan=False), min_size=1, max_size=60))
def test_thirds_recency_in_one_to_three_and_fewer_days_never_lower(days: list[float]) -> None:
    array = np.asarray(days)
    scores = rules.thirds_recency_scores(array)
    assert scores.min() >= 1 and scores.max() <= 3
    assert _never_lower_for_a_better_value(-array, scores)


scores_1_to_5 = st.lists(st.tuples(st.integers(1, 5), st.integers(1, 5)), min_size=1, max_size=30)


@given(scores_1_to_5)
def test_fm_lies_between_f_and_m(pairs: list[tuple[int, int]]) -> None:
    f, m = (np.array(column) for column in zip(*pairs, strict=True))
    fm = rules.fm_score(f, m)
    assert (fm >= np.minimum(f, m)).all() and (fm <= np.maximum(f, m)).all()


@given(scores_1_to_5)
def test_segment_never_improves_when_recency_drops_to_one(pairs: list[tuple[int, int]]) -> None:
    r, fm = (np.array(column) for column in zip(*pairs, strict=True))
    codes = rules.segments(np.ones_like(r), fm)
    best_of_r1 = {rules.SEGMENT_CODES[n] for n in ("Dormant", "At risk", "Previously loyal")}
    assert set(codes.tolist()) <= best_of_r1


# --- top 10% --------------------------------------------------------------------------------


@given(values_of_a_shop)
def test_top_share_holds_at_most_ten_percent(values: list[float]) -> None:
    assert rules.top_share(values).sum() <= len(values) // 10


@given(values_of_a_shop)
def test_top_share_better_value_is_never_out_when_a_worse_one_is_in(values: list[float]) -> None:
    array = np.asarray(values)
    assert _never_lower_for_a_better_value(array, rules.top_share(array))


@given(values_of_a_shop, permutation_seed)
def test_top_share_permuting_customers_permutes_membership(values: list[float], seed: int) -> None:
    array, order = _permuted(values, seed)
    assert (rules.top_share(array[order]) == rules.top_share(array)[order]).all()


# --- stages ---------------------------------------------------------------------------------

customers_for_stages = st.lists(
    st.tuples(
        st.integers(1, 6),  # orders
        st.integers(0, 400),  # days since last order
        st.one_of(st.just(math.nan), st.floats(0, 1)),  # p alive
        st.integers(-1, 4),  # previous stage
        st.integers(0, 400),  # days since previous stage change
    ),
    min_size=1,
    max_size=40,
)


@given(customers_for_stages, permutation_seed, st.sampled_from([None, 0.0, 12.0, 45.5]))
def test_stages_permuting_customers_permutes_stages(
    customers: list[tuple[int, int, float, int, int]], seed: int, median: float | None
) -> None:
    orders, days, p_alive, previous, since = (np.array(c, dtype=float) for c in zip(*customers, strict=True))
    order = np.random.default_rng(seed).permutation(orders.size)
    whole = rules.lifecycle_stages(orders, days, p_alive, median, previous, since)
    permuted = rules.lifecycle_stages(
        orders[order], days[order], p_alive[order], median, previous[order], since[order]
    )
    assert (permuted.stage == whole.stage[order]).all()
    assert (permuted.changed == whole.changed[order]).all()


@given(st.integers(1, 6), st.integers(0, 600), st.integers(0, 600), st.sampled_from([None, 7.0, 30.0]))
def test_without_a_model_more_days_never_bring_a_customer_back(
    orders: int, days: int, more: int, median: float | None
) -> None:
    rank = {rules.NEW: 0, rules.ACTIVE: 0, rules.AT_RISK: 1, rules.LAPSED: 2}
    earlier, later = rules.lifecycle_stages([orders, orders], [days, days + more], None, median).stage
    assert rank[int(later)] >= rank[int(earlier)]


# --- metrics --------------------------------------------------------------------------------

shop_orders = st.lists(
    st.tuples(st.integers(0, 8), st.integers(19_000, 19_400), st.integers(0, 500).map(float)),
    min_size=1,
    max_size=60,
)


def _columns(orders: list[tuple[int, int, float]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    customer, day, value = zip(*orders, strict=True)
    return np.array(customer), np.array(day), np.array(value)


@given(shop_orders, permutation_seed)
def test_metrics_do_not_depend_on_the_order_of_orders(
    orders: list[tuple[int, int, float]], seed: int
) -> None:
    customer, day, value = _columns(orders)
    order = np.random.default_rng(seed).permutation(customer.size)
    whole = metrics.shop_metrics(customer, day, value, period_days=30)
    shuffled = metrics.shop_metrics(customer[order], day[order], value[order], period_days=30)
    assert whole.retention == shuffled.retention
    assert whole.cohorts.active_customers == shuffled.cohorts.active_customers
    assert np.allclose(
        np.array(whole.cohorts.cumulative_revenue_per_customer, dtype=float),
        np.array(shuffled.cohorts.cumulative_revenue_per_customer, dtype=float),
        equal_nan=True,
    )
    assert (whole.repeat_purchase_rate, whole.median_days_between_orders) == (
        shuffled.repeat_purchase_rate,
        shuffled.median_days_between_orders,
    )


@given(shop_orders)
def test_days_between_orders_match_a_plain_count(orders: list[tuple[int, int, float]]) -> None:
    days_of: dict[int, list[int]] = defaultdict(list)
    for c, d, _ in orders:
        days_of[c].append(d)
    result = metrics.days_between_orders(*_columns(orders)[:2])
    for c, days in days_of.items():
        if len(days) >= 2:
            assert result.per_customer[c] == (max(days) - min(days)) / (len(days) - 1)
        else:
            assert math.isnan(result.per_customer[c])


@given(shop_orders, st.sampled_from([None, 7, 30]))
def test_retention_matches_sets_of_buyers_per_period(
    orders: list[tuple[int, int, float]], period_days: int | None
) -> None:
    customer, day, _ = _columns(orders)
    table = metrics.retention_by_period(customer, day, period_days=period_days)
    start_day = np.array([(s - metrics._EPOCH).days for s in table.period_starts])
    buyers: list[set[int]] = [set() for _ in start_day]
    for c, d in zip(customer.tolist(), day.tolist(), strict=True):
        buyers[int(np.searchsorted(start_day, d, side="right")) - 1].add(c)
    assert table.customers == [len(b) for b in buyers]
    assert table.retained == [0] + [len(buyers[p] & buyers[p - 1]) for p in range(1, len(buyers))]


@given(shop_orders)
def test_cohort_month_zero_is_everyone_and_revenue_never_falls(orders: list[tuple[int, int, float]]) -> None:
    table = metrics.cohort_table(*_columns(orders))
    assert sum(table.customers) == len({c for c, _, _ in orders})
    for size, shares, revenue in zip(
        table.customers, table.active_share, table.cumulative_revenue_per_customer, strict=True
    ):
        if size:
            assert shares[0] == 1.0
            seen = [r for r in revenue if r is not None]
            assert all(b >= a for a, b in zip(seen, seen[1:], strict=False))


@settings(max_examples=50)
@given(shop_orders)
def test_cohort_revenue_adds_up_to_the_shop_revenue(orders: list[tuple[int, int, float]]) -> None:
    table = metrics.cohort_table(*_columns(orders))
    total = sum(
        [r for r in revenue if r is not None][-1] * size
        for size, revenue in zip(table.customers, table.cumulative_revenue_per_customer, strict=True)
        if size
    )
    assert math.isclose(total, sum(v for _, _, v in orders), abs_tol=1e-6)
