"""Pulling orders from Shopify (the counterpart of `app/sync/push.py`): the history import by bulk
operation, and the reconciliation of what webhooks missed. `app.imports.service` is the public side
(queueing, progress) other domains call.

The import is a state machine kept in the `imports` row (see `app.models.order_import`):

    queued ──bulkOperationRunQuery──> running ──COMPLETED (poll or bulk_operations/finish)──>
    downloading ──first batch committed──> ingesting ──ledger + aggregates──> done
    (FAILED / EXPIRED / CANCELED on Shopify → back to queued, up to MAX_ATTEMPTS, then failed)

:func:`advance_import` performs ONE step and returns; a worker calls it again until the state is
`done` or `failed` (:func:`next_step_delay` says when). Every step is idempotent and each ingest
batch commits its ledger rows together with the position reached in the file, so a crash or a
restart resumes where the last commit left off and never counts an order twice. These functions
are the worker's per-job scope: they open their own transactions (blocking database work runs in a
thread), unlike the session-first services elsewhere.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import aclosing
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy.orm import Session, sessionmaker

from app.config import Settings
from app.imports import lines
from app.imports import repository as repo
from app.imports.schemas import (
    ACTIVE_STATES,
    BULK_FAILURE_WORDS,
    ImportProgress,
    ImportState,
    LedgerText,
    latest_accepted_time,
    order_facts_from_node,
)
from app.imports.service import POLL_INTERVAL_S, next_step_delay, progress_of, request_import
from app.kit.db import write_transaction
from app.models import OrderImport, Shop
from app.orders import service as orders_service
from app.orders.schemas import PayloadError, parse_gid
from app.scoring import service as scoring
from app.shopify.admin_client import AdminClient, UserErrors
from app.shopify.admin_client import Unauthorized as TokenRejected
from app.shops import service as shops_service
from app.shops.tokens import access_token, forget_refused_token, token_cipher

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 3  # bulk operations started per import before it is reported failed
BATCH_ROWS = 50_000  # ledger rows per committed batch
CUSTOMER_CHUNK = 2_000  # customers recomputed per statement (one advisory lock each)
AGGREGATE_CONNECTIONS = 2  # chunks of customers recomputed at once (PostgreSQL)
# Shopify's search index trails writes a little: reconciliation re-reads this much overlap.
SEARCH_LAG = timedelta(minutes=10)
RECONCILE_PAGE = 100

# -- GraphQL documents (2026-10) ---------------------------------------------------------------

# Exactly the fields the ledger keeps (https://shopify.dev/docs/api/usage/bulk-operations/queries).
BULK_ORDERS_QUERY = """
{
  orders {
    edges {
      node {
        id
        createdAt
        processedAt
        updatedAt
        cancelledAt
        test
        displayFinancialStatus
        currentTotalPriceSet { shopMoney { amount } presentmentMoney { amount } }
        currentTotalDiscountsSet { shopMoney { amount } }
        discountCodes
        sourceName
        customer { id }
      }
    }
  }
}
""".strip()

RUN_BULK_QUERY = """
mutation RunOrdersExport($query: String!) {
  bulkOperationRunQuery(query: $query) {
    bulkOperation { id status createdAt }
    userErrors { field message code }
  }
}
"""

BULK_OPERATION = """
query ExportStatus($id: ID!) {
  bulkOperation(id: $id) {
    id status errorCode objectCount rootObjectCount fileSize url partialDataUrl createdAt completedAt
  }
}
"""

# `currentBulkOperation` is deprecated in 2026-10: list our running operations instead.
RUNNING_BULK_OPERATIONS = """
query RunningExports {
  bulkOperations(first: 5, query: "status:running") { nodes { id status query createdAt } }
}
"""

# The shop's own id comes along: webhooks that name a shop (`shop_id`) must name this one; and its
# currency and time zone, which the pages show and the days are counted in.
ORDERS_COUNT = """
query OrdersToImport {
  shop { id currencyCode ianaTimezone }
  ordersCount(limit: null) { count precision }
}
"""

_LEDGER_ORDER = """
fragment LedgerOrder on Order {
  id createdAt processedAt updatedAt cancelledAt test displayFinancialStatus
  currentTotalPriceSet { shopMoney { amount } presentmentMoney { amount } }
  currentTotalDiscountsSet { shopMoney { amount } }
  discountCodes sourceName
  customer { id }
}
"""

ORDERS_UPDATED_SINCE = (
    """
