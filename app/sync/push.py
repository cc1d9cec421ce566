"""Pushing scores into Shopify: metafields, tags and segments (docs/metrics.md).

One run of :func:`sync_shop` is a resumable step:

1. settle the shop's push state (tag prefixes, former prefixes) and read the watermarks;
2. sync off: delete the app's segments and stop; on: create / update the segments;
3. the customers Shopify is behind on (``repository.due_customers``: changed ``synced_hash``, tags
   under former prefixes, removed scores) — few: call by call, many (> ``BULK_THRESHOLD``): bulk
   mutations, one kind of write after the other, each cut into files under Shopify's 100 MB limit
   and run up to five at once, each part's state kept so a crash resumes part by part
   (``sync_bulk_parts``; docs/operations.md, "Large syncs");
4. call by call, customers are packed into documents of at most ``DOCUMENT_FIELDS`` aliased root
   mutations (``metafieldsSet`` with 25 metafields each, ``metafieldsDelete``, ``tagsAdd``,
   ``tagsRemove``); the Admin client paces each by its cost (10 points a root field). After each
   document the customers' sync state commits, so a crash loses at most that one document's
   bookkeeping: those customers are written once more, nobody is skipped.

Metafields carry the ``compareDigest`` Shopify returned last time; a conflict re-reads the
metafields and retries once. Shopify's refusals are recorded per customer in plain words.
"""

from __future__ import annotations

import logging
import math
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final, TypeVar

from sqlalchemy.orm import Session, sessionmaker

from app.kit.db import write_transaction
from app.models import SyncBulkPart
from app.shopify import bulk_mutation as bulk
from app.shopify.admin_client import AdminApiError, AdminClient, GraphQLError, Unauthorized
from app.shopify.token_crypto import TokenCipher
from app.shops.tokens import forget_refused_token, token_cipher
from app.sync import flow, service
from app.sync import repository as repo
from app.sync.desired import removable, segment_specs
from app.sync.plan import Plan, customer_gid, plan_for

log = logging.getLogger(__name__)
T = TypeVar("T")
Clock = Callable[[], datetime]

METAFIELDS_PER_CALL: Final = 25  # https://shopify.dev/docs/api/admin-graphql/latest/mutations/metafieldsSet
DELETES_PER_CALL: Final = 250  # input arrays ≤ 250
DOCUMENT_FIELDS: Final = 20
"""Root mutation fields per document: 200 points, a tenth of the Standard bucket."""
MUTATION_COST: Final = 10
PAGE: Final = 500
BULK_THRESHOLD: Final = 1000
STEP_BUDGET_S: Final = 60.0
SEGMENT_NAME_TRIES: Final = 5
APP_NAME: Final = "RFM & CLV"
CONFLICT_CODES: Final = frozenset({"STALE_OBJECT", "INVALID_COMPARE_DIGEST"})
NO_TOKEN: Final = (
    "Shopify refused the app's access token: open the app in your Shopify admin to reconnect it."
)

LABELS: Final = {
    "rfm_recency": "R score",
    "rfm_frequency": "F score",
    "rfm_monetary": "M score",
    "rfm_segment": "RFM segment",
    "lifecycle_stage": "lifecycle stage",
    "predicted_clv": "predicted CLV",
    "historic_clv": "historic CLV",
    "total_clv": "total CLV",
    "churn_risk": "churn risk",
    "next_order_date": "next order date",
}

_METAFIELDS_SET_SELECTION = (
    "{ metafields { key compareDigest owner { ... on Customer { id } } } "
    "userErrors { field message code elementIndex } }"
)
DIGESTS_QUERY: Final = """
query SyncDigests($ids: [ID!]!) {
  nodes(ids: $ids) {
    ... on Customer { id metafields(first: 20, namespace: "$app") { nodes { key value compareDigest } } }
  }
}"""
REPAIR_READ: Final = """
query SyncRepairRead($ids: [ID!]!) {
  nodes(ids: $ids) {
    ... on Customer { id tags metafields(first: 10, namespace: "$app") { nodes { key value compareDigest } } }
  }
}"""
REPAIR_NODE_COST: Final = 13
"""A customer (1) and its ``metafields(first: 10)`` connection (2 + 10): ids per read stay under the
1000-point cap of one query (https://shopify.dev/docs/api/usage/rate-limits)."""
REPAIR_PAGE: Final = 75
REDACT_READ: Final = """
query SyncRedactRead($id: ID!) {
  customer(id: $id) { id tags metafields(first: 20, namespace: "$app") { nodes { key } } }
}"""
SEGMENT_CREATE: Final = """
mutation SyncSegmentCreate($name: String!, $query: String!) {
  segmentCreate(name: $name, query: $query) { segment { id name query } userErrors { field message } }
}"""
SEGMENT_UPDATE: Final = """
mutation SyncSegmentUpdate($id: ID!, $query: String!) {
  segmentUpdate(id: $id, query: $query) { segment { id query } userErrors { field message } }
}"""
SEGMENT_DELETE: Final = """
mutation SyncSegmentDelete($id: ID!) {
  segmentDelete(id: $id) { deletedSegmentId userErrors { field message } }
}"""
BULK_OPERATION: Final = bulk.BULK_OPERATION

