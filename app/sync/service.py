"""The sync's rules on the database side: which shops and customers are due, the tag
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
from app.settings.service import get_settings, settings_updated_at
from app.sync import repository as repo
from app.sync.desired import TagPrefixes
from app.sync.flow import MAX_ATTEMPTS as MAX_FLOW_ATTEMPTS
from app.sync.plan import Plan
from app.vocabulary import SEGMENT_NAMES, SEGMENTS_OF_METHOD

SYNC: Final = "sync"
"""The job kind (``app.sync.tasks``)."""
REDACT_KEY: Final = "redact:{customer_id}"
CLEANUP_KIND: Final = "cleanup"
"""The clean-up's job kind (``app.sync.cleanup.CLEANUP``; it imports this module, not the reverse)."""


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
    repair_after: int | None = None
    """Set while a manual sync compares the app's record with what Shopify holds."""
    rfm_segments: tuple[str, ...] = SEGMENT_NAMES
    """The RFM segments of the scoring method in use: one Shopify segment each."""

    @property
    def tag_prefixes(self) -> tuple[str, ...]:
        """Every prefix the app's tags may carry: the current ones and every former one."""
        return (*self.prefixes.all(), *self.former)


@dataclass(frozen=True, slots=True)
class SyncStatus:
    """For the admin page's status section."""

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
    syncing = jobs_repo.shops_with_jobs(session, SYNC)
    due = [s for s in repo.shops_due(session) if s not in syncing]
    for shop_id in due:
        enqueue_sync(session, shop_id, now)
    return due


def request_repair(session: Session, shop_id: int, now: datetime) -> None:
    """ "Sync to Shopify now": the next run first compares what Shopify holds for every customer the
    app wrote to with the app's record, so that app tags or metafields removed in Shopify are
    written again, then syncs as usual."""
    push = repo.push_state(session, shop_id, lock=True)
    if push is not None:
        push.repair_after, push.updated_at = 0, now
    enqueue_sync(session, shop_id, now)


def forget_customer(session: Session, shop_id: int, customer_id: int, now: datetime) -> None:
    """customers/redact: drop what the app recorded about the customer's Shopify copy and queue the
    removal of the app's metafields and tags from Shopify (a sync job with a payload). The job
    carries the tags the app recorded as written, the only ones it may remove."""
    key = REDACT_KEY.format(customer_id=customer_id)
    tags = set(repo.recorded_tags(session, shop_id, customer_id))
    queued = repo.pending_payload(session, shop_id, SYNC, key) or {}
    tags |= set(queued.get("app_tags") or [])  # a redaction still queued keeps its record
    repo.delete_states(session, shop_id, [customer_id])
    shop = repo.shop(session, shop_id)
    if shop is not None and shop.is_installed:
        jobs_repo.enqueue(
            session,
            shop_id,
            SYNC,
            now,
            key=key,
            payload={"redact_customer": customer_id, "app_tags": sorted(tags)},
        )


def app_tag_prefixes(session: Session, shop_id: int) -> tuple[str, ...]:
    """Every prefix the app's tags may carry for the shop: the settings' current ones, the ones the
    sync last applied, and every former one (``desired.removable`` takes them)."""
    settings = get_settings(session, shop_id)
    push = repo.push_state(session, shop_id)
    former = tuple(json.loads(push.former_prefixes)) if push is not None else ()
    current = TagPrefixes(settings.rfm_tag_prefix, settings.stage_tag_prefix, settings.clv_tag_prefix)
    applied = (push.rfm_prefix, push.stage_prefix, push.clv_prefix) if push is not None else ()
    return (*current.all(), *applied, *former)


# -- a run ----------------------------------------------------------------------------------------


def _prefixes_of(push: ShopPushState) -> TagPrefixes:
    return TagPrefixes(push.rfm_prefix, push.stage_prefix, push.clv_prefix)


def begin_run(session: Session, shop_id: int, now: datetime) -> RunContext | None:
    """Settle the shop's push state for a run: a prefix change in settings starts a migration (the
    old prefixes are remembered, every customer is due again). Former prefixes are kept: they only
    bound which recorded tags may be removed (``desired.removable``), and a customer Shopify refused
    may still carry tags under them. None when the shop is gone or uninstalled, or while the
    merchant's "remove everything this app wrote" runs."""
    shop = repo.shop(session, shop_id)
    if shop is None or not shop.is_installed or repo.cleanup_active(session, shop_id):
        return None  # a clean-up under way owns what Shopify holds of the app (app.sync.cleanup)
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
        push.repair_after,
        SEGMENTS_OF_METHOD[settings.scoring_method],
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


