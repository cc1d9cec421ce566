"""SQL of the sync: which customers Shopify is behind on, and what was last written there."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, delete, exists, func, or_, select, update
from sqlalchemy.orm import Session

from app.kit.sql import upsert
from app.models import (
    CustomerScore,
    CustomerSyncState,
    FlowTriggerEvent,
    FlowTriggerUsage,
    Job,
    Shop,
    ShopCleanup,
    ShopMetricsSnapshot,
    ShopPushState,
    ShopSettings,
    SyncBulkPart,
    SyncedSegment,
)
from app.models.base import table_of
from app.sync.desired import CustomerValues, removable

scores = table_of(CustomerScore)
states = table_of(CustomerSyncState)
pushes = table_of(ShopPushState)
segments = table_of(SyncedSegment)
cleanups = table_of(ShopCleanup)
parts = table_of(SyncBulkPart)
CLEANUP_ACTIVE = ("queued", "running")
"""States of a clean-up (``app.sync.cleanup``) during which the sync leaves the shop alone."""

MAX_ATTEMPTS = 3
"""A customer Shopify refused this many times with the same values waits until its values change."""


@dataclass(frozen=True, slots=True)
class Written:
    """What Shopify holds for one customer as far as the app knows (its sync state row)."""

    synced_hash: int | None
    prefix_generation: int
    metafields: dict[str, str]
    digests: dict[str, str]
    tags: tuple[str, ...]
    error_hash: int | None
    error_attempts: int

    @staticmethod
    def empty() -> Written:
        return Written(None, -1, {}, {}, (), None, 0)


@dataclass(frozen=True, slots=True)
class Due:
    """One customer Shopify is behind on: its score (None when the score is gone) and its state."""

    customer_id: int
    score_hash: int | None
    values: CustomerValues | None
    written: Written
    known: bool


def _retry_allowed(score_hash: Any) -> Any:
    return or_(
        states.c.error_hash.is_(None),
        states.c.error_hash != score_hash,
        states.c.error_attempts < MAX_ATTEMPTS,
    )


def _score_due(shop_id: int, generation: int) -> Any:
    return and_(
        scores.c.shop_id == shop_id,
        or_(
            states.c.customer_id.is_(None),
            states.c.synced_hash.is_(None),
            states.c.synced_hash != scores.c.synced_hash,
            states.c.prefix_generation != generation,
        ),
        _retry_allowed(scores.c.synced_hash),
    )


def _join() -> Any:
    return scores.outerjoin(
        states, and_(states.c.shop_id == scores.c.shop_id, states.c.customer_id == scores.c.customer_id)
    )


def _gone(shop_id: int) -> Any:
    return and_(
        states.c.shop_id == shop_id,
        ~exists().where(scores.c.shop_id == shop_id, scores.c.customer_id == states.c.customer_id),
        states.c.error_attempts < MAX_ATTEMPTS,
    )


_VALUE_COLUMNS = (
    scores.c.recency_score,
    scores.c.frequency_score,
    scores.c.monetary_score,
    scores.c.segment,
    scores.c.stage,
    scores.c.predicted_clv,
    scores.c.historic_clv,
    scores.c.churn_risk,
    scores.c.expected_next_order_at,
    scores.c.clv_tier,
)
_STATE_COLUMNS = (
    states.c.customer_id.label("state_customer_id"),
    states.c.synced_hash.label("state_hash"),
    states.c.prefix_generation,
    states.c.metafields,
    states.c.digests,
    states.c.tags,
    states.c.error_hash,
    states.c.error_attempts,
)


def _written(row: Any) -> Written:
    if row.state_customer_id is None:
        return Written.empty()
    return Written(
        row.state_hash,
        row.prefix_generation,
        json.loads(row.metafields),
        json.loads(row.digests),
        tuple(json.loads(row.tags)),
        row.error_hash,
        row.error_attempts,
    )


def due_customers(session: Session, shop_id: int, generation: int, after: int, limit: int) -> list[Due]:
    """Up to ``limit`` customers after ``after`` (by id) whose Shopify copy is behind: changed scores,
    tags under former prefixes, and customers whose scores were removed."""
    rows = session.execute(
        select(scores.c.customer_id, scores.c.synced_hash, *_VALUE_COLUMNS, *_STATE_COLUMNS)
        .select_from(_join())
        .where(_score_due(shop_id, generation), scores.c.customer_id > after)
        .order_by(scores.c.customer_id)
        .limit(limit)
    ).all()
    out = [
        Due(
            row.customer_id,
            row.synced_hash,
            CustomerValues(
                recency_score=row.recency_score,
                frequency_score=row.frequency_score,
                monetary_score=row.monetary_score,
                segment=row.segment,
                stage=row.stage,
                predicted_clv=row.predicted_clv,
                historic_clv=row.historic_clv,
                churn_risk=row.churn_risk,
                expected_next_order_at=row.expected_next_order_at,
                clv_tier=row.clv_tier,
            ),
            _written(row),
            row.state_customer_id is not None,
        )
        for row in rows
    ]
    gone = session.execute(
        select(*_STATE_COLUMNS)
        .where(_gone(shop_id), states.c.customer_id > after)
        .order_by(states.c.customer_id)
        .limit(limit)
    ).all()
    out += [Due(row.state_customer_id, None, None, _written(row), True) for row in gone]
    out.sort(key=lambda d: d.customer_id)
    return out[:limit]


def count_due(session: Session, shop_id: int, generation: int) -> int:
    changed = session.scalar(select(func.count()).select_from(_join()).where(_score_due(shop_id, generation)))
    gone = session.scalar(select(func.count()).select_from(states).where(_gone(shop_id)))
    return int(changed or 0) + int(gone or 0)


def count_refused(session: Session, shop_id: int) -> int:
    return int(
        session.scalar(
            select(func.count())
            .select_from(states)
            .where(states.c.shop_id == shop_id, states.c.error.is_not(None))
        )
        or 0
    )


def refusals(session: Session, shop_id: int, limit: int) -> list[tuple[int, str, datetime]]:
    rows = session.execute(
        select(states.c.customer_id, states.c.error, states.c.updated_at)
        .where(states.c.shop_id == shop_id, states.c.error.is_not(None))
        .order_by(states.c.updated_at.desc(), states.c.customer_id)
        .limit(limit)
    ).all()
    return [(int(c), str(e), t) for c, e, t in rows]


# -- writing the state ----------------------------------------------------------------------------


_STATE_UPDATE = (
    "synced_hash",
    "prefix_generation",
    "metafields",
    "digests",
    "tags",
    "inflight",
    "error",
    "error_hash",
    "error_attempts",
    "updated_at",
)


def save_states(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Upsert whole state rows (``state_row`` builds them)."""
    if rows:
        session.execute(
            upsert(session, states, keys=("shop_id", "customer_id"), update=_STATE_UPDATE), list(rows)
        )


