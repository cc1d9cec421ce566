"""Removing everything the app wrote to Shopify, on the merchant's request (docs/leaving.md).

What the app wrote is what its record says it wrote: the tags ``desired.removable`` allows for each
customer it wrote to (recorded as written by the app and in its vocabulary under a current or
former prefix, so a merchant's own tags stay, whatever their first letters), the metafield values
under its own ``$app`` namespace, and the segments it created (``synced_segments``). Nothing else
in the shop is touched.

Asking for it (:func:`request_cleanup`) turns the sync off in the same transaction, counts what will
go (the figures the settings page showed) and queues the ``cleanup`` job. While it runs the sync
leaves the shop alone (``service.begin_run``, ``repository.shops_due``). One run of
:func:`clean_up_shop` is a resumable step:

1. wait for a sync step still running, and for a bulk sync mutation still running in Shopify
   (what it may have written is in the record and is removed too);
2. delete the segments, one ``segmentDelete`` each, each recorded as it goes;
3. the customers by id: while many are left, a batch at a time by the sync's bulk mutations
   (metafields, then tags; the batch, its phase, the operation and each line's customer kept in the
   clean-up's row, so a crash comes back to the same operation); the rest packed like the sync's
   documents: aliased ``metafieldsDelete`` (up to 250 identifiers each) and ``tagsRemove`` root
   fields, paced by the Admin client. After each document the customers' records are dropped and
   the cursor moves in one transaction, so a crash repeats at most that one document (removing a
   removed tag or metafield changes nothing in Shopify) and skips nobody.

Afterwards the app holds no record of writing to any customer: turning the sync back on writes
everything again. Mutations: https://shopify.dev/docs/api/admin-graphql/latest/mutations/tagsRemove,
https://shopify.dev/docs/api/admin-graphql/latest/mutations/metafieldsDelete,
https://shopify.dev/docs/api/admin-graphql/latest/mutations/segmentDelete.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from sqlalchemy.orm import Session, sessionmaker

from app.jobs import repository as jobs_repo
from app.models import ShopCleanup
from app.settings.service import get_settings, update_settings
from app.shopify.admin_client import AdminApiError, AdminClient, GraphQLError, Unauthorized
from app.shops.tokens import token_cipher
from app.sync import push, service
from app.sync import repository as repo
from app.sync.plan import customer_gid

CLEANUP: Final = service.CLEANUP_KIND
"""The job kind (``app.sync.tasks``)."""
PAGE: Final = 500
BULK_BATCH: Final = 10_000
"""Customers per bulk batch: the batch's ids are kept in the clean-up's row while it runs."""
STEP_BUDGET_S: Final = 60.0
WAIT_FOR_SYNC_S: Final = 5.0
BULK_RUNNING: Final = frozenset({"CREATED", "RUNNING", "CANCELING"})
UNINSTALLED: Final = (
    "The app was uninstalled before it could finish: Shopify no longer accepts its calls, so what "
    "it had not removed yet stays in Shopify."
)
_DELETE_SELECTION: Final = "{ deletedMetafields { key } userErrors { field message } }"
_TAGS_SELECTION: Final = "{ userErrors { field message } }"


@dataclass(frozen=True, slots=True)
class Counts:
    """What the app wrote to Shopify: customers carrying its tags, its metafield values, its
    segments."""

    customers: int
    metafields: int
    segments: int

    @property
    def total(self) -> int:
        return self.customers + self.metafields + self.segments


@dataclass(frozen=True, slots=True)
class CleanupStatus:
    """For the settings and status pages."""

    state: str
    """queued | running | done | failed"""
    planned: Counts
    removed: Counts
    refused_customers: int
    requested_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    error: str | None

    @property
    def active(self) -> bool:
        return self.state in repo.CLEANUP_ACTIVE

    @property
    def percent(self) -> int:
        if self.state == "done" or self.planned.total == 0:
            return 100 if self.state == "done" else 0
        return min(99, math.floor(100 * self.removed.total / self.planned.total))


# -- asking for it ----------------------------------------------------------------------------------


def what_would_be_removed(session: Session, shop_id: int) -> Counts:
    """The counts the settings page shows before the merchant confirms, from the app's record."""
    prefixes = service.app_tag_prefixes(session, shop_id)
    customers = metafields = 0
    after = 0
    while page := repo.footprints_after(session, shop_id, after, 5 * PAGE, prefixes):
        customers += sum(1 for f in page if f.tags)
        metafields += sum(len(f.metafield_keys) for f in page)
        after = page[-1].customer_id
    return Counts(customers, metafields, len(repo.synced_segments(session, shop_id)))