def record_drift(
    session: Session,
    shop_id: int,
    held: dict[int, tuple[frozenset[str], dict[str, tuple[str, str]]]],
    records: dict[int, repo.Written],
    after: int | None,
    now: datetime,
) -> int:
    """Compare what Shopify holds (``held``: customer → (tags, {key: (value, digest)}) of the
    customers that still exist there) with the app's record: where an app tag the record names or
    an app metafield differs, the record becomes what Shopify holds (the tags the record names that
    Shopify still has) and the customer is due, so the sync writes exactly the difference. Moves the
    repair cursor to ``after`` (None: done). Returns how many customers drifted."""
    rows = []
    for customer_id, (tags, metafields) in held.items():
        written = records.get(customer_id)
        if written is None:
            continue
        present = {t.lower() for t in tags}
        kept = [t for t in written.tags if t.lower() in present]
        values = {k: v for k, (v, _) in metafields.items()}
        if len(kept) == len(written.tags) and values == written.metafields:
            continue
        rows.append(
            {
                "customer_id": customer_id,
                "metafields": values,
                "digests": {k: d for k, (_, d) in metafields.items() if d},
                "tags": kept,
            }
        )
    repo.record_drift(session, shop_id, rows, now)
    push = repo.push_state(session, shop_id)
    if push is not None:
        push.repair_after = after
    return len(rows)


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


# -- the app's segments in Shopify ---------------------------------------------------------------


def shopify_segment_ids(session: Session, shop_id: int) -> dict[str, tuple[str, str]]:
    """{segment key ("rfm:at-risk", see ``desired.rfm_segment_key``): (the Shopify segment's GID,
    its name in Shopify)} of the segments the sync created and still holds for the shop."""
    return {s.key: (s.segment_gid, s.name) for s in repo.synced_segments(session, shop_id)}


# -- Shopify Flow ---------------------------------------------------------------------------------


def record_trigger_usage(
    session: Session, shop_id: int, handle: str, enabled: bool, reported_at: datetime
) -> None:
    """Flow's trigger lifecycle callback: whether the shop has an enabled workflow starting with
    ``handle``. Rescores queue a trigger only while it is enabled; turned off, its unsent rows are
    dropped by the next sync (https://shopify.dev/docs/apps/build/flow/track-lifecycle-events)."""
    repo.save_flow_trigger_usage(session, shop_id, handle, enabled, reported_at)


def flow_trigger_counts(session: Session, shop_id: int) -> dict[str, int]:
    """How many of the shop's Flow triggers are sent, pending, refused or dropped."""
    return repo.flow_event_counts(session, shop_id)


# -- status ---------------------------------------------------------------------------------------

ERRORS_SHOWN: Final = 5


def customers_pending(session: Session, shop_id: int) -> int:
    """Customers whose Shopify copy is behind (a count over all the shop's scores: see
    `pending_stamp` for when it can have moved)."""
    push = repo.push_state(session, shop_id)
    return repo.count_due(session, shop_id, push.prefix_generation if push is not None else 0)


def pending_stamp(session: Session, shop_id: int) -> tuple[object, ...]:
    """What `customers_pending` depends on, read from a few indexed rows: the scores' last rescore
    (which writes every changed ``synced_hash``), the push state (prefix generation, each run), and
    the shop's sync and clean-up jobs (the only writers of the sync state, customers/redact
    included, which queues one). The last item: whether such a job is pending or running, when the
    count may move without the rest changing."""
    push = repo.push_state(session, shop_id)
    jobs = repo.job_stamp(session, shop_id, (SYNC, CLEANUP_KIND))
    return (
        repo.rescored_at(session, shop_id),
        None if push is None else (push.prefix_generation, push.updated_at, push.last_sync_at),
        jobs[:2],
        jobs[2],
    )


def sync_status(session: Session, shop_id: int, pending: int | None = None) -> SyncStatus:
    """Last sync time, customers still to write (``pending`` when the caller already knows it),
    and errors in plain words (for the status page)."""
    settings = get_settings(session, shop_id)
    push = repo.push_state(session, shop_id)
    generation = push.prefix_generation if push is not None else 0
    errors: list[str] = []
    if push is not None and push.last_error:
        errors.append(push.last_error)
    if push is not None and push.bulk_error:
        errors.append(push.bulk_error)
    refused = repo.count_refused(session, shop_id)
    for customer_id, error, _ in repo.refusals(session, shop_id, ERRORS_SHOWN):
        errors.append(f"Customer {customer_id}: {error}")
    if refused > ERRORS_SHOWN:
        errors.append(f"… and {refused - ERRORS_SHOWN} more customers Shopify refused")
    flow_refused = repo.flow_event_counts(session, shop_id).get("refused", 0)
    if flow_refused:
        plural = "trigger" if flow_refused == 1 else "triggers"
        errors.append(
            f"Shopify Flow refused {flow_refused} {plural} after {MAX_FLOW_ATTEMPTS} tries; the last: "
            f"{repo.last_flow_refusal(session, shop_id)}"
        )
    return SyncStatus(
        enabled=settings.sync_enabled,
        last_sync_at=push.last_sync_at if push is not None else None,
        last_written=push.last_written if push is not None else 0,
        customers_pending=repo.count_due(session, shop_id, generation) if pending is None else pending,
        customers_refused=refused,
        errors=errors,
        bulk_running=push is not None and push.bulk_phase is not None,
    )


__all__ = [
    "REDACT_KEY",
    "SYNC",
    "RunContext",
    "SyncStatus",
    "begin_run",
    "enqueue_due_syncs",
    "enqueue_sync",
    "flow_trigger_counts",
    "forget_customer",
    "record_drift",
    "record_plans",
    "record_trigger_usage",
    "request_repair",
    "shopify_segment_ids",
    "sync_status",
]