def state_row(
    shop_id: int,
    customer_id: int,
    now: datetime,
    *,
    synced_hash: int | None,
    generation: int,
    metafields: dict[str, str],
    digests: dict[str, str],
    tags: Iterable[str],
    error: str | None = None,
    error_hash: int | None = None,
    error_attempts: int = 0,
    inflight: str | None = None,
) -> dict[str, Any]:
    return {
        "shop_id": shop_id,
        "customer_id": customer_id,
        "synced_hash": synced_hash,
        "prefix_generation": generation,
        "metafields": json.dumps(metafields, sort_keys=True, separators=(",", ":")),
        "digests": json.dumps(digests, sort_keys=True, separators=(",", ":")),
        "tags": json.dumps(sorted(tags), separators=(",", ":")),
        "inflight": inflight,
        "error": error,
        "error_hash": error_hash,
        "error_attempts": error_attempts,
        "updated_at": now,
    }


def delete_states(session: Session, shop_id: int, customer_ids: Sequence[int]) -> None:
    if customer_ids:
        session.execute(
            delete(states).where(states.c.shop_id == shop_id, states.c.customer_id.in_(list(customer_ids)))
        )


def recorded_tags(session: Session, shop_id: int, customer_id: int) -> list[str]:
    """The tags the app recorded as written to one customer, with those a running bulk mutation
    may already have added."""
    row = session.execute(
        select(states.c.tags, states.c.inflight).where(
            states.c.shop_id == shop_id, states.c.customer_id == customer_id
        )
    ).first()
    if row is None:
        return []
    tags = set(json.loads(row.tags))
    if row.inflight is not None:
        tags |= set(json.loads(row.inflight).get("add") or [])
    return sorted(tags)