# One mutation per kind of write, run once per line of a bulk mutation (https://shopify.dev/docs/api/usage/bulk-operations/imports).
BULK_MUTATIONS: Final[dict[str, str]] = {
    "metafields": "mutation SyncBulkMetafields($m: [MetafieldsSetInput!]!) { metafieldsSet(metafields: $m) "
    "{ metafields { key compareDigest } userErrors { field message code elementIndex } } }",
    "deletes": "mutation SyncBulkDeletes($d: [MetafieldIdentifierInput!]!) { "
    "metafieldsDelete(metafields: $d) { deletedMetafields { key } userErrors { field message } } }",
    "tags_add": "mutation SyncBulkTagsAdd($id: ID!, $tags: [String!]!) { "
    "tagsAdd(id: $id, tags: $tags) { userErrors { field message } } }",
    "tags_remove": "mutation SyncBulkTagsRemove($id: ID!, $tags: [String!]!) { "
    "tagsRemove(id: $id, tags: $tags) { userErrors { field message } } }",
}
BULK_PHASES: Final = tuple(BULK_MUTATIONS)
BULK_MUTATION_NAMES: Final = {
    phase: text.split("(", 1)[0].removeprefix("mutation ") for phase, text in BULK_MUTATIONS.items()
}
BULK_WHAT: Final = {
    "metafields": "metafields",
    "deletes": "metafield removals",
    "tags_add": "new tags",
    "tags_remove": "tag removals",
}
BULK_PART_BYTES: Final = 90_000_000
"""The most bytes of JSONL one part's staged file holds: a tenth under Shopify's limit
(``bulk_mutation.FILE_LIMIT_BYTES``), so no file is near it (docs/operations.md, "Large syncs")."""
BULK_CONCURRENCY: Final = bulk.CONCURRENT_OPERATIONS
BULK_PART_ATTEMPTS: Final = 3
"""Transient failures (storage 5xx, an expired staged file) after which a part is given up."""
FIND_MARGIN: Final = timedelta(hours=1)
"""How far before its staging a lost operation is looked for (the app's and Shopify's clocks)."""


@dataclass(frozen=True, slots=True)
class BulkLimits:
    """How a bulk sync is cut and run: the most bytes of one staged file (under Shopify's limit, with
    a margin) and how many of the shop's parts run in Shopify at once (its limit)."""

    part_bytes: int = BULK_PART_BYTES
    concurrency: int = BULK_CONCURRENCY


class SyncStopped(Exception):
    """Raised by a test hook to simulate a crash between documents."""


async def _tx(factory: sessionmaker[Session], fn: Callable[..., T], *args: Any) -> T:
    with write_transaction(factory) as session:
        return fn(session, *args)


def _no_longer_exists(message: str) -> bool:
    lowered = message.lower()
    return any(
        lowered.startswith(p)
        for p in ("resource does not exist", "owner does not exist", "customer not found")
    )


def _refusal_message(message: str, what: str) -> str:
    """What the status panel says when Shopify refused a write (a vanished customer named as such)."""
    if _no_longer_exists(message):
        return "this customer no longer exists in Shopify"
    return f"Shopify refused the {what}: {message}"


# -- the run -------------------------------------------------------------------------------------


async def sync_shop(
    factory: sessionmaker[Session],
    admin: AdminClient,
    shop_id: int,
    token: str,
    now: Clock,
    *,
    budget_s: float = STEP_BUDGET_S,
    bulk_threshold: int = BULK_THRESHOLD,
    document_fields: int = DOCUMENT_FIELDS,
    after_document: Callable[[int], None] | None = None,
    flow_document_fields: int = flow.DOCUMENT_FIELDS,
    bulk_limits: BulkLimits = BulkLimits(),
) -> float | None:
    """One step of the shop's sync; None when Shopify is in step, else seconds until the next step.
    The Flow triggers the rescores queued go last (``app.sync.flow``), after the customers' values
    they describe are in Shopify, so a workflow that reads the customer's tags finds the new ones."""
    started = time.monotonic()
    ctx = await _tx(factory, service.begin_run, shop_id, now())
    if ctx is None:
        return None
    marks = await _tx(factory, service.watermarks, shop_id)
    domain = ctx.domain

    async def triggers_sent() -> bool:
        """Whether every queued Flow trigger went out within the step's budget."""
        return await flow.send_flow_triggers(
            factory,
            admin,
            shop_id,
            domain,
            token,
            now,
            started=started,
            budget_s=budget_s,
            document_fields=flow_document_fields,
        )

    try:
        if not ctx.enabled:
            await delete_segments(factory, admin, ctx, token, now)
            if ctx.bulk_phase is not None:  # a bulk sync cut short: its customers stay due for later
                await _tx(factory, _abandon_bulk, shop_id)
            if not await triggers_sent():
                return 0.0
            await _tx(factory, _finish, ctx, now(), 0, None, marks)
            return None
        if (
            ctx.bulk_phase is None
            and ctx.repair_after is not None
            and not await _repair(factory, admin, ctx, token, now, started, budget_s)
        ):
            return 0.0  # the comparison goes on in the next step
        if ctx.bulk_phase is None:
            await ensure_segments(factory, admin, ctx, token, now)
            if await _tx(factory, repo.count_due, shop_id, ctx.generation) > bulk_threshold:
                await _tx(factory, service.set_bulk, shop_id, "plan", None)
                ctx = await _tx(factory, service.begin_run, shop_id, now())
        if ctx is not None and ctx.bulk_phase is not None:
            again = await _advance_bulk(factory, admin, ctx, token, now, bulk_limits)
            if again is not None:
                return again
            ctx = await _tx(factory, service.begin_run, shop_id, now())
        if ctx is None:
            return None
        written = 0
        after = 0
        documents = 0
        while True:
            dues = await _tx(factory, repo.due_customers, shop_id, ctx.generation, after, PAGE)
            if not dues:
                break
            after = dues[-1].customer_id
            plans = [plan_for(d, ctx.prefixes, ctx.former, ctx.generation) for d in dues]
            idle = [p for p in plans if p.empty]
            if idle:
                written += await _tx(factory, service.record_plans, shop_id, idle, now())
            for batch in _batches([p for p in plans if not p.empty], document_fields):
                await _send(admin, ctx.domain, token, batch)
                written += await _tx(factory, service.record_plans, shop_id, batch, now())
                documents += 1
                if after_document is not None:
                    after_document(documents)
            if time.monotonic() - started > budget_s:
                await _tx(factory, service.finish_run, ctx, now(), written, None)
                return 0.0
        if not await triggers_sent():
            await _tx(factory, service.finish_run, ctx, now(), written, None)
            return 0.0
        await _tx(factory, _finish, ctx, now(), written, None, marks)
        return None
    except Unauthorized:
        await _tx(factory, _forget_token, shop_id, token, token_cipher(admin.settings), now())
        return None
    except AdminApiError as exc:
        await _tx(factory, service.record_shop_error, shop_id, _shop_error(exc), now())
        raise


