"""Job kinds and schedules: a small registry other domains plug into.

A job kind is a name and a handler ``handler(session, job) -> None``; the worker calls it inside
one transaction that commits when it returns and rolls back when it raises (then the job is retried
with backoff, and after ``max_attempts`` reported as failed). A schedule is a function
``check(session, now)`` the worker runs every ``every_seconds`` to enqueue due work (the
level-triggered part: "customers marked to score", "nightly fit").

    from app.jobs import register_kind, register_schedule
    register_kind("import", run_import, max_attempts=10, lease_seconds=3600)

Registration happens at import time of the domain's ``tasks`` module; ``app.tasks`` imports them
all, and the processes that run or enqueue jobs import ``app.tasks``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session


@dataclass(frozen=True, slots=True)
class JobContext:
    """What a handler learns about the job it runs."""

    id: int
    shop_id: int
    kind: str
    key: str
    payload: dict[str, Any]
    attempt: int
    """1 on the first run."""
    now: datetime
    worker: str
    due: datetime | None = None
    """When the job was due (its ``run_after``): work it queues as its sequel can keep its place in
    the claim order (a shop's daily rescore after its fit)."""
    stopping: Callable[[], bool] = field(default=lambda: False)
    """True once the worker was asked to stop (SIGTERM): a long handler may return early."""
    services: Any = None
    """The running worker's ``app.worker.services.WorkerServices``, which keep what a handler
    reuses across jobs (the rescore's cache); None outside a worker (the CLI, tests)."""

    @staticmethod
    def parse_payload(text: str | None) -> dict[str, Any]:
        return {} if not text else dict(json.loads(text))


Handler = Callable[[Session, JobContext], None]
AsyncHandler = Callable[[Any, JobContext], Coroutine[Any, Any, float | None]]
"""``async handler(services, job)`` for work that talks to Shopify: it runs outside any transaction
(it commits its own steps, e.g. an import's batches) with the worker's ``WorkerServices`` (HTTP
client, Admin API client, token access). It returns ``None`` when the job is done, or a number of
seconds after which the same job should run again (a long job done in resumable steps)."""
ScheduleCheck = Callable[[Session, datetime], object]


@dataclass(frozen=True, slots=True)
class JobKind:
    name: str
    handler: Handler | None
    max_attempts: int = 5
    backoff_seconds: float = 10.0
    """First retry after this long, then doubling: 10 s, 20 s, 40 s, ... up to ``max_backoff_seconds``."""
    max_backoff_seconds: float = 3600.0
    lease_seconds: float = 900.0
    """A running job whose worker vanished is run again after this long, when that worker wrote no
    heartbeat (an older version); otherwise a missed heartbeat decides (``app.jobs.repository``)."""
    async_handler: AsyncHandler | None = None

    def backoff(self, attempt: int) -> float:
        return float(min(self.backoff_seconds * 2 ** max(attempt - 1, 0), self.max_backoff_seconds))


@dataclass(frozen=True, slots=True)
class Schedule:
    name: str
    check: ScheduleCheck
    every_seconds: float


_kinds: dict[str, JobKind] = {}
_schedules: dict[str, Schedule] = {}


def register_kind(
    name: str,
    handler: Handler,
    *,
    max_attempts: int = 5,
    backoff_seconds: float = 10.0,
    max_backoff_seconds: float = 3600.0,
    lease_seconds: float = 900.0,
) -> JobKind:
    """Register (or replace) the handler of a job kind."""
    if max_attempts < 1:
        raise ValueError("max_attempts must be at least 1")
    kind = JobKind(name, handler, max_attempts, backoff_seconds, max_backoff_seconds, lease_seconds)
    _kinds[name] = kind
    return kind


def register_async_kind(
    name: str,
    handler: AsyncHandler,
    *,
    max_attempts: int = 5,
    backoff_seconds: float = 10.0,
    max_backoff_seconds: float = 3600.0,
    lease_seconds: float = 900.0,
) -> JobKind:
    """Register a kind whose handler is async and manages its own transactions (see AsyncHandler)."""
    if max_attempts < 1:
        raise ValueError("max_attempts must be at least 1")
    kind = JobKind(name, None, max_attempts, backoff_seconds, max_backoff_seconds, lease_seconds, handler)
    _kinds[name] = kind
    return kind


def register_schedule(name: str, check: ScheduleCheck, every_seconds: float) -> Schedule:
    schedule = Schedule(name, check, every_seconds)
    _schedules[name] = schedule
    return schedule


def kind(name: str) -> JobKind | None:
    return _kinds.get(name)


def kinds() -> dict[str, JobKind]:
    return dict(_kinds)


def schedules() -> list[Schedule]:
    return list(_schedules.values())


def unregister(name: str) -> None:
    """For tests: forget a kind or schedule registered under ``name``."""
    _kinds.pop(name, None)
    _schedules.pop(name, None)
