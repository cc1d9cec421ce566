"""The stage change log with dates, through lapse, reactivation and back to active."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import ClvFit, CustomerScore, StageChange
from app.scoring import repository as scoring_repo
from app.scoring import service
from tests.fixtures.factories import create_shop
from tests.scoring.ledger import add_order, at


def history(session: Session, shop_id: int, customer_id: int) -> list[tuple[str | None, str, str]]:
    session.expire_all()
    rows = session.scalars(
        select(StageChange)
        .where(StageChange.shop_id == shop_id, StageChange.customer_id == customer_id)
        .order_by(StageChange.changed_at, StageChange.id)
    )
    return [(r.from_stage, r.to_stage, r.changed_at.date().isoformat()) for r in rows]


@pytest.mark.both_dbs
def test_lapse_reactivation_and_return_to_active_are_logged_with_their_dates(session: Session) -> None:
    shop_id = create_shop(session).shop_id
    # Three buyers who order every 30 days make the shop's typical interval 30 days: at risk
    # after 60 days without an order, lapsed after 120, reactivated for 30 days after a return.
    for customer_id, days in ((1, ("2025-01-01", "2025-01-31")), (2, ("2026-04-02", "2026-05-02"))):
        for day in days:
            add_order(session, shop_id, customer_id, day)
    for day in ("2026-03-03", "2026-04-02", "2026-05-02"):
        add_order(session, shop_id, 3, day)

    service.rescore_shop(session, shop_id, at("2026-06-01"))
    session.commit()
    add_order(session, shop_id, 1, "2026-06-10", now=at("2026-06-10"))
    service.rescore_shop(session, shop_id, at("2026-06-10T12:05"))
    session.commit()
    service.rescore_shop(session, shop_id, at("2026-06-25"))  # a day later: full, still reactivated
    session.commit()
    service.rescore_shop(session, shop_id, at("2026-07-12"))  # 32 days after the return
    session.commit()

    assert history(session, shop_id, 1) == [
        ("lapsed", "reactivated", "2026-06-10"),
        ("reactivated", "active", "2026-07-12"),
    ]
    score = session.get(CustomerScore, (shop_id, 1))
    assert score is not None and score.stage_since == at("2026-07-12")


@pytest.mark.both_dbs
def test_stage_changes_of_a_week_are_listed_for_the_overview(session: Session) -> None:
    shop_id = create_shop(session).shop_id
    for customer_id, day in ((1, "2026-05-01"), (1, "2026-05-31"), (2, "2026-05-01"), (2, "2026-05-31")):
        add_order(session, shop_id, customer_id, day)
    service.rescore_shop(session, shop_id, at("2026-06-01"))
    session.commit()
    service.rescore_shop(session, shop_id, at("2026-08-15"))  # 76 days: both at risk
    session.commit()
    week = scoring_repo.stage_changes_since(session, shop_id, at("2026-08-10"))
    assert [(c.customer_id, c.from_stage, c.to_stage) for c in week] == [
        (1, "active", "at_risk"),
        (2, "active", "at_risk"),
    ]


@pytest.mark.both_dbs
def test_a_refit_is_recorded_as_a_reclassification_not_as_a_movement(session: Session) -> None:
    shop_id = create_shop(session).shop_id
    for customer_id, days in (
        (1, ("2026-04-02", "2026-05-02")),
        (2, ("2026-03-03", "2026-04-02", "2026-05-02")),
    ):
        for day in days:
            add_order(session, shop_id, customer_id, day)
    service.rescore_shop(session, shop_id, at("2026-06-01"))  # segment formula: both active
    session.commit()
    # a fit whose buyers drop out after almost every order: the same history reads as lapsed
    session.add(
        ClvFit(
            shop_id=shop_id,
            fitted_at=at("2026-06-01T13:00"),
            customers=2,
            repeat_buyers=2,
            orders=5,
            usable=True,
            r=0.24,
            alpha=4.4,
            a=50.0,
            b=0.5,
            fallback_order_value=50.0,
            seconds=0.1,
        )
    )
    session.commit()
    service.rescore_shop(session, shop_id, at("2026-06-01T14:00"))
    session.commit()

    assert scoring_repo.stage_changes_since(session, shop_id, at("2026-05-25")) == []
    refits = scoring_repo.stage_changes_since(session, shop_id, at("2026-05-25"), "refit")
    assert {(c.customer_id, c.from_stage, c.to_stage) for c in refits} == {
        (1, "active", "lapsed"),
        (2, "active", "lapsed"),
    }
