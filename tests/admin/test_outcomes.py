"""Outcomes ("came back"), to the definition in app/admin/outcomes.py and docs/metrics.md: on a
small hand-built history (who entered a stage or segment when, who ordered when and for how much),
the counts, shares and amounts per month and week, in the shop's time zone; periods not complete
for a window are marked, never counted as not returned; reclassifications are kept apart."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from itertools import count
from typing import Any

import pytest
from sqlalchemy.orm import Session

from app.admin import outcomes
from app.models import Order, SegmentChange, StageChange
from app.models.base import table_of
from tests.fixtures.factories import create_shop

pytestmark = pytest.mark.both_dbs

NOW = datetime(2026, 11, 15, 12, 0, tzinfo=UTC)
ZONE = "America/New_York"
_order_ids = count(500_000)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def order(session: Session, shop_id: int, customer_id: int, when: str, value: str, **fields: Any) -> None:
    amount = Decimal(value)
    row: dict[str, Any] = {
        "shop_id": shop_id,
        "order_id": next(_order_ids),
        "customer_id": customer_id,
        "ordered_at": at(when),
        "source_updated_at": at(when),
        "cancelled_at": None,
        "test": False,
        "financial_status": "paid",
        "current_total": amount,
        "presentment_total": amount,
        "pending_refunds": Decimal(0),
        "value": amount,
        "total_discounts": Decimal(0),
        "discount_codes": None,
        "discounted": False,
        "source_name": "web",
        "qualifies": True,
        "stale_since": None,
    }
    session.execute(table_of(Order).insert(), [row | fields])


def entered_stage(
    session: Session, shop_id: int, customer_id: int, stage: str, when: str, cause: str = "behaviour"
) -> None:
    session.add(
        StageChange(
            shop_id=shop_id,
            customer_id=customer_id,
            from_stage="active",
            to_stage=stage,
            changed_at=at(when),
            cause=cause,
        )
    )


def entered_segment(
    session: Session, shop_id: int, customer_id: int, segment: str, when: str, cause: str = "behaviour"
) -> None:
    session.add(
        SegmentChange(
            shop_id=shop_id,
            customer_id=customer_id,
            from_segment="Loyal",
            to_segment=segment,
            changed_at=at(when),
            cause=cause,
        )
    )


@pytest.fixture
def shop_id(session: Session) -> int:
    """The hand-built history (New York days), and another shop's that must not count."""
    sid = create_shop(session, "outcomes.myshopify.com", currency_code="EUR", iana_timezone=ZONE).shop_id
    other = create_shop(session, "outcomes-other.myshopify.com").shop_id
    # July 2026 (New York): four customers enter At risk
    entered_stage(session, sid, 1, "at_risk", "2026-07-10 15:00")
    order(session, sid, 1, "2026-07-25 15:00", "40.00")  # 15 days after
    order(session, sid, 1, "2026-08-25 15:00", "10.00")  # 46 days after
    entered_stage(session, sid, 1, "at_risk", "2026-07-28 15:00")  # again the same month: counts once
    entered_stage(session, sid, 2, "at_risk", "2026-07-20 15:00")
    order(session, sid, 2, "2026-10-15 15:00", "25.00")  # 87 days after
    entered_stage(session, sid, 3, "at_risk", "2026-07-05 15:00")
    order(session, sid, 3, "2026-07-01 15:00", "99.00")  # before entering: not a return
    order(session, sid, 3, "2026-07-06 15:00", "77.00", qualifies=False, cancelled_at=at("2026-07-07 00:00"))
    # 02:00 UTC on August 1st is still July 31st in New York
    entered_stage(session, sid, 4, "at_risk", "2026-08-01 02:00")
    order(session, sid, 4, "2026-08-10 02:00", "5.00")
    # exactly 30 × 24 h after entering counts as within 30 days; a second later does not
    entered_stage(session, sid, 5, "at_risk", "2026-06-10 12:00")
    order(session, sid, 5, "2026-07-10 12:00", "8.00")
    entered_stage(session, sid, 6, "at_risk", "2026-06-11 12:00")
    order(session, sid, 6, "2026-07-11 12:00:01", "9.00")
    # September: complete for 30 days only (Oct 1 + 30 days is before Nov 15, + 60 is after)
    entered_stage(session, sid, 7, "at_risk", "2026-09-10 15:00")
    order(session, sid, 7, "2026-09-20 15:00", "12.00")
    # October: came back, but not even 30 days have passed for the whole month
    entered_stage(session, sid, 8, "at_risk", "2026-10-20 15:00")
    order(session, sid, 8, "2026-10-25 15:00", "30.00")
    # a refit's reclassification: not an entry, whatever the customer did
    entered_stage(session, sid, 9, "at_risk", "2026-07-15 15:00", cause="refit")
    order(session, sid, 9, "2026-07-20 15:00", "50.00")
    # another stage, and another shop
    entered_stage(session, sid, 10, "lapsed", "2026-07-15 15:00")
    entered_stage(session, other, 1, "at_risk", "2026-07-12 15:00")
    order(session, other, 1, "2026-07-13 15:00", "1000.00")
    # segments: one behaviour entry, one by a settings change
    entered_segment(session, sid, 1, "At risk", "2026-07-10 15:00")
    entered_segment(session, sid, 2, "At risk", "2026-07-20 15:00", cause="settings")
    session.commit()
    return sid