query OrdersUpdatedSince($query: String!, $after: String) {
  orders(first: 100, after: $after, query: $query, sortKey: UPDATED_AT) {
    pageInfo { hasNextPage endCursor }
    nodes { ...LedgerOrder }
  }
}
"""
    + _LEDGER_ORDER
)

ORDERS_BY_ID = (
    """
query OrdersById($ids: [ID!]!) {
  nodes(ids: $ids) { __typename ... on Order { ...LedgerOrder } }
}
"""
    + _LEDGER_ORDER
)

Factory = sessionmaker[Session]
T = TypeVar("T")
U = TypeVar("U")


class ImportSuperseded(Exception):
    """Another worker moved the import on (or a new run replaced it); this step stops."""


@dataclass(frozen=True)
class ReconcileReport:
    examined: int
    repaired: int
    reconciled_through: datetime


def _utcnow() -> datetime:
    return datetime.now(UTC)


async def _in_tx(factory: Factory, fn: Callable[[Session], T]) -> T:
    def run() -> T:
        with write_transaction(factory) as session:
            return fn(session)

    return await asyncio.to_thread(run)


# -- starting -----------------------------------------------------------------------------------


async def start_import(factory: Factory, shop_id: int, *, now: datetime | None = None) -> ImportProgress:
    """On install, from `rfm-clv import` or from the admin page: queue the shop's history import.
    A second request while one runs returns the running one. Then call :func:`advance_import`."""
    return await _in_tx(factory, lambda s: request_import(s, shop_id, now or _utcnow()))


# -- one step -----------------------------------------------------------------------------------


async def advance_import(
    factory: Factory,
    admin: AdminClient,
    shop_id: int,
    *,
    now: Callable[[], datetime] = _utcnow,
    budget_s: float | None = None,
    batch_rows: int = BATCH_ROWS,
) -> ImportProgress:
    """Run one step of the shop's import and return its progress. `budget_s` bounds the time spent
    ingesting (the step then returns with the position committed; the next call resumes)."""
    snapshot = await _in_tx(factory, lambda s: _load(s, shop_id, admin.settings))
    if snapshot is None:
        raise LookupError(f"shop {shop_id} has no import")
    row, domain, token = snapshot
    state = ImportState(row.state)
    if state not in ACTIVE_STATES:
        return progress_of(row)
    if token is None:
        return await _fail(
            factory,
            shop_id,
            row.run_id,
            "The app has no access to this store; open the app to reconnect.",
            now(),
        )
    try:
        if state == ImportState.queued:
            await _start_bulk(factory, admin, shop_id, row, domain, token, now)
        elif state == ImportState.running:
            await _poll_bulk(factory, admin, shop_id, row, domain, token, now)
        elif row.ledger_done_at is None:
            await _download_and_ingest(factory, admin, shop_id, row, domain, token, now, budget_s, batch_rows)
        else:
            await asyncio.to_thread(_recompute_aggregates, factory, shop_id, row.run_id, now, budget_s)
    except TokenRejected:
        await _in_tx(factory, lambda s: forget_refused_token(s, shop_id, token, token_cipher(admin.settings)))
        return await _fail(
            factory,
            shop_id,
            row.run_id,
            "Shopify rejected the app's access; open the app to reconnect.",
            now(),
        )
    except ImportSuperseded:
        log.info("import of shop %s moved on elsewhere; this step stops", shop_id)
    return await _in_tx(factory, lambda s: _current_progress(s, shop_id))


def _current_progress(session: Session, shop_id: int) -> ImportProgress:
    row = repo.get_import(session, shop_id)
    assert row is not None
    return progress_of(row)


def _load(session: Session, shop_id: int, settings: Settings) -> tuple[OrderImport, str, str | None] | None:
    row = repo.get_import(session, shop_id)
    shop = session.get(Shop, shop_id)
    if row is None or shop is None:
        return None
    token = access_token(shop, token_cipher(settings)) if shop.is_installed else None
    return row, shop.domain, token


async def _fail(factory: Factory, shop_id: int, run_id: str, reason: str, now: datetime) -> ImportProgress:
    def apply(s: Session) -> ImportProgress:
        row = repo.get_import(s, shop_id, for_update=True)
        assert row is not None
        if row.run_id == run_id and row.state in ACTIVE_STATES:
            row.state, row.error, row.finished_at, row.updated_at = ImportState.failed, reason, now, now
        return progress_of(row)

    return await _in_tx(factory, apply)


def _guarded(session: Session, shop_id: int, run_id: str, states: set[ImportState]) -> OrderImport:
    row = repo.get_import(session, shop_id, for_update=True)
    if row is None or row.run_id != run_id or row.state not in states:
        raise ImportSuperseded
    return row


async def _start_bulk(
    factory: Factory,
    admin: AdminClient,
    shop_id: int,
    row: OrderImport,
    domain: str,
    token: str,
    now: Callable[[], datetime],
) -> None:
    count = await admin.execute(domain, token, ORDERS_COUNT)
    expected = (count.data.get("ordersCount") or {}).get("count")
    shopify_shop_id = parse_gid(count.data["shop"]["id"], "shop.id", "Shop")
    locale = shops_service.locale_from_shop_node(count.data["shop"])

    def remember_shop_id(s: Session) -> None:
        shop = s.get(Shop, shop_id)
        if shop is not None and shop.shopify_shop_id is None:
            shop.shopify_shop_id = shopify_shop_id
        _remember_locale(s, shop_id, locale, now())

    await _in_tx(factory, remember_shop_id)
    # A crash between starting the operation and recording it leaves ours running: adopt it
    # rather than start a second one.
    running = await admin.execute(domain, token, RUNNING_BULK_OPERATIONS)
    mine = [
        n for n in running.data["bulkOperations"]["nodes"] if _same_query(n.get("query"), BULK_ORDERS_QUERY)
    ]
    if mine:
        operation = mine[0]
    else:
        try:
            result = await admin.execute(domain, token, RUN_BULK_QUERY, {"query": BULK_ORDERS_QUERY})
        except UserErrors as exc:
            if exc.codes & {"LIMIT_REACHED", "OPERATION_IN_PROGRESS"}:
                message = "Waiting for Shopify: too many exports are running for this store."

                def wait(s: Session) -> None:
                    r = _guarded(s, shop_id, row.run_id, {ImportState.queued})
                    r.error, r.updated_at = message, now()

                await _in_tx(factory, wait)
                return
            raise
        operation = result.data["bulkOperationRunQuery"]["bulkOperation"]

    def record(s: Session) -> None:
        r = _guarded(s, shop_id, row.run_id, {ImportState.queued})
        t = now()
        r.state = ImportState.running
        r.bulk_operation_id = operation["id"]
        r.bulk_status = operation.get("status")
        r.bulk_created_at = _parse_time(operation.get("createdAt")) or t
        r.orders_expected = expected
        r.started_at = r.started_at or t
        r.error = None
        r.updated_at = t

    await _in_tx(factory, record)


def _remember_locale(session: Session, shop_id: int, locale: shops_service.ShopLocale, now: datetime) -> None:
    shop = session.get(Shop, shop_id)
    if shop is not None and shops_service.record_locale(shop, locale):
        scoring.timezone_changed(session, shop_id, now)


def _same_query(a: Any, b: str) -> bool:
    return isinstance(a, str) and a.split() == b.split()


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    return datetime.fromisoformat(value).astimezone(UTC)


async def _operation(admin: AdminClient, domain: str, token: str, gid: str) -> dict[str, Any] | None:
    result = await admin.execute(domain, token, BULK_OPERATION, {"id": gid})
    op: dict[str, Any] | None = result.data.get("bulkOperation")
    return op


async def _retry_or_fail(
    factory: Factory, shop_id: int, run_id: str, status: str, error_code: str | None, now: datetime
) -> None:
    reason = BULK_FAILURE_WORDS.get(
        error_code or "", BULK_FAILURE_WORDS.get(status, BULK_FAILURE_WORDS["FAILED"])
    )

    def apply(s: Session) -> None:
        r = _guarded(s, shop_id, run_id, set(ACTIVE_STATES))
        r.attempts += 1
        r.bulk_status = status
        r.updated_at = now
        if r.attempts >= MAX_ATTEMPTS:
            r.state, r.error, r.finished_at = (
                ImportState.failed,
                f"{reason} Gave up after {r.attempts} tries.",
                now,
            )
            return
        # A new operation is a new file: start its count from zero (rows already in the ledger are
        # skipped as not newer, so nothing is counted twice).
        r.state = ImportState.queued
        r.error = f"{reason} Trying again ({r.attempts} of {MAX_ATTEMPTS - 1} retries used)."
        r.bulk_operation_id = None
        r.orders_done = r.lines_done = r.bytes_done = 0

    await _in_tx(factory, apply)


async def _poll_bulk(
    factory: Factory,
    admin: AdminClient,
    shop_id: int,
    row: OrderImport,
    domain: str,
    token: str,
    now: Callable[[], datetime],
) -> None:
    assert row.bulk_operation_id is not None
    op = await _operation(admin, domain, token, row.bulk_operation_id)
    status = (op or {}).get("status") or "FAILED"
    if status in ("CREATED", "RUNNING", "CANCELING"):

        def note(s: Session) -> None:
            r = _guarded(s, shop_id, row.run_id, {ImportState.running})
            r.bulk_status, r.updated_at = status, now()

        await _in_tx(factory, note)
        return
    if status != "COMPLETED":
        await _retry_or_fail(factory, shop_id, row.run_id, status, (op or {}).get("errorCode"), now())
        return

    def ready(s: Session) -> None:
        r = _guarded(s, shop_id, row.run_id, {ImportState.running})
        t = now()
        r.bulk_status, r.ready_at, r.updated_at = status, r.ready_at or t, t
        r.state = ImportState.downloading

    await _in_tx(factory, ready)


async def _download_and_ingest(
    factory: Factory,
    admin: AdminClient,
    shop_id: int,
    row: OrderImport,
    domain: str,
    token: str,
    now: Callable[[], datetime],
    budget_s: float | None,
    batch_rows: int,
) -> None:
    assert row.bulk_operation_id is not None
    # Fetch the operation again: its signed URL may have been renewed, or the file expired.
    op = await _operation(admin, domain, token, row.bulk_operation_id)
    status = (op or {}).get("status")
    if status != "COMPLETED":
        await _retry_or_fail(
            factory, shop_id, row.run_id, status or "EXPIRED", (op or {}).get("errorCode"), now()
        )
        return
    assert op is not None
    url = op.get("url")
    if not url:  # an empty store: nothing to download

        def empty(s: Session) -> None:
            r = _guarded(s, shop_id, row.run_id, {ImportState.downloading, ImportState.ingesting})
            r.state, r.ledger_done_at, r.updated_at = ImportState.ingesting, now(), now()

        await _in_tx(factory, empty)
        return
    deadline = time.monotonic() + budget_s if budget_s is not None else None
    offset = row.bytes_done
    # The file lives on Shopify's storage, not the Admin API: never send the access token there.
    headers = {"Range": f"bytes={offset}-"} if offset else {}
    async with admin.http.stream("GET", url, headers=headers) as response:
        if response.status_code in (403, 404, 410):
            await _retry_or_fail(factory, shop_id, row.run_id, "EXPIRED", None, now())
            return
        response.raise_for_status()
        skip = offset if (offset and response.status_code != 206) else 0
        await ingest_stream(
            factory,
            shop_id,
            row.run_id,
            _skip_bytes(response.aiter_bytes(1 << 20), skip),
            start_line=row.lines_done,
            start_byte=offset,
            batch_rows=batch_rows,
            deadline=deadline,
            now=now,
        )


async def _skip_bytes(chunks: AsyncIterator[bytes], skip: int) -> AsyncIterator[bytes]:
    async for chunk in chunks:
        if skip >= len(chunk):
            skip -= len(chunk)
            continue
        yield chunk[skip:]
        skip = 0


# -- ingest (also what bench/import.py measures) ------------------------------------------------


async def ingest_stream(
    factory: Factory,
    shop_id: int,
    run_id: str,
    chunks: AsyncIterator[bytes],
    *,
    start_line: int = 0,
    start_byte: int = 0,
    batch_rows: int = BATCH_ROWS,
    deadline: float | None = None,
    now: Callable[[], datetime] = _utcnow,
) -> bool:
    """Read JSONL bytes (starting at `start_byte`, which is line `start_line` of the file) into the
    ledger in batches; each batch commits with the position reached. On PostgreSQL the batches are
    parsed in a child process while the database writes the previous one (`app.imports.lines`).
    Returns True when the whole file is in."""
    bind = factory.kw.get("bind")
    if bind is None or bind.dialect.name != "postgresql":
        batches = lines.parse_in_process(
            chunks, shop_id=shop_id, start_line=start_line, start_byte=start_byte, batch_rows=batch_rows
        )
        async with aclosing(batches):
            return await _commit_batches(factory, shop_id, run_id, batches, start_line, deadline, now)
    # PostgreSQL takes a batch as COPY text, which most lines become directly (schemas.fast_ledger_line)
    async with lines.parser_process(
        chunks,
        shop_id=shop_id,
        start_line=start_line,
        start_byte=start_byte,
        batch_rows=batch_rows,
        latest=latest_accepted_time(),
    ) as parsed:
        return await _commit_batches(factory, shop_id, run_id, parsed, start_line, deadline, now)


async def _commit_batches(
    factory: Factory,
    shop_id: int,
    run_id: str,
    batches: AsyncIterator[lines.Parsed],
    start_line: int,
    deadline: float | None,
    now: Callable[[], datetime],
) -> bool:
    """Commit each batch in a thread while the next one is parsed; stop after the batch that
    passes the deadline (False) or the last one (True)."""
    committed_lines = start_line
    pending: asyncio.Task[int] | None = None
    try:
        async for batch in batches:
            for order_id, reason in batch.skipped:
                log.warning("skipping an order the ledger cannot read (%s): %s", order_id, reason)
            if pending is not None:
                committed_lines = await pending
            pending = asyncio.create_task(
                asyncio.to_thread(_commit_batch, factory, shop_id, run_id, committed_lines, batch, now())
            )
            if batch.done or (deadline is not None and time.monotonic() > deadline):
                await pending
                return batch.done
        raise AssertionError("the batches ended without the last one")
    except BaseException:
        if pending is not None and not pending.done():
            await asyncio.gather(pending, return_exceptions=True)
        raise


def _commit_batch(
    factory: Factory,
    shop_id: int,
    run_id: str,
    expected_lines: int,
    batch: lines.Parsed,
    now: datetime,
) -> int:
    with write_transaction(factory) as s:
        r = _guarded(s, shop_id, run_id, {ImportState.downloading, ImportState.ingesting})
        if r.lines_done != expected_lines:
            raise ImportSuperseded
        if isinstance(batch.ledger, LedgerText):
            repo.write_ledger_text(s, shop_id, batch.ledger)
        else:
            repo.write_ledger_rows(s, shop_id, batch.ledger)
        r.state = ImportState.ingesting
        r.lines_done, r.bytes_done = batch.lines, batch.pos
        r.orders_done += batch.orders
        max_updated = batch.max_updated
        if max_updated and (r.last_updated_at_seen is None or max_updated > r.last_updated_at_seen):
            r.last_updated_at_seen = max_updated
        if batch.done:
            r.ledger_done_at = now
        r.updated_at = now
    return batch.lines


def _recompute_chunk(
    factory: Factory,
    shop_id: int,
    run_id: str,
    chunk: Sequence[int],
    after: int | None,
    previous: Future[None] | None,
    now: Callable[[], datetime],
) -> None:
    """One chunk's aggregates, under the customers' locks, then its position: once the chunk
    before it committed (its failure fails this one too, before anything commits)."""
    with write_transaction(factory) as s:
        repo.recompute_customers(s, shop_id, chunk, now())
        if previous is not None:
            previous.result()
        r = _guarded(s, shop_id, run_id, {ImportState.ingesting})
        if r.aggregates_after != after:
            raise ImportSuperseded
        r.aggregates_after = chunk[-1]
        r.updated_at = now()


def _drain(in_flight: deque[Future[None]]) -> None:
    while in_flight:
        in_flight.popleft().result()


def _recompute_aggregates(
    factory: Factory, shop_id: int, run_id: str, now: Callable[[], datetime], budget_s: float | None
) -> bool:
    """Customer aggregates from the ledger, a chunk of customers per transaction; the position is
    committed with each chunk, in order. On PostgreSQL two chunks are recomputed at once, on two
    connections (the statement is the database's CPU work, one backend per chunk); a chunk commits
    its position only after the chunk before it committed, so the position never passes a chunk
    that is not in. Returns True when the import is done."""
    deadline = time.monotonic() + budget_s if budget_s is not None else None
    with factory() as s:
        row = repo.get_import(s, shop_id)
        if row is None or row.run_id != run_id:
            raise ImportSuperseded
        after = row.aggregates_after
    if after is None:
        with write_transaction(factory) as s:
            repo.refresh_statistics(s)
    with factory() as s:
        ids = repo.customer_ids(s, shop_id, after)
    bind = factory.kw.get("bind")
    workers = AGGREGATE_CONNECTIONS if bind is not None and bind.dialect.name == "postgresql" else 1
    in_flight: deque[Future[None]] = deque()
    previous: Future[None] | None = None
    # Leaving the pool waits for every chunk in flight: after a failed one, the next fails too.
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="import-aggregates") as pool:
        for i in range(0, len(ids), CUSTOMER_CHUNK):
            if len(in_flight) == workers:
                in_flight.popleft().result()
                if deadline is not None and time.monotonic() > deadline:
                    _drain(in_flight)
                    return False
            chunk = ids[i : i + CUSTOMER_CHUNK]
            previous = pool.submit(_recompute_chunk, factory, shop_id, run_id, chunk, after, previous, now)
            in_flight.append(previous)
            after = chunk[-1]
        _drain(in_flight)
    with write_transaction(factory) as s:
        r = _guarded(s, shop_id, run_id, {ImportState.ingesting})
        t = now()
        r.state, r.finished_at, r.updated_at, r.error = ImportState.done, t, t, None
        # Webhooks cover everything after the export started; reconciliation takes over from there.
        start = r.bulk_created_at or r.started_at or t
        sync = repo.sync_state_for_update(s, shop_id)
        mark = start - SEARCH_LAG
        if sync.reconciled_through is None or sync.reconciled_through < mark:
            sync.reconciled_through = mark
        # Every customer's aggregates were rewritten, and the ones never scored are not marked.
        scoring.enqueue_rescore(s, shop_id, t, full=True)
    return True


# -- the whole import in-process (operator CLI) -------------------------------------------------


async def run_import(
    factory: Factory,
    admin: AdminClient,
    shop_id: int,
    *,
    poll_interval: float = POLL_INTERVAL_S,
    sleep: Callable[[float], Any] = asyncio.sleep,
    on_progress: Callable[[ImportProgress], None] | None = None,
) -> ImportProgress:
    """`rfm-clv import SHOP`: start (or join) the import and step it to the end."""
    progress = await start_import(factory, shop_id)
    while True:
        progress = await advance_import(factory, admin, shop_id)
        if on_progress is not None:
            on_progress(progress)
        delay = next_step_delay(progress)
        if delay is None:
            return progress
        if delay:
            await sleep(poll_interval)


# -- reconciliation -----------------------------------------------------------------------------


async def reconcile(
    factory: Factory,
    admin: AdminClient,
    shop_id: int,
    *,
    now: Callable[[], datetime] = _utcnow,
) -> ReconcileReport:
    """Refetch every order updated since the shop's watermark, plus the orders `orders/edited`
    flagged stale, and apply them with the webhook path's rules; report how many changed the
    ledger. Also reads the shop's currency and time zone again. Run on a schedule (e.g. hourly)
    per installed shop."""
    started = now()
    loaded = await _in_tx(factory, lambda s: _load_for_reconcile(s, shop_id, admin.settings))
    if loaded is None:
        raise LookupError(f"shop {shop_id} is not installed or has no access token")
    domain, token, since = loaded
    examined = repaired = 0
    try:
        # a shop/update delivery that never arrived: the currency and time zone are read again
        locale = await shops_service.read_locale(admin, domain, token)
        if locale is not None:
            await _in_tx(factory, lambda s: _remember_locale(s, shop_id, locale, started))
        query = f"updated_at:>'{since.astimezone(UTC).strftime('%Y-%m-%dT%H:%M:%SZ')}'"
        after: str | None = None
        while True:
            page = await admin.execute(domain, token, ORDERS_UPDATED_SINCE, {"query": query, "after": after})
            conn = page.data["orders"]
            nodes = [n for n in conn["nodes"] if n]
            examined += len(nodes)
            repaired += await _apply_nodes(factory, shop_id, nodes, started)
            if not conn["pageInfo"]["hasNextPage"]:
                break
            after = conn["pageInfo"]["endCursor"]
        stale = await _in_tx(factory, lambda s: repo.stale_order_ids(s, shop_id))
        for i in range(0, len(stale), RECONCILE_PAGE):
            ids = stale[i : i + RECONCILE_PAGE]
            result = await admin.execute(
                domain, token, ORDERS_BY_ID, {"ids": [f"gid://shopify/Order/{o}" for o in ids]}
            )
            found = [n for n in result.data["nodes"] if n and n.get("__typename") == "Order"]
            examined += len(ids)
            repaired += await _apply_nodes(factory, shop_id, found, started)
            gone = set(ids) - {int(n["id"].rsplit("/", 1)[1]) for n in found}
            repaired += await _delete_gone(factory, shop_id, gone, started)
    except TokenRejected:
        await _in_tx(factory, lambda s: forget_refused_token(s, shop_id, token, token_cipher(admin.settings)))
        raise
    except Exception as exc:
        message = f"{type(exc).__name__}: {exc}"[:500]
        await _in_tx(factory, lambda s: _record_reconcile_error(s, shop_id, message, started))
        raise
    through = max(since, started - SEARCH_LAG)
    await _in_tx(factory, lambda s: _record_reconcile(s, shop_id, through, examined, repaired, started))
    return ReconcileReport(examined=examined, repaired=repaired, reconciled_through=through)


def _load_for_reconcile(
    session: Session, shop_id: int, settings: Settings
) -> tuple[str, str, datetime] | None:
    shop = session.get(Shop, shop_id)
    if shop is None or not shop.is_installed:
        return None
    token = access_token(shop, token_cipher(settings))
    if token is None:
        return None
    sync = repo.get_sync_state(session, shop_id)
    since = sync.reconciled_through if sync and sync.reconciled_through else shop.installed_at - SEARCH_LAG
    return shop.domain, token, since


async def _apply_nodes(factory: Factory, shop_id: int, nodes: list[dict[str, Any]], now: datetime) -> int:
    facts = []
    for node in nodes:
        try:
            facts.append(order_facts_from_node(node))
        except PayloadError as exc:
            log.warning("reconcile: skipping order %s: %s", node.get("id"), exc)
    if not facts:
        return 0

    outcomes = await _each_in_tx(factory, facts, lambda s, f: orders_service.apply_order(s, shop_id, f, now))
    return sum(o in (orders_service.Outcome.applied, orders_service.Outcome.guest) for o in outcomes)


async def _delete_gone(factory: Factory, shop_id: int, order_ids: set[int], now: datetime) -> int:
    ids = sorted(order_ids)
    await _each_in_tx(factory, ids, lambda s, o: orders_service.delete_order(s, shop_id, o, now))
    return len(ids)


async def _each_in_tx(factory: Factory, items: Sequence[U], fn: Callable[[Session, U], T]) -> list[T]:
    """One transaction per order, as a webhook: one holding a customer's lock must not then wait
    for another order's (the lock order of app.orders.repository.lock_orders)."""

    def run() -> list[T]:
        results = []
        for item in items:
            with write_transaction(factory) as session:
                results.append(fn(session, item))
        return results

    return await asyncio.to_thread(run)


def _record_reconcile(
    session: Session, shop_id: int, through: datetime, examined: int, repaired: int, now: datetime
) -> None:
    sync = repo.sync_state_for_update(session, shop_id)
    if sync.reconciled_through is None or sync.reconciled_through < through:
        sync.reconciled_through = through
    sync.last_reconciled_at, sync.last_examined, sync.last_repaired = now, examined, repaired
    sync.last_error = None


def _record_reconcile_error(session: Session, shop_id: int, message: str, now: datetime) -> None:
    sync = repo.sync_state_for_update(session, shop_id)
    sync.last_error = message
    sync.last_reconciled_at = now
