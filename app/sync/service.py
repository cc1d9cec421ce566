"""The sync's rules on the database side (PRODUCT §6): which shops and customers are due, the tag
prefixes in force and the former ones still to migrate, recording what Shopify accepted or
refused, and the status the admin page shows. Services take the session first and never commit."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from sqlalchemy.orm import Session

from app.jobs import repository as jobs_repo
from app.models import ShopPushState
from app.scoring.settings import get_settings, settings_updated_at
from app.sync import repository as repo
from app.sync.desired import TagPrefixes
from app.sync.plan import Plan

SYNC: Final = "sync"
"""The job kind (``app.sync.jobs``)."""
REDACT_KEY: Final = "redact:{customer_id}"


@dataclass(frozen=True, slots=True)
class RunContext:
    """What one sync run works with, read (and settled) at its start."""

    shop_id: int
    domain: str
    enabled: bool
    prefixes: TagPrefixes
    former: tuple[str, ...]
    generation: int
    bulk_phase: str | None
    bulk_operation_id: str | None


@dataclass(frozen=True, slots=True)
class SyncStatus:
    """For the admin page's status section (PRODUCT §7)."""

    enabled: bool
    last_sync_at: datetime | None
    last_written: int
    customers_pending: int
    customers_refused: int
    errors: list[str]
    """In plain words, newest first: the shop-wide problem first, then refused customers."""
    bulk_running: bool


# -- enqueueing -----------------------------------------------------------------------------------


def enqueue_sync(session: Session, shop_id: int, now: datetime) -> None:
    """Ask the worker to push what changed to Shopify (coalesces with a pending request)."""
    jobs_repo.enqueue(session, shop_id, SYNC, now)


def enqueue_due_syncs(session: Session, now: datetime) -> list[int]:
    """Level-triggered: shops whose scores were rescored or settings saved since the sync last
    looked (or with a bulk mutation in flight), installed, with a token, and no sync queued."""
    due = []
    for shop_id in repo.shops_due(session):
        if not jobs_repo.active(session, shop_id, SYNC):
            enqueue_sync(session, shop_id, now)
            due.append(shop_id)
    return due


def forget_customer(session: Session, shop_id: int, customer_id: int, now: datetime) -> None:
    """customers/redact: drop what the app recorded about the customer's Shopify copy and queue the
    removal of the app's metafields and tags from Shopify (a sync job with a payload)."""
    repo.delete_states(session, shop_id, [customer_id])
    shop = repo.shop(session, shop_id)
    if shop is not None and shop.is_installed:
        jobs_repo.enqueue(
            session,
            shop_id,
            SYNC,
            now,
            key=REDACT_KEY.format(customer_id=customer_id),
            payload={"redact_customer": customer_id},
        )


# -- a run ----------------------------------------------------------------------------------------


def _prefixes_of(push: ShopPushState) -> TagPrefixes:
    return TagPrefixes(push.rfm_prefix, push.stage_prefix, push.clv_prefix)


def begin_run(session: Session, shop_id: int, now: datetime) -> RunContext | None:
    """Settle the shop's push state for a run: a prefix change in settings starts a migration (the
    old prefixes are remembered, every customer is due again); former prefixes are forgotten once
    no customer is left under them. None when the shop is gone or uninstalled."""
    shop = repo.shop(session, shop_id)
    if shop is None or not shop.is_installed:
        return None
    settings = get_settings(session, shop_id)
    prefixes = TagPrefixes(settings.rfm_tag_prefix, settings.stage_tag_prefix, settings.clv_tag_prefix)
    push = repo.push_state(session, shop_id, lock=True)
    if push is None:
        push = ShopPushState(
            shop_id=shop_id,
            rfm_prefix=prefixes.rfm,
            stage_prefix=prefixes.stage,
            clv_prefix=prefixes.clv,
            prefix_generation=0,
            former_prefixes="[]",
            last_written=0,
            updated_at=now,
        )
        session.add(push)
    former = list(json.loads(push.former_prefixes))
    if _prefixes_of(push) != prefixes:
        current = {p.lower() for p in prefixes.all()}
        for old in _prefixes_of(push).all():
            if old.lower() not in current and old not in former:
                former.append(old)
        former = [p for p in former if p.lower() not in current]
        push.rfm_prefix, push.stage_prefix, push.clv_prefix = prefixes.rfm, prefixes.stage, prefixes.clv
        push.prefix_generation += 1
    push.former_prefixes = json.dumps(former)
    push.updated_at = now
    session.flush()
    return RunContext(
        shop_id,
        shop.domain,
        settings.sync_enabled,
        prefixes,
        tuple(former),
        push.prefix_generation,
        push.bulk_phase,
        push.bulk_operation_id,
    )


