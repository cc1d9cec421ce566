"""SQL for the jobs table: enqueue (coalescing), claim, finish, retry, reclaim."""

from __future__ import annotations

import json
import secrets
from collections.abc import Collection
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, case, delete, exists, func, literal_column, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from app.jobs import registry
from app.models import Job
from app.models.base import table_of
from app.models.job import DONE, FAILED, PENDING, RUNNING

jobs = table_of(Job)
_pending_where = text("state = 'pending'")
DEFAULT_MAX_ATTEMPTS = 5
# A running job's worker renews its heartbeat this often (app.worker); one not renewed for
# HEARTBEAT_EXPIRY_S is taken over: its worker died or lost the database. The defaults of
# WORKER_HEARTBEAT_SECONDS and WORKER_HEARTBEAT_EXPIRY_SECONDS (app.config).
HEARTBEAT_S = 20.0
HEARTBEAT_EXPIRY_S = 90.0


def enqueue(
    session: Session,
    shop_id: int,
    kind: str,
    now: datetime,
    *,
    key: str = "",
    payload: dict[str, Any] | None = None,
    run_after: datetime | None = None,
    cost: float = 0.0,
) -> None:
    """Add a pending job, or coalesce into the pending one of the same (shop, kind, key): it then
    runs at the earlier of the two times, with the newer payload when one is given and the larger
    ``cost`` (expected run time in seconds, which orders the claims: see ``claim``)."""
    registered = registry.kind(kind)
    row = {
        "shop_id": shop_id,
        "kind": kind,
        "key": key,
        "payload": None if payload is None else json.dumps(payload, sort_keys=True),
        "state": PENDING,
        "run_after": run_after or now,
        "cost": max(float(cost), 0.0),
        "attempts": 0,
        "max_attempts": registered.max_attempts if registered else DEFAULT_MAX_ATTEMPTS,
        "created_at": now,
    }
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    stmt = insert(jobs).values(row)
    stmt = stmt.on_conflict_do_update(
        index_elements=["shop_id", "kind", "key"],
        index_where=_pending_where,
        set_={
            "run_after": case(
                (stmt.excluded.run_after < jobs.c.run_after, stmt.excluded.run_after), else_=jobs.c.run_after
            ),
            "payload": case((stmt.excluded.payload.is_(None), jobs.c.payload), else_=stmt.excluded.payload),
            "cost": case((stmt.excluded.cost > jobs.c.cost, stmt.excluded.cost), else_=jobs.c.cost),
        },
    )
    session.execute(stmt)


def active(session: Session, shop_id: int, kind: str, key: str = "") -> bool:
    """Whether a job of this kind is pending or running for the shop."""
    return bool(
        session.scalar(
            select(
                exists().where(
                    jobs.c.shop_id == shop_id,
                    jobs.c.kind == kind,
                    jobs.c.key == key,
                    jobs.c.state.in_((PENDING, RUNNING)),
                )
            )
        )
    )


def shops_with_jobs(
    session: Session, kind: str, states: Collection[str] = (PENDING, RUNNING), key: str | None = ""
) -> set[int]:
    """The shops with a job of this kind in one of ``states`` (by default pending or running, what
    ``active`` says of one shop) and this ``key`` (None: any), in one query: for a schedule that
    looks at every shop, whose cost then does not grow with their number."""
    stmt = select(jobs.c.shop_id).where(jobs.c.kind == kind, jobs.c.state.in_(tuple(states)))
    if key is not None:
        stmt = stmt.where(jobs.c.key == key)
    return {int(s) for s in session.scalars(stmt.distinct())}


def claim_order(dialect: str) -> tuple[Any, Any]:
    """The claim order: due time plus expected run time (``jobs.cost``), then id. Among jobs due
    together the shortest runs first, so a small shop's work never queues behind a big shop's; a
    long job due earlier still goes before short jobs due later than its due time plus its own
    length (aging), so it is never starved. A worker takes a long job only when no shorter one
    would be ahead of it (docs/operations.md, "Fairness between shops")."""
    if dialect == "postgresql":
        key = jobs.c.run_after + jobs.c.cost * literal_column("interval '1 second'")
    else:  # SQLite: naive UTC text (app.models.base.UTCDateTime)
        key = func.julianday(jobs.c.run_after) + jobs.c.cost / 86_400.0
    return key, jobs.c.id


