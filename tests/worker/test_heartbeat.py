"""A running job's heartbeat: a live worker's long job is not taken over, a dead worker's job is
(tests/jobs/test_queue.py), and a worker whose job was taken over can neither renew nor finish it.

PostgreSQL: the heartbeat writes from its own connection while the job's transaction is open."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from pydantic import ValidationError
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from app.config import Settings
from app.jobs import JobContext, enqueue, register_kind
from app.jobs import repository as jobs_repo
from app.jobs.registry import unregister
from app.kit.db import make_sessionmaker, write_transaction
from app.models import Job
from app.worker import Worker
from tests.fixtures.factories import create_shop
from tests.jobs.queue import NOW, Clock, jobs

LONG_LEASE_S = 100.0


def _heartbeat_reaches(factory: sessionmaker[Session], job_id: int, at: datetime) -> bool:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        with factory() as s:
            if s.scalar(select(Job.heartbeat_at).where(Job.id == job_id)) == at:
                return True
        time.sleep(0.01)
    return False


@pytest.fixture
def factory(engine: Engine) -> sessionmaker[Session]:
    return make_sessionmaker(engine)


@pytest.fixture
def long_kind() -> Iterator[str]:
    yield "long"
    unregister("long")


def test_a_live_workers_long_job_is_not_taken_over(
    session: Session, factory: sessionmaker[Session], long_kind: str
) -> None:
    clock = Clock(NOW)
    reclaimed: list[int] = []

    def run_long(_: Session, job: JobContext) -> None:
        # two minutes of work, past the heartbeat expiry and the kind's lease, beating all along
        for _minute in range(2):
            clock.now += timedelta(seconds=60)
            assert _heartbeat_reaches(factory, job.id, clock.now)
        with write_transaction(factory) as other_worker:
            reclaimed.append(jobs_repo.reclaim_expired(other_worker, clock.now))

    register_kind(long_kind, run_long, lease_seconds=LONG_LEASE_S)
    enqueue(session, create_shop(session).shop_id, long_kind, NOW)
    session.commit()

    assert Worker(factory, clock=clock, heartbeat_seconds=0.01, run_schedules=False).run_pending() == 1

    assert reclaimed == [0]
    [job] = jobs(session, long_kind)
    assert (job.state, job.attempts, job.last_error) == ("done", 1, None)


def test_a_worker_whose_job_was_taken_over_can_neither_renew_nor_finish_it(
    session: Session, factory: sessionmaker[Session], long_kind: str
) -> None:
    clock = Clock(NOW)
    stale_claim: list[str] = []

    def stall(_: Session, job: JobContext) -> None:
        # this worker stops beating (a long GC pause, a lost network) and another takes the job over
        with factory() as s:
            stale_claim.append(s.scalar(select(Job.claim_token).where(Job.id == job.id)) or "")
        clock.now += timedelta(seconds=jobs_repo.HEARTBEAT_EXPIRY_S + 1)
        with write_transaction(factory) as other_worker:
            assert jobs_repo.reclaim_expired(other_worker, clock.now) == 1
        with write_transaction(factory) as other_worker:
            assert jobs_repo.claim(other_worker, "other-worker", clock.now, {long_kind}) is not None

    register_kind(long_kind, stall, backoff_seconds=0, lease_seconds=LONG_LEASE_S)
    enqueue(session, create_shop(session).shop_id, long_kind, NOW)
    session.commit()

    Worker(factory, name="stalled-worker", clock=clock, heartbeat_seconds=3600, run_schedules=False).run_one()

    [job] = jobs(session, long_kind)
    assert (job.state, job.locked_by, job.attempts) == ("running", "other-worker", 2)
    with write_transaction(factory) as s:
        assert not jobs_repo.heartbeat(
            s, job.shop_id, job.id, stale_claim[0], clock.now + timedelta(seconds=5)
        )
        assert not jobs_repo.complete(s, job.shop_id, job.id, stale_claim[0], clock.now)
    [job] = jobs(session, long_kind)
    assert (job.state, job.locked_by, job.heartbeat_at) == ("running", "other-worker", clock.now)


def test_a_heartbeat_expiry_shorter_than_three_beats_is_refused() -> None:
    with pytest.raises(ValidationError, match="WORKER_HEARTBEAT_EXPIRY_SECONDS"):
        Settings(worker_heartbeat_seconds=2.0, worker_heartbeat_expiry_seconds=5.0)
    assert (
        Settings(
            worker_heartbeat_seconds=1.0, worker_heartbeat_expiry_seconds=5.0
        ).worker_heartbeat_expiry_seconds
        == 5.0
    )