def request_cleanup(session: Session, shop_id: int, now: datetime) -> ShopCleanup:
    """The settings action: turn the sync off (so no later sync writes everything back), count
    what the app wrote and queue the job. Asked again while one is under way, or after one stopped
    on an error, it goes on from where it stopped; after a finished one, it starts afresh."""
    if get_settings(session, shop_id).sync_enabled:
        update_settings(session, shop_id, {"sync_enabled": False}, now)
    row = repo.cleanup(session, shop_id, lock=True)
    if row is not None and row.state in (*repo.CLEANUP_ACTIVE, "failed"):
        row.state, row.last_error, row.finished_at, row.updated_at = "queued", None, None, now
    else:
        counts = what_would_be_removed(session, shop_id)
        if row is None:
            row = ShopCleanup(shop_id=shop_id)
            session.add(row)
        row.state, row.requested_at, row.started_at, row.finished_at = "queued", now, None, None
        row.after_customer_id = 0
        row.planned_customers, row.planned_metafields, row.planned_segments = (
            counts.customers,
            counts.metafields,
            counts.segments,
        )
        row.removed_customers = row.removed_metafields = row.removed_segments = row.refused_customers = 0
        row.last_error, row.updated_at = None, now
    jobs_repo.enqueue(session, shop_id, CLEANUP, now)
    session.flush()
    return row


def cleanup_status(session: Session, shop_id: int) -> CleanupStatus | None:
    row = repo.cleanup(session, shop_id)
    if row is None:
        return None
    return CleanupStatus(
        state=row.state,
        planned=Counts(row.planned_customers, row.planned_metafields, row.planned_segments),
        removed=Counts(row.removed_customers, row.removed_metafields, row.removed_segments),
        refused_customers=row.refused_customers,
        requested_at=row.requested_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        error=row.last_error,
    )


# -- the job --------------------------------------------------------------------------------------


@dataclass
class _Outcome:
    metafields: int = 0
    """Metafield values confirmed gone (deleted now, or found gone already)."""
    metafields_done: bool = False
    tags_done: bool = False
    gone: bool = False
    """The customer no longer exists in Shopify: nothing of the app is left on them."""
    errors: list[str] = field(default_factory=list)


async def _tx(factory: sessionmaker[Session], fn: Callable[..., Any], *args: Any) -> Any:
    return await push._tx(factory, fn, *args)


async def clean_up_shop(
    factory: sessionmaker[Session],
    admin: AdminClient,
    shop_id: int,
    token: str,
    now: Callable[[], datetime],
    *,
    budget_s: float = STEP_BUDGET_S,
    document_fields: int = push.DOCUMENT_FIELDS,
    after_document: Callable[[int], None] | None = None,
    bulk_threshold: int = push.BULK_THRESHOLD,
    bulk_batch: int = BULK_BATCH,
) -> float | None:
    """One step of the shop's clean-up; None when it is over, else seconds until the next step.
    More than ``bulk_threshold`` customers left: the next ``bulk_batch`` of them go by bulk
    mutation (one for the metafields, then one for the tags), the rest by documents."""
    started = time.monotonic()
    begun = await _tx(factory, _begin, shop_id, now())
    if begun is None:
        return None
    domain, sync_running = begun
    if sync_running:
        return WAIT_FOR_SYNC_S  # its step ends soon, and the next one leaves the shop alone
    try:
        waiting = await _settle_bulk_sync(factory, admin, shop_id, domain, token, now)
        if waiting is not None:
            return waiting
        await _delete_segments(factory, admin, shop_id, domain, token, now)
        prefixes = await _tx(factory, service.app_tag_prefixes, shop_id)
        documents = 0
        while True:
            bulk = await _tx(factory, _bulk_state, shop_id)
            if bulk.phase is not None:
                waiting = await _advance_bulk(factory, admin, shop_id, domain, token, bulk, prefixes, now)
                if waiting is not None:
                    return waiting
                continue
            if await _tx(factory, repo.count_records_after, shop_id, bulk.after) > bulk_threshold:
                await _tx(factory, _begin_bulk, shop_id, bulk.after, bulk_batch)
                continue
            page = await _tx(factory, repo.footprints_after, shop_id, bulk.after, PAGE, prefixes)
            if not page:
                break
            for batch in _batches(page, document_fields):
                outcomes = await _send(admin, domain, token, batch)
                await _tx(factory, _record, shop_id, batch, outcomes, now())
                documents += 1
                if after_document is not None:
                    after_document(documents)
                if time.monotonic() - started > budget_s:
                    return 0.0
        await _tx(factory, _finish, shop_id, now())
        return None
    except Unauthorized:
        await _tx(factory, _token_refused, shop_id, token, admin, now())
        return None
    except AdminApiError as exc:
        await _tx(factory, _note, shop_id, f"Removing from Shopify failed and will be retried: {exc}", now())
        raise


