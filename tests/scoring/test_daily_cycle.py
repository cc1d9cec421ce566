"""The daily work's place in the worker's queue: a small shop's fit goes before a big shop's when
both are due together (docs/operations.md, "The daily cycle and fairness between shops")."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.orm import Session

from app.jobs import repository as jobs_repo
from app.models import ShopMetricsSnapshot
from app.scoring import service
from tests.fixtures.factories import create_shop
from tests.jobs.queue import NOW, jobs


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
