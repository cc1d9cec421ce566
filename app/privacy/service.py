"""The privacy obligations of the compliance webhooks: a customer's data on request, and erasure
of a customer or a whole shop (https://shopify.dev/docs/apps/build/compliance/privacy-law-compliance).

Erasing a customer reaches every domain that holds something of theirs (ledger, aggregates,
scores, what the sync wrote to Shopify), so it lives above them rather than in `shops`."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from app.customers import repository as customers_repo
from app.kit.sql import upsert
from app.models import Customer, DataRequest, Order
from app.models.base import table_of
from app.orders import repository as orders_repo
from app.orders import service as orders_service

# The scores lock and the erasure come from the rescore's writer itself, not through scoring.service:
# with this module importing scoring.service, order webhooks measured a p99 of 200-260 ms instead of
# about 5 ms at 500/s in five runs against two (bench/webhook_ingest.py, docs/benchmarks.md). The
# cause is not yet understood; the web process loads scoring.service through the admin pages anyway.
from app.scoring import store as scoring
from app.shops import repository as shops_repo
from app.sync import service as sync


def redact_customer(
    session: Session, shop_id: int, customer_id: int, order_ids: list[int], now: datetime
) -> None:
    """customers/redact: nothing of the customer remains, and their orders cannot come back."""
    ids = sorted(orders_service.lock_customers_and_orders(session, shop_id, [customer_id], order_ids))
    scoring.lock_scores(session, shop_id)  # before the deletes: it can wait for a rescore's writes
    orders_repo.remove(session, shop_id, ids, now)
    customers_repo.remove(session, shop_id, customer_id)
    session.execute(
        delete(DataRequest).where(DataRequest.shop_id == shop_id, DataRequest.customer_id == customer_id)
    )
    scoring.erase_customer(session, shop_id, customer_id)
    sync.forget_customer(session, shop_id, customer_id, now)  # its app metafields and tags leave Shopify


def redact_shop(session: Session, shop_id: int) -> None:
    shops_repo.erase_shop(session, shop_id)


def record_data_request(
    session: Session, shop_id: int, request_id: int, customer_id: int, order_ids: list[int], now: datetime
) -> None:
    row = {
        "shop_id": shop_id,
        "data_request_id": request_id,
        "customer_id": customer_id,
        "orders_requested": ",".join(map(str, order_ids)) or None,
        "received_at": now,
    }
    session.execute(upsert(session, table_of(DataRequest), keys=("shop_id", "data_request_id")), row)


def customer_data_export(session: Session, domain: str, customer_id: int) -> dict[str, object] | None:
    """Everything the app holds about one customer, for the store owner (customers/data_request)."""
    shop = shops_repo.get_by_domain(session, domain)
    if shop is None:
        return None
    aggregates = session.get(Customer, (shop.shop_id, customer_id))
    orders = session.scalars(
        select(Order)
        .where(Order.shop_id == shop.shop_id, Order.customer_id == customer_id)
        .order_by(Order.ordered_at)
    ).all()
    requests = session.scalars(
        select(DataRequest).where(DataRequest.shop_id == shop.shop_id, DataRequest.customer_id == customer_id)
    ).all()
    columns = (
        "order_id",
        "ordered_at",
        "current_total",
        "value",
        "financial_status",
        "cancelled_at",
        "test",
        "total_discounts",
        "discount_codes",
        "source_name",
        "qualifies",
    )
    return {
        "shop": domain,
        "customer_id": customer_id,
        "aggregates": None
        if aggregates is None
        else {c.name: getattr(aggregates, c.key) for c in Customer.__table__.columns if c.name != "shop_id"},
        "orders": [{c: getattr(o, c) for c in columns} for o in orders],
        "data_requests": [{"id": r.data_request_id, "received_at": r.received_at} for r in requests],
    }