def _begin(session: Session, shop_id: int, now: datetime) -> tuple[str, bool] | None:
    row = repo.cleanup(session, shop_id, lock=True)
    if row is None or row.state not in repo.CLEANUP_ACTIVE:
        return None
    shop = repo.shop(session, shop_id)
    if shop is None or not shop.is_installed:
        row.state, row.last_error, row.updated_at = "failed", UNINSTALLED, now
        return None
    if row.state == "queued":
        row.state = "running"
        row.started_at = row.started_at or now
    row.updated_at = now
    return shop.domain, repo.sync_job_running(session, shop_id)


@dataclass(frozen=True, slots=True)
class _Bulk:
    after: int
    phase: str | None
    operation: str | None
    customers: list[int]
    lines: list[int]


def _bulk_state(session: Session, shop_id: int) -> _Bulk:
    row = repo.cleanup(session, shop_id)
    if row is None:
        return _Bulk(0, None, None, [], [])
    return _Bulk(
        row.after_customer_id,
        row.bulk_phase,
        row.bulk_operation_id,
        json.loads(row.bulk_customers or "[]"),
        json.loads(row.bulk_lines or "[]"),
    )


def _note(session: Session, shop_id: int, message: str, now: datetime) -> None:
    row = repo.cleanup(session, shop_id)
    if row is not None:
        row.last_error, row.updated_at = message, now


def _token_refused(session: Session, shop_id: int, refused: str, admin: AdminClient, now: datetime) -> None:
    push._forget_token(session, shop_id, refused, token_cipher(admin.settings), now)
    row = repo.cleanup(session, shop_id)
    if row is not None:
        row.state, row.last_error, row.updated_at = "failed", push.NO_TOKEN, now


def stop_for_token(session: Session, shop_id: int, now: datetime) -> None:
    """The shop has no usable token: the clean-up stops (asking again goes on from there)."""
    row = repo.cleanup(session, shop_id)
    if row is not None and row.state in repo.CLEANUP_ACTIVE:
        row.state, row.last_error, row.updated_at = "failed", push.NO_TOKEN, now


def give_up(session: Session, shop_id: int, reason: str, now: datetime) -> None:
    """The worker stopped retrying: the clean-up stops where it is (asking again goes on from
    there), and the sync is no longer held back."""
    row = repo.cleanup(session, shop_id)
    if row is not None and row.state in repo.CLEANUP_ACTIVE:
        row.state, row.updated_at = "failed", now
        row.last_error = (
            f"Removing from Shopify stopped after repeated failures ({reason}); ask again to go on."
        )


def _finish(session: Session, shop_id: int, now: datetime) -> None:
    row = repo.cleanup(session, shop_id)
    if row is None:
        return
    row.state, row.finished_at, row.updated_at = "done", now, now
    kept = len(repo.synced_segments(session, shop_id))
    problems = []
    if row.refused_customers:
        problems.append(f"Shopify refused the removal for {row.refused_customers} customer(s)")
    if kept:
        problems.append(f"{kept} segment(s) could not be deleted")
    if problems:
        row.last_error = "; ".join(problems) + ": run the removal again to retry them."


# -- a bulk sync still running ----------------------------------------------------------------------


async def _settle_bulk_sync(
    factory: sessionmaker[Session],
    admin: AdminClient,
    shop_id: int,
    domain: str,
    token: str,
    now: Callable[[], datetime],
) -> float | None:
    """A bulk sync mutation started before the request may still be writing in Shopify: wait for
    it, then fold what it was asked to write into the record (removed with the rest)."""
    for operation in await _tx(factory, repo.bulk_operations_in_flight, shop_id):
        result = await admin.execute(domain, token, push.BULK_OPERATION, {"id": operation})
        if (result.data.get("bulkOperation") or {}).get("status") in BULK_RUNNING:
            return admin.settings.bulk_poll_seconds
    await _tx(factory, repo.fold_inflight, shop_id, now())
    return None


# -- segments -------------------------------------------------------------------------------------


