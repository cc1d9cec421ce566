"""SQL the embedded page reads: the tables the worker stored, never a computation over the
shop's customers (STYLE: pages read precomputed tables only). Every query filters on shop_id.

The customers list sorts `customer_scores` without an index on the sort columns: such an index
would stop the daily rescore's in-place (HOT) updates, since predicted CLV and churn risk move for
most rows every day. Measured on 200,000 rows (bench DB): rewriting every row's predicted CLV took
1.6 s without an index on it and 3.8 s with one, while the list's top-N sort over a sequential scan
stays within the page budget (bench/pages.py).

The one aggregation here, the Outcomes page's (``outcome_totals``), runs over the stage or segment
entries of the periods shown and their customers' later orders, not over all customers: 100,000
segment entries in six months with a 100,000-order ledger take about 0.33 s (20,000-customer
bench shop, PostgreSQL)."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Integer, case, cast, desc, func, select, type_coerce
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
    CHURN_RISK_BANDS,
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
    "total_clv": CustomerScore.historic_clv + CustomerScore.predicted_clv,
    "churn_risk": CustomerScore.churn_risk,
    "orders": CustomerScore.frequency,
    "last_order": Customer.last_order_at,
    "next_order": CustomerScore.expected_next_order_at,
    "customer_id": CustomerScore.customer_id,
}
"""Every sort ends on the customer id in the same direction, and puts customers without a value
(no next order expected) last either way: a total order, so offset pages never overlap."""
JOINED_SORTS = frozenset({"last_order"})
"""Sorts on the customer aggregates (``customers``), joined only for them."""
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
class OutcomeTotals:
    """The customers who entered ``group`` in period ``period`` (an index of the boundaries) by
    their behaviour, counted once each from their first entry of the period, and of them
    ``came_back[k]`` placed a qualifying order within ``days[k]`` days, worth ``spent[k]``."""

    group: str
    period: int
    entered: int
    came_back: tuple[int, ...]
    spent: tuple[Any, ...]


def _history(kind: str) -> tuple[Any, Any, str]:
    if kind == "stage":
        return StageChange, StageChange.to_stage, STAGE_CHANGE_CAUSES[0]
    return SegmentChange, SegmentChange.to_segment, SEGMENT_CHANGE_CAUSES[0]


def outcome_totals(
    session: Session,
    shop_id: int,
    kind: str,
    boundaries: Sequence[datetime],
    until: datetime,
    days: Sequence[int],
) -> list[OutcomeTotals]:
    """Per group and period, the entrants into a stage (``kind`` "stage") or an RFM segment
    ("segment") by behaviour, recorded from ``boundaries[0]`` until ``until``; period i runs from
    ``boundaries[i]`` to ``boundaries[i + 1]``. A return is a qualifying order strictly after the
    entry and at most ``days`` × 24 h after it. Aggregated in the database: the page gets a row
    per group and period, not one per entry."""
    changes, group, behaviour = _history(kind)
    period: Any = case(
        *((changes.changed_at < b, i) for i, b in enumerate(boundaries[1:-1])), else_=len(boundaries) - 2
    )
    ranked = (
        select(
            changes.customer_id.label("customer_id"),
            group.label("grp"),
            changes.changed_at.label("entered_at"),
            period.label("period"),
            func.row_number()
            .over(
                partition_by=(changes.customer_id, group, period), order_by=(changes.changed_at, changes.id)
            )
            .label("nth"),
        )
        .where(
            changes.shop_id == shop_id,
            changes.cause == behaviour,
            changes.changed_at >= boundaries[0],
            changes.changed_at < until,
        )
        .subquery()
    )
    order = Order
    if session.get_bind().dialect.name == "postgresql":
        seconds: Any = func.extract("epoch", order.ordered_at - ranked.c.entered_at)
    else:  # naive UTC text (UTCDateTime): whole seconds
        seconds = cast(func.strftime("%s", order.ordered_at), Integer) - cast(
            func.strftime("%s", ranked.c.entered_at), Integer
        )
    within = [seconds <= d * 86_400 for d in days]
    per_entry = (
        select(
            ranked.c.grp,
            ranked.c.period,
            *(func.max(case((w, 1), else_=0)).label(f"back_{k}") for k, w in enumerate(within)),
            *(func.sum(case((w, order.value), else_=None)).label(f"spent_{k}") for k, w in enumerate(within)),
        )
        .select_from(ranked)
        .outerjoin(
            order,
            (order.shop_id == shop_id)
            & (order.customer_id == ranked.c.customer_id)
            & order.qualifies
            & (order.ordered_at > ranked.c.entered_at),
        )
        .where(ranked.c.nth == 1)
        .group_by(ranked.c.customer_id, ranked.c.grp, ranked.c.period, ranked.c.entered_at)
        .subquery()
    )
    n = len(days)
    stmt = select(
        per_entry.c.grp,
        per_entry.c.period,
        func.count(),
        *(func.sum(per_entry.c[f"back_{k}"]) for k in range(n)),
        *(type_coerce(func.sum(per_entry.c[f"spent_{k}"]), SumOfMoney) for k in range(n)),
    ).group_by(per_entry.c.grp, per_entry.c.period)
    return [
        OutcomeTotals(
            group=row[0],
            period=int(row[1]),
            entered=int(row[2]),
            came_back=tuple(int(v or 0) for v in row[3 : 3 + n]),
            spent=tuple(row[3 + n : 3 + 2 * n]),
        )
        for row in session.execute(stmt)
    ]


def reclassified_entries(
    session: Session, shop_id: int, kind: str, since: datetime, until: datetime
) -> dict[str, int]:
    """Entries into each stage or segment by a refit or a settings change (not behaviour)."""
    changes, group, behaviour = _history(kind)
    stmt = (
        select(group, func.count())
        .where(
            changes.shop_id == shop_id,
            changes.cause != behaviour,
            changes.changed_at >= since,
            changes.changed_at < until,
        )
        .group_by(group)
    )
    return {name: int(count) for name, count in session.execute(stmt)}


# -- the customers list -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CustomerFilter:
    segment: str | None = None
    stage: str | None = None
    clv_tier: str | None = None  # one of CLV_TIERS, or NO_CLV_TIER
    sort: str = "predicted_clv"
    descending: bool = True
    r: int | None = None  # the overview grid's row: the R score
    fm: int | None = None  # its column: the FM score, or F + M by the thirds method (``thirds``)
    thirds: bool = False
    frequency_score: int | None = None
    monetary_score: int | None = None
    churn_band: str | None = None  # one of CHURN_RISK_BANDS
    next_days: int | None = None
    next_order_window: tuple[datetime, datetime] | None = None
    """[from, before) of ``expected_next_order_at`` for ``next_days`` (the shop's days, stored as
    UTC midnights: ``scoring.shop_day``)."""
    search: str | None = None
    customer_ids: tuple[int, ...] | None = None
    """The customers Shopify's search returned for ``search`` (None: no search)."""

    def params(self) -> dict[str, str | int | None]:
        """The query parameters that give this list again (links: pages, CSV)."""
        return {
            "q": self.search,
            "segment": self.segment,
            "stage": self.stage,
            "clv": self.clv_tier,
            "r": self.r,
            "fm": self.fm,
            "f": self.frequency_score,
            "m": self.monetary_score,
            "risk": self.churn_band,
            "next_days": self.next_days,
            "sort": self.sort,
            "dir": None if self.descending else "asc",
        }

    @property
    def narrowed(self) -> bool:
        return any(v is not None for k, v in self.params().items() if k not in ("sort", "dir"))


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
    if f.r is not None:
        stmt = stmt.where(CustomerScore.recency_score == f.r)
    if f.fm is not None:
        fm = (
            CustomerScore.frequency_score + CustomerScore.monetary_score
            if f.thirds
            else CustomerScore.fm_score
        )
        stmt = stmt.where(fm == f.fm)
    if f.frequency_score is not None:
        stmt = stmt.where(CustomerScore.frequency_score == f.frequency_score)
    if f.monetary_score is not None:
        stmt = stmt.where(CustomerScore.monetary_score == f.monetary_score)
    if f.churn_band is not None:
        _, low, high = CHURN_RISK_BANDS[f.churn_band]
        stmt = stmt.where(CustomerScore.churn_risk >= low)
        if high < 1.0:
            stmt = stmt.where(CustomerScore.churn_risk < high)
    if f.next_order_window is not None:
        start, before = f.next_order_window
        stmt = stmt.where(
            CustomerScore.expected_next_order_at >= start, CustomerScore.expected_next_order_at < before
        )
    if f.customer_ids is not None:
        stmt = stmt.where(CustomerScore.customer_id.in_(f.customer_ids))
    return stmt


