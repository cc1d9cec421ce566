"""Firing the Shopify Flow triggers the rescores queued (``flow_trigger_events``), with
``flowTriggerReceive`` (https://shopify.dev/docs/api/admin-graphql/latest/mutations/flowTriggerReceive;
handle + JSON payload, https://shopify.dev/docs/apps/build/flow/triggers/reference). See docs/flow.md.

Up to ``DOCUMENT_FIELDS`` aliased ``flowTriggerReceive`` fields per document, paced by the Admin
client like every other write (10 cost points a mutation, waiting on the shop's bucket). After
each document one transaction marks what Shopify accepted as sent, and what it refused with a
userError as refused (after ``MAX_ATTEMPTS``, else it is tried again by the next run). A transport
failure marks nothing: the job is retried and the same rows are sent again.

What Shopify guarantees: ``flowTriggerReceive`` takes no idempotency key (its arguments are the
handle and the payload only, Admin API 2026-10), so Shopify cannot recognise a repeat. A crash (or
a lost response) after Shopify accepted a document and before its rows were marked sends those
rows again: at most one document (``DOCUMENT_FIELDS`` triggers) per crash is repeated. Everything
else is sent exactly once: a change is queued once (unique key per change), a sent row is never
read again, and retries of a failed document resend only what was never confirmed.

Triggers whose workflows the merchant turned off since the change was queued (Flow's lifecycle
callback) are dropped unsent.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any, Final

from sqlalchemy.orm import Session, sessionmaker

from app.kit.db import write_transaction
from app.scoring import flow_events
from app.shopify.admin_client import AdminClient, GraphQLError
from app.sync import repository as repo

DOCUMENT_FIELDS: Final = 20
"""Root mutations per document: 200 points, a tenth of a Standard shop's bucket."""
MUTATION_COST: Final = 10
PAGE: Final = 500
MAX_ATTEMPTS: Final = 3
SELECTION: Final = "{ userErrors { field message } }"

Clock = Callable[[], datetime]


def document(count: int) -> str:
    """``count`` aliased ``flowTriggerReceive`` fields, variables ``h0, p0, h1, p1, …``."""
    definitions = ", ".join(f"$h{i}: String, $p{i}: JSON" for i in range(count))
    fields = " ".join(
        f"t{i}: flowTriggerReceive(handle: $h{i}, payload: $p{i}) {SELECTION}" for i in range(count)
    )
    return f"mutation FlowTriggers({definitions}) {{ {fields} }}"


def _tx(factory: sessionmaker[Session], fn: Callable[..., Any], *args: Any) -> Any:
    with write_transaction(factory) as session:
        return fn(session, *args)


def _drop_unused(
    session: Session, shop_id: int, rows: list[tuple[int, str, str, int]], now: datetime
) -> list[tuple[int, str, str, int]]:
    enabled = flow_events.enabled_triggers(session, shop_id)  # the rescore queues by the same rule
    unused = [r[0] for r in rows if r[1] not in enabled]
    repo.set_flow_event_status(
        session, shop_id, unused, "dropped", now, "no enabled workflow uses this trigger"
    )
    return [r for r in rows if r[1] in enabled]


def _record(
    session: Session,
    shop_id: int,
    batch: list[tuple[int, str, str, int]],
    answers: dict[int, list[dict[str, Any]] | None],
    now: datetime,
) -> int:
    sent = []
    for event_id, _, _, attempts in batch:
        errors = answers.get(event_id)
        if errors is None:
            sent.append(event_id)
            continue
        message = "; ".join(str(e.get("message")) for e in errors) or "no answer"
        repo.refuse_flow_event(
            session,
            shop_id,
            event_id,
            f"Shopify refused the Flow trigger: {message}",
            attempts + 1 >= MAX_ATTEMPTS,
        )
    repo.set_flow_event_status(session, shop_id, sent, "sent", now)
    return len(sent)


async def send_flow_triggers(
    factory: sessionmaker[Session],
    admin: AdminClient,
    shop_id: int,
    domain: str,
    token: str,
    now: Clock,
    *,
    started: float,
    budget_s: float,
    document_fields: int = DOCUMENT_FIELDS,
) -> bool:
    """Send the shop's pending triggers, oldest first. False when the step's time ran out first
    (the rest go in the next step)."""
    after = 0
    while True:
        rows = _tx(factory, repo.pending_flow_events, shop_id, after, PAGE)
        if not rows:
            return True
        after = rows[-1][0]
        rows = _tx(factory, _drop_unused, shop_id, rows, now())
        for start in range(0, len(rows), document_fields):
            batch = rows[start : start + document_fields]
            variables: dict[str, Any] = {}
            for i, (_, handle, payload, _) in enumerate(batch):
                variables[f"h{i}"] = handle
                variables[f"p{i}"] = json.loads(payload)
            answers: dict[int, list[dict[str, Any]] | None] = {}
            try:
                result = await admin.execute(
                    domain,
                    token,
                    document(len(batch)),
                    variables,
                    expected_cost=float(MUTATION_COST * len(batch)),
                    raise_user_errors=False,
                )
            except GraphQLError as exc:  # the whole document refused (not a transport failure)
                for event_id, *_ in batch:
                    answers[event_id] = [{"message": str(exc)}]
            else:
                for i, (event_id, *_) in enumerate(batch):
                    payload_out = result.data.get(f"t{i}")
                    errors = (payload_out or {}).get("userErrors") if payload_out is not None else [{}]
                    answers[event_id] = list(errors) if errors else None
            _tx(factory, _record, shop_id, batch, answers, now())
            if time.monotonic() - started > budget_s:
                return False