async def _delete_segments(
    factory: sessionmaker[Session],
    admin: AdminClient,
    shop_id: int,
    domain: str,
    token: str,
    now: Callable[[], datetime],
) -> None:
    for segment in await _tx(factory, repo.synced_segments, shop_id):
        result = await admin.execute(
            domain, token, push.SEGMENT_DELETE, {"id": segment.segment_gid}, raise_user_errors=False
        )
        payload = result.data.get("segmentDelete") or {}
        errors = payload.get("userErrors") or []
        deleted = bool(payload.get("deletedSegmentId"))
        if errors and not all("does not exist" in str(e.get("message", "")).lower() for e in errors):
            message = "; ".join(str(e.get("message")) for e in errors)
            problem = f"Shopify refused to delete “{segment.name}”: {message}"
            await _tx(factory, _note, shop_id, problem, now())
            continue
        # "does not exist": the merchant deleted it already, nothing of the app is left there
        await _tx(factory, _segment_done, shop_id, segment.key, deleted, now())


def _segment_done(session: Session, shop_id: int, key: str, deleted: bool, now: datetime) -> None:
    repo.delete_segment(session, shop_id, key)
    row = repo.cleanup(session, shop_id)
    if row is not None:
        row.removed_segments += int(deleted)
        row.updated_at = now


# -- many customers: bulk mutations -----------------------------------------------------------------

BULK_PHASES: Final = ("deletes", "tags_remove", "finish")
"""The sync's bulk mutations (``push.BULK_MUTATIONS``) run for the batch: metafieldsDelete, then
tagsRemove, each line one customer (https://shopify.dev/docs/api/usage/bulk-operations/imports)."""


def _begin_bulk(session: Session, shop_id: int, after: int, size: int) -> None:
    ids = [
        f.customer_id for f in repo.footprints_after(session, shop_id, after, size, ())
    ]  # ids only: the lines are built per phase from the record
    row = repo.cleanup(session, shop_id, lock=True)
    if row is not None and ids:
        row.bulk_phase, row.bulk_operation_id = BULK_PHASES[0], None
        row.bulk_customers, row.bulk_lines = json.dumps(ids), None


def _line(phase: str, footprint: repo.Footprint) -> dict[str, Any] | None:
    gid = customer_gid(footprint.customer_id)
    if phase == "deletes" and footprint.metafield_keys:
        return {"d": [{"ownerId": gid, "namespace": "$app", "key": k} for k in footprint.metafield_keys]}
    if phase == "tags_remove" and footprint.tags:
        return {"id": gid, "tags": list(footprint.tags)}
    return None


async def _advance_bulk(
    factory: sessionmaker[Session],
    admin: AdminClient,
    shop_id: int,
    domain: str,
    token: str,
    bulk: _Bulk,
    prefixes: tuple[str, ...],
    now: Callable[[], datetime],
) -> float | None:
    """Carry the batch's current phase one step: start its bulk mutation (its lines' customers kept
    with its id), wait for it, or record its outcome and move to the next phase. None: go on."""
    phase = bulk.phase or "finish"
    if phase == "finish":
        await _tx(factory, _finish_bulk, shop_id, bulk.customers, prefixes, now())
        return None
    if bulk.operation is None:
        footprints = await _tx(factory, repo.footprints_of, shop_id, bulk.customers, prefixes)
        lined = [(f.customer_id, line) for f in footprints if (line := _line(phase, f)) is not None]
        if not lined:
            await _tx(factory, _set_phase, shop_id, _next(phase), None, [])
            return None
        operation = await push._start_bulk(admin, domain, token, phase, [line for _, line in lined])
        if operation is None:
            return admin.settings.bulk_poll_seconds  # another bulk mutation of the app still runs
        await _tx(factory, _set_phase, shop_id, phase, operation, [c for c, _ in lined])
        bulk = await _tx(factory, _bulk_state, shop_id)
    result = await admin.execute(domain, token, push.BULK_OPERATION, {"id": bulk.operation})
    op = result.data.get("bulkOperation") or {}
    status = op.get("status")
    if status in BULK_RUNNING:
        return admin.settings.bulk_poll_seconds
    url = op.get("url") or op.get("partialDataUrl")
    rows = await push._read_results(admin, url) if url else {}
    await _tx(factory, _record_bulk, shop_id, phase, bulk.lines, rows, str(status), now())
    return None


def _next(phase: str) -> str:
    return BULK_PHASES[BULK_PHASES.index(phase) + 1]


