"""The rules that keep the ledger and each buyer's aggregates right, whatever order deliveries
arrive in, however often. Services take the session first and never commit."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from psycopg import AsyncConnection
from sqlalchemy.orm import Session

from app.customers import repository as customers_repo
from app.orders import repository as repo
from app.orders.schemas import (
    OrderEditFacts,
    OrderFacts,
    RefundFacts,
    order_counts,
    refunds_in_shop_money,
)
from app.shops import repository as shops_repo


class Outcome(StrEnum):
    applied = "applied"
    stale = "stale"  # older than (or as old as) the stored state
    deleted = "deleted"  # the order was deleted; late deliveries cannot revive it
    duplicate = "duplicate"
    pending = "pending"  # kept until the order itself arrives
    flagged = "flagged"  # marked for reconciliation
    unknown = "unknown"
    # A guest order (no customer) is kept so that its `updated_at` orders later deliveries, and
    # counts for nothing.
    guest = "guest"


def _derived(row: dict[str, Any], pending_presentment: Any) -> dict[str, Any]:
    pending = refunds_in_shop_money(pending_presentment, row["current_total"], row["presentment_total"])
    counts = order_counts(
        customer_id=row["customer_id"],
        test=row["test"],
        cancelled_at=row["cancelled_at"],
        financial_status=row["financial_status"],
        current_total=row["current_total"],
        pending_refunds=pending,
    )
    return {"pending_refunds": pending, "value": max(row["current_total"] - pending, 0), "qualifies": counts}


def _order_row(shop_id: int | None, facts: OrderFacts) -> dict[str, Any]:
    return {
        "shop_id": shop_id,
        "order_id": facts.order_id,
        "customer_id": facts.customer_id,
        "ordered_at": facts.ordered_at,
        "source_updated_at": facts.updated_at,
        "cancelled_at": facts.cancelled_at,
        "test": facts.test,
        "financial_status": facts.financial_status,
        "current_total": facts.current_total,
        "presentment_total": facts.presentment_total,
        "total_discounts": facts.total_discounts,
        "discount_codes": ",".join(facts.discount_codes) or None,
        "discounted": bool(facts.discount_codes) or facts.total_discounts > 0,
        "source_name": facts.source_name,
        "stale_since": None,
    }


def apply_order(session: Session, shop_id: int, facts: OrderFacts, now: datetime) -> Outcome:
    """orders/create, /updated, /paid, /cancelled: store the newest state and refresh the buyer(s)."""
    repo.lock_orders(session, shop_id, [facts.order_id])
    stored = repo.read_for_delivery(session, shop_id, facts.order_id, facts.updated_at)
    if stored.deleted:
        return Outcome.deleted
    exists = stored.order_id is not None
    if exists and facts.updated_at <= stored.source_updated_at:
        return Outcome.stale
    previous_customer = stored.customer_id if exists else None
    customers_repo.lock_customers(session, shop_id, [facts.customer_id, previous_customer])
    shops_repo.hold_shop(session, shop_id)
    row = _order_row(shop_id, facts)
    if exists and stored.stale_since is not None and stored.stale_since > facts.updated_at:
        row["stale_since"] = stored.stale_since
    row |= _derived(row, stored.pending_refunds_after)
    repo.save(session, row)
    _refresh(session, shop_id, {facts.customer_id, previous_customer}, now)
    return Outcome.applied if facts.customer_id is not None else Outcome.guest


class Ingested(StrEnum):
    """What `ingest_order` can answer besides an `Outcome`."""

    unknown_shop = "unknown shop"
    uninstalled = "uninstalled"
    # refunds newer than the delivery wait to be netted: run `apply_order` instead
    needs_full_rules = "full"


async def ingest_order(
    conn: AsyncConnection[Any], domain: str, facts: OrderFacts, now: datetime, *, touch: bool
) -> Outcome | Ingested:
    """`apply_order` in one round trip on PostgreSQL, for the shop named by `domain` (the webhook
    hot path; `conn` is in autocommit, so the call is its own transaction). The delivery's row is
    derived here, as `apply_order` derives it when no refund is pending; the function
    (`rfm_ingest_order`, app/orders/ingest_order.sql) applies the same rules to the stored state and answers
    `needs_full_rules` for the rare delivery with refunds still to net, having written nothing."""
    row = _order_row(None, facts)
    row |= _derived(row, Decimal(0))
    answer = await repo.ingest_order(conn, domain, row, now, touch=touch)
    try:
        return Outcome(answer)
    except ValueError:
        return Ingested(answer)


def apply_refund(session: Session, shop_id: int, refund: RefundFacts, now: datetime) -> Outcome:
    """refunds/create: a refund newer than the stored order lowers its value at once; the order
    delivery Shopify sends next already nets it, and from then on it is no longer subtracted."""
    repo.lock_orders(session, shop_id, [refund.order_id])
    if repo.is_deleted(session, shop_id, refund.order_id):
        return Outcome.deleted
    if not repo.add_refund(
        session, shop_id, refund.refund_id, refund.order_id, refund.presentment_amount, refund.refunded_at
    ):
        return Outcome.duplicate
    existing = repo.get(session, shop_id, refund.order_id)
    if existing is None:
        return Outcome.pending
    if refund.refunded_at <= existing.source_updated_at:
        return Outcome.stale
    customers_repo.lock_customers(session, shop_id, [existing.customer_id])
    shops_repo.hold_shop(session, shop_id)
    row = {c: getattr(existing, c) for c in ("customer_id", "test", "cancelled_at", "financial_status")}
    row |= {"current_total": existing.current_total, "presentment_total": existing.presentment_total}
    derived = _derived(row, repo.refunds_after(session, shop_id, refund.order_id, existing.source_updated_at))
    repo.update_values(session, shop_id, refund.order_id, **derived)
    _refresh(session, shop_id, {existing.customer_id}, now)
    return Outcome.applied


def flag_order_edit(session: Session, shop_id: int, edit: OrderEditFacts) -> Outcome:
    """orders/edited carries no new totals; Shopify follows it with orders/updated. Until that
    arrives, the order is marked for the reconciliation job to refetch."""
    repo.lock_orders(session, shop_id, [edit.order_id])
    existing = repo.get(session, shop_id, edit.order_id)
    if existing is None:
        return Outcome.unknown
    if edit.committed_at <= existing.source_updated_at:
        return Outcome.stale
    if existing.stale_since is None or existing.stale_since < edit.committed_at:
        repo.update_values(session, shop_id, edit.order_id, stale_since=edit.committed_at)
    return Outcome.flagged


def delete_order(session: Session, shop_id: int, order_id: int, now: datetime) -> Outcome:
    repo.lock_orders(session, shop_id, [order_id])
    existing = repo.get(session, shop_id, order_id)
    customer_id = existing.customer_id if existing is not None else None
    customers_repo.lock_customers(session, shop_id, [customer_id])
    shops_repo.hold_shop(session, shop_id)
    repo.remove(session, shop_id, [order_id], now)
    _refresh(session, shop_id, {customer_id}, now)
    return Outcome.applied


def merge_customers(session: Session, shop_id: int, kept_id: int, deleted_id: int, now: datetime) -> Outcome:
    """customers/merge: the deleted customer's orders now belong to the kept one."""
    lock_customers_and_orders(session, shop_id, [kept_id, deleted_id])
    shops_repo.hold_shop(session, shop_id)
    repo.reassign_customer(session, shop_id, deleted_id, kept_id)
    customers_repo.remove(session, shop_id, deleted_id)
    _refresh(session, shop_id, {kept_id}, now)
    return Outcome.applied


