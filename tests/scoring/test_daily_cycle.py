"""The daily work's place in the worker's queue: a small shop's fit goes before a big shop's when
both are due together (docs/operations.md, "The daily cycle and fairness between shops")."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete
from sqlalchemy.orm import Session

from app.jobs import repository as jobs_repo
from app.models import Job, ShopMetricsSnapshot
from app.scoring import service
from tests.fixtures.factories import create_shop
from tests.jobs.queue import NOW, jobs
from tests.scoring.ledger import add_order


def _scored(session: Session, customers: int) -> int:
    shop_id = create_shop(session).shop_id
    yesterday = NOW - timedelta(days=2)
    session.add(
        ShopMetricsSnapshot(
            shop_id=shop_id,
            computed_at=yesterday,
            rescored_at=yesterday,
            customers_scored=customers,
            orders_scored=5 * customers,
        )
    )
    session.flush()
    return shop_id


def test_a_small_shops_daily_fit_is_claimed_before_a_big_shops(session: Session) -> None:
    big = _scored(session, 200_000)  # queued first, with the lower id
    small = _scored(session, 300)
    assert service.enqueue_due_fits(session, NOW) == [big, small]
    session.commit()
    costs = {job.shop_id: job.cost for job in jobs(session, service.FIT)}
    assert costs[small] < 0.1 < 1.0 < costs[big]
    order = []
    while (job := jobs_repo.claim(session, "w", NOW, {service.FIT})) is not None:
        order.append(job.shop_id)
        session.commit()
    assert order == [small, big]


def test_marks_after_the_day_are_rescored_incrementally_while_the_shops_fit_is_queued(
    session: Session,
) -> None:
    """The fit brings the day's full rescore; a webhook's rescore meanwhile stays incremental
    instead of running a second full one before it."""
    shop_id = create_shop(session).shop_id
    for customer_id in range(1, 6):
        add_order(session, shop_id, customer_id, NOW - timedelta(days=10 * customer_id))
    assert service.rescore_shop(session, shop_id, NOW, full=True).full
    session.commit()
    tomorrow = NOW + timedelta(hours=25)
    add_order(session, shop_id, 2, tomorrow - timedelta(hours=1))
    service.enqueue_fit(session, shop_id, tomorrow)
    session.commit()
    assert service.rescore_shop(session, shop_id, tomorrow).full is False
    session.commit()
    session.execute(delete(Job).where(Job.shop_id == shop_id))  # no fit queued any more
    add_order(session, shop_id, 3, tomorrow)
    assert service.rescore_shop(session, shop_id, tomorrow).full is True