def _set_phase(session: Session, shop_id: int, phase: str, operation: str | None, lines: list[int]) -> None:
    row = repo.cleanup(session, shop_id, lock=True)
    if row is not None:
        row.bulk_phase, row.bulk_operation_id = phase, operation
        row.bulk_lines = json.dumps(lines) if lines else None


def _record_bulk(
    session: Session,
    shop_id: int,
    phase: str,
    lines: list[int],
    rows: dict[int, dict[str, Any]],
    status: str,
    now: datetime,
) -> None:
    """A finished bulk mutation: per line (one customer), what Shopify removed joins the counts
    and leaves the record; refusals are kept on the customer; the batch moves to its next phase."""
    row = repo.cleanup(session, shop_id, lock=True)
    if row is None:
        return
    what = "metafields" if phase == "deletes" else "tags"
    removed: list[int] = []
    refusals: dict[int, str] = {}
    counted = 0
    footprints = {f.customer_id: f for f in repo.footprints_of(session, shop_id, lines, ())}
    for number, customer_id in enumerate(lines):
        line = rows.get(number)
        if line is None:
            refusals[customer_id] = f"the bulk removal in Shopify ended {status.lower()} before this customer"
            continue
        errors = [str(e.get("message")) for e in line.get("errors") or []]
        payload = next(iter((line.get("data") or {}).values()), None) or {}
        errors += [str(e.get("message")) for e in payload.get("userErrors") or []]
        if errors and not all(push._no_longer_exists(m) for m in errors):
            refusals[customer_id] = push._refusal_message(
                errors[0], "tag removal" if what == "tags" else "metafield removal"
            )
            continue
        removed.append(customer_id)
        if errors:
            continue  # the customer no longer exists in Shopify: nothing of the app is left there
        footprint = footprints.get(customer_id)
        if what == "metafields":
            counted += len(footprint.metafield_keys) if footprint is not None else 0
        else:
            counted += 1
    repo.forget_written(session, shop_id, removed, what, now)
    repo.note_refusals(session, shop_id, refusals, now)
    if what == "metafields":
        row.removed_metafields += counted
    else:
        row.removed_customers += counted
    if refusals:
        last = max(refusals)
        row.last_error = f"Customer {last}: {refusals[last]}"
    row.bulk_phase, row.bulk_operation_id, row.bulk_lines = _next(phase), None, None
    row.updated_at = now


def _finish_bulk(
    session: Session, shop_id: int, customers: list[int], prefixes: tuple[str, ...], now: datetime
) -> None:
    """The batch is through both phases: the customers with nothing of the app left lose their
    record; the others (refused) keep it and count as refused; the cursor moves past the batch."""
    row = repo.cleanup(session, shop_id, lock=True)
    if row is None:
        return
    left = repo.footprints_of(session, shop_id, customers, prefixes)
    kept = {f.customer_id for f in left if f.tags or f.metafield_keys}
    repo.delete_states(session, shop_id, [c for c in customers if c not in kept])
    row.refused_customers += len(kept)
    row.after_customer_id = max(customers) if customers else row.after_customer_id
    row.bulk_phase = row.bulk_operation_id = row.bulk_customers = row.bulk_lines = None
    row.updated_at = now


# -- customers ------------------------------------------------------------------------------------


def _fields(identifiers: int, tagged: int) -> int:
    return math.ceil(identifiers / push.DELETES_PER_CALL) + tagged


def _batches(page: Sequence[repo.Footprint], limit: int) -> list[list[repo.Footprint]]:
    """Customers packed into documents of at most ``limit`` root fields."""
    batches: list[list[repo.Footprint]] = []
    batch: list[repo.Footprint] = []
    identifiers = tagged = 0
    for footprint in page:
        grown = (identifiers + len(footprint.metafield_keys), tagged + (1 if footprint.tags else 0))
        if batch and _fields(*grown) > limit:
            batches.append(batch)
            batch, grown = [], (len(footprint.metafield_keys), 1 if footprint.tags else 0)
        batch.append(footprint)
        identifiers, tagged = grown
    if batch:
        batches.append(batch)
    return batches