def pending_payload(session: Session, shop_id: int, kind: str, key: str) -> dict[str, Any] | None:
    text = session.scalar(
        select(Job.payload).where(
            Job.shop_id == shop_id, Job.kind == kind, Job.key == key, Job.state == "pending"
        )
    )
    return None if text is None else dict(json.loads(text))


def records_after(session: Session, shop_id: int, after: int, limit: int) -> list[tuple[int, Written]]:
    """Up to ``limit`` customers after ``after`` (by id) the app wrote to and no bulk mutation holds."""
    rows = session.execute(
        select(*_STATE_COLUMNS)
        .where(states.c.shop_id == shop_id, states.c.customer_id > after, states.c.inflight.is_(None))
        .order_by(states.c.customer_id)
        .limit(limit)
    ).all()
    return [(int(row.state_customer_id), _written(row)) for row in rows]


def record_drift(session: Session, shop_id: int, rows: Sequence[dict[str, Any]], now: datetime) -> None:
    """Replace the record of customers whose Shopify copy drifted by what Shopify holds, and make
    them due (``synced_hash`` NULL), refusals forgotten: the merchant asked for a sync."""
    if not rows:
        return
    session.execute(
        update(states)
        .where(states.c.shop_id == shop_id, states.c.customer_id == bindparam("b_customer_id"))
        .values(
            metafields=bindparam("b_metafields"),
            digests=bindparam("b_digests"),
            tags=bindparam("b_tags"),
            synced_hash=None,
            error=None,
            error_hash=None,
            error_attempts=0,
            updated_at=now,
        ),
        [
            {
                "b_customer_id": r["customer_id"],
                "b_metafields": json.dumps(r["metafields"], sort_keys=True, separators=(",", ":")),
                "b_digests": json.dumps(r["digests"], sort_keys=True, separators=(",", ":")),
                "b_tags": json.dumps(sorted(r["tags"]), separators=(",", ":")),
            }
            for r in rows
        ],
    )


def inflight(session: Session, shop_id: int) -> list[tuple[int, str]]:
    """Customers handed to the running bulk mutation, with their plan, by id."""
    rows = session.execute(
        select(states.c.customer_id, states.c.inflight)
        .where(states.c.shop_id == shop_id, states.c.inflight.is_not(None))
        .order_by(states.c.customer_id)
    ).all()
    return [(int(c), str(p)) for c, p in rows]


def set_inflight(session: Session, shop_id: int, plans: dict[int, str], now: datetime) -> None:
    """Record the plan of each customer about to go into a bulk mutation (creating bare state rows
    for customers never written)."""
    if not plans:
        return
    session.execute(
        upsert(session, states, keys=("shop_id", "customer_id"), update=("inflight",)),
        [
            state_row(shop_id, c, now, synced_hash=None, generation=-1, metafields={}, digests={}, tags=())
            | {"inflight": plan}
            for c, plan in plans.items()
        ],
    )


def inflight_after(session: Session, shop_id: int, after: int, limit: int) -> list[tuple[int, str]]:
    """Up to ``limit`` customers after ``after`` (by id) handed to the bulk sync, with their plan."""
    rows = session.execute(
        select(states.c.customer_id, states.c.inflight)
        .where(states.c.shop_id == shop_id, states.c.customer_id > after, states.c.inflight.is_not(None))
        .order_by(states.c.customer_id)
        .limit(limit)
    ).all()
    return [(int(c), str(p)) for c, p in rows]


