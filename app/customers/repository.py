"""SQL for the per-customer aggregates, always derived from the ledger."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import bindparam, delete, text, update
from sqlalchemy.orm import Session

from app.kit.sql import advisory_lock, execute, lock_key
from app.models import Customer, Order, Shop
from app.models.base import UTCDateTime, table_of

customers = table_of(Customer)
orders = table_of(Order)


def lock_customers(session: Session, shop_id: int, customer_ids: Iterable[int | None]) -> None:
    advisory_lock(session, [lock_key("customer", shop_id, c) for c in customer_ids if c is not None])


_UPSERT = """
INSERT INTO customers (shop_id, customer_id, first_order_at, last_order_at, orders_count, total_spent,
                       average_order_value, discounted_orders_count, average_days_between_orders,
                       score_pending, aggregates_updated_at)
{select}
ON CONFLICT (shop_id, customer_id) DO UPDATE SET
    first_order_at = excluded.first_order_at, last_order_at = excluded.last_order_at,
    orders_count = excluded.orders_count, total_spent = excluded.total_spent,
    average_order_value = excluded.average_order_value,
    discounted_orders_count = excluded.discounted_orders_count,
    average_days_between_orders = excluded.average_days_between_orders,
    score_pending = customers.score_pending OR excluded.score_pending,
    aggregates_updated_at = excluded.aggregates_updated_at
"""
# PostgreSQL, a few buyers (the deliveries): a LATERAL index lookup per buyer, so that a cached
# generic plan can never turn into a scan of the shop's ledger (a join's generic plan did).
# `rfm_ingest_order` (app/orders/ingest_order.sql) computes the same per buyer.
_SELECT_FEW_POSTGRESQL = """
SELECT :shop_id, ids.customer_id, a.first_at, a.last_at, a.n, COALESCE(a.total, 0),
       ROUND(a.total / NULLIF(a.n, 0), 4), a.discounted,
       EXTRACT(EPOCH FROM a.last_at - a.first_at) / 86400.0 / NULLIF(a.n - 1, 0), {mark}, :now
FROM unnest(CAST(:ids AS bigint[])) AS ids(customer_id)
CROSS JOIN LATERAL (
    SELECT MIN(o.ordered_at) AS first_at, MAX(o.ordered_at) AS last_at, COUNT(*) AS n,
           SUM(o.value) AS total, COUNT(*) FILTER (WHERE o.discounted) AS discounted
    FROM orders AS o
    WHERE o.shop_id = :shop_id AND o.customer_id = ids.customer_id AND o.qualifies
) AS a
"""
# Many buyers (the import's chunks of thousands; every call on SQLite): one join, where one pass
# over the shop's ledger is the right plan.
_SELECT_JOIN = """
SELECT :shop_id, ids.customer_id, MIN(o.ordered_at), MAX(o.ordered_at), COUNT(o.order_id),
       COALESCE({total}, 0), {aov}, COALESCE(SUM(CASE WHEN o.discounted THEN 1 ELSE 0 END), 0),
       {gap}, {mark}, :now
FROM {ids} AS ids
LEFT JOIN orders AS o ON o.shop_id = :shop_id AND o.customer_id = ids.customer_id AND o.qualifies
WHERE TRUE
GROUP BY ids.customer_id
"""
_SQLITE_EXACT_TOTAL = "(SUM(o.value / 100000000) * 100000000 + SUM(o.value % 100000000))"
_JOIN_PARTS = {
    "postgresql": {
        "ids": "(SELECT unnest(CAST(:ids AS bigint[])) AS customer_id)",
        "total": "SUM(o.value)",
        "aov": "ROUND(SUM(o.value) / NULLIF(COUNT(o.order_id), 0), 4)",
        "gap": "EXTRACT(EPOCH FROM MAX(o.ordered_at) - MIN(o.ordered_at)) / 86400.0"
        " / NULLIF(COUNT(o.order_id) - 1, 0)",
    },
    # SQLite keeps money as integer 1/10,000 units and times as naive UTC text (app.models.base).
    # Its SUM of integers fails past int64 (a thousand orders at the amount limit): summed in two
    # parts that cannot overflow, added up by arithmetic that turns to REAL where SUM would fail.
    "sqlite": {
        "ids": "(SELECT CAST(value AS INTEGER) AS customer_id FROM json_each(:ids))",
        "total": _SQLITE_EXACT_TOTAL,
        "aov": f"CAST(ROUND(CAST({_SQLITE_EXACT_TOTAL} AS REAL) / NULLIF(COUNT(o.order_id), 0)) AS INTEGER)",
        "gap": "(julianday(MAX(o.ordered_at)) - julianday(MIN(o.ordered_at)))"
        " / NULLIF(COUNT(o.order_id) - 1, 0)",
    },
}
_FEW = 32
# What marks a customer to score: every delivery does (a new buyer too: it is few); the import
# marks only the customers that have scores to bring up to date. A customer without scores needs
# no mark: every rescore scores the unscored buyers, and a full one reads every buyer anyway. A
# shop's first scoring after its history import then has no marks to clear (each clear rewrites a
# customers row: seconds for a few hundred thousand buyers).
_MARK_ALWAYS = "TRUE"
_MARK_SCORED = (
    "EXISTS (SELECT 1 FROM customer_scores AS s"
    " WHERE s.shop_id = :shop_id AND s.customer_id = ids.customer_id)"
)
_recompute_statements = {
    (dialect, mark): text(_UPSERT.format(select=select.replace("{mark}", mark))).bindparams(
        bindparam("now", type_=UTCDateTime())
    )
    for dialect, select in (
        ("postgresql_few", _SELECT_FEW_POSTGRESQL),
        ("postgresql", _SELECT_JOIN.format(**_JOIN_PARTS["postgresql"], mark="{mark}")),
        ("sqlite", _SELECT_JOIN.format(**_JOIN_PARTS["sqlite"], mark="{mark}")),
    )
    for mark in (_MARK_ALWAYS, _MARK_SCORED)
}


def recompute(
    session: Session, shop_id: int, customer_ids: Iterable[int], now: datetime, *, mark_unscored: bool = True
) -> None:
    """Rewrite the customers' aggregates from their qualifying ledger rows, in one statement, and
    mark them to score (``mark_unscored`` False: only those with stored scores; a mark is never
    cleared here). A customer left with no qualifying order keeps a row of zeros.

    Callers hold the customers' locks, so two deliveries for one buyer never interleave here,
    and the shop's row (``app.shops.repository.hold_shop``: the table has no foreign key to shops,
    migration 0027)."""
    ids = sorted(set(customer_ids))
    if not ids:
        return
    dialect = session.get_bind().dialect.name
    params = {"shop_id": shop_id, "ids": ids if dialect == "postgresql" else json.dumps(ids), "now": now}
    shape = "postgresql_few" if dialect == "postgresql" and len(ids) <= _FEW else dialect
    execute(session, _recompute_statements[shape, _MARK_ALWAYS if mark_unscored else _MARK_SCORED], params)


def remove(session: Session, shop_id: int, customer_id: int) -> None:
    """Delete the customer's row and count the removal on the shop: a rescore that read the
    customer before this commits drops what it wrote for them (app.scoring.store.lock_scores)."""
    session.execute(
        delete(customers).where(customers.c.shop_id == shop_id, customers.c.customer_id == customer_id)
    )
    session.execute(
        update(Shop).where(Shop.shop_id == shop_id).values(customers_removed=Shop.customers_removed + 1)
    )
