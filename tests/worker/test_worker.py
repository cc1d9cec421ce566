"""The worker: triggering by the "to score" marks, batching, claims, retries, leases and stopping."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

import app.tasks  # noqa: F401 - registers every job kind
from app.config import Settings
from app.jobs import JobContext, enqueue, register_kind, register_schedule
from app.jobs import repository as jobs_repo
from app.jobs.registry import unregister
from app.jobs.services import services_factory
from app.kit.db import make_sessionmaker
from app.models import Customer
from app.scoring import load
from app.scoring import repository as scoring_repo
from app.worker import Worker
from tests.fixtures.factories import create_shop
from tests.jobs.queue import NOW, Clock, jobs
from tests.scoring.ledger import add_order, at


@pytest.fixture
def factory(engine: Engine) -> sessionmaker[Session]:
    return make_sessionmaker(engine)


@pytest.fixture
def failing_kind() -> Iterator[list[int]]:
    calls: list[int] = []

    def explode(session: Session, job: JobContext) -> None:
        calls.append(job.attempt)
        raise RuntimeError("the shop's data could not be read")

    register_kind("explode", explode, max_attempts=3, backoff_seconds=10)
    yield calls
    unregister("explode")


@pytest.mark.both_dbs
def test_many_orders_of_one_customer_lead_to_one_rescore(
    session: Session, factory: sessionmaker[Session]
) -> None:
    shop_id = create_shop(session).shop_id
    for minute in range(4):
        add_order(session, shop_id, 7, f"2026-06-01T11:0{minute}")
    add_order(session, shop_id, 8, "2026-06-01T11:30")
    ran = Worker(factory, clock=Clock(NOW)).run_pending()
    rescores = jobs(session, "rescore")
    assert ran >= 1 and [(j.state, j.attempts) for j in rescores] == [("done", 1)]
    scores = scoring_repo.customer_scores(session, shop_id, [7, 8])
    assert [(s.customer_id, s.frequency) for s in scores] == [(7, 4), (8, 1)]
    assert session.scalars(select(Customer.customer_id).where(Customer.score_pending)).all() == []


@pytest.mark.both_dbs
def test_a_shop_without_marks_is_not_rescored_again_within_the_day(
    session: Session, factory: sessionmaker[Session]
) -> None:
    shop_id = create_shop(session).shop_id
    add_order(session, shop_id, 7, "2026-05-01")
    clock = Clock(NOW)
    worker = Worker(factory, clock=clock, kinds={"rescore", "fit"})

    def run_at(hours: float) -> None:
        clock.now = NOW + timedelta(hours=hours)
        worker._last_run.clear()
        worker.run_pending()

    run_at(0)  # the first rescore
    run_at(1)  # the first fit, and the full rescore it asks for
    assert [j.payload for j in jobs(session, "rescore")] == [None, '{"full": true}']
    assert len(jobs(session, "fit")) == 1
    run_at(4)
    assert len(jobs(session, "rescore")) == 2
    # The daily work, recency moved for everybody: the fit, then one full rescore (not one before
    # the fit and another after it), due when the fit was.
    run_at(26)
    fits, rescores = jobs(session, "fit"), jobs(session, "rescore")
    assert len(fits) == 2 and [j.payload for j in rescores[2:]] == ['{"full": true}']
    assert rescores[2].run_after == fits[1].run_after


@pytest.mark.both_dbs
def test_a_failing_job_is_retried_with_backoff_and_then_reported_failed(
    session: Session,
    factory: sessionmaker[Session],
    failing_kind: list[int],
    caplog: pytest.LogCaptureFixture,
) -> None:
    shop_id = create_shop(session).shop_id
    enqueue(session, shop_id, "explode", NOW)
    session.commit()
    clock = Clock(NOW)
    worker = Worker(factory, clock=clock, run_schedules=False)
    assert worker.run_one()
    [job] = jobs(session)
    assert (job.state, job.attempts, job.run_after) == ("pending", 1, NOW + timedelta(seconds=10))
    assert job.last_error == "RuntimeError: the shop's data could not be read"
    clock.now = NOW + timedelta(seconds=9)
    assert not worker.run_one()  # not before the backoff
    clock.now = NOW + timedelta(seconds=10)
    assert worker.run_one()
    [job] = jobs(session)
    assert job.run_after == NOW + timedelta(seconds=30)  # 10 s, then 20 s
    clock.now = NOW + timedelta(seconds=30)
    with caplog.at_level("ERROR", logger="app.worker"):
        assert worker.run_one()
    [job] = jobs(session)
    assert (job.state, job.attempts, failing_kind) == ("failed", 3, [1, 2, 3])
    assert "failed after 3 attempts" in caplog.text
    assert [j.id for j in jobs_repo.failed_jobs(session, shop_id)] == [job.id]
    clock.now = NOW + timedelta(days=1)
    assert not worker.run_one()  # failed jobs stay failed, visible, never rerun silently


def test_a_failed_attempt_folds_into_work_enqueued_meanwhile(
    session: Session, factory: sessionmaker[Session], failing_kind: list[int]
) -> None:
    shop_id = create_shop(session).shop_id

    def explode_after_enqueue(s: Session, job: JobContext) -> None:
        with factory() as other:
            enqueue(other, job.shop_id, "explode", job.now)
            other.commit()
        raise RuntimeError("boom")

    register_kind("explode", explode_after_enqueue, max_attempts=3, backoff_seconds=10)
    enqueue(session, shop_id, "explode", NOW)
    session.commit()
    Worker(factory, clock=Clock(NOW), run_schedules=False).run_one()
    [job] = jobs(session)
    assert (job.state, job.attempts, job.last_error, job.run_after) == (
        "pending",
        1,
        "RuntimeError: boom",
        NOW + timedelta(seconds=10),
    )


@pytest.mark.both_dbs
def test_stop_lets_the_job_in_hand_finish_and_leaves_the_rest_queued(
    session: Session, factory: sessionmaker[Session]
) -> None:
    first, second = create_shop(session).shop_id, create_shop(session).shop_id
    worker = Worker(factory, clock=Clock(NOW), run_schedules=False, poll_seconds=0.01)
    done: list[int] = []

    def slow(s: Session, job: JobContext) -> None:
        worker.stop()  # SIGTERM arrives while this job runs
        done.append(job.shop_id)

    register_kind("slow", slow)
    try:
        enqueue(session, first, "slow", NOW)
        enqueue(session, second, "slow", NOW + timedelta(microseconds=1))
        session.commit()
        worker.run()
    finally:
        unregister("slow")
    assert done == [first]
    assert [j.state for j in jobs(session)] == ["done", "pending"]


def test_sigterm_asks_the_worker_to_stop(factory: sessionmaker[Session]) -> None:
    worker = Worker(factory)
    previous = signal.getsignal(signal.SIGTERM)
    try:
        worker.install_signal_handlers()
        os.kill(os.getpid(), signal.SIGTERM)
        assert worker.stopping
    finally:
        signal.signal(signal.SIGTERM, previous)
        signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.mark.both_dbs
def test_a_job_of_a_kind_without_a_handler_here_stays_queued_for_a_worker_that_has_one(
    session: Session, factory: sessionmaker[Session]
) -> None:
    shop_id = create_shop(session).shop_id
    enqueue(session, shop_id, "reconcile", NOW)  # registered by app.imports, not loaded here
    session.commit()
    assert not Worker(factory, clock=Clock(NOW), run_schedules=False, kinds={"rescore", "fit"}).run_one()
    [job] = jobs(session)
    assert (job.state, job.attempts) == ("pending", 0)


@pytest.mark.both_dbs
def test_finished_jobs_are_forgotten_after_a_week_and_failed_ones_kept(
    session: Session, factory: sessionmaker[Session], failing_kind: list[int]
) -> None:
    shop_id = create_shop(session).shop_id
    enqueue(session, shop_id, "fit", NOW)
    enqueue(session, shop_id, "explode", NOW)
    session.commit()
    for job in jobs(session):
        job.state, job.finished_at = ("done" if job.kind == "fit" else "failed"), NOW
    session.commit()
    Worker(factory, clock=Clock(NOW + timedelta(days=6)), kinds=set()).tick_schedules()
    assert len(jobs(session)) == 2
    Worker(factory, clock=Clock(NOW + timedelta(days=8)), kinds=set()).tick_schedules()
    assert [j.kind for j in jobs(session)] == ["explode"]


def test_the_worker_keeps_its_rescore_cache_so_an_incremental_rescore_reads_only_the_marked(
    session: Session, factory: sessionmaker[Session], settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    if session.get_bind().dialect.name != "postgresql":
        pytest.skip("the cache is PostgreSQL's")
    shop_id = create_shop(session).shop_id
    for customer_id in range(1, 9):
        add_order(session, shop_id, customer_id, "2026-05-01")
    clock = Clock(NOW)
    worker = Worker(factory, clock=clock, kinds={"rescore"}, services=services_factory(settings))
    reads: list[int] = []
    read = load.load_customers

    def counted(s: Session, shop: int, *args: object, **kwargs: Any) -> load.LoadedCustomers:
        reads.append(shop)
        return read(s, shop, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(load, "load_customers", counted)
    try:
        worker.run_pending()  # the first scoring: full
        add_order(session, shop_id, 7, "2026-06-01T08:00", now=at("2026-06-01T08:00"))
        clock.now = NOW + timedelta(hours=1)
        worker._last_run.clear()
        worker.run_pending()
    finally:
        worker.close()

    assert [(j.state, j.payload) for j in jobs(session, "rescore")] == [("done", None), ("done", None)]
    assert reads == []
    assert [s.frequency for s in scoring_repo.customer_scores(session, shop_id, [7])] == [2]


class _Stopwatch:
    """A stand-in for the `time` module of app.worker whose clock the jobs move."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