async def _repair(
    factory: sessionmaker[Session],
    admin: AdminClient,
    ctx: service.RunContext,
    token: str,
    now: Clock,
    started: float,
    budget_s: float,
) -> bool:
    """Read what Shopify holds for the customers the app wrote to, a page of ids per query, and make
    those whose app tags or metafields drifted due (``service.record_drift``). False when the step's
    time is up (the cursor is kept, the next step goes on)."""
    after = ctx.repair_after or 0
    while True:
        records = await _tx(factory, repo.records_after, ctx.shop_id, after, REPAIR_PAGE)
        if not records:
            await _tx(factory, service.record_drift, ctx.shop_id, {}, {}, None, now())
            return True
        ids = [customer_gid(c) for c, _ in records]
        result = await admin.execute(
            ctx.domain, token, REPAIR_READ, {"ids": ids}, expected_cost=float(REPAIR_NODE_COST * len(ids))
        )
        held: dict[int, tuple[frozenset[str], dict[str, tuple[str, str]]]] = {}
        for node in result.data.get("nodes") or []:
            if not node:
                continue  # gone from Shopify
            metafields = {
                m["key"]: (m["value"], m.get("compareDigest") or "")
                for m in (node.get("metafields") or {}).get("nodes") or []
            }
            held[int(str(node["id"]).rsplit("/", 1)[-1])] = (frozenset(node.get("tags") or []), metafields)
        after = records[-1][0]
        await _tx(factory, service.record_drift, ctx.shop_id, held, dict(records), after, now())
        if time.monotonic() - started > budget_s:
            return False


def _finish(
    session: Session,
    ctx: service.RunContext,
    now: datetime,
    written: int,
    error: str | None,
    marks: tuple[datetime | None, datetime | None],
) -> None:
    """Shopify is in step: what a refused bulk part left undone was written since, or its customers'
    own refusals say why not (``bulk_error`` goes)."""
    service.mark_seen(session, ctx.shop_id, *marks)
    service.finish_run(session, ctx, now, written, error)
    push = repo.push_state(session, ctx.shop_id)
    if push is not None:
        push.bulk_error = None


def _shop_error(exc: AdminApiError) -> str:
    return f"Writing to Shopify failed and will be retried: {exc}"


def _forget_token(session: Session, shop_id: int, refused: str, cipher: TokenCipher, now: datetime) -> None:
    forget_refused_token(session, shop_id, refused, cipher)
    service.record_shop_error(session, shop_id, NO_TOKEN, now)


# -- documents of aliased mutations ---------------------------------------------------------------


def _fields_of(metafields: int, deletes: int, adds: int, removes: int) -> int:
    return (
        math.ceil(metafields / METAFIELDS_PER_CALL) + math.ceil(deletes / DELETES_PER_CALL) + adds + removes
    )


def _batches(plans: Sequence[Plan], limit: int) -> list[list[Plan]]:
    batches: list[list[Plan]] = []
    batch: list[Plan] = []
    counts = [0, 0, 0, 0]
    for plan in plans:
        extra = [len(plan.assign), len(plan.delete), 1 if plan.add else 0, 1 if plan.remove else 0]
        grown = [a + b for a, b in zip(counts, extra, strict=True)]
        if batch and _fields_of(*grown) > limit:
            batches.append(batch)
            batch, grown = [], extra
        batch.append(plan)
        counts = grown
    if batch:
        batches.append(batch)
    return batches


class _Document:
    def __init__(self) -> None:
        self.definitions: list[str] = []
        self.fields: list[str] = []
        self.variables: dict[str, Any] = {}
        self.handlers: dict[str, Callable[[dict[str, Any] | None], None]] = {}

    def add(
        self,
        alias: str,
        field: str,
        args: dict[str, tuple[str, Any]],
        selection: str,
        handler: Callable[[dict[str, Any] | None], None],
    ) -> None:
        parts = []
        for name, (type_, value) in args.items():
            var = f"{alias}_{name}"
            self.definitions.append(f"${var}: {type_}")
            self.variables[var] = value
            parts.append(f"{name}: ${var}")
        self.fields.append(f"{alias}: {field}({', '.join(parts)}) {selection}")
        self.handlers[alias] = handler

    def text(self) -> str:
        return f"mutation SyncBatch({', '.join(self.definitions)}) {{ {' '.join(self.fields)} }}"

    @property
    def cost(self) -> float:
        return float(MUTATION_COST * len(self.fields))


async def _run(admin: AdminClient, domain: str, token: str, doc: _Document, plans: Sequence[Plan]) -> None:
    if not doc.fields:
        return
    try:
        result = await admin.execute(
            domain, token, doc.text(), doc.variables, expected_cost=doc.cost, raise_user_errors=False
        )
    except GraphQLError as exc:
        for plan in plans:
            plan.errors.append(f"Shopify rejected the request: {exc}")
        return
    for alias, handler in doc.handlers.items():
        handler(result.data.get(alias))


