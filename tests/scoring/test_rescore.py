"""The persisted rescore on a five-buyer shop scored by hand at 2026-06-01 (UTC, whole days).

Recency (days): c1 2, c2 12, c4 31, c5 182, c3 365 → R = 1 + floor(5·worse/5): 5, 4, 3, 2, 1.
Frequency: c4 3, c2 2, others 1 → F: c4 5, c2 4, others 1. Monetary: c3 500, c1 c2 c4 100, c5 20
→ M: c3 5, c1 c2 c4 2, c5 1. FM = (F+M+1)//2: c1 2, c2 3, c3 3, c4 4, c5 1.
Grid: c1 R5 FM2 Promising, c2 R4 FM3 Active, c3 R1 FM3 At risk, c4 R3 FM4 Loyal, c5 R2 FM1 Almost lost.
Stages without a model: median days between orders of the repeat buyers = median(130, 30.5) =
80.25; at risk after 2× (160.5 d), lapsed after 4× (321 d): c1 new, c2 active, c3 lapsed,
c4 active, c5 at_risk.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import Customer, CustomerScore, StageChange
from app.orders.schemas import parse_order
from app.orders.service import apply_order
from app.scoring import load, service, store
from app.scoring import repository as scoring_repo
from app.settings.service import update_settings
from tests.fixtures.factories import order_payload
from tests.scoring.ledger import add_order, at

NOW = at("2026-06-01")


def rescore(
    session: Session, shop_id: int, when: str = "2026-06-01", **kwargs: object
) -> service.RescoreResult:
    result = service.rescore_shop(session, shop_id, at(when), **kwargs)  # type: ignore[arg-type]
    session.commit()
    return result


def stored(session: Session, shop_id: int) -> dict[int, CustomerScore]:
    session.expire_all()
    return {s.customer_id: s for s in scoring_repo.customer_scores(session, shop_id, range(1, 100))}


@pytest.mark.both_dbs
def test_first_rescore_stores_hand_computed_rfm_codes_segments_and_stages(
    session: Session, five_customer_shop: int
) -> None:
    rescore(session, five_customer_shop)
    scores = stored(session, five_customer_shop)
    assert {c: (s.rfm_code, s.segment, s.stage) for c, s in scores.items()} == {
        1: ("512", "Promising", "new"),
        2: ("442", "Active", "active"),
        3: ("115", "At risk", "lapsed"),
        4: ("352", "Loyal", "active"),
        5: ("211", "Almost lost", "at_risk"),
    }


@pytest.mark.both_dbs
def test_rescore_stores_historic_clv_flags_and_formula_predictions(
    session: Session, five_customer_shop: int
) -> None:
    rescore(session, five_customer_shop)
    scores = stored(session, five_customer_shop)
    assert [scores[c].historic_clv for c in range(1, 6)] == [
        Decimal(v) for v in ("100", "100", "500", "100", "20")
    ]
    assert [c for c, s in scores.items() if s.first_time_buyer] == [1, 3, 5]
    assert [c for c, s in scores.items() if s.repeat_buyer] == [2, 4]
    assert [c for c, s in scores.items() if s.discount_shopper] == [4]
    assert [c for c, s in scores.items() if s.full_price_buyer] == [2]
    # No fitted model: the segment formula, a segment's last-year sales per customer over 365 days,
    # times the chance the customer is still buying (1 - churn risk).
    assert {s.clv_source for s in scores.values()} == {"segment_formula"}
    assert scores[4].churn_risk == pytest.approx(0.10)  # 31 days / (4 × 80.25)
    assert scores[4].predicted_clv == Decimal("90.00")  # Loyal: c4 alone, 100 in the last year × 0.90
    assert scores[3].predicted_clv == Decimal("0.00")  # At risk: c3's order is 365 days old
    # c5 (at risk, 182 days) is 182 / (4 × 80.25) of the way to lapsed
    assert scores[5].churn_risk == pytest.approx(0.57)


@pytest.mark.both_dbs
def test_rescore_clears_the_to_score_marks(session: Session, five_customer_shop: int) -> None:
    rescore(session, five_customer_shop)
    session.expire_all()
    marked = session.scalars(select(Customer.customer_id).where(Customer.score_pending)).all()
    assert marked == []


@pytest.mark.both_dbs
def test_a_mark_set_again_after_the_customers_were_read_is_kept(
    session: Session, five_customer_shop: int
) -> None:
    customer = session.get(Customer, (five_customer_shop, 1))
    assert customer is not None
    seen = load.to_us(customer.aggregates_updated_at) - 1  # a webhook rewrote the row since
    store.clear_pending(session, five_customer_shop, [1], [seen])  # type: ignore[arg-type]
    session.commit()
    session.expire_all()
    assert session.get(Customer, (five_customer_shop, 1)).score_pending  # type: ignore[union-attr]


@pytest.mark.both_dbs
def test_rescoring_unchanged_data_writes_nothing_and_reports_no_change(
    session: Session, five_customer_shop: int
) -> None:
    first = rescore(session, five_customer_shop)
    again = rescore(session, five_customer_shop, full=True)
    assert (first.written, first.changed) == (5, [1, 2, 3, 4, 5])
    assert (again.written, again.changed, again.stage_changes) == (0, [], 0)


@pytest.mark.both_dbs
def test_a_new_order_rescores_incrementally_and_reports_the_customers_whose_values_changed(
    session: Session, five_customer_shop: int
) -> None:
    rescore(session, five_customer_shop)
    add_order(session, five_customer_shop, 5, "2026-06-01T13:00", "300.00", now=at("2026-06-01T13:00"))
    result = rescore(session, five_customer_shop, "2026-06-01T13:05")
    scores = stored(session, five_customer_shop)
    assert result.full is False
    assert scores[5].frequency == 2 and scores[5].monetary == Decimal("320.0000")
    assert scores[5].stage == "active"
    assert 5 in result.changed
    assert scores[5].values_changed_at == at("2026-06-01T13:05")
    assert scores[1].values_changed_at == NOW or 1 in result.changed


@pytest.mark.both_dbs
def test_a_customer_whose_only_order_is_cancelled_loses_their_scores(
    session: Session, five_customer_shop: int
) -> None:
    rescore(session, five_customer_shop)
    cancelled = order_payload(
        9001,
        6,
        processed_at="2026-05-31T12:00:00+00:00",
        updated_at="2026-05-31T12:00:00+00:00",
    )
    apply_order(session, five_customer_shop, parse_order(cancelled), at("2026-05-31"))
    session.commit()
    rescore(session, five_customer_shop, "2026-06-01T01:00")
    assert 6 in stored(session, five_customer_shop)
    cancelled |= {"cancelled_at": "2026-06-01T02:00:00+00:00", "updated_at": "2026-06-01T02:00:00+00:00"}
    apply_order(session, five_customer_shop, parse_order(cancelled), at("2026-06-01T02:00"))
    session.commit()
    result = rescore(session, five_customer_shop, "2026-06-01T03:00")
    assert 6 not in stored(session, five_customer_shop)
    assert result.removed == [6] and 6 in result.changed


@pytest.mark.both_dbs
def test_a_day_window_counts_frequency_and_monetary_inside_the_window_only(
    session: Session, five_customer_shop: int
) -> None:
    update_settings(session, five_customer_shop, {"window_days": 90}, NOW)
    session.commit()
    rescore(session, five_customer_shop)
    scores = stored(session, five_customer_shop)
    # 90 days before 2026-06-01: c4's 2026-03-01 order (92 days) and c2's January order fall out.
    assert {c: (s.frequency, s.monetary) for c, s in scores.items()} == {
        1: (1, Decimal("100.0000")),
        2: (1, Decimal("50.0000")),
        3: (0, Decimal("0.0000")),
        4: (2, Decimal("70.0000")),
        5: (0, Decimal("0.0000")),
    }


@pytest.mark.both_dbs
def test_the_thirds_method_stores_thirds_scores_and_groups(session: Session, five_customer_shop: int) -> None:
    update_settings(session, five_customer_shop, {"scoring_method": "thirds"}, NOW)
    session.commit()
    rescore(session, five_customer_shop)
    scores = stored(session, five_customer_shop)
    # R by months (≤ 121 d → 3, ≤ 243 d → 2): c1 c2 c4 3, c5 2, c3 1. F range 1..3: c4 3, c2 2
    # (3·1 ≥ 2), others 1. M range 20..500: c3 3, others 1 (3·80 < 480).
    assert {c: (s.rfm_code, s.thirds_group) for c, s in scores.items()} == {
        1: ("311", "Middle"),
        2: ("321", "Middle"),
        3: ("113", "Middle"),
        4: ("331", "Top"),
        5: ("211", "Low"),
    }


@pytest.mark.both_dbs
def test_a_first_stage_is_dated_but_not_logged_as_a_change(session: Session, five_customer_shop: int) -> None:
    result = rescore(session, five_customer_shop)
    assert {s.stage_since for s in stored(session, five_customer_shop).values()} == {NOW}
    assert result.stage_changes == 0
    assert session.scalars(select(StageChange)).all() == []


@pytest.mark.both_dbs
def test_erasing_a_customer_removes_their_scores_and_stage_history(
    session: Session, five_customer_shop: int
) -> None:
    rescore(session, five_customer_shop)
    rescore(session, five_customer_shop, "2026-11-01")  # c5, 335 days without an order, lapses
    logged = select(StageChange.to_stage).where(StageChange.customer_id == 5)
    assert session.scalars(logged).all() == ["lapsed"]
    store.erase_customer(session, five_customer_shop, 5)
    session.commit()
    assert 5 not in stored(session, five_customer_shop)
    assert session.scalars(logged).all() == []