def inflight_between(session: Session, shop_id: int, first: int, last: int) -> list[tuple[int, str]]:
    """The customers of one bulk part (ids ``first``..``last``) with their plan, by id."""
    rows = session.execute(
        select(states.c.customer_id, states.c.inflight)
        .where(
            states.c.shop_id == shop_id,
            states.c.customer_id.between(first, last),
            states.c.inflight.is_not(None),
        )
        .order_by(states.c.customer_id)
    ).all()
    return [(int(c), str(p)) for c, p in rows]


def clear_inflight(session: Session, shop_id: int) -> None:
    session.execute(
        update(states)
        .where(states.c.shop_id == shop_id, states.c.inflight.is_not(None))
        .values(inflight=None)
    )


# -- the shop's push state, settings and segments -------------------------------------------------


def push_state(session: Session, shop_id: int, *, lock: bool = False) -> ShopPushState | None:
    stmt = select(ShopPushState).where(ShopPushState.shop_id == shop_id)
    if lock:
        stmt = stmt.with_for_update()
    return session.scalar(stmt)


def job_stamp(session: Session, shop_id: int, kinds: Sequence[str]) -> tuple[Any, Any, bool]:
    """(newest job id, newest finish, whether one is pending or running) of the shop's jobs of
    ``kinds`` (the index on shop_id, kind)."""
    jobs = table_of(Job)
    row = session.execute(
        select(
            func.max(jobs.c.id),
            func.max(jobs.c.finished_at),
            func.count().filter(jobs.c.state.in_(("pending", "running"))),
        ).where(jobs.c.shop_id == shop_id, jobs.c.kind.in_(list(kinds)))
    ).one()
    return row[0], row[1], bool(row[2])


def rescored_at(session: Session, shop_id: int) -> datetime | None:
    return session.scalar(
        select(ShopMetricsSnapshot.rescored_at).where(ShopMetricsSnapshot.shop_id == shop_id)
    )


def shop(session: Session, shop_id: int) -> Shop | None:
    return session.get(Shop, shop_id)


def synced_segments(session: Session, shop_id: int) -> list[SyncedSegment]:
    return list(
        session.scalars(
            select(SyncedSegment).where(SyncedSegment.shop_id == shop_id).order_by(SyncedSegment.key)
        )
    )


def save_segment(
    session: Session, shop_id: int, key: str, gid: str, name: str, query: str, now: datetime
) -> None:
    row = {
        "shop_id": shop_id,
        "key": key,
        "segment_gid": gid,
        "name": name,
        "query": query,
        "updated_at": now,
    }
    session.execute(
        upsert(
            session, segments, keys=("shop_id", "key"), update=("segment_gid", "name", "query", "updated_at")
        ),
        row,
    )


def delete_segment(session: Session, shop_id: int, key: str) -> None:
    session.execute(delete(segments).where(segments.c.shop_id == shop_id, segments.c.key == key))


def shops_due(session: Session) -> list[int]:
    """Installed shops with a token whose scores or settings moved since the sync last looked,
    whose segments must go because sync was turned off, or with Flow triggers still to send."""
    enabled = func.coalesce(ShopSettings.sync_enabled, True)
    rows = session.execute(
        select(Shop.shop_id)
        .select_from(Shop)
        .join(ShopMetricsSnapshot, ShopMetricsSnapshot.shop_id == Shop.shop_id)
        .outerjoin(ShopPushState, ShopPushState.shop_id == Shop.shop_id)
        .outerjoin(ShopSettings, ShopSettings.shop_id == Shop.shop_id)
        .where(
            Shop.uninstalled_at.is_(None),
            Shop.access_token_encrypted.is_not(None),
            ~exists().where(cleanups.c.shop_id == Shop.shop_id, cleanups.c.state.in_(CLEANUP_ACTIVE)),
            or_(
                ShopPushState.shop_id.is_(None),
                ShopPushState.bulk_phase.is_not(None),
                and_(enabled, ShopPushState.repair_after.is_not(None)),
                exists().where(
                    FlowTriggerEvent.shop_id == Shop.shop_id, FlowTriggerEvent.status == "pending"
                ),
                and_(
                    enabled,
                    or_(
                        ShopPushState.scores_seen_at.is_(None),
                        ShopPushState.scores_seen_at != ShopMetricsSnapshot.rescored_at,
                    ),
                ),
                and_(
                    ShopSettings.updated_at.is_not(None),
                    or_(
                        ShopPushState.settings_seen_at.is_(None),
                        ShopPushState.settings_seen_at != ShopSettings.updated_at,
                    ),
                ),
            ),
        )
        .order_by(Shop.shop_id)
    ).all()
    return [int(r[0]) for r in rows]


