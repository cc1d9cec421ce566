"""The thirds method as a complete method (its groups are the customers' RFM segments, its own
grid, its own segments table), and the window's population (the buyers with an order in the
window), on the five-buyer shop of test_rescore.py at 2026-06-01.

Thirds, all time: R by months (≤ 121 d → 3, ≤ 243 d → 2): c1 c2 c4 3, c5 2, c3 1; F over 1..3: c4 3,
c2 2, others 1; M over 20..500: c3 3, others 1. R + F + M: c1 5, c2 6, c3 5, c4 7, c5 4.

Window 365 days: c3's only order is 365 days old, outside; the population is c1 c2 c4 c5 (n = 4).
Quintiles over them: R c1 4, c2 3, c4 2, c5 1; F c1 1, c2 3, c4 4, c5 1; M c1 c2 c4 2, c5 1;
FM c1 2, c2 3, c4 3, c5 1. c3 scores 1 1 1.
Thirds over them: R c1 c2 c4 3, c5 2, c3 1; F over 1..3: c1 1, c2 2, c4 3, c5 1; M over 20..100:
c1 c2 c4 3, c5 1; c3 F = M = 1.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import CustomerScore, ShopMetricsSnapshot, ShopSegment
from app.scoring import rules
from app.settings.service import update_settings
from app.sync.desired import CustomerValues, TagPrefixes, desired_state, segment_specs, tag_vocabulary
from app.vocabulary import ALL_CUSTOMERS, SEGMENTS_OF_METHOD, THIRDS_GROUP_NAMES
from tests.scoring.test_rescore import NOW, rescore

pytestmark = pytest.mark.both_dbs


def scores_of(session: Session, shop_id: int) -> dict[int, tuple[str, str]]:
    session.expire_all()
    rows = session.scalars(select(CustomerScore).where(CustomerScore.shop_id == shop_id))
    return {s.customer_id: (s.rfm_code, s.segment) for s in rows}


def segments_table(session: Session, shop_id: int) -> dict[str, int]:
    rows = session.scalars(
        select(ShopSegment).where(ShopSegment.shop_id == shop_id).order_by(ShopSegment.position)
    )
    return {s.segment: s.customers for s in rows}


def grid_of(session: Session, shop_id: int) -> dict[str, object]:
    snapshot = session.scalar(select(ShopMetricsSnapshot).where(ShopMetricsSnapshot.shop_id == shop_id))
    assert snapshot is not None and snapshot.metrics
    grid: dict[str, object] = json.loads(snapshot.metrics)["rfm_grid"]
    return grid


def use(session: Session, shop_id: int, **changes: object) -> None:
    update_settings(session, shop_id, changes, NOW)
    session.commit()


# -- thirds ----------------------------------------------------------------------------------


def test_by_thirds_a_customers_segment_is_their_group(session: Session, five_customer_shop: int) -> None:
    use(session, five_customer_shop, scoring_method="thirds")
    rescore(session, five_customer_shop)
    # c1 is R3 F1 M1: Middle (R + F + M = 5), never a quintile name such as Champions
    assert scores_of(session, five_customer_shop) == {
        1: ("311", "Middle"),
        2: ("321", "Middle"),
        3: ("113", "Middle"),
        4: ("331", "Top"),
        5: ("211", "Low"),
    }


def test_by_thirds_the_segments_table_lists_the_groups(session: Session, five_customer_shop: int) -> None:
    use(session, five_customer_shop, scoring_method="thirds")
    rescore(session, five_customer_shop)
    assert segments_table(session, five_customer_shop) == {ALL_CUSTOMERS: 5, "Top": 1, "Middle": 3, "Low": 1}


def test_by_thirds_the_grid_is_r_by_f_plus_m_with_each_cells_group(
    session: Session, five_customer_shop: int
) -> None:
    use(session, five_customer_shop, scoring_method="thirds")
    rescore(session, five_customer_shop)
    grid = grid_of(session, five_customer_shop)
    assert grid["method"] == "thirds"
    assert grid["rows_r"] == [3, 2, 1] and grid["columns_f_plus_m"] == [2, 3, 4, 5, 6]
    assert grid["customers"] == [[1, 1, 1, 0, 0], [1, 0, 0, 0, 0], [0, 0, 1, 0, 0]]
    assert grid["segments"] == [
        ["Middle", "Middle", "Top", "Top", "Top"],
        ["Low", "Middle", "Middle", "Top", "Top"],
        ["Low", "Low", "Middle", "Middle", "Top"],
    ]


def test_by_quintiles_the_grid_names_each_cell_by_the_segment_grid(
    session: Session, five_customer_shop: int
) -> None:
    rescore(session, five_customer_shop)
    grid = grid_of(session, five_customer_shop)
    assert grid["method"] == "quintile" and grid["rows_r"] == [5, 4, 3, 2, 1]
    assert grid["segments"][0] == ["New", "Promising", "Active", "Champions", "Champions"]  # type: ignore[index]
    assert sum(map(sum, grid["customers"])) == 5  # type: ignore[arg-type]


def test_the_thirds_groups_are_written_as_rfm_tags_and_shopify_segments() -> None:
    prefixes = TagPrefixes()
    for group in THIRDS_GROUP_NAMES:
        values = CustomerValues(3, 1, 1, group, "new", 0, 0, 0.0, None, None)  # type: ignore[arg-type]
        state = desired_state(values, prefixes)
        assert state.metafields["rfm_segment"] == group
        assert f"rfm:{group.lower()}" in state.tags
        assert {t.lower() for t in state.tags} <= tag_vocabulary(prefixes.all())
    rfm = [s.name for s in segment_specs(prefixes, SEGMENTS_OF_METHOD["thirds"]) if s.key.startswith("rfm:")]
    assert rfm == ["RFM · Top", "RFM · Middle", "RFM · Low"]


def test_by_thirds_the_best_group_stands_in_for_champions_as_vip() -> None:
    top, middle = rules.SEGMENT_CODES["Top"], rules.SEGMENT_CODES["Middle"]
    flags = rules.vip([top] * 9 + [middle], [1.0] * 8 + [5.0, 9.0])
    assert flags.tolist() == [False] * 10  # the top 10 % is the Middle customer
    flags = rules.vip([middle] * 9 + [top], [1.0] * 9 + [9.0])
    assert flags.tolist() == [False] * 9 + [True]


# -- window ----------------------------------------------------------------------------------


def test_a_window_ranks_only_the_buyers_with_an_order_in_it() -> None:
    # five buyers of the last 120 days, five whose orders are all older than a 365-day window
    days = np.array([1, 30, 60, 90, 120, 400, 450, 500, 550, 600])
    frequency = np.array([1, 3, 2, 4, 5, 0, 0, 0, 0, 0])
    monetary = np.array([10.0, 300, 200, 400, 500, 0, 0, 0, 0, 0])
    population = rules.window_population(frequency, 365)
    result = rules.score_quintile(days, frequency, monetary, population=population)
    names = rules.labels(result.segment, rules.RFM_SEGMENT_NAMES).tolist()
    # the newest one-order buyer is New (R5 FM1), as without a window; the buyers outside score 1 1 1
    assert names[0] == "New"
    assert result.recency.tolist()[5:] == result.frequency.tolist()[5:] == [1] * 5
    assert names[5:] == ["Dormant"] * 5
    assert result.recency.tolist()[:5] == [5, 4, 3, 2, 1]


def test_by_quintiles_a_window_leaves_a_buyer_without_orders_in_it_out_of_the_ranking(
    session: Session, five_customer_shop: int
) -> None:
    use(session, five_customer_shop, window_days="365")
    rescore(session, five_customer_shop)
    assert scores_of(session, five_customer_shop) == {
        1: ("412", "Promising"),
        2: ("332", "Needs attention"),
        3: ("111", "Dormant"),
        4: ("242", "At risk"),
        5: ("111", "Dormant"),
    }


def test_by_thirds_a_window_cuts_f_and_m_over_its_buyers(session: Session, five_customer_shop: int) -> None:
    use(session, five_customer_shop, scoring_method="thirds", window_days="365")
    rescore(session, five_customer_shop)
    assert scores_of(session, five_customer_shop) == {
        1: ("313", "Top"),
        2: ("323", "Top"),
        3: ("111", "Low"),
        4: ("333", "Top"),
        5: ("211", "Low"),
    }
