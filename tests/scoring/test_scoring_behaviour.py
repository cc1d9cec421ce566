"""Behaviour segments (docs/metrics.md) and their edge cases."""

from __future__ import annotations

import numpy as np
import pytest

from app.scoring.rules import (
    SEGMENT_CODES,
    behaviour_segments,
    big_spenders,
    discount_shoppers,
    first_time_buyers,
    full_price_buyers,
    high_aov,
    repeat_buyers,
    top_share,
    vip,
)
from app.vocabulary import BEHAVIOUR_SEGMENT_NAMES

CHAMPIONS = SEGMENT_CODES["Champions"]
LOYAL = SEGMENT_CODES["Loyal"]


def test_first_time_buyers_have_exactly_one_order() -> None:
    assert first_time_buyers([1, 2, 5]).tolist() == [True, False, False]


def test_repeat_buyers_have_two_or_more_orders() -> None:
    assert repeat_buyers([1, 2, 5]).tolist() == [False, True, True]


def test_big_spenders_among_ten_distinct_customers_is_the_top_one() -> None:
    spent = [50.0, 10, 20, 30, 40, 60, 70, 80, 90, 100]
    assert np.flatnonzero(big_spenders(spent)).tolist() == [9]


def test_big_spenders_among_twenty_distinct_customers_are_the_top_two() -> None:
    spent = np.arange(20.0)[::-1]
    assert np.flatnonzero(big_spenders(spent)).tolist() == [0, 1]


def test_tie_that_fits_within_the_top_ten_percent_is_in_together() -> None:
    # 20 customers, the top two tie: 18 of 20 (90%) are strictly worse than both
    spent = [*range(18), 500, 500]
    assert np.flatnonzero(big_spenders(spent)).tolist() == [18, 19]


def test_tie_straddling_the_ninetieth_percentile_stays_out_together() -> None:
    # 20 customers, the top three tie: only 17 of 20 (85%) are strictly worse than them
    spent = [*range(17), 500, 500, 500]
    assert not big_spenders(spent).any()


def test_top_share_never_holds_more_than_the_share() -> None:
    rng = np.random.default_rng(7)
    values = rng.integers(0, 15, 1000)
    assert big_spenders(values).sum() <= 100


def test_one_customer_shop_has_no_big_spender() -> None:
    assert big_spenders([250.0]).tolist() == [False]


def test_empty_shop_has_no_big_spenders() -> None:
    assert big_spenders(np.array([], dtype=float)).shape == (0,)


def test_top_share_takes_other_shares() -> None:
    assert np.flatnonzero(top_share(np.arange(10.0), share=0.25)).tolist() == [8, 9]


def test_high_aov_is_the_top_ten_percent_of_average_order_value() -> None:
    aov = [30.0] * 9 + [95.0]
    assert np.flatnonzero(high_aov(aov)).tolist() == [9]


def test_exactly_half_discounted_is_a_discount_shopper() -> None:
    assert discount_shoppers([2, 4], [1, 2]).tolist() == [True, True]


def test_less_than_half_discounted_is_not_a_discount_shopper() -> None:
    assert discount_shoppers([3, 5], [1, 2]).tolist() == [False, False]


def test_single_discounted_order_makes_a_discount_shopper() -> None:
    assert discount_shoppers([1, 1], [1, 0]).tolist() == [True, False]


def test_full_price_buyers_have_two_orders_none_discounted() -> None:
    assert full_price_buyers([2, 7], [0, 0]).tolist() == [True, True]


def test_one_full_price_order_is_not_a_full_price_buyer() -> None:
    assert full_price_buyers([1], [0]).tolist() == [False]


def test_one_discounted_order_spoils_full_price() -> None:
    assert full_price_buyers([5], [1]).tolist() == [False]


def test_vip_is_a_champion_in_the_top_ten_percent_of_predicted_clv() -> None:
    segment = [CHAMPIONS] * 10
    clv = np.arange(10.0)
    assert np.flatnonzero(vip(segment, clv)).tolist() == [9]


def test_top_clv_customer_who_is_not_a_champion_is_not_vip() -> None:
    segment = [CHAMPIONS] * 9 + [LOYAL]
    assert not vip(segment, np.arange(10.0)).any()


def test_top_ten_percent_for_vip_is_taken_over_the_whole_shop() -> None:
    # the only Champion has the best CLV of the Champions but not of the shop
    segment = [LOYAL] * 9 + [CHAMPIONS]
    clv = [100.0, 90, 80, 70, 60, 50, 40, 30, 20, 95]
    assert not vip(segment, clv).any()


def test_all_behaviour_segments_at_once() -> None:
    result = behaviour_segments(
        orders_count=[1, 2, 4, 1] + [1] * 6,
        total_spent=[20.0, 60, 400, 300] + [10.0] * 6,
        discounted_orders_count=[1, 0, 2, 0] + [0] * 6,
        segment=[LOYAL, LOYAL, CHAMPIONS, LOYAL] + [LOYAL] * 6,
        predicted_clv=[5.0, 40, 900, 100] + [1.0] * 6,
    )
    assert result.first_time_buyers[:4].tolist() == [True, False, False, True]
    assert result.repeat_buyers[:4].tolist() == [False, True, True, False]
    assert np.flatnonzero(result.big_spenders).tolist() == [2]
    assert np.flatnonzero(result.high_aov).tolist() == [3]  # 300 in one order beats 400 in four
    assert result.discount_shoppers[:4].tolist() == [True, False, True, False]
    assert np.flatnonzero(result.full_price_buyers).tolist() == [1]
    assert np.flatnonzero(result.vip).tolist() == [2]


def test_without_a_clv_model_nobody_is_vip() -> None:
    result = behaviour_segments([2, 3], [50.0, 90.0], [0, 0], [CHAMPIONS, CHAMPIONS], None)
    assert not result.vip.any()


def test_behaviour_segment_names_list_every_segment() -> None:
    assert BEHAVIOUR_SEGMENT_NAMES == (
        "first_time_buyers",
        "repeat_buyers",
        "big_spenders",
        "high_aov",
        "discount_shoppers",
        "full_price_buyers",
        "vip",
    )


def test_empty_shop_has_empty_behaviour_segments() -> None:
    empty_int = np.array([], dtype=int)
    result = behaviour_segments(empty_int, np.array([], dtype=float), empty_int, empty_int, None)
    assert all(getattr(result, name).shape == (0,) for name in BEHAVIOUR_SEGMENT_NAMES)


def test_behaviour_segments_reject_a_customer_without_orders() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        behaviour_segments([0], [0.0], [0], [CHAMPIONS], None)
