"""The status page's own rules: the customers waiting to be written to Shopify counted again only
when something they depend on moved, an import that keeps failing told with its attempts and next
try, and the re-import button's guards (not while an import runs; confirmed when the history was
imported before)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from sqlalchemy.orm import Session

from app.admin import repository as repo
from app.imports import service as imports_service
from app.imports.schemas import ACTIVE_STATES, ImportProgress
from app.kit.errors import AppError, UnprocessablePayload
from app.sync import service as sync_service

RECOUNT_WHILE_MOVING_S: Final = 10.0
"""While a sync or clean-up is queued or running the count moves without its stamp changing; it is
counted again at most this often then."""
REIMPORT_CONFIRMATION: Final = "import"


class PendingCounts:
    """Customers waiting to be written, per shop, kept with the stamp of what the count depends on
    (`app.sync.service.pending_stamp`: a few indexed rows); the count over all the shop's scores
    runs again only when the stamp changed, or, while a sync or clean-up job is pending or running,
    at most every ``recount_every`` seconds. One per app (``app.state``)."""

    def __init__(
        self, recount_every: float = RECOUNT_WHILE_MOVING_S, clock: Callable[[], float] = time.monotonic
    ):
        self.recount_every = recount_every
        self.clock = clock
        self._known: dict[int, tuple[tuple[object, ...], int, float]] = {}
        self._lock = threading.Lock()

    def __call__(self, session: Session, shop_id: int) -> int:
        stamp = sync_service.pending_stamp(session, shop_id)
        moving = bool(stamp[-1])
        now = self.clock()
        with self._lock:
            known = self._known.get(shop_id)
        if known is not None and known[0] == stamp and (not moving or now - known[2] < self.recount_every):
            return known[1]
        count = sync_service.customers_pending(session, shop_id)
        with self._lock:
            self._known[shop_id] = (stamp, count, now)
        return count


# -- the import ---------------------------------------------------------------------------------

_UNREACHABLE = (
    "ConnectError",
    "ConnectTimeout",
    "ReadTimeout",
    "WriteTimeout",
    "PoolTimeout",
    "TimeoutException",
    "NetworkError",
    "RemoteProtocolError",
    "ReadError",
)


@dataclass(frozen=True, slots=True)
class ImportRetry:
    """An import whose worker job keeps failing: how often, when it tries next, and why."""

    attempts: int
    next_try_at: datetime
    unreachable: bool
    """Shopify could not be reached (a connection or timeout error), as opposed to another error."""
    error: str

    @property
    def words(self) -> str:
        return "Shopify could not be reached" if self.unreachable else f"The last try failed: {self.error}"


def import_retry(session: Session, shop_id: int) -> ImportRetry | None:
    """The import's pending worker job when at least one try of it failed."""
    job = repo.last_job(session, shop_id, imports_service.IMPORT_JOB, ("pending",))
    if job is None or job.attempts < 1 or not job.last_error:
        return None
    error = job.last_error.strip().splitlines()[-1][:300]
    unreachable = error.split(":", 1)[0] in _UNREACHABLE
    return ImportRetry(job.attempts, job.run_after, unreachable, error)


def under_way(progress: ImportProgress | None) -> bool:
    return progress is not None and progress.state in ACTIVE_STATES


def request_reimport(
    session: Session, shop_id: int, now: datetime, confirmation: str | None
) -> ImportProgress:
    """The import button: refused while an import is under way (409); once the history was
    imported (or tried), only with the form's confirmation (422); nothing is queued otherwise."""
    progress = imports_service.import_progress(session, shop_id)
    if under_way(progress):
        assert progress is not None
        raise AppError(
            f"an import of the order history is already under way ({progress.state.value}); "
            "nothing was queued",
            status_code=409,
        )
    if progress is not None and confirmation != REIMPORT_CONFIRMATION:
        raise UnprocessablePayload(
            "confirm: tick the box to confirm that the whole order history is to be imported again; "
            "nothing was queued"
        )
    return imports_service.queue_import(session, shop_id, now)
