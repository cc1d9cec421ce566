"""SQL the embedded page reads: the tables the worker stored, never a computation over the
shop's customers (STYLE: pages read precomputed tables only). Every query filters on shop_id.

The customers list sorts `customer_scores` without an index on the sort columns: such an index
would stop the daily rescore's in-place (HOT) updates, since predicted CLV and churn risk move for
most rows every day. Measured on 200,000 rows (bench DB): rewriting every row's predicted CLV took
1.6 s without an index on it and 3.8 s with one, while the list's top-N sort over a sequential scan
stays within the page budget (bench/pages.py)."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Integer, case, cast, desc, func, literal, select, type_coerce
from sqlalchemy.orm import Session

from app.models import (
    Customer,
    CustomerScore,
    Job,
    Order,
    SegmentChange,
    ShopMetricsSnapshot,
    ShopSegment,
    StageChange,
)
from app.models.base import SumOfMoney
from app.models.job import DONE, FAILED, PENDING, RUNNING
from app.vocabulary import (
    ALL_CUSTOMERS,
    CLV_TIERS,
    SEGMENT_CHANGE_CAUSES,
    STAGE_CHANGE_CAUSES,
    clv_tiers_within,
)

PAGE_SIZE = 50
MAX_OFFSET = 10_000
"""Offset pagination stops here: past 200 pages the merchant narrows the filters or exports CSV."""

SORTS: dict[str, Any] = {
    "predicted_clv": CustomerScore.predicted_clv,
    "historic_clv": CustomerScore.historic_clv,
    "churn_risk": CustomerScore.churn_risk,
    "orders": CustomerScore.frequency,
    "customer_id": CustomerScore.customer_id,
}
NO_CLV_TIER = "other"
"""The customers filter's value for customers in no CLV tier."""


def customer_count(session: Session, shop_id: int) -> int:
    """Buyers with aggregates (at least one ledger row once delivered)."""
    return session.scalar(select(func.count()).select_from(Customer).where(Customer.shop_id == shop_id)) or 0


def qualifying_order_count(session: Session, shop_id: int) -> int:
    stmt = select(func.count()).select_from(Order).where(Order.shop_id == shop_id, Order.qualifies)
    return session.scalar(stmt) or 0


def received_counts(session: Session, shop_id: int) -> tuple[int, int]:
    """(buyers, qualifying orders) the webhooks and the import delivered so far, scored or not yet:
    one pass over the shop's customer aggregates (each keeps its qualifying orders count)."""
    stmt = select(func.count(), func.coalesce(func.sum(Customer.orders_count), 0)).where(
        Customer.shop_id == shop_id
    )
    buyers, orders = session.execute(stmt).one()
    return int(buyers), int(orders)


def metrics_row(session: Session, shop_id: int) -> ShopMetricsSnapshot | None:
    return session.scalar(select(ShopMetricsSnapshot).where(ShopMetricsSnapshot.shop_id == shop_id))


def metrics(session: Session, shop_id: int) -> dict[str, Any] | None:
    """The metrics JSON of the shop's last full rescore, None before it."""
    row = metrics_row(session, shop_id)
    return None if row is None or row.metrics is None else dict(json.loads(row.metrics))


def segments(session: Session, shop_id: int) -> list[ShopSegment]:
    return list(
        session.scalars(
            select(ShopSegment).where(ShopSegment.shop_id == shop_id).order_by(ShopSegment.position)
        )
    )


def stage_movements(
    session: Session, shop_id: int, since: datetime, cause: str = STAGE_CHANGE_CAUSES[0]
) -> list[tuple[str | None, str, int]]:
    """(from stage, to stage, customers) of the stage changes of one cause since ``since`` (None:
    first staging): by default the customers' behaviour; "refit" for a model fit's reclassifications."""
    stmt = (
        select(StageChange.from_stage, StageChange.to_stage, func.count())
        .where(StageChange.shop_id == shop_id, StageChange.changed_at >= since, StageChange.cause == cause)
        .group_by(StageChange.from_stage, StageChange.to_stage)
        .order_by(func.count().desc())
    )
    return [(a, b, int(n)) for a, b, n in session.execute(stmt)]


