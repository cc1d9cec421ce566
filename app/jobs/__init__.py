"""Background jobs: a registry of kinds and schedules, and the jobs table (see ``app.worker``).

Public API:
    enqueue(session, shop_id, kind, now, key="", payload=None, run_after=None)
    register_kind(name, handler, max_attempts=5, backoff_seconds=10, lease_seconds=900)
    register_async_kind(name, async_handler, ...)   # for work that calls Shopify
    register_schedule(name, check, every_seconds)
    failed_jobs(session, shop_id)
"""

from app.jobs.registry import JobContext, JobKind, register_async_kind, register_kind, register_schedule
from app.jobs.repository import active, enqueue, failed_jobs

__all__ = [
    "JobContext",
    "JobKind",
    "active",
    "enqueue",
    "failed_jobs",
    "register_async_kind",
    "register_kind",
    "register_schedule",
]
