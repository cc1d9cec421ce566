"""Plain factories for scoring tests: orders through the real ledger service, or in bulk."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from decimal import Decimal
from itertools import count
from typing import Any

from sqlalchemy.orm import Session

from app.customers import repository as customers_repo
from app.models import Order
from app.models.base import table_of
from app.orders.schemas import parse_order
from app.orders.service import apply_order
from app.shops import repository as shops_repo
from tests.fixtures.factories import order_payload

_order_ids = count(1_000_000)


def at(text: str) -> datetime:
    """'2026-06-01' or '2026-06-01T08:00' as an aware UTC datetime (noon when no time is given)."""
    moment = datetime.fromisoformat(text if "T" in text else text + "T12:00")
    return moment.replace(tzinfo=UTC)


def add_order(
    session: Session,
    shop_id: int,
    customer_id: int,
    when: str | datetime,
    total: str = "100.00",
    *,
    order_id: int | None = None,
    discount: bool = False,
    now: datetime | None = None,
    commit: bool = True,
) -> int:
    """One order delivered as orders/create would be (marks the customer to score)."""
    moment = at(when) if isinstance(when, str) else when
    order_id = order_id or next(_order_ids)
    payload = order_payload(
        order_id,
        customer_id,
        total=total,
        processed_at=moment.isoformat(),
        updated_at=moment.isoformat(),
        discount_codes=["SAVE"] if discount else None,
        total_discounts="5.00" if discount else "0.00",
    )
    apply_order(session, shop_id, parse_order(payload), now or moment)
    if commit:
        session.commit()
    return order_id


def bulk_orders(
    session: Session, shop_id: int, rows: Iterable[tuple[int, datetime, float]], now: datetime
) -> None:
    """Many qualifying orders (customer id, time, value) straight into the ledger, then the
    customers' aggregates recomputed by the real function (faster than one delivery each)."""
    records: list[dict[str, Any]] = []
    customers: set[int] = set()
    for customer_id, moment, value in rows:
        money = Decimal(str(round(value, 2)))
        records.append(
            {
                "shop_id": shop_id,
                "order_id": next(_order_ids),
                "customer_id": customer_id,
                "ordered_at": moment,
                "source_updated_at": moment,
                "cancelled_at": None,
                "test": False,
                "financial_status": "paid",
                "current_total": money,
                "presentment_total": money,
                "pending_refunds": Decimal(0),
                "value": money,
                "total_discounts": Decimal(0),
                "discount_codes": None,
                "discounted": False,
                "source_name": "web",
                "qualifies": True,
                "stale_since": None,
            }
        )
        customers.add(customer_id)
    shops_repo.hold_shop(session, shop_id)  # as every writer of the ledger does (tests/fixtures/holds.py)
    if records:
        session.execute(table_of(Order).insert(), records)
    customers_repo.recompute(session, shop_id, customers, now)
    session.commit()