def claim(session: Session, worker: str, now: datetime, kinds: Collection[str]) -> Job | None:
    """Take the next due job of a known kind in ``claim_order``, skipping rows other workers hold
    (PostgreSQL ``FOR UPDATE SKIP LOCKED``) and (shop, kind, key)s already running, so that one
    shop's rescores never overlap. The caller commits at once so the claim is visible."""
    if not kinds:
        return None
    running = jobs.alias("running")
    candidate = (
        select(jobs.c.id)
        .where(
            jobs.c.state == PENDING,
            jobs.c.run_after <= now,
            jobs.c.kind.in_(sorted(kinds)),
            ~exists().where(
                running.c.shop_id == jobs.c.shop_id,
                running.c.kind == jobs.c.kind,
                running.c.key == jobs.c.key,
                running.c.state == RUNNING,
            ),
        )
        .order_by(*claim_order(session.get_bind().dialect.name))
        .limit(1)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    claimed = session.execute(
        update(jobs)
        .where(jobs.c.id == candidate)
        .values(
            state=RUNNING,
            locked_by=worker,
            locked_at=now,
            heartbeat_at=now,
            claim_token=secrets.token_hex(16),
            attempts=jobs.c.attempts + 1,
        )
        .returning(jobs.c.shop_id, jobs.c.id)
    ).first()
    if claimed is None:
        return None
    return session.get(Job, tuple(claimed))


def _claimed(shop_id: int, job_id: int, claim_token: str) -> Any:
    return (
        (jobs.c.shop_id == shop_id)
        & (jobs.c.id == job_id)
        & (jobs.c.state == RUNNING)
        & (jobs.c.claim_token == claim_token)
    )


def heartbeat(session: Session, shop_id: int, job_id: int, claim_token: str, now: datetime) -> bool:
    """Renew the claim's heartbeat; False when the job is no longer this claim's (taken over)."""
    result = session.execute(
        update(jobs).where(_claimed(shop_id, job_id, claim_token)).values(heartbeat_at=now)
    )
    return bool(getattr(result, "rowcount", 0))


_RELEASED = {"locked_by": None, "locked_at": None, "heartbeat_at": None, "claim_token": None}


def complete(session: Session, shop_id: int, job_id: int, claim_token: str, now: datetime) -> bool:
    """Mark the claim's job done; False when another worker took it over meanwhile."""
    result = session.execute(
        update(jobs)
        .where(_claimed(shop_id, job_id, claim_token))
        .values(state=DONE, finished_at=now, last_error=None, **_RELEASED)
    )
    return bool(getattr(result, "rowcount", 0))


def _held(session: Session, shop_id: int, job_id: int, claim_token: str) -> Job | None:
    job = session.get(Job, (shop_id, job_id), with_for_update=True, populate_existing=True)
    if job is None or job.state != RUNNING or job.claim_token != claim_token:
        return None
    return job


def _release(job: Job) -> None:
    for column, value in _RELEASED.items():
        setattr(job, column, value)


def requeue(session: Session, shop_id: int, job_id: int, claim_token: str, run_after: datetime) -> None:
    """A resumable job asked to run again later: back to pending, and this run was no failed
    attempt. Folds into a pending job of the same (shop, kind, key) enqueued meanwhile. Nothing
    when the claim was taken over."""
    job = _held(session, shop_id, job_id, claim_token)
    if job is None:
        return
    other = session.scalar(
        select(Job)
        .where(Job.shop_id == job.shop_id, Job.kind == job.kind, Job.key == job.key, Job.state == PENDING)
        .with_for_update()
    )
    if other is not None:
        other.run_after = min(other.run_after, run_after)
        session.delete(job)
        return
    job.state, job.run_after, job.last_error = PENDING, run_after, None
    job.attempts = max(job.attempts - 1, 0)
    _release(job)


def fail(
    session: Session, shop_id: int, job_id: int, claim_token: str, error: str, now: datetime
) -> str | None:
    """Record a failed attempt: back to pending after the kind's backoff, or, out of attempts,
    ``failed`` for good (reported, never dropped). Returns the new state, None when the claim was
    taken over (the job is another worker's now)."""
    job = _held(session, shop_id, job_id, claim_token)
    if job is None:
        return None
    return _fail(session, job, error, now)


def _fail(session: Session, job: Job, error: str, now: datetime, delay: float | None = None) -> str:
    registered = registry.kind(job.kind)
    if job.attempts >= job.max_attempts:
        job.state, job.finished_at, job.last_error = FAILED, now, error
        _release(job)
        return FAILED
    if delay is None:
        delay = registered.backoff(job.attempts) if registered else 60.0 * job.attempts
    retry_at = now + timedelta(seconds=delay)
    other = session.scalar(
        select(Job)
        .where(Job.shop_id == job.shop_id, Job.kind == job.kind, Job.key == job.key, Job.state == PENDING)
        .with_for_update()
    )
    if other is not None:
        # Newer work for the same (shop, kind, key) was enqueued meanwhile: fold this attempt into it.
        other.attempts = max(other.attempts, job.attempts)
        other.last_error = error
        other.run_after = max(other.run_after, retry_at)
        session.delete(job)
        return PENDING
    job.state, job.run_after, job.last_error = PENDING, retry_at, error
    _release(job)
    return PENDING


def reclaim_expired(session: Session, now: datetime, expiry_seconds: float = HEARTBEAT_EXPIRY_S) -> int:
    """Running jobs whose worker stopped renewing the heartbeat for ``expiry_seconds`` (it died)
    count as a failed attempt and are due again at once: the missed heartbeat was the wait, so
    another worker finishes the job within the expiry (an attempt is still counted, so a job that
    kills every worker running it ends ``failed``). A job claimed by a worker that does not beat
    (an older version) keeps its kind's lease. A live worker's long job is never taken: its
    heartbeat is recent."""
    running = session.scalars(
        select(Job)
        .where(Job.state == RUNNING)
        .with_for_update(skip_locked=True)
        .execution_options(populate_existing=True)
    ).all()
    expired = [job for job in running if _expired(job, now, expiry_seconds)]
    for job in expired:
        _fail(session, job, "the worker running this job stopped before it finished", now, delay=0.0)
    return len(expired)


def _expired(job: Job, now: datetime, expiry_seconds: float) -> bool:
    if job.heartbeat_at is not None:
        return job.heartbeat_at <= now - timedelta(seconds=expiry_seconds)
    registered = registry.kind(job.kind)
    lease = registered.lease_seconds if registered else 900.0
    return job.locked_at is not None and job.locked_at <= now - timedelta(seconds=lease)


def prune(session: Session, before: datetime) -> None:
    """Forget finished jobs older than ``before`` (failed ones stay for the status page)."""
    session.execute(delete(jobs).where(and_(jobs.c.state == DONE, jobs.c.finished_at < before)))


def failed_jobs(session: Session, shop_id: int) -> list[Job]:
    """Jobs that ran out of attempts, newest first: the status page's "errors in plain words"."""
    return list(
        session.scalars(
            select(Job).where(Job.shop_id == shop_id, Job.state == FAILED).order_by(Job.finished_at.desc())
        )
    )
