"""The jobs table's own upkeep: finished jobs are forgotten after a week (failed ones are kept)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Final

from sqlalchemy.orm import Session

from app.jobs import repository
from app.jobs.registry import register_schedule

KEEP_DONE: Final = timedelta(days=7)


def prune_finished(session: Session, now: datetime) -> None:
    repository.prune(session, now - KEEP_DONE)


register_schedule("jobs_prune", prune_finished, every_seconds=3600.0)