# -- removing what the app wrote (app.sync.cleanup) ------------------------------------------------


@dataclass(frozen=True, slots=True)
class Footprint:
    """What the app recorded as written to one customer in Shopify (a running bulk mutation's
    additions included): the tags it may remove and its metafield keys."""

    customer_id: int
    tags: tuple[str, ...]
    metafield_keys: tuple[str, ...]


def footprints_after(
    session: Session, shop_id: int, after: int, limit: int, prefixes: Sequence[str]
) -> list[Footprint]:
    """Up to ``limit`` customers after ``after`` (by id) the app holds a record of. Tags are those
    ``desired.removable`` allows: recorded as written by the app and in its vocabulary under one of
    ``prefixes``; a merchant's own tags never appear, whatever their first letters."""
    rows = session.execute(
        select(states.c.customer_id, states.c.tags, states.c.metafields, states.c.inflight)
        .where(states.c.shop_id == shop_id, states.c.customer_id > after)
        .order_by(states.c.customer_id)
        .limit(limit)
    ).all()
    return [_footprint(row, prefixes) for row in rows]


def footprints_of(
    session: Session, shop_id: int, customer_ids: Sequence[int], prefixes: Sequence[str]
) -> list[Footprint]:
    """``footprints_after`` for the given customers (those still recorded), by id."""
    ids = sorted(customer_ids)
    out: list[Footprint] = []
    for start in range(0, len(ids), 1000):
        rows = session.execute(
            select(states.c.customer_id, states.c.tags, states.c.metafields, states.c.inflight)
            .where(states.c.shop_id == shop_id, states.c.customer_id.in_(ids[start : start + 1000]))
            .order_by(states.c.customer_id)
        ).all()
        out += [_footprint(row, prefixes) for row in rows]
    return out


def _footprint(row: Any, prefixes: Sequence[str]) -> Footprint:
    customer_id, tags_text, metafields_text, inflight_text = row
    tags = set(json.loads(tags_text))
    keys = set(json.loads(metafields_text))
    if inflight_text is not None:  # what a bulk mutation under way may have written
        plan = json.loads(inflight_text)
        tags |= set(plan.get("add") or [])
        keys |= set(plan.get("set") or {})
    return Footprint(int(customer_id), tuple(removable(tags, tags, prefixes)), tuple(sorted(keys)))


def cleanup(session: Session, shop_id: int, *, lock: bool = False) -> ShopCleanup | None:
    stmt = select(ShopCleanup).where(ShopCleanup.shop_id == shop_id)
    if lock:
        stmt = stmt.with_for_update()
    return session.scalar(stmt)


def cleanup_active(session: Session, shop_id: int) -> bool:
    return bool(
        session.scalar(
            select(exists().where(cleanups.c.shop_id == shop_id, cleanups.c.state.in_(CLEANUP_ACTIVE)))
        )
    )


def sync_job_running(session: Session, shop_id: int) -> bool:
    """Whether a worker is running one of the shop's sync jobs right now."""
    return bool(
        session.scalar(
            select(exists().where(Job.shop_id == shop_id, Job.kind == "sync", Job.state == "running"))
        )
    )


