"""The job queue: coalescing, claims (`FOR UPDATE SKIP LOCKED`, one running job per shop and kind)
and the heartbeat expiry that hands a vanished worker's job back."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from app.jobs import enqueue
from app.jobs import repository as jobs_repo
from app.kit.db import make_sessionmaker
from tests.fixtures.factories import create_shop
from tests.jobs.queue import NOW, jobs


@pytest.fixture
def factory(engine: Engine) -> sessionmaker[Session]:
    return make_sessionmaker(engine)


@pytest.mark.both_dbs
def test_enqueueing_again_coalesces_into_the_pending_job(session: Session) -> None:
    shop_id = create_shop(session).shop_id
    enqueue(session, shop_id, "rescore", NOW, run_after=NOW + timedelta(seconds=30))
    enqueue(session, shop_id, "rescore", NOW, payload={"full": True}, run_after=NOW + timedelta(seconds=5))
    enqueue(session, shop_id, "rescore", NOW, run_after=NOW + timedelta(seconds=60))
    session.commit()
    [job] = jobs(session)
    assert (job.state, job.payload, job.run_after) == (
        "pending",
        '{"full": true}',
        NOW + timedelta(seconds=5),
    )


def test_workers_skip_jobs_another_worker_is_claiming(
    session: Session, factory: sessionmaker[Session]
) -> None:
    first, second = create_shop(session).shop_id, create_shop(session).shop_id
    enqueue(session, first, "rescore", NOW)
    enqueue(session, second, "rescore", NOW)
    session.commit()
    with factory() as a, factory() as b:
        claimed_a = jobs_repo.claim(a, "a", NOW, {"rescore"})
        claimed_b = jobs_repo.claim(b, "b", NOW, {"rescore"})  # a's row is locked: skipped, not waited on
        assert claimed_a is not None and claimed_b is not None
        assert {claimed_a.shop_id, claimed_b.shop_id} == {first, second}
        a.rollback()
        b.rollback()


@pytest.mark.both_dbs
def test_a_shop_kind_already_running_is_not_claimed_twice(session: Session) -> None:
    shop_id = create_shop(session).shop_id
    enqueue(session, shop_id, "rescore", NOW)
    session.commit()
    assert jobs_repo.claim(session, "a", NOW, {"rescore"}) is not None
    session.commit()
    enqueue(session, shop_id, "rescore", NOW)  # new marks while the first rescore runs
    session.commit()
    assert jobs_repo.claim(session, "b", NOW, {"rescore"}) is None


@pytest.mark.both_dbs
def test_a_job_whose_worker_vanished_runs_again_once_its_heartbeat_is_missed(
    session: Session, factory: sessionmaker[Session]
) -> None:
    shop_id = create_shop(session).shop_id
    enqueue(session, shop_id, "fit", NOW)  # a kind with a 30-minute lease
    session.commit()
    assert jobs_repo.claim(session, "lost-worker", NOW, {"fit"}) is not None
    session.commit()
    expiry = timedelta(seconds=jobs_repo.HEARTBEAT_EXPIRY_S)
    assert jobs_repo.reclaim_expired(session, NOW + expiry - timedelta(seconds=1)) == 0
    assert jobs_repo.reclaim_expired(session, NOW + expiry) == 1
    session.commit()
    [job] = jobs(session)
    assert (job.state, job.locked_by, job.claim_token, job.attempts) == ("pending", None, None, 1)
    assert job.last_error == "the worker running this job stopped before it finished"
    assert job.run_after == NOW + expiry  # due at once: the missed heartbeat was the wait


@pytest.mark.both_dbs
def test_claims_go_shortest_first_among_jobs_due_together_and_a_long_job_is_not_starved(
    session: Session,
) -> None:
    """The claim order is due time plus expected run time: a big shop's long job due with small
    shops' short ones goes after them, but before short jobs due later than its due time plus its
    length (docs/operations.md, "Fairness between shops")."""
    big, small, medium, later, much_later = (create_shop(session).shop_id for _ in range(5))
    enqueue(session, big, "rescore", NOW, cost=120.0)
    enqueue(session, medium, "rescore", NOW, cost=2.0)
    enqueue(session, small, "rescore", NOW, cost=0.1)
    enqueue(session, later, "rescore", NOW, run_after=NOW + timedelta(seconds=60), cost=0.1)
    enqueue(session, much_later, "rescore", NOW, run_after=NOW + timedelta(seconds=200), cost=0.1)
    enqueue(session, small, "rescore", NOW, cost=0.05)  # coalesces: the larger cost stays
    session.commit()
    order = []
    while (job := jobs_repo.claim(session, "w", NOW + timedelta(seconds=300), {"rescore"})) is not None:
        order.append(job.shop_id)
        session.commit()
    assert order == [small, medium, later, big, much_later]
    assert jobs_repo.claim(session, "w", NOW, {"rescore"}) is None
