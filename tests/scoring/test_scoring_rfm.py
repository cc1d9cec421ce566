"""RFM scores by the quintile and thirds methods, FM and the segment grid (docs/metrics.md)."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

import numpy as np
import pytest

from app.scoring import rules
from app.scoring.rules import (
    fm_score,
    labels,
    quintile_scores,
    segments,
    thirds_group,
    thirds_recency_scores,
    thirds_scores,
)
from app.vocabulary import DEFAULT_GRID, SEGMENT_NAMES, THIRDS_GROUP_NAMES, GridError, validate_grid

# --- quintile -------------------------------------------------------------------------------


def test_quintile_formula_on_seven_customers_worked_by_hand() -> None:
    # monetary, n = 7; score = 1 + floor(5 * worse / 7)
    #   10 -> 0 strictly worse -> 1 + floor(0/7)  = 1
    #   20 -> 1                -> 1 + floor(5/7)  = 1   (both 20s: a tie shares its score)
    #   35 -> 3                -> 1 + floor(15/7) = 3
    #   50 -> 4                -> 1 + floor(20/7) = 3   (both 50s)
    #   90 -> 6                -> 1 + floor(30/7) = 5
    monetary = [50, 10, 90, 20, 35, 50, 20]
    assert quintile_scores(monetary).tolist() == [3, 1, 5, 1, 3, 3, 1]


def test_quintile_recency_lower_days_is_better_worked_by_hand() -> None:
    # days since last order, n = 10; "strictly worse" = strictly more days
    #   3 (x2) -> 8 worse -> 1 + floor(40/10) = 5
    #   10     -> 7       -> 1 + floor(35/10) = 4
    #   15     -> 6       -> 1 + floor(30/10) = 4
    #   40 (x3)-> 3       -> 1 + floor(15/10) = 2
    #   90     -> 2       -> 1 + floor(10/10) = 2
    #   200    -> 1       -> 1 + floor(5/10)  = 1
    #   365    -> 0       -> 1
    days = [3, 3, 10, 15, 40, 40, 40, 90, 200, 365]
    assert quintile_scores(days, higher_is_better=False).tolist() == [5, 5, 4, 4, 2, 2, 2, 2, 1, 1]


def test_quintile_ten_distinct_values_give_two_customers_per_score() -> None:
    assert quintile_scores(np.arange(10.0)).tolist() == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]


def test_quintile_ties_share_a_score() -> None:
    scores = quintile_scores([1, 2, 2, 2, 2, 2, 2, 2, 2, 9])
    assert set(scores[1:9].tolist()) == {1}
    assert scores[9] == 5


def test_quintile_everyone_tied_scores_one() -> None:
    assert quintile_scores([4, 4, 4, 4]).tolist() == [1, 1, 1, 1]


def test_quintile_one_customer_shop_scores_one() -> None:
    assert quintile_scores([120.0]).tolist() == [1]


def test_quintile_empty_shop_gives_empty_scores() -> None:
    scores = quintile_scores(np.array([], dtype=float))
    assert scores.shape == (0,)
    assert scores.dtype == np.int8


def test_quintile_rejects_nan() -> None:
    with pytest.raises(ValueError, match="NaN"):
        quintile_scores([1.0, float("nan")])


def test_quintile_rejects_two_dimensional_input() -> None:
    with pytest.raises(ValueError, match="one-dimensional"):
        quintile_scores([[1, 2], [3, 4]])


# --- FM -------------------------------------------------------------------------------------


@pytest.mark.parametrize("f", range(1, 6))
@pytest.mark.parametrize("m", range(1, 6))
def test_fm_is_the_mean_of_f_and_m_rounded_half_up(f: int, m: int) -> None:
    expected = int((Decimal(f + m) / 2).quantize(Decimal(1), rounding=ROUND_HALF_UP))
    assert fm_score([f], [m]).tolist() == [expected]


def test_fm_rounds_a_half_up_not_to_even() -> None:
    # (1+2)/2 = 1.5 -> 2 and (3+4)/2 = 3.5 -> 4, while (2+3)/2 = 2.5 -> 3, not 2 as round() gives
    assert fm_score([1, 3, 2], [2, 4, 3]).tolist() == [2, 4, 3]


def test_fm_rejects_scores_outside_one_to_five() -> None:
    with pytest.raises(ValueError, match="between 1 and 5"):
        fm_score([0], [3])


# --- segment grid ---------------------------------------------------------------------------

PRODUCT_GRID = [
    # (R, FM, name): the default grid, with Shopify's segment names (docs/metrics.md)
    (5, 1, "New"), (5, 2, "Promising"), (5, 3, "Active"), (5, 4, "Champions"), (5, 5, "Champions"),
    (4, 1, "Promising"), (4, 2, "Promising"), (4, 3, "Active"), (4, 4, "Loyal"), (4, 5, "Champions"),
    (3, 1, "Needs attention"), (3, 2, "Needs attention"), (3, 3, "Needs attention"), (3, 4, "Loyal"),
    (3, 5, "Loyal"),
    (2, 1, "Almost lost"), (2, 2, "Almost lost"), (2, 3, "At risk"), (2, 4, "At risk"),
    (2, 5, "Previously loyal"),
    (1, 1, "Dormant"), (1, 2, "Dormant"), (1, 3, "At risk"), (1, 4, "At risk"), (1, 5, "Previously loyal"),
]  # fmt: skip


@pytest.mark.parametrize(("r", "fm", "name"), PRODUCT_GRID)
def test_each_grid_cell_maps_to_its_segment(r: int, fm: int, name: str) -> None:
    assert labels(segments([r], [fm]), SEGMENT_NAMES).tolist() == [name]


def test_default_grid_is_exactly_the_product_table() -> None:
    assert dict(DEFAULT_GRID) == {(r, fm): name for r, fm, name in PRODUCT_GRID}


def test_segment_names_are_the_ten_names_of_the_grid() -> None:
    assert len(SEGMENT_NAMES) == 10
    assert set(SEGMENT_NAMES) == set(DEFAULT_GRID.values())


def test_segments_of_many_customers_in_one_call() -> None:
    r = [r for r, _, _ in PRODUCT_GRID]
    fm = [fm for _, fm, _ in PRODUCT_GRID]
    assert labels(segments(r, fm), SEGMENT_NAMES).tolist() == [name for _, _, name in PRODUCT_GRID]


def test_segments_follow_an_edited_grid() -> None:
    grid = dict(DEFAULT_GRID)
    grid[(5, 1)] = "Promising"
    assert labels(segments([5, 4], [1, 4], grid), SEGMENT_NAMES).tolist() == ["Promising", "Loyal"]


def test_segments_reject_a_score_outside_the_grid() -> None:
    with pytest.raises(ValueError, match="between 1 and 5"):
        segments([6], [1])


def test_validate_grid_accepts_the_default_grid() -> None:
    assert validate_grid(DEFAULT_GRID) == dict(DEFAULT_GRID)


def test_validate_grid_names_a_missing_cell() -> None:
    grid = dict(DEFAULT_GRID)
    del grid[(3, 2)]
    with pytest.raises(GridError, match=r"R=3, FM=2 is missing"):
        validate_grid(grid)


def test_validate_grid_names_a_cell_with_an_unknown_segment() -> None:
    grid = dict(DEFAULT_GRID)
    grid[(2, 4)] = "Whales"
    with pytest.raises(GridError, match=r"R=2, FM=4 names unknown segment 'Whales'"):
        validate_grid(grid)


def test_validate_grid_rejects_a_cell_outside_one_to_five() -> None:
    grid = dict(DEFAULT_GRID)
    grid[(6, 1)] = "Champions"
    with pytest.raises(GridError, match=r"unexpected cell \(6, 1\)"):
        validate_grid(grid)


def test_segments_refuse_an_invalid_grid() -> None:
    with pytest.raises(GridError):
        segments([5], [5], {(5, 5): "Champions"})


# --- thirds ---------------------------------------------------------------------------------


def test_thirds_cut_the_value_range_into_three_equal_parts() -> None:
    # range 1..7, cut points at 3 and 5; a value on a cut point takes the better score
    assert thirds_scores([1, 2, 3, 4, 5, 7]).tolist() == [1, 1, 2, 2, 3, 3]


def test_thirds_lower_is_better_mirrors_higher_is_better() -> None:
    values = np.array([1, 2, 3, 4, 5, 7])
    assert thirds_scores(values, higher_is_better=False).tolist() == thirds_scores(-values).tolist()


def test_thirds_everyone_tied_scores_one() -> None:
    assert thirds_scores([3.0, 3.0]).tolist() == [1, 1]


@pytest.mark.parametrize(
    ("days", "score"),
    [(0, 3), (121, 3), (122, 2), (243, 2), (244, 1), (365, 1), (1000, 1)],
)
def test_thirds_recency_bins_use_the_mean_month(days: int, score: int) -> None:
    # 4 months = 121.75 days, 8 months = 243.5 days
    assert thirds_recency_scores([days]).tolist() == [score]


def test_thirds_recency_bins_with_a_thirty_day_month() -> None:
    assert thirds_recency_scores([120, 121, 240, 241], days_per_month=30).tolist() == [3, 2, 2, 1]


def test_thirds_over_a_twelve_month_recency_range_reproduce_the_fixed_bins() -> None:
    days = np.arange(0, 366)
    assert (thirds_scores(days, higher_is_better=False) == thirds_recency_scores(days)).all()


@pytest.mark.parametrize(
    ("r", "f", "m", "group"),
    [
        (1, 1, 1, "Low"),
        (1, 1, 2, "Low"),
        (1, 2, 2, "Middle"),
        (2, 2, 2, "Middle"),
        (3, 2, 2, "Top"),
        (3, 3, 2, "Top"),
        (3, 3, 3, "Top"),
    ],
)
def test_thirds_group_by_the_sum_of_scores(r: int, f: int, m: int, group: str) -> None:
    assert labels(thirds_group([r], [f], [m]), THIRDS_GROUP_NAMES).tolist() == [group]


def test_score_quintile_gives_r_f_m_fm_and_segment() -> None:
    result = rules.score_quintile([1, 300], [5, 1], [500.0, 20.0])
    assert result.recency.tolist() == [3, 1]
    assert result.frequency.tolist() == [3, 1]
    assert result.monetary.tolist() == [3, 1]
    assert result.fm.tolist() == [3, 1]
    assert labels(result.segment, SEGMENT_NAMES).tolist() == ["Needs attention", "Dormant"]


def test_score_thirds_gives_r_f_m_and_group() -> None:
    result = rules.score_thirds([10, 200, 300], [1, 2, 9], [30.0, 100.0, 900.0])
    assert result.recency.tolist() == [3, 2, 1]
    assert result.frequency.tolist() == [1, 1, 3]
    assert result.monetary.tolist() == [1, 1, 3]
    assert labels(result.group, THIRDS_GROUP_NAMES).tolist() == ["Middle", "Low", "Top"]


def test_scoring_rejects_arrays_of_different_lengths() -> None:
    with pytest.raises(ValueError, match="one element per customer"):
        rules.score_quintile([1, 2], [1, 2, 3], [1.0, 2.0])