# -- outcomes ("came back") ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EntryOutcome:
    """One recorded entry into a stage or segment, and the customer's qualifying orders after it:
    ``came_back[k]`` / ``spent[k]`` within ``days[k]`` days of the entry."""

    group: str
    customer_id: int
    entered_at: datetime
    cause: str
    came_back: tuple[bool, ...]
    spent: tuple[Any, ...]


def entry_outcomes(
    session: Session, shop_id: int, kind: str, since: datetime, until: datetime, days: Sequence[int]
) -> list[EntryOutcome]:
    """The entries into a stage (``kind`` "stage") or an RFM segment ("segment") recorded in
    [``since``, ``until``), each with whether the customer placed a qualifying order in the
    ``days`` after it (orders strictly after the entry, up to ``days`` × 24 h) and their value.
    Reclassifications (cause other than behaviour) come with no orders: they are not counted."""
    if kind == "stage":
        changes: Any = StageChange
        group, behaviour = StageChange.to_stage, STAGE_CHANGE_CAUSES[0]
    else:
        changes, group, behaviour = SegmentChange, SegmentChange.to_segment, SEGMENT_CHANGE_CAUSES[0]
    order = Order
    if session.get_bind().dialect.name == "postgresql":
        seconds: Any = func.extract("epoch", order.ordered_at - changes.changed_at)
    else:  # naive UTC text (UTCDateTime): whole seconds
        seconds = cast(func.strftime("%s", order.ordered_at), Integer) - cast(
            func.strftime("%s", changes.changed_at), Integer
        )
    within = [seconds <= d * 86_400 for d in days]
    columns = [
        *(func.max(case((w, 1), else_=0)) for w in within),
        *(type_coerce(func.sum(case((w, order.value), else_=None)), SumOfMoney) for w in within),
    ]
    stmt = (
        select(changes.customer_id, group, changes.changed_at, changes.cause, *columns)
        .outerjoin(
            order,
            (order.shop_id == changes.shop_id)
            & (order.customer_id == changes.customer_id)
            & order.qualifies
            & (order.ordered_at > changes.changed_at)
            & (changes.cause == literal(behaviour)),
        )
        .where(changes.shop_id == shop_id, changes.changed_at >= since, changes.changed_at < until)
        .group_by(changes.id, changes.customer_id, group, changes.changed_at, changes.cause)
        .order_by(changes.changed_at, changes.customer_id)
    )
    n = len(days)
    found = []
    for row in session.execute(stmt):
        sums = row[4 + n : 4 + 2 * n]
        found.append(
            EntryOutcome(
                group=row[1],
                customer_id=int(row[0]),
                entered_at=row[2],
                cause=row[3],
                came_back=tuple(bool(v) for v in row[4 : 4 + n]),
                spent=tuple(sums),
            )
        )
    return found


# -- the customers list -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CustomerFilter:
    segment: str | None = None
    stage: str | None = None
    clv_tier: str | None = None  # one of CLV_TIERS, or NO_CLV_TIER
    sort: str = "predicted_clv"
    descending: bool = True


def _filtered(stmt: Any, shop_id: int, f: CustomerFilter) -> Any:
    stmt = stmt.where(CustomerScore.shop_id == shop_id)
    if f.segment:
        stmt = stmt.where(CustomerScore.segment == f.segment)
    if f.stage:
        stmt = stmt.where(CustomerScore.stage == f.stage)
    if f.clv_tier == NO_CLV_TIER:
        stmt = stmt.where(CustomerScore.clv_tier.is_(None))
    elif f.clv_tier in CLV_TIERS:
        stmt = stmt.where(CustomerScore.clv_tier.in_(clv_tiers_within(f.clv_tier)))
    return stmt


def _ordered(stmt: Any, f: CustomerFilter) -> Any:
    column = SORTS.get(f.sort, CustomerScore.predicted_clv)
    tie = CustomerScore.customer_id
    if f.descending:
        return stmt.order_by(desc(column), desc(tie)) if column is not tie else stmt.order_by(desc(tie))
    return stmt.order_by(column, tie) if column is not tie else stmt.order_by(tie)