def bulk_operations_in_flight(session: Session, shop_id: int) -> list[str]:
    """The bulk sync's operations Shopify may still be running (its parts started, not recorded)."""
    return [
        str(op)
        for op in session.scalars(
            select(parts.c.operation_id).where(
                parts.c.shop_id == shop_id, parts.c.state == "running", parts.c.operation_id.is_not(None)
            )
        )
    ]


# -- the parts of a bulk sync ---------------------------------------------------------------------


def bulk_parts(session: Session, shop_id: int, phase: str) -> list[SyncBulkPart]:
    return list(
        session.scalars(
            select(SyncBulkPart)
            .where(SyncBulkPart.shop_id == shop_id, SyncBulkPart.phase == phase)
            .order_by(SyncBulkPart.part)
        )
    )


def bulk_part(session: Session, shop_id: int, phase: str, part: int) -> SyncBulkPart | None:
    return session.scalar(
        select(SyncBulkPart).where(
            SyncBulkPart.shop_id == shop_id, SyncBulkPart.phase == phase, SyncBulkPart.part == part
        )
    )


def add_bulk_parts(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        session.execute(parts.insert(), list(rows))


def failed_bulk_parts(session: Session, shop_id: int) -> list[SyncBulkPart]:
    return list(
        session.scalars(
            select(SyncBulkPart)
            .where(SyncBulkPart.shop_id == shop_id, SyncBulkPart.state == "failed")
            .order_by(SyncBulkPart.phase, SyncBulkPart.part)
        )
    )


def bulk_part_counts(session: Session, shop_id: int) -> dict[str, int]:
    """{state: parts} of the shop's bulk sync under way."""
    rows = session.execute(
        select(parts.c.state, func.count()).where(parts.c.shop_id == shop_id).group_by(parts.c.state)
    ).all()
    return {str(s): int(n) for s, n in rows}


def delete_bulk_parts(session: Session, shop_id: int) -> None:
    session.execute(delete(parts).where(parts.c.shop_id == shop_id))


def fold_inflight(session: Session, shop_id: int, now: datetime) -> None:
    """A bulk sync abandoned for a clean-up: what it was asked to write joins each customer's record
    (it may have been written), and the bulk state is cleared."""
    for customer_id, text in inflight(session, shop_id):
        plan = json.loads(text)
        current = session.execute(
            select(states.c.tags, states.c.metafields).where(
                states.c.shop_id == shop_id, states.c.customer_id == customer_id
            )
        ).one()
        tags = set(json.loads(current.tags)) | set(plan.get("add") or [])
        metafields = dict(json.loads(current.metafields)) | dict(plan.get("set") or {})
        session.execute(
            update(states)
            .where(states.c.shop_id == shop_id, states.c.customer_id == customer_id)
            .values(
                tags=json.dumps(sorted(tags), separators=(",", ":")),
                metafields=json.dumps(metafields, sort_keys=True, separators=(",", ":")),
                synced_hash=None,
                inflight=None,
                updated_at=now,
            )
        )
    delete_bulk_parts(session, shop_id)
    push = push_state(session, shop_id)
    if push is not None:
        push.bulk_phase, push.bulk_operation_id = None, None


def record_cleanup_refusals(
    session: Session, shop_id: int, refused: Sequence[tuple[int, bool, bool, str]], now: datetime
) -> None:
    """Customers a clean-up could not finish: (customer, metafields removed, tags removed, why).
    Their record keeps only what Shopify still holds, with the refusal, and they are due again for
    when the sync is turned back on."""
    for customer_id, metafields_gone, tags_gone, error in refused:
        values: dict[str, Any] = {"synced_hash": None, "error": error, "updated_at": now}
        if metafields_gone:
            values |= {"metafields": "{}", "digests": "{}"}
        if tags_gone:
            values["tags"] = "[]"
        session.execute(
            update(states)
            .where(states.c.shop_id == shop_id, states.c.customer_id == customer_id)
            .values(**values)
        )


def count_records_after(session: Session, shop_id: int, after: int) -> int:
    return int(
        session.scalar(
            select(func.count())
            .select_from(states)
            .where(states.c.shop_id == shop_id, states.c.customer_id > after)
        )
        or 0
    )


def forget_written(
    session: Session, shop_id: int, customer_ids: Sequence[int], what: str, now: datetime
) -> None:
    """A clean-up removed ``what`` ("metafields" or "tags") from these customers in Shopify."""
    if not customer_ids:
        return
    values: dict[str, Any] = {"synced_hash": None, "updated_at": now}
    values |= {"metafields": "{}", "digests": "{}"} if what == "metafields" else {"tags": "[]"}
    for start in range(0, len(customer_ids), 1000):
        session.execute(
            update(states)
            .where(
                states.c.shop_id == shop_id,
                states.c.customer_id.in_(list(customer_ids[start : start + 1000])),
            )
            .values(**values)
        )


def note_refusals(session: Session, shop_id: int, refusals: dict[int, str], now: datetime) -> None:
    for customer_id, error in refusals.items():
        session.execute(
            update(states)
            .where(states.c.shop_id == shop_id, states.c.customer_id == customer_id)
            .values(error=error, synced_hash=None, updated_at=now)
        )


# -- Shopify Flow triggers (the outbox rows the rescore queued) -------------------------------------


def pending_flow_events(
    session: Session, shop_id: int, after_id: int, limit: int
) -> list[tuple[int, str, str, int]]:
    """(id, handle, payload JSON, attempts) of the shop's unsent triggers after ``after_id``, oldest
    first."""
    rows = session.execute(
        select(
            FlowTriggerEvent.id, FlowTriggerEvent.handle, FlowTriggerEvent.payload, FlowTriggerEvent.attempts
        )
        .where(
            FlowTriggerEvent.shop_id == shop_id,
            FlowTriggerEvent.status == "pending",
            FlowTriggerEvent.id > after_id,
        )
        .order_by(FlowTriggerEvent.id)
        .limit(limit)
    )
    return [(int(i), str(h), str(p), int(a)) for i, h, p, a in rows]


def set_flow_event_status(
    session: Session, shop_id: int, ids: Sequence[int], status: str, now: datetime, error: str | None = None
) -> None:
    if not ids:
        return
    values: dict[str, Any] = {"status": status, "error": error}
    if status == "sent":
        values["sent_at"] = now
    session.execute(
        update(FlowTriggerEvent)
        .where(FlowTriggerEvent.shop_id == shop_id, FlowTriggerEvent.id.in_(list(ids)))
        .values(**values)
    )


def refuse_flow_event(session: Session, shop_id: int, event_id: int, error: str, give_up: bool) -> None:
    session.execute(
        update(FlowTriggerEvent)
        .where(FlowTriggerEvent.shop_id == shop_id, FlowTriggerEvent.id == event_id)
        .values(
            attempts=FlowTriggerEvent.attempts + 1,
            error=error,
            status="refused" if give_up else "pending",
        )
    )


def flow_event_counts(session: Session, shop_id: int) -> dict[str, int]:
    rows = session.execute(
        select(FlowTriggerEvent.status, func.count())
        .where(FlowTriggerEvent.shop_id == shop_id)
        .group_by(FlowTriggerEvent.status)
    )
    return {str(s): int(n) for s, n in rows}


def save_flow_trigger_usage(
    session: Session, shop_id: int, handle: str, enabled: bool, reported_at: datetime
) -> None:
    """Flow's newer report wins; an older one (delivered late) changes nothing."""
    row = {"shop_id": shop_id, "handle": handle, "enabled": enabled, "reported_at": reported_at}
    session.execute(
        upsert(
            session,
            table_of(FlowTriggerUsage),
            keys=("shop_id", "handle"),
            update=("enabled", "reported_at"),
            only_if_newer="reported_at",
        ),
        row,
    )


def last_flow_refusal(session: Session, shop_id: int) -> str | None:
    return session.scalar(
        select(FlowTriggerEvent.error)
        .where(FlowTriggerEvent.shop_id == shop_id, FlowTriggerEvent.status == "refused")
        .order_by(FlowTriggerEvent.id.desc())
        .limit(1)
    )