def group(result: outcomes.Outcomes, name: str) -> outcomes.GroupOutcome:
    return next(g for g in result.groups if g.name == name)


def by_month(g: outcomes.GroupOutcome) -> dict[date, outcomes.Period]:
    return {p.start: p for p in g.periods}


def figures(p: outcomes.Period) -> list[tuple[int | None, Decimal | None]]:
    return [(w.came_back, w.spent) for w in p.windows]


def test_the_six_months_up_to_the_month_under_way_are_shown(session: Session, shop_id: int) -> None:
    result = outcomes.outcomes(session, shop_id, "stage", "month", NOW, ZONE, "quintile")
    months = [p.start for p in group(result, "at_risk").periods]
    assert months == [date(2026, m, 1) for m in range(6, 12)]
    assert [p.under_way for p in group(result, "at_risk").periods] == [False] * 5 + [True]
    assert result.since == datetime(2026, 6, 1, 4, 0, tzinfo=UTC)  # midnight in New York


def test_a_month_complete_for_90_days_counts_each_entrant_once(session: Session, shop_id: int) -> None:
    july = by_month(
        group(outcomes.outcomes(session, shop_id, "stage", "month", NOW, ZONE, "quintile"), "at_risk")
    )[date(2026, 7, 1)]
    # customers 1 (twice), 2, 3 and 4 (July 31st in New York); not the refit's customer 9
    assert july.entered == 4
    assert all(w.complete for w in july.windows)
    assert figures(july) == [
        (2, Decimal("45.00")),  # 1 (40) and 4 (5)
        (2, Decimal("55.00")),  # 1 (40 + 10) and 4
        (3, Decimal("80.00")),  # and 2 (25, 87 days after)
    ]
    assert july.windows[0].share(july.entered) == 0.5


def test_within_30_days_means_at_most_30_times_24_hours(session: Session, shop_id: int) -> None:
    june = by_month(
        group(outcomes.outcomes(session, shop_id, "stage", "month", NOW, ZONE, "quintile"), "at_risk")
    )[date(2026, 6, 1)]
    assert june.entered == 2
    assert figures(june)[0] == (1, Decimal("8.00"))
    assert figures(june)[1] == (2, Decimal("17.00"))


def test_a_period_not_complete_for_a_window_is_marked_not_counted(session: Session, shop_id: int) -> None:
    months = by_month(
        group(outcomes.outcomes(session, shop_id, "stage", "month", NOW, ZONE, "quintile"), "at_risk")
    )
    september, october, november = (
        months[date(2026, 9, 1)],
        months[date(2026, 10, 1)],
        months[date(2026, 11, 1)],
    )
    assert [w.complete for w in september.windows] == [True, False, False]
    assert figures(september) == [(1, Decimal("12.00")), (None, None), (None, None)]
    assert september.windows[1].share(september.entered) is None
    # customer 8 came back 5 days after entering, but October's entrants have not all had 30 days
    assert october.entered == 1
    assert [w.complete for w in october.windows] == [False, False, False]
    assert figures(october) == [(None, None)] * 3
    assert november.entered == 0 and november.under_way


def test_reclassifications_are_counted_apart(session: Session, shop_id: int) -> None:
    result = outcomes.outcomes(session, shop_id, "stage", "month", NOW, ZONE, "quintile")
    assert group(result, "at_risk").reclassified == 1
    assert group(result, "lapsed").reclassified == 0
    segments = outcomes.outcomes(session, shop_id, "segment", "month", NOW, ZONE, "quintile")
    at_risk = group(segments, "At risk")
    assert at_risk.reclassified == 1
    july = by_month(at_risk)[date(2026, 7, 1)]
    assert july.entered == 1
    assert figures(july) == [(1, Decimal("40.00")), (1, Decimal("50.00")), (1, Decimal("50.00"))]


def test_the_latest_complete_month_is_compared_with_the_earlier_ones(session: Session, shop_id: int) -> None:
    c = group(
        outcomes.outcomes(session, shop_id, "stage", "month", NOW, ZONE, "quintile"), "at_risk"
    ).comparison
    assert c is not None and c.days == 30
    assert c.latest.start == date(2026, 9, 1) and c.latest_share == 1.0
    assert [p.start for p in c.earlier] == [date(2026, 6, 1), date(2026, 7, 1)]
    assert c.earlier_share == pytest.approx(3 / 6)  # June 1 of 2, July 2 of 4


def test_weeks_start_on_monday_in_the_shop_time_zone(session: Session, shop_id: int) -> None:
    result = outcomes.outcomes(session, shop_id, "stage", "week", NOW, ZONE, "quintile")
    weeks = by_month(group(result, "at_risk"))
    assert len(weeks) == 12 and all(start.weekday() == 0 for start in weeks)
    assert max(weeks) == date(2026, 11, 9)
    # Sep 7-13: customer 7, complete for 30 (Sep 14 + 30 days < Nov 15) and 60 days (Nov 13) only
    week = weeks[date(2026, 9, 7)]
    assert week.entered == 1
    assert [w.complete for w in week.windows] == [True, True, False]
    assert figures(week)[:2] == [(1, Decimal("12.00")), (1, Decimal("12.00"))]
    assert week.label == "Week of Sep 7"