@pytest.mark.both_dbs
def test_a_worker_with_a_duty_rests_after_each_job_in_proportion_to_its_time(
    session: Session, factory: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = create_shop(session).shop_id, create_shop(session).shop_id
    watch = _Stopwatch()
    monkeypatch.setattr("app.worker.time", watch)
    worker = Worker(factory, clock=Clock(NOW), run_schedules=False, duty=0.25)
    rests: list[float | None] = []
    ran: list[int] = []

    def rest(seconds: float | None = None) -> bool:
        rests.append(seconds)
        if len(rests) > 2:  # a poll for more work: the jobs did not run as expected
            worker.stop()
        return worker.stopping

    monkeypatch.setattr(worker._stop, "wait", rest)
    took = [2.0, 0.5]  # the jobs' seconds, in the order they run

    def work(s: Session, job: JobContext) -> None:
        watch.now += took[len(ran)]
        ran.append(job.shop_id)
        if len(ran) == len(took):
            worker.stop()

    register_kind("work", work)
    try:
        enqueue(session, first, "work", NOW)
        enqueue(session, second, "work", NOW)
        session.commit()
        worker.run()
    finally:
        unregister("work")
    assert sorted(ran) == [first, second]
    # busy a quarter of the time: three times each job's seconds at rest
    assert rests == [6.0, 1.5]
    assert [j.state for j in jobs(session)] == ["done", "done"]


def test_a_worker_at_full_duty_never_rests_and_a_stopping_one_does_not_wait(
    factory: sessionmaker[Session],
) -> None:
    assert Worker(factory).rest_seconds(30.0) == 0.0
    assert Worker(factory, duty=0.5).rest_seconds(30.0) == 30.0
    resting = Worker(factory, duty=0.01)
    resting.stop()
    started = time.monotonic()
    resting.rest(0.3)  # a rest of 29.7 s, cut short: SIGTERM does not wait it out
    assert time.monotonic() - started < 5.0


@pytest.mark.parametrize("duty", [0.0, -0.5, 1.5])
def test_a_duty_outside_zero_to_one_is_refused(factory: sessionmaker[Session], duty: float) -> None:
    with pytest.raises(ValueError, match="duty"):
        Worker(factory, duty=duty)
    with pytest.raises(ValueError, match="worker_duty"):
        Settings(app_env="test", worker_duty=duty)


@pytest.mark.parametrize(("cap", "checks"), [(None, 1), (0.5, 3)])
def test_a_schedule_cap_makes_every_schedule_check_at_least_that_often(
    engine: Engine, factory: sessionmaker[Session], cap: float | None, checks: int
) -> None:
    seen: list[Any] = []
    register_schedule("every_minute", lambda session, now: seen.append(now), every_seconds=60.0)
    try:
        clock = Clock(NOW)
        worker = Worker(factory, clock=clock, kinds=set(), schedule_cap_seconds=cap)
        for step in (0.0, 0.3, 0.6, 1.2):
            clock.now = NOW + timedelta(seconds=step)
            worker.tick_schedules()
    finally:
        unregister("every_minute")
    assert len(seen) == checks  # capped: at 0, 0.6 and 1.2 s; else only the first