async def _send(admin: AdminClient, domain: str, token: str, plans: Sequence[Plan]) -> None:
    """Write ``plans`` in one document; metafields refused for a stale digest are re-read and
    written once more."""
    doc = _Document()
    retry: list[tuple[Plan, dict[str, Any]]] = []
    inputs = [(plan, item) for plan in plans for item in plan.metafield_inputs()]
    for n, start in enumerate(range(0, len(inputs), METAFIELDS_PER_CALL)):
        chunk = inputs[start : start + METAFIELDS_PER_CALL]
        doc.add(
            f"m{n}",
            "metafieldsSet",
            {"metafields": ("[MetafieldsSetInput!]!", [item for _, item in chunk])},
            _METAFIELDS_SET_SELECTION,
            _on_metafields(chunk, retry),
        )
    deletes = [(plan, item) for plan in plans for item in plan.delete_inputs()]
    for n, start in enumerate(range(0, len(deletes), DELETES_PER_CALL)):
        chunk_d = deletes[start : start + DELETES_PER_CALL]
        doc.add(
            f"d{n}",
            "metafieldsDelete",
            {"metafields": ("[MetafieldIdentifierInput!]!", [item for _, item in chunk_d])},
            "{ deletedMetafields { key } userErrors { field message } }",
            _on_deletes(chunk_d),
        )
    for n, plan in enumerate(p for p in plans if p.add):
        doc.add(
            f"a{n}",
            "tagsAdd",
            {"id": ("ID!", plan.gid), "tags": ("[String!]!", plan.add)},
            "{ userErrors { field message } }",
            _on_tags(plan, "added"),
        )
    for n, plan in enumerate(p for p in plans if p.remove):
        doc.add(
            f"r{n}",
            "tagsRemove",
            {"id": ("ID!", plan.gid), "tags": ("[String!]!", plan.remove)},
            "{ userErrors { field message } }",
            _on_tags(plan, "removed"),
        )
    await _run(admin, domain, token, doc, plans)
    if retry:
        await _retry_metafields(admin, domain, token, retry)


def _on_metafields(
    chunk: list[tuple[Plan, dict[str, Any]]], retry: list[tuple[Plan, dict[str, Any]]]
) -> Callable[[dict[str, Any] | None], None]:
    def handle(payload: dict[str, Any] | None) -> None:
        if payload is None:
            for plan, _ in chunk:
                plan.errors.append("Shopify did not answer for the metafields")
            return
        errors = payload.get("userErrors") or []
        if not errors:
            _accept_metafields(chunk, payload.get("metafields") or [])
            return
        # metafieldsSet is atomic: nothing of the chunk was written.
        refused: set[int] = set()
        for error in errors:
            index = error.get("elementIndex")
            if index is None or not 0 <= index < len(chunk):
                for plan, _ in chunk:
                    plan.errors.append(_refusal_message(str(error.get("message")), "metafields"))
                return
            if error.get("code") in CONFLICT_CODES:
                continue
            plan, item = chunk[index]
            refused.add(index)
            label = LABELS.get(item["key"], item["key"])
            plan.errors.append(_refusal_message(str(error.get("message")), f"{label} {item['value']!r}"))
        retry.extend(pair for i, pair in enumerate(chunk) if i not in refused)

    return handle


def _accept_metafields(chunk: Sequence[tuple[Plan, dict[str, Any]]], returned: list[dict[str, Any]]) -> None:
    digests = {
        ((m.get("owner") or {}).get("id"), m.get("key")): m.get("compareDigest")
        for m in returned
        if isinstance(m, dict)
    }
    for plan, item in chunk:
        plan.set_done.add(item["key"])
        digest = digests.get((plan.gid, item["key"]))
        if digest:
            plan.digests[item["key"]] = digest


async def _retry_metafields(
    admin: AdminClient, domain: str, token: str, retry: list[tuple[Plan, dict[str, Any]]]
) -> None:
    owners = sorted({plan.gid for plan, _ in retry})
    current: dict[tuple[str, str], tuple[str, str]] = {}
    try:
        for start in range(0, len(owners), 20):
            result = await admin.execute(domain, token, DIGESTS_QUERY, {"ids": owners[start : start + 20]})
            for node in result.data.get("nodes") or []:
                if not node:
                    continue
                for m in (node.get("metafields") or {}).get("nodes") or []:
                    current[(node["id"], m["key"])] = (m["value"], m["compareDigest"])
    except GraphQLError as exc:
        for plan, _ in retry:
            plan.errors.append(f"Shopify rejected the request: {exc}")
        return
    again: list[tuple[Plan, dict[str, Any]]] = []
    for plan, item in retry:
        held = current.get((plan.gid, item["key"]))
        if held is not None and held[0] == item["value"]:
            plan.set_done.add(item["key"])
            plan.digests[item["key"]] = held[1]
            continue
        again.append((plan, item | {"compareDigest": held[1] if held is not None else None}))
    doc = _Document()
    failed: list[tuple[Plan, dict[str, Any]]] = []
    for n, start in enumerate(range(0, len(again), METAFIELDS_PER_CALL)):
        chunk = again[start : start + METAFIELDS_PER_CALL]
        doc.add(
            f"m{n}",
            "metafieldsSet",
            {"metafields": ("[MetafieldsSetInput!]!", [item for _, item in chunk])},
            _METAFIELDS_SET_SELECTION,
            _on_metafields(chunk, failed),
        )
    await _run(
        admin, domain, token, doc, sorted({id(p): p for p, _ in again}.values(), key=lambda p: p.customer_id)
    )
    for plan, item in failed:
        plan.errors.append(
            f"the {LABELS.get(item['key'], item['key'])} could not be written (Shopify's copy kept changing, "
            "or another value of the same request was refused); the next sync tries again"
        )