def _joined(stmt: Any, shop_id: int) -> Any:
    return stmt.outerjoin(
        Customer, (Customer.shop_id == shop_id) & (Customer.customer_id == CustomerScore.customer_id)
    )


def _ordered(stmt: Any, f: CustomerFilter) -> Any:
    column = SORTS.get(f.sort, CustomerScore.predicted_clv)
    tie = CustomerScore.customer_id
    if column is tie:
        return stmt.order_by(desc(tie) if f.descending else tie)
    if f.descending:
        return stmt.order_by(desc(column).nulls_last(), desc(tie))
    return stmt.order_by(column.asc().nulls_last(), tie)


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
    others = (
        f.r,
        f.fm,
        f.frequency_score,
        f.monetary_score,
        f.churn_band,
        f.next_order_window,
        f.customer_ids,
    )
    return f.stage is None and f.clv_tier is None and all(v is None for v in others)


def customers_page(
    session: Session, shop_id: int, f: CustomerFilter, *, offset: int, limit: int = PAGE_SIZE
) -> tuple[list[dict[str, Any]], int | None]:
    """One page of scored customers, each with its last order date (read for the page's ids only),
    and how many match when the segments table does not say: counted in the same scan (a window
    count), None then only for a page past the end."""
    columns: list[Any] = list(LIST_COLUMNS)
    if not stored_count(f):
        columns.append(func.count().over().label("matching"))
    stmt = _filtered(select(*columns), shop_id, f)
    if f.sort in JOINED_SORTS:
        stmt = _joined(stmt, shop_id)
    stmt = _ordered(stmt, f).offset(offset).limit(limit)
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
    """Every matching customer, in the list's order, with the first and last order times of its
    aggregates, read through a server-side cursor in batches (never the whole list in memory)."""
    columns = (*LIST_COLUMNS, Customer.first_order_at, Customer.last_order_at)
    stmt = _ordered(_joined(_filtered(select(*columns), shop_id, f), shop_id), f)
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
