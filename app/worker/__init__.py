"""The worker: `python -m app.worker` (or `rfm-clv worker`).

One loop: run the registered schedules that are due (they enqueue level-triggered work), reclaim
jobs whose worker vanished, claim the next due job and run its handler in one transaction. While a
job runs, a thread renews its heartbeat (``jobs.heartbeat_at``) on its own connection, so a job
whose worker died is taken over within the heartbeat expiry (``WORKER_HEARTBEAT_EXPIRY_SECONDS``,
``app.jobs.repository``), by a worker on any host. Many
workers may run against PostgreSQL (claims use ``FOR UPDATE SKIP LOCKED``, and one (shop, kind) never
runs twice at once); on SQLite run one. The worker knows no domain: the kinds are those registered
(``app.tasks``, imported by ``python -m app.worker``). SIGTERM / SIGINT finish the job in hand, then exit.
A failing job is retried with exponential backoff and, out of attempts, kept as ``failed`` with its
error and logged at ERROR: never dropped silently. With a ``duty`` below 1 (``WORKER_DUTY``) the
loop rests after each job in proportion to the job's time, so that the worker and the database
backend serving it leave the rest of the machine to the web tier (docs/deployment.md).
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import logging
import os
import signal
import socket
import threading
import time
import traceback
from collections.abc import Callable, Iterable
from types import FrameType

from sqlalchemy.orm import Session, sessionmaker

from app.jobs import registry
from app.jobs import repository as jobs_repo
from app.jobs.services import ServicesFactory, WorkerServices
from app.kit.db import write_transaction
from app.kit.observability import JOB_RUNS
from app.models.job import FAILED

log = logging.getLogger("app.worker")
Clock = Callable[[], dt.datetime]


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Worker:
    def __init__(
        self,
        factory: sessionmaker[Session],
        *,
        name: str | None = None,
        poll_seconds: float = 1.0,
        clock: Clock = utcnow,
        kinds: Iterable[str] | None = None,
        run_schedules: bool = True,
        services: ServicesFactory | None = None,
        heartbeat_seconds: float = jobs_repo.HEARTBEAT_S,
        heartbeat_expiry_seconds: float = jobs_repo.HEARTBEAT_EXPIRY_S,
        duty: float = 1.0,
        schedule_cap_seconds: float | None = None,
    ) -> None:
        if not 0 < duty <= 1:
            raise ValueError(f"duty must be in (0, 1], not {duty}")
        self.factory = factory
        self.name = name or f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"
        self.poll_seconds = poll_seconds
        self.clock = clock
        self.only_kinds = set(kinds) if kinds is not None else None
        self.run_schedules = run_schedules
        self._stop = threading.Event()
        self._last_run: dict[str, dt.datetime] = {}
        self._services_factory = services
        self._services: WorkerServices | None = None
        self._loop: asyncio.Runner | None = None
        self.heartbeat_seconds = heartbeat_seconds
        self.heartbeat_expiry_seconds = heartbeat_expiry_seconds
        self.duty = duty
        # no schedule waits longer than this between its checks (the demo's local store has no API
        # budget to batch for, so its sync can follow a rescore within a second instead of five)
        self.schedule_cap_seconds = schedule_cap_seconds

    # -- control ---------------------------------------------------------------------------

    def stop(self, *_: object) -> None:
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def install_signal_handlers(self) -> None:
        def handle(signum: int, _frame: FrameType | None) -> None:
            log.info("worker %s: signal %s, finishing the job in hand", self.name, signum)
            self.stop()

        signal.signal(signal.SIGTERM, handle)
        signal.signal(signal.SIGINT, handle)

    # -- one step --------------------------------------------------------------------------

    def kinds(self) -> set[str]:
        known = set(registry.kinds())
        return known if self.only_kinds is None else known & self.only_kinds

    def tick_schedules(self) -> None:
        now = self.clock()
        for schedule in registry.schedules():
            last = self._last_run.get(schedule.name)
            every = schedule.every_seconds
            if self.schedule_cap_seconds is not None:
                every = min(every, self.schedule_cap_seconds)
            if last is not None and (now - last).total_seconds() < every:
                continue
            self._last_run[schedule.name] = now
            try:
                with write_transaction(self.factory) as session:
                    schedule.check(session, now)
            except Exception:
                log.exception("schedule %s failed; it runs again next time", schedule.name)
        with write_transaction(self.factory) as session:
            jobs_repo.reclaim_expired(session, now, self.heartbeat_expiry_seconds)

    def run_one(self) -> bool:
        """Claim and run one due job; False when there was none."""
        now = self.clock()
        with write_transaction(self.factory) as session:
            job = jobs_repo.claim(session, self.name, now, self.kinds())
            if job is None:
                return False
            assert job.claim_token is not None
            claim = job.claim_token
            heartbeat = _Heartbeat(self, job.shop_id, job.id, claim)
            context = registry.JobContext(
                id=job.id,
                shop_id=job.shop_id,
                kind=job.kind,
                key=job.key,
                payload=registry.JobContext.parse_payload(job.payload),
                attempt=job.attempts,
                now=now,
                worker=self.name,
                due=job.run_after,
                stopping=lambda: self.stopping or heartbeat.lost.is_set(),
            )
        with heartbeat:
            self._run_claimed(context, claim)
        return True

    def _run_claimed(self, context: registry.JobContext, claim: str) -> None:
        kind = registry.kind(context.kind)
        try:
            if kind is None:
                raise LookupError(f"no handler registered for job kind {context.kind!r}")
            if kind.async_handler is not None:
                again = self._run_async(kind.async_handler, context)
                with write_transaction(self.factory) as session:
                    if again is None:
                        jobs_repo.complete(session, context.shop_id, context.id, claim, self.clock())
                    else:
                        run_after = self.clock() + dt.timedelta(seconds=max(again, 0.0))
                        jobs_repo.requeue(session, context.shop_id, context.id, claim, run_after)
            else:
                assert kind.handler is not None
                context = dataclasses.replace(context, services=self._services_for_jobs())
                with write_transaction(self.factory) as session:
                    kind.handler(session, context)
                    if not jobs_repo.complete(session, context.shop_id, context.id, claim, self.clock()):
                        raise ClaimLost(f"job {context.id} was taken over by another worker")
            JOB_RUNS.labels(context.kind, "ok").inc()
        except ClaimLost:
            # the job is another worker's now: what this run wrote is rolled back, it redoes it
            log.warning("job %s (%s, shop %s) was taken over", context.id, context.kind, context.shop_id)
        except Exception as exc:
            JOB_RUNS.labels(context.kind, "error").inc()
            error = f"{type(exc).__name__}: {exc}"
            with write_transaction(self.factory) as session:
                state = jobs_repo.fail(session, context.shop_id, context.id, claim, error, self.clock())
            if state == FAILED:
                log.error(
                    "job %s (%s, shop %s) failed after %d attempts: %s\n%s",
                    context.id,
                    context.kind,
                    context.shop_id,
                    context.attempt,
                    error,
                    traceback.format_exc(),
                )
            else:
                log.warning(
                    "job %s (%s, shop %s) failed, will retry: %s",
                    context.id,
                    context.kind,
                    context.shop_id,
                    error,
                )

    def _services_for_jobs(self) -> WorkerServices | None:
        """The services every job of this worker shares, built on first use; None when the worker
        was started without (tests)."""
        if self._services is None and self._services_factory is not None:
            if self._loop is None:
                self._loop = asyncio.Runner()
            self._services = self._loop.run(self._services_factory(self.factory))
        return self._services

    def _run_async(self, handler: registry.AsyncHandler, context: registry.JobContext) -> float | None:
        services = self._services_for_jobs()
        if services is None:
            raise RuntimeError("this worker was started without services for jobs that call Shopify")
        assert self._loop is not None
        return self._loop.run(handler(services, context))

    def close(self) -> None:
        """Close the HTTP client and event loop of async jobs (after `run` returns)."""
        if self._loop is not None:
            if self._services is not None:
                self._loop.run(self._services.aclose())
                self._services = None
            self._loop.close()
            self._loop = None

    def run_pending(self, limit: int = 1000) -> int:
        """Run schedules once, then jobs until none is due (tests, `rfm-clv rescore`)."""
        if self.run_schedules:
            self.tick_schedules()
        ran = 0
        while ran < limit and not self.stopping and self.run_one():
            ran += 1
        return ran

    def rest_seconds(self, worked: float) -> float:
        """How long to rest after ``worked`` seconds of a job, for a share ``duty`` of busy time."""
        return worked * (1 - self.duty) / self.duty

    def rest(self, worked: float) -> None:
        """Rest after a job (at once when stopping: SIGTERM does not wait for the rest)."""
        pause = self.rest_seconds(worked)
        if pause > 0:
            self._stop.wait(pause)

    def run(self) -> None:
        log.info("worker %s started (kinds: %s)", self.name, ", ".join(sorted(self.kinds())))
        while not self.stopping:
            if self.run_schedules:
                self.tick_schedules()
            busy = False
            while not self.stopping:
                started = time.monotonic()
                if not self.run_one():
                    break
                busy = True
                self.rest(time.monotonic() - started)
                if self.run_schedules:
                    self.tick_schedules()
            if not busy:
                self._stop.wait(self.poll_seconds)
        log.info("worker %s stopped", self.name)


class ClaimLost(Exception):
    """The job was taken over by another worker while this one ran it."""


class _Heartbeat:
    """Renews a claimed job's heartbeat every ``worker.heartbeat_seconds`` from a thread with its
    own connection, while the job runs; sets ``lost`` once the job is no longer this claim's."""

    def __init__(self, worker: Worker, shop_id: int, job_id: int, claim: str) -> None:
        self.worker, self.shop_id, self.job_id, self.claim = worker, shop_id, job_id, claim
        self.lost = threading.Event()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"heartbeat-{job_id}", daemon=True)

    def __enter__(self) -> _Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._done.set()
        self._thread.join()

    def _beat(self) -> None:
        while not self._done.wait(self.worker.heartbeat_seconds):
            try:
                with write_transaction(self.worker.factory) as session:
                    held = jobs_repo.heartbeat(
                        session, self.shop_id, self.job_id, self.claim, self.worker.clock()
                    )
            except Exception:
                log.warning("job %s: heartbeat failed; trying again", self.job_id, exc_info=True)
                continue
            if not held:
                self.lost.set()
                return


__all__ = ["ClaimLost", "Worker", "utcnow"]