def _on_deletes(chunk: list[tuple[Plan, dict[str, str]]]) -> Callable[[dict[str, Any] | None], None]:
    def handle(payload: dict[str, Any] | None) -> None:
        errors = (payload or {}).get("userErrors") or []
        for plan, _ in chunk:
            if payload is None or errors:
                message = str(errors[0].get("message")) if errors else "no answer"
                plan.errors.append(_refusal_message(message, "metafield removal"))
            else:
                plan.deleted = True

    return handle


def _on_tags(plan: Plan, flag: str) -> Callable[[dict[str, Any] | None], None]:
    def handle(payload: dict[str, Any] | None) -> None:
        errors = (payload or {}).get("userErrors") or []
        if payload is None or errors:
            message = str(errors[0].get("message")) if errors else "no answer"
            plan.errors.append(_refusal_message(message, "tags"))
        else:
            setattr(plan, flag, True)

    return handle


# -- segments -------------------------------------------------------------------------------------


def _segment_names(name: str) -> list[str]:
    return [name, f"{name} ({APP_NAME})", *(f"{name} ({APP_NAME} {n})" for n in range(2, SEGMENT_NAME_TRIES))]


async def ensure_segments(
    factory: sessionmaker[Session], admin: AdminClient, ctx: service.RunContext, token: str, now: Clock
) -> None:
    """One Shopify segment per spec, created once (ids stored), its query kept in step with the
    prefixes; a name the merchant already uses gets the app's name appended."""
    stored = {s.key: s for s in await _tx(factory, repo.synced_segments, ctx.shop_id)}
    specs = segment_specs(ctx.prefixes, ctx.rfm_segments)
    wanted = {spec.key for spec in specs}
    for spec in specs:
        have = stored.get(spec.key)
        if have is not None and have.query == spec.query:
            continue
        if have is not None:
            result = await admin.execute(
                ctx.domain,
                token,
                SEGMENT_UPDATE,
                {"id": have.segment_gid, "query": spec.query},
                raise_user_errors=False,
            )
            payload = result.data.get("segmentUpdate") or {}
            if not payload.get("userErrors"):
                await _tx(
                    factory,
                    repo.save_segment,
                    ctx.shop_id,
                    spec.key,
                    have.segment_gid,
                    have.name,
                    spec.query,
                    now(),
                )
                continue
            # the merchant deleted it: create it again
        for name in _segment_names(spec.name):
            result = await admin.execute(
                ctx.domain,
                token,
                SEGMENT_CREATE,
                {"name": name, "query": spec.query},
                raise_user_errors=False,
            )
            payload = result.data.get("segmentCreate") or {}
            errors = payload.get("userErrors") or []
            if not errors and payload.get("segment"):
                gid = payload["segment"]["id"]
                await _tx(factory, repo.save_segment, ctx.shop_id, spec.key, gid, name, spec.query, now())
                break
            if not any("taken" in str(e.get("message", "")).lower() for e in errors):
                message = "; ".join(str(e.get("message")) for e in errors)
                problem = f"Shopify refused the segment “{spec.name}”: {message}"
                await _tx(factory, service.record_shop_error, ctx.shop_id, problem, now())
                break
    for key, have in stored.items():
        if key not in wanted:
            await _delete_segment(factory, admin, ctx, token, key, have.segment_gid)


async def delete_segments(
    factory: sessionmaker[Session], admin: AdminClient, ctx: service.RunContext, token: str, now: Clock
) -> None:
    """Sync turned off: the app's segments leave Shopify."""
    for have in await _tx(factory, repo.synced_segments, ctx.shop_id):
        await _delete_segment(factory, admin, ctx, token, have.key, have.segment_gid)


async def _delete_segment(
    factory: sessionmaker[Session],
    admin: AdminClient,
    ctx: service.RunContext,
    token: str,
    key: str,
    gid: str,
) -> None:
    # "Segment does not exist" means the merchant deleted it already: the same outcome.
    await admin.execute(ctx.domain, token, SEGMENT_DELETE, {"id": gid}, raise_user_errors=False)
    await _tx(factory, repo.delete_segment, ctx.shop_id, key)


# -- customers/redact -------------------------------------------------------------------------------


async def redact_customer(
    factory: sessionmaker[Session],
    admin: AdminClient,
    shop_id: int,
    domain: str,
    token: str,
    customer_id: int,
    app_tags: Sequence[str] | None,
) -> None:
    """Remove the app's metafields and the tags the app recorded as written (``app_tags``, under a
    current or former prefix) from one customer, where Shopify still holds them; no record, no tag
    is removed. Reads the customer first: nothing is sent when nothing is left."""

    app_prefixes: tuple[str, ...] = await _tx(factory, service.app_tag_prefixes, shop_id)
    gid = customer_gid(customer_id)
    result = await admin.execute(domain, token, REDACT_READ, {"id": gid})
    customer = result.data.get("customer")
    if customer is None:
        return
    keys = [m["key"] for m in (customer.get("metafields") or {}).get("nodes") or []]
    tags = removable(customer.get("tags") or [], app_tags or (), app_prefixes)
    doc = _Document()
    if keys:
        doc.add(
            "d0",
            "metafieldsDelete",
            {
                "metafields": (
                    "[MetafieldIdentifierInput!]!",
                    [{"ownerId": gid, "namespace": "$app", "key": k} for k in keys],
                )
            },
            "{ deletedMetafields { key } userErrors { field message } }",
            lambda _: None,
        )
    if tags:
        doc.add(
            "r0",
            "tagsRemove",
            {"id": ("ID!", gid), "tags": ("[String!]!", tags)},
            "{ userErrors { field message } }",
            lambda _: None,
        )
    if doc.fields:
        await admin.execute(domain, token, doc.text(), doc.variables, expected_cost=doc.cost)


# -- bulk mutations ---------------------------------------------------------------------------------