def mark_seen(
    session: Session, shop_id: int, scores_at: datetime | None, settings_at: datetime | None
) -> None:
    """What the run looked at, read before it read the customers: a rescore that commits later
    moves ``rescored_at`` past it and the schedule queues another run."""
    push = repo.push_state(session, shop_id)
    if push is not None:
        push.scores_seen_at, push.settings_seen_at = scores_at, settings_at


def watermarks(session: Session, shop_id: int) -> tuple[datetime | None, datetime | None]:
    return repo.rescored_at(session, shop_id), settings_updated_at(session, shop_id)


def finish_run(session: Session, ctx: RunContext, now: datetime, written: int, error: str | None) -> None:
    push = repo.push_state(session, ctx.shop_id)
    if push is None:
        return
    push.last_sync_at = now
    push.last_written = written
    push.last_error = error
    push.updated_at = now
    if push.former_prefixes != "[]" and repo.count_due(session, ctx.shop_id, push.prefix_generation) == 0:
        push.former_prefixes = "[]"  # every customer carries the new prefixes now


def record_shop_error(session: Session, shop_id: int, error: str, now: datetime) -> None:
    push = repo.push_state(session, shop_id)
    if push is not None:
        push.last_error, push.updated_at = error, now


def set_bulk(session: Session, shop_id: int, phase: str | None, operation_id: str | None) -> None:
    push = repo.push_state(session, shop_id)
    if push is not None:
        push.bulk_phase, push.bulk_operation_id = phase, operation_id


def record_plans(session: Session, shop_id: int, plans: Iterable[Plan], now: datetime) -> int:
    """Store what Shopify accepted for each plan; a refused part keeps the customer due (with the
    refusal in plain words) until it was refused ``MAX_ATTEMPTS`` times with the same values.
    Returns how many customers are now fully in step."""
    rows = []
    gone = []
    complete = 0
    for plan in plans:
        metafields, digests, tags = plan.outcome()
        if plan.complete:
            complete += 1
            if plan.score_hash is None:
                gone.append(plan.customer_id)
                continue
            rows.append(
                repo.state_row(
                    shop_id,
                    plan.customer_id,
                    now,
                    synced_hash=plan.score_hash,
                    generation=plan.generation,
                    metafields=metafields,
                    digests=digests,
                    tags=tags,
                )
            )
            continue
        same = plan.written.error_hash == _error_key(plan)
        rows.append(
            repo.state_row(
                shop_id,
                plan.customer_id,
                now,
                synced_hash=plan.written.synced_hash,
                generation=plan.written.prefix_generation,
                metafields=metafields,
                digests=digests,
                tags=tags,
                error="; ".join(dict.fromkeys(plan.errors)) or "Shopify did not confirm every change",
                error_hash=_error_key(plan),
                error_attempts=(plan.written.error_attempts + 1) if same else 1,
            )
        )
    repo.delete_states(session, shop_id, gone)
    repo.save_states(session, rows)
    return complete


def _error_key(plan: Plan) -> int:
    return plan.score_hash if plan.score_hash is not None else 0


# -- status ---------------------------------------------------------------------------------------

ERRORS_SHOWN: Final = 5


def sync_status(session: Session, shop_id: int) -> SyncStatus:
    """Last sync time, customers still to write, and errors in plain words (for the status page)."""
    settings = get_settings(session, shop_id)
    push = repo.push_state(session, shop_id)
    generation = push.prefix_generation if push is not None else 0
    errors: list[str] = []
    if push is not None and push.last_error:
        errors.append(push.last_error)
    refused = repo.count_refused(session, shop_id)
    for customer_id, error, _ in repo.refusals(session, shop_id, ERRORS_SHOWN):
        errors.append(f"Customer {customer_id}: {error}")
    if refused > ERRORS_SHOWN:
        errors.append(f"… and {refused - ERRORS_SHOWN} more customers Shopify refused")
    return SyncStatus(
        enabled=settings.sync_enabled,
        last_sync_at=push.last_sync_at if push is not None else None,
        last_written=push.last_written if push is not None else 0,
        customers_pending=repo.count_due(session, shop_id, generation),
        customers_refused=refused,
        errors=errors,
        bulk_running=push is not None and push.bulk_operation_id is not None,
    )


__all__ = [
    "REDACT_KEY",
    "SYNC",
    "RunContext",
    "SyncStatus",
    "begin_run",
    "enqueue_due_syncs",
    "enqueue_sync",
    "forget_customer",
    "record_plans",
    "sync_status",
]
