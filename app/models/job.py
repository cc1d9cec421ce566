from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Float, ForeignKey, Index, Integer, PrimaryKeyConstraint, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, UTCDateTime
from app.models.shop import ShopId

PENDING = "pending"
RUNNING = "running"
DONE = "done"
FAILED = "failed"


class Job(Base):
    """Work for the worker (`python -m app.worker`), one row per job; see `app/jobs/`.

    At most one pending job per (shop, kind, key): enqueueing again coalesces into it."""

    __tablename__ = "jobs"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    )
    shop_id: Mapped[int] = mapped_column(ShopId, ForeignKey("shops.shop_id"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    key: Mapped[str] = mapped_column(String(64), server_default=text("''"))
    payload: Mapped[str | None] = mapped_column(Text)  # JSON, for kinds that need arguments
    state: Mapped[str] = mapped_column(String(16))
    run_after: Mapped[datetime] = mapped_column(UTCDateTime)
    cost: Mapped[float] = mapped_column(Float, server_default=text("0"))
    """Expected run time in seconds, as the enqueuer estimates it: jobs are claimed in the order of
    ``run_after + cost`` (``app.jobs.repository.claim``), shortest first among those due together."""
    attempts: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    max_attempts: Mapped[int] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    locked_by: Mapped[str | None] = mapped_column(String(128))
    locked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # renewed while the job runs (app.worker): a job whose worker stopped renewing it is taken over
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # names one claim: only that claim's worker may renew or finish the job
    claim_token: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        PrimaryKeyConstraint("shop_id", "id"),
        Index("ix_jobs_shop_id_kind", "shop_id", "kind"),
        Index("ix_jobs_state_run_after", "state", "run_after"),
        Index(
            "uq_jobs_pending",
            "shop_id",
            "kind",
            "key",
            unique=True,
            postgresql_where=text("state = 'pending'"),
            sqlite_where=text("state = 'pending'"),
        ),
    )