def _bulk_line(phase: str, plan: Plan) -> dict[str, Any] | None:
    if phase == "metafields" and plan.assign and plan.set_done < set(plan.assign):
        return {"m": plan.metafield_inputs()}
    if phase == "deletes" and plan.delete and not plan.deleted:
        return {"d": plan.delete_inputs()}
    if phase == "tags_add" and plan.add and not plan.added:
        return {"id": plan.gid, "tags": plan.add}
    if phase == "tags_remove" and plan.remove and not plan.removed:
        return {"id": plan.gid, "tags": plan.remove}
    return None


def _next_phase(phase: str | None) -> str | None:
    if phase is None or phase == "plan":
        return BULK_PHASES[0]
    index = BULK_PHASES.index(phase)
    return BULK_PHASES[index + 1] if index + 1 < len(BULK_PHASES) else "finish"


def _named(phase: str, name: str) -> str:
    """The phase's mutation under an operation name of its own: the part's mark in
    ``bulkOperations`` (their ``query`` is the mutation text), so a lost answer can be found."""
    text = BULK_MUTATIONS[phase]
    head, rest = text.split("(", 1)
    return f"mutation {name}({rest}" if head.startswith("mutation ") else text


async def _advance_bulk(
    factory: sessionmaker[Session],
    admin: AdminClient,
    ctx: service.RunContext,
    token: str,
    now: Clock,
    limits: BulkLimits,
) -> float | None:
    """Drive the bulk mutations one phase after the other, each phase's customers in parts that fit
    Shopify's file limit, up to ``limits.concurrency`` parts running at once; a delay while parts run
    on Shopify's side, None once every phase is done and recorded."""
    phase = ctx.bulk_phase
    if phase == "plan":
        phase = await _plan_bulk(factory, ctx, now, limits.part_bytes)
    while phase is not None and phase != "finish":
        parts = await _tx(factory, repo.bulk_parts, ctx.shop_id, phase)
        if parts and await _drive_parts(factory, admin, ctx, token, now, phase, parts, limits.concurrency):
            return admin.settings.bulk_poll_seconds
        phase = _next_phase(phase)
        await _tx(factory, service.set_bulk, ctx.shop_id, phase, None)
    await _finish_bulk(factory, ctx.shop_id, now)
    return None


class _Cutter:
    """Cuts each phase's lines, in customer order, into parts of at most ``part_bytes`` bytes of
    JSONL (the bytes uploaded, exactly)."""

    def __init__(self, part_bytes: int) -> None:
        self.part_bytes = part_bytes
        self.cuts: dict[str, list[dict[str, Any]]] = {phase: [] for phase in BULK_PHASES}

    def add(self, plan: Plan) -> None:
        for phase, cuts in self.cuts.items():
            line = _bulk_line(phase, plan)
            if line is None:
                continue
            size = len(bulk.jsonl_line(line))
            if not cuts or cuts[-1]["bytes"] + size > self.part_bytes:
                cuts.append({"first_customer_id": plan.customer_id, "lines": 0, "bytes": 0})
            cut = cuts[-1]
            cut["last_customer_id"] = plan.customer_id
            cut["lines"] += 1
            cut["bytes"] += size

    def rows(self, shop_id: int, now: datetime) -> list[dict[str, Any]]:
        run = secrets.token_hex(4)  # the parts' operation names are unique to this bulk sync
        return [
            cut
            | {
                "shop_id": shop_id,
                "phase": phase,
                "part": number,
                "name": f"{BULK_MUTATION_NAMES[phase]}_{run}_{number}",
                "state": "pending",
                "attempts": 0,
                "updated_at": now,
            }
            for phase, cuts in self.cuts.items()
            for number, cut in enumerate(cuts, start=1)
        ]


async def _plan_bulk(
    factory: sessionmaker[Session], ctx: service.RunContext, now: Clock, part_bytes: int
) -> str:
    """Plan every due customer (kept in ``inflight``, a page per transaction) and cut each phase into
    parts as the plans go by; the parts and the first phase are recorded in one transaction, so a
    crash before it plans again. The phase to run first."""
    cutter = _Cutter(part_bytes)
    after = 0
    while True:
        dues = await _tx(factory, repo.due_customers, ctx.shop_id, ctx.generation, after, 5 * PAGE)
        if not dues:
            break
        after = dues[-1].customer_id
        plans = [plan_for(d, ctx.prefixes, ctx.former, ctx.generation) for d in dues]
        for plan in plans:
            if not plan.empty:
                cutter.add(plan)
        await _tx(factory, _store_plans, ctx.shop_id, plans, now())
    first = BULK_PHASES[0]
    await _tx(factory, _store_parts, ctx.shop_id, cutter.rows(ctx.shop_id, now()), first)
    return first


def _store_plans(session: Session, shop_id: int, plans: list[Plan], now: datetime) -> None:
    service.record_plans(session, shop_id, [p for p in plans if p.empty], now)
    repo.set_inflight(session, shop_id, {p.customer_id: p.to_json() for p in plans if not p.empty}, now)


def _store_parts(session: Session, shop_id: int, rows: list[dict[str, Any]], phase: str) -> None:
    repo.delete_bulk_parts(session, shop_id)  # defensive: no parts exist while the phase is "plan"
    repo.add_bulk_parts(session, rows)
    service.set_bulk(session, shop_id, phase, None)


@dataclass(slots=True)
class _Part:
    """What a step knows of one part (a snapshot of its row)."""

    phase: str
    number: int
    first: int
    last: int
    lines: int
    name: str
    state: str
    staged_path: str | None
    staged_at: datetime | None
    operation_id: str | None
    attempts: int
    looked: bool = False
    """Whether this step knows no operation of the part exists (it staged it, or looked)."""


