"""Reading the job queue in tests: a fixed clock and the rows as they are."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import Job
from tests.scoring.ledger import at

NOW = at("2026-06-01")


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def jobs(session: Session, kind: str | None = None) -> list[Job]:
    session.rollback()  # a new snapshot (SQLite keeps a reader's until it ends)
    stmt = select(Job).order_by(Job.id)
    return list(session.scalars(stmt if kind is None else stmt.where(Job.kind == kind)))
