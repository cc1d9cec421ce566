"""Scoring's job kinds and schedules, registered with the worker (``app.jobs.registry``)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from app.jobs import JobContext, register_kind, register_schedule
from app.scoring import service
from app.scoring.cache import RescoreCache


def run_rescore(session: Session, job: JobContext) -> None:
    full = True if job.payload.get("full") else None
    cache = job.services.keep(RescoreCache) if job.services is not None else None
    service.rescore_shop(session, job.shop_id, job.now, full=full, cache=cache)


def run_fit(session: Session, job: JobContext) -> None:
    service.fit_shop(session, job.shop_id, job.now, due=job.due)


register_kind(service.RESCORE, run_rescore, max_attempts=5, backoff_seconds=5, lease_seconds=600)
register_kind(service.FIT, run_fit, max_attempts=3, backoff_seconds=60, lease_seconds=1800)
register_schedule("scores_pending", service.enqueue_due_rescores, every_seconds=1.0)
register_schedule("clv_fits_due", service.enqueue_due_fits, every_seconds=60.0)