def _snapshot(row: SyncBulkPart) -> _Part:
    return _Part(
        row.phase,
        row.part,
        row.first_customer_id,
        row.last_customer_id,
        row.lines,
        row.name,
        row.state,
        row.staged_path,
        row.staged_at,
        row.operation_id,
        row.attempts,
    )


async def _drive_parts(
    factory: sessionmaker[Session],
    admin: AdminClient,
    ctx: service.RunContext,
    token: str,
    now: Clock,
    phase: str,
    rows: list[SyncBulkPart],
    concurrency: int,
) -> bool:
    """Carry the phase's parts as far as they go now: follow the running ones, record the finished
    ones, start the next ones while fewer than ``concurrency`` run. True while any is unfinished."""
    parts = [_snapshot(r) for r in rows]
    busy = False
    while True:
        progress = False
        for part in parts:
            if part.state == "running" and await _follow(factory, admin, ctx, token, now, part):
                progress = True
        running = sum(1 for p in parts if p.state == "running")
        for part in parts:
            if running >= concurrency or busy:
                break
            if part.state not in ("pending", "staged"):
                continue
            started = await _start_part(factory, admin, ctx, token, now, part)
            if started is None:
                busy = True  # Shopify's limit is reached (another bulk operation of the app): wait
                break
            progress = True
            running += int(started)
        await _tx(
            factory, _note_running, ctx.shop_id, [p.operation_id for p in parts if p.state == "running"]
        )
        if all(p.state in ("done", "failed") for p in parts):
            return False
        if not progress:
            return True


def _note_running(session: Session, shop_id: int, operations: list[str | None]) -> None:
    """The push state names one running operation while any runs (the status page's "bulk running")."""
    push = repo.push_state(session, shop_id)
    if push is not None:
        push.bulk_operation_id = next((o for o in operations if o), None)


async def _part_lines(
    factory: sessionmaker[Session], shop_id: int, part: _Part
) -> list[tuple[Plan, dict[str, Any]]]:
    """The part's customers and their lines, in file order (rebuilt from the plans the bulk sync
    keeps, which change only when the part's own result is recorded)."""
    rows = await _tx(factory, repo.inflight_between, shop_id, part.first, part.last)
    plans = [Plan.from_json(c, text) for c, text in rows]
    return [(p, line) for p in plans if (line := _bulk_line(part.phase, p)) is not None]


async def _start_part(
    factory: sessionmaker[Session],
    admin: AdminClient,
    ctx: service.RunContext,
    token: str,
    now: Clock,
    part: _Part,
) -> bool | None:
    """Stage the part's file (when not staged yet) and start its bulk mutation. True: it runs;
    False: it ended (refused for good); None: Shopify's concurrency limit is reached."""
    domain, shop_id = ctx.domain, ctx.shop_id
    if part.state == "staged" and part.staged_at is not None and not part.looked:
        # The step that started it may have stopped before recording the operation: follow that one.
        found = await bulk.find_mutation(admin, domain, token, part.name, part.staged_at - FIND_MARGIN)
        part.looked = True
        if found is not None:
            part.state, part.operation_id = "running", found
            await _tx(factory, _set_part, shop_id, part, now())
            return True
    try:
        if part.state == "pending":
            lined = await _part_lines(factory, shop_id, part)
            body = b"".join(bulk.jsonl_line(line) for _, line in lined)
            if len(lined) != part.lines:
                raise bulk.FileRefused(
                    f"the part changed while it waited ({len(lined)} lines, not {part.lines})"
                )
            part.staged_path = await bulk.stage_file(admin, domain, token, f"sync-{part.name}.jsonl", body)
            part.state, part.staged_at, part.looked = "staged", now(), True
            await _tx(factory, _set_part, shop_id, part, part.staged_at)
        assert part.staged_path is not None
        part.operation_id = await bulk.run_mutation(
            admin, domain, token, _named(part.phase, part.name), part.staged_path
        )
    except bulk.Busy:
        return None
    except bulk.FileMissing:  # the staged upload expired while it waited: stage it again
        part.state, part.staged_path, part.staged_at = "pending", None, None
        part.attempts += 1
        if part.attempts >= BULK_PART_ATTEMPTS:
            await _refuse_part(factory, shop_id, part, "its staged file kept disappearing", now)
            return False
        await _tx(factory, _set_part, shop_id, part, now())
        return await _start_part(factory, admin, ctx, token, now, part)
    except bulk.FileRefused as exc:
        await _refuse_part(factory, shop_id, part, str(exc), now)
        return False
    except (Unauthorized, GraphQLError):
        raise  # the token is gone (the caller forgets it), or the document is wrong: not the part's
    except AdminApiError as exc:  # 5xx, timeouts, INTERNAL_FILE_SERVER_ERROR: may pass
        return await _transient(factory, shop_id, part, str(exc), now)
    part.state = "running"
    await _tx(factory, _set_part, shop_id, part, now())
    return True


async def _transient(
    factory: sessionmaker[Session], shop_id: int, part: _Part, problem: str, now: Clock
) -> bool:
    """A failure that may pass: counted on the part; the ``BULK_PART_ATTEMPTS``-th ends it."""
    part.attempts += 1
    if part.attempts >= BULK_PART_ATTEMPTS:
        await _refuse_part(factory, shop_id, part, f"{problem} ({part.attempts} tries)", now)
        return False
    await _tx(factory, _set_part, shop_id, part, now())
    raise AdminApiError(f"bulk sync part {part.number} of the {part.phase}: {problem}")


def _set_part(session: Session, shop_id: int, part: _Part, now: datetime, error: str | None = None) -> None:
    row = repo.bulk_part(session, shop_id, part.phase, part.number)
    if row is None:
        return
    row.state, row.staged_path, row.staged_at = part.state, part.staged_path, part.staged_at
    row.operation_id, row.attempts, row.updated_at = part.operation_id, part.attempts, now
    if error is not None:
        row.error = error