async def _send(
    admin: AdminClient, domain: str, token: str, batch: Sequence[repo.Footprint]
) -> dict[int, _Outcome]:
    outcomes = {f.customer_id: _Outcome() for f in batch}
    doc = push._Document()
    identifiers = [
        (f.customer_id, {"ownerId": customer_gid(f.customer_id), "namespace": "$app", "key": key})
        for f in batch
        for key in f.metafield_keys
    ]
    for n, start in enumerate(range(0, len(identifiers), push.DELETES_PER_CALL)):
        chunk = identifiers[start : start + push.DELETES_PER_CALL]
        doc.add(
            f"d{n}",
            "metafieldsDelete",
            {"metafields": ("[MetafieldIdentifierInput!]!", [item for _, item in chunk])},
            _DELETE_SELECTION,
            _on_deletes(chunk, outcomes),
        )
    for n, footprint in enumerate(f for f in batch if f.tags):
        doc.add(
            f"r{n}",
            "tagsRemove",
            {
                "id": ("ID!", customer_gid(footprint.customer_id)),
                "tags": ("[String!]!", list(footprint.tags)),
            },
            _TAGS_SELECTION,
            _on_tags(outcomes[footprint.customer_id]),
        )
    for f in batch:
        outcome = outcomes[f.customer_id]
        outcome.metafields_done = not f.metafield_keys
        outcome.tags_done = not f.tags
    if not doc.fields:
        return outcomes
    try:
        result = await admin.execute(
            domain, token, doc.text(), doc.variables, expected_cost=doc.cost, raise_user_errors=False
        )
    except GraphQLError as exc:
        for outcome in outcomes.values():
            outcome.errors.append(f"Shopify rejected the request: {exc}")
        return outcomes
    for alias, handler in doc.handlers.items():
        handler(result.data.get(alias))
    return outcomes


def _on_deletes(
    chunk: list[tuple[int, dict[str, str]]], outcomes: dict[int, _Outcome]
) -> Callable[[dict[str, Any] | None], None]:
    def handle(payload: dict[str, Any] | None) -> None:
        errors = (payload or {}).get("userErrors") or []
        owners = dict.fromkeys(c for c, _ in chunk)
        if payload is None or errors:
            message = str(errors[0].get("message")) if errors else "no answer"
            for customer_id in owners:
                outcomes[customer_id].errors.append(push._refusal_message(message, "metafield removal"))
            return
        # null entries: already gone (https://shopify.dev/docs/api/admin-graphql/latest/mutations/metafieldsDelete)
        for customer_id, _ in chunk:
            outcomes[customer_id].metafields += 1
        for customer_id in owners:
            outcomes[customer_id].metafields_done = True

    return handle


def _on_tags(outcome: _Outcome) -> Callable[[dict[str, Any] | None], None]:
    def handle(payload: dict[str, Any] | None) -> None:
        errors = (payload or {}).get("userErrors") or []
        if payload is None or errors:
            message = str(errors[0].get("message")) if errors else "no answer"
            if push._no_longer_exists(message):
                outcome.gone = True
            else:
                outcome.errors.append(push._refusal_message(message, "tag removal"))
            return
        outcome.tags_done = True

    return handle


def _record(
    session: Session,
    shop_id: int,
    batch: Sequence[repo.Footprint],
    outcomes: dict[int, _Outcome],
    now: datetime,
) -> None:
    """One document's outcome, in one transaction with the cursor: the records of the customers
    cleaned go; a refused customer keeps what Shopify still holds in its record (and its refusal),
    so that asking again retries exactly that."""
    row = repo.cleanup(session, shop_id, lock=True)
    if row is None:
        return
    done: list[int] = []
    refused: list[tuple[int, bool, bool, str]] = []
    for footprint in batch:
        outcome = outcomes[footprint.customer_id]
        if outcome.gone or (not outcome.errors and outcome.metafields_done and outcome.tags_done):
            done.append(footprint.customer_id)
            if not outcome.gone:
                row.removed_customers += int(bool(footprint.tags))
                row.removed_metafields += outcome.metafields
            continue
        row.removed_metafields += outcome.metafields if outcome.metafields_done else 0
        refused.append(
            (
                footprint.customer_id,
                outcome.metafields_done,
                outcome.tags_done,
                "; ".join(dict.fromkeys(outcome.errors)) or "Shopify did not confirm the removal",
            )
        )
    repo.delete_states(session, shop_id, done)
    repo.record_cleanup_refusals(session, shop_id, refused, now)
    if refused:
        row.refused_customers += len(refused)
        row.last_error = f"Customer {refused[-1][0]}: {refused[-1][3]}"
    row.after_customer_id = batch[-1].customer_id
    row.updated_at = now


__all__ = [
    "CLEANUP",
    "CleanupStatus",
    "Counts",
    "clean_up_shop",
    "cleanup_status",
    "request_cleanup",
    "what_would_be_removed",
]