LIST_COLUMNS = (
    CustomerScore.customer_id,
    CustomerScore.segment,
    CustomerScore.rfm_code,
    CustomerScore.recency_score,
    CustomerScore.frequency_score,
    CustomerScore.monetary_score,
    CustomerScore.stage,
    CustomerScore.frequency,
    CustomerScore.historic_clv,
    CustomerScore.predicted_clv,
    CustomerScore.predicted_orders,
    CustomerScore.churn_risk,
    CustomerScore.expected_next_order_at,
    CustomerScore.clv_tier,
)


def stored_count(f: CustomerFilter) -> bool:
    """Whether the segments table holds the filter's count (all customers, or one segment)."""
    return f.stage is None and f.clv_tier is None


def customers_page(
    session: Session, shop_id: int, f: CustomerFilter, *, offset: int, limit: int = PAGE_SIZE
) -> tuple[list[dict[str, Any]], int | None]:
    """One page of scored customers, each with its last order date (read for the page's ids only),
    and how many match when the segments table does not say: counted in the same scan (a window
    count), None then only for a page past the end."""
    columns: list[Any] = list(LIST_COLUMNS)
    if not stored_count(f):
        columns.append(func.count().over().label("matching"))
    stmt = _ordered(_filtered(select(*columns), shop_id, f), f).offset(offset).limit(limit)
    rows = [dict(r._mapping) for r in session.execute(stmt)]
    matching = int(rows[0].pop("matching")) if rows and "matching" in rows[0] else None
    for row in rows:
        row.pop("matching", None)
    if rows:
        ids = [r["customer_id"] for r in rows]
        stmt_last = select(Customer.customer_id, Customer.last_order_at).where(
            Customer.shop_id == shop_id, Customer.customer_id.in_(ids)
        )
        last = {customer_id: at for customer_id, at in session.execute(stmt_last)}
        for row in rows:
            row["last_order_at"] = last.get(row["customer_id"])
    return rows, matching


def customers_matching(session: Session, shop_id: int, f: CustomerFilter) -> int:
    """How many customers the filter matches. The segments table the worker writes with the scores
    (same transaction) already holds the count for "all" and for one segment; other filters count."""
    if stored_count(f):
        stored = session.scalar(
            select(ShopSegment.customers).where(
                ShopSegment.shop_id == shop_id, ShopSegment.segment == (f.segment or ALL_CUSTOMERS)
            )
        )
        if stored is not None:
            return int(stored)
    return session.scalar(_filtered(select(func.count()).select_from(CustomerScore), shop_id, f)) or 0


def stream_customers(session: Session, shop_id: int, f: CustomerFilter, batch: int = 2000) -> Iterator[Any]:
    """Every matching customer, in the list's order, read through a server-side cursor in batches
    (never the whole list in memory)."""
    stmt = _ordered(_filtered(select(*LIST_COLUMNS), shop_id, f), f)
    result = session.execute(stmt.execution_options(yield_per=batch))
    yield from result


# -- status -----------------------------------------------------------------------------------


def failed_jobs(session: Session, shop_id: int, limit: int = 5) -> list[Job]:
    """The shop's jobs that failed for good, newest first (their errors are shown in plain words)."""
    stmt = (
        select(Job)
        .where(Job.shop_id == shop_id, Job.state == FAILED)
        .order_by(desc(Job.finished_at), desc(Job.id))
        .limit(limit)
    )
    return list(session.scalars(stmt))


def last_job(session: Session, shop_id: int, kind: str, states: Sequence[str] = (DONE,)) -> Job | None:
    stmt = (
        select(Job)
        .where(Job.shop_id == shop_id, Job.kind == kind, Job.state.in_(list(states)))
        .order_by(desc(Job.finished_at), desc(Job.id))
        .limit(1)
    )
    return session.scalar(stmt)


def active_job(session: Session, shop_id: int, kind: str) -> Job | None:
    return last_job(session, shop_id, kind, (PENDING, RUNNING))