async def _refuse_part(
    factory: sessionmaker[Session], shop_id: int, part: _Part, reason: str, now: Clock
) -> None:
    """Shopify refused the part for good: its customers carry the refusal (kept due, and counted
    towards ``repository.MAX_ATTEMPTS`` like any refusal), the part is over, the status says why."""
    lined = await _part_lines(factory, shop_id, part)
    message = f"Shopify refused the bulk write of the {BULK_WHAT[part.phase]}: {reason}"
    for plan, _ in lined:
        plan.errors.append(message)
    part.state = "failed"
    await _tx(factory, _record_part, shop_id, part, [p for p, _ in lined], message, now())


def _record_part(
    session: Session, shop_id: int, part: _Part, plans: list[Plan], error: str | None, now: datetime
) -> None:
    repo.set_inflight(session, shop_id, {p.customer_id: p.to_json() for p in plans}, now)
    _set_part(session, shop_id, part, now, error)
    if part.state == "failed":
        push = repo.push_state(session, shop_id)
        if push is not None:
            push.bulk_error = (
                f"{error} ({len(plans)} customers in that part; they are tried again with the next sync)"
            )


async def _follow(
    factory: sessionmaker[Session],
    admin: AdminClient,
    ctx: service.RunContext,
    token: str,
    now: Clock,
    part: _Part,
) -> bool:
    """Ask Shopify about the part's operation; once it ended, record each line's outcome on its
    customer's plan and the part as done, in one transaction. True when it ended."""
    assert part.operation_id is not None
    op = await bulk.operation(admin, ctx.domain, token, part.operation_id)
    status = op.get("status")
    if status in bulk.RUNNING:
        return False
    url = op.get("url") or op.get("partialDataUrl")
    outcomes: dict[int, dict[str, Any]] = {}
    if url:
        async for row in bulk.result_lines(admin, str(url)):
            outcomes[int(row.get("__lineNumber", -1))] = row
    lined = await _part_lines(factory, ctx.shop_id, part)
    for number, (plan, _) in enumerate(lined):
        _apply_bulk_line(part.phase, plan, outcomes.get(number), status)
    part.state = "done"
    ended = None if status == "COMPLETED" else f"the operation ended {str(status).lower()}"
    if ended and op.get("errorCode"):
        ended += f" ({str(op['errorCode']).lower()})"
    await _tx(factory, _record_part, ctx.shop_id, part, [p for p, _ in lined], ended, now())
    return True


async def _finish_bulk(factory: sessionmaker[Session], shop_id: int, now: Clock) -> None:
    """Every phase is over: the outcome of each customer is recorded a page at a time, then the
    bulk state goes (its refused parts, if any, stay named in ``bulk_error``)."""
    after = 0
    while True:
        page = await _tx(factory, repo.inflight_after, shop_id, after, 5 * PAGE)
        if not page:
            break
        after = page[-1][0]
        plans = [Plan.from_json(c, text) for c, text in page]
        await _tx(factory, _record_finished, shop_id, plans, now())
    await _tx(factory, _end_bulk, shop_id)


def _record_finished(session: Session, shop_id: int, plans: list[Plan], now: datetime) -> None:
    service.record_plans(session, shop_id, plans, now)  # the rows leave the bulk sync (inflight NULL)


def _end_bulk(session: Session, shop_id: int) -> None:
    failed = repo.failed_bulk_parts(session, shop_id)
    repo.delete_bulk_parts(session, shop_id)
    push = repo.push_state(session, shop_id)
    if push is not None:
        push.bulk_phase, push.bulk_operation_id = None, None
        if not failed:
            push.bulk_error = None


def _abandon_bulk(session: Session, shop_id: int) -> None:
    repo.clear_inflight(session, shop_id)
    repo.delete_bulk_parts(session, shop_id)
    service.set_bulk(session, shop_id, None, None)


async def _start_bulk(
    admin: AdminClient, domain: str, token: str, phase: str, lines: list[dict[str, Any]]
) -> str | None:
    """One file, one bulk mutation (the clean-up's batches, far under the file limit); None while
    Shopify's concurrency limit is reached."""
    body = b"".join(bulk.jsonl_line(line) for line in lines)
    key = await bulk.stage_file(admin, domain, token, f"sync-{phase}.jsonl", body)
    try:
        return await bulk.run_mutation(admin, domain, token, BULK_MUTATIONS[phase], key)
    except bulk.Busy:
        return None


async def _read_results(admin: AdminClient, url: str) -> dict[int, dict[str, Any]]:
    return {int(row.get("__lineNumber", -1)): row async for row in bulk.result_lines(admin, url)}


def _apply_bulk_line(phase: str, plan: Plan, row: dict[str, Any] | None, status: str | None) -> None:
    if row is None:
        plan.errors.append(f"the bulk write to Shopify ended {str(status).lower()} before this customer")
        return
    if row.get("errors"):
        plan.errors.append(
            "Shopify rejected the request: " + "; ".join(str(e.get("message")) for e in row["errors"])
        )
        return
    payload = next(iter((row.get("data") or {}).values()), None) or {}
    errors = payload.get("userErrors") or []
    if errors:
        what = {"metafields": "metafields", "deletes": "metafield removal"}.get(phase, "tags")
        plan.errors.extend(_refusal_message(str(e.get("message")), what) for e in errors)
        return
    if phase == "metafields":
        returned = {m.get("key"): m.get("compareDigest") for m in payload.get("metafields") or []}
        for key in plan.assign:
            plan.set_done.add(key)
            if returned.get(key):
                plan.digests[key] = returned[key]
    elif phase == "deletes":
        plan.deleted = True
    elif phase == "tags_add":
        plan.added = True
    else:
        plan.removed = True