def lock_customers_and_orders(
    session: Session, shop_id: int, customer_ids: list[int], order_ids: Iterable[int] = ()
) -> set[int]:
    """Lock the customers, their orders and `order_ids`, orders first as on every path; returns
    the order ids, which stay the customers' until the transaction ends.

    Which orders a customer has is known only by reading, before its lock is held. If a delivery
    gave the customer another order meanwhile, the locks are given back (a savepoint) and taken
    again with it: waiting for an order's lock while holding a customer's could deadlock."""
    wanted = set(order_ids) | repo.order_ids_of_customers(session, shop_id, customer_ids)
    postgres = session.get_bind().dialect.name == "postgresql"
    while True:
        attempt = session.begin_nested() if postgres else None
        repo.lock_orders(session, shop_id, wanted)
        customers_repo.lock_customers(session, shop_id, customer_ids)
        held = repo.order_ids_of_customers(session, shop_id, customer_ids)
        if held <= wanted:
            if attempt is not None:
                attempt.commit()
            return wanted
        if attempt is not None:
            attempt.rollback()
        wanted |= held


def _refresh(session: Session, shop_id: int, customer_ids: set[int | None], now: datetime) -> None:
    # the caller holds the shop (shops_repo.hold_shop): customers has no key to shops
    customers_repo.recompute(session, shop_id, [c for c in customer_ids if c is not None], now)
