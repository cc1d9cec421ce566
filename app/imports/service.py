"""The import's rules that run inside a caller's transaction: queue one (never two at once),
note Shopify's `bulk_operations/finish`, and read its progress for the admin page. Session first,
never commits; the steps that talk to Shopify live in `app.imports.pull`."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy.orm import Session

from app.imports import repository as repo
from app.imports.schemas import ACTIVE_STATES, ImportProgress, ImportState
from app.jobs import repository as jobs_repo
from app.models import OrderImport

POLL_INTERVAL_S = 5.0
"""How often a running bulk operation is checked unless the settings say otherwise
(``Settings.bulk_poll_seconds``)."""


def progress_of(row: OrderImport) -> ImportProgress:
    return ImportProgress(
        state=ImportState(row.state),
        orders_done=row.orders_done,
        orders_expected=row.orders_expected,
        started_at=row.started_at,
        finished_at=row.finished_at,
        error=row.error,
        attempts=row.attempts,
    )


# -- reading --------------------------------------------------------------------------------------


def import_progress(session: Session, shop_id: int) -> ImportProgress | None:
    """What the admin page shows (state, orders done/expected, times, error in plain words)."""
    row = repo.get_import(session, shop_id)
    return progress_of(row) if row is not None else None


def shops_with_active_imports(session: Session) -> list[int]:
    """Shops whose import needs more steps (for a worker that scans instead of being told)."""
    return repo.active_import_shop_ids(session, [s.value for s in ACTIVE_STATES])


def next_step_delay(progress: ImportProgress, poll_seconds: float = POLL_INTERVAL_S) -> float | None:
    """When a worker should call :func:`advance_import` again: None = finished (done or failed)."""
    if progress.state in (ImportState.done, ImportState.failed):
        return None
    if progress.state == ImportState.running:
        return poll_seconds
    return 0.0


def request_import(session: Session, shop_id: int, now: datetime) -> ImportProgress:
    """Queue an import unless one is already under way (then return that one unchanged)."""
    repo.ensure_import_row(session, shop_id, str(uuid.uuid4()), now)
    row = repo.get_import(session, shop_id, for_update=True)
    assert row is not None
    if row.state in ACTIVE_STATES:
        return progress_of(row)
    row.run_id = str(uuid.uuid4())
    row.state = ImportState.queued
    row.bulk_operation_id = None
    row.bulk_status = None
    row.bulk_created_at = None
    row.orders_expected = None
    row.orders_done = row.lines_done = row.bytes_done = 0
    row.last_updated_at_seen = None
    row.ledger_done_at = None
    row.aggregates_after = None
    row.attempts = 0
    row.error = None
    row.requested_at = row.updated_at = now
    row.started_at = row.ready_at = row.finished_at = None
    session.flush()
    return progress_of(row)


IMPORT_JOB = "import"


def queue_import(session: Session, shop_id: int, now: datetime) -> ImportProgress:
    """On install, from the admin page or the CLI: request the history import and the worker's job
    (`app.imports.tasks`) that runs it step by step."""
    progress = request_import(session, shop_id, now)
    jobs_repo.enqueue(session, shop_id, IMPORT_JOB, now)
    return progress


def record_bulk_finished(
    session: Session, shop_id: int, operation_gid: str, status: str, now: datetime
) -> str:
    """`bulk_operations/finish`: mark the shop's running import ready to download (the worker's
    next step fetches the file); failures are picked up by that step's status check."""
    row = repo.get_import(session, shop_id, for_update=True)
    if row is None or row.bulk_operation_id != operation_gid:
        return "unknown"
    row.bulk_status = status.upper()
    row.ready_at = now
    row.updated_at = now
    if row.state == ImportState.running and status.lower() == "completed":
        row.state = ImportState.downloading
    jobs_repo.enqueue(session, shop_id, IMPORT_JOB, now)  # the next step runs now, not at the next poll
    return "ready" if row.state == ImportState.downloading else "noted"
