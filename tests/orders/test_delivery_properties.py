"""Any interleaving, duplication and reordering of a stream of order deliveries leaves each buyer's
aggregates equal to a recomputation from the final order states."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import count
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.testclient import TestClient

from app.models import Customer, Order
from tests.fixtures.factories import create_shop, order_payload, refund_payload
from tests.fixtures.webhooks import post_webhook

pytestmark = pytest.mark.both_dbs

CUSTOMERS = (101, 102, 103)
BASE = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)  # the last order stays in the past: no future dates
_shops = count(1)
_refund_ids = count(1)


@dataclass(frozen=True)
class Version:
    order_id: int
    customer_id: int | None
    processed_at: datetime
    updated_at: datetime
    total: Decimal
    financial_status: str = "paid"
    cancelled: bool = False
    test: bool = False
    discounted: bool = False

    def payload(self) -> dict[str, Any]:
        return order_payload(
            self.order_id,
            self.customer_id,
            total=f"{self.total:.2f}",
            processed_at=self.processed_at.isoformat(),
            updated_at=self.updated_at.isoformat(),
            cancelled_at=self.updated_at.isoformat() if self.cancelled else None,
            financial_status=self.financial_status,
            test=self.test,
            discount_codes=["SAVE"] if self.discounted else None,
        )

    def counts(self) -> bool:
        return (
            self.customer_id is not None
            and not self.test
            and not self.cancelled
            and self.financial_status not in ("refunded", "voided")
        )


money = st.integers(min_value=100, max_value=50_000).map(lambda cents: Decimal(cents) / 100)
steps = st.sampled_from(["update", "cancel", "refund", "full_refund", "move", "void", "test", "discount"])


@st.composite
def histories(draw: st.DrawFn) -> tuple[list[tuple[str, Any]], dict[int, Version | None]]:
    deliveries: list[tuple[str, Any]] = []
    finals: dict[int, Version | None] = {}
    for order_id in range(1, draw(st.integers(1, 4)) + 1):
        placed = BASE + timedelta(days=draw(st.integers(0, 300)))
        version = Version(
            order_id,
            draw(st.sampled_from((*CUSTOMERS, None))),
            placed,
            placed,
            draw(money),
            discounted=draw(st.booleans()),
        )
        deliveries.append(("orders/create", version.payload()))
        for k, step in enumerate(draw(st.lists(steps, max_size=4)), start=1):
            at = placed + timedelta(minutes=10 * k)
            if step == "update":
                version = replace(version, updated_at=at, total=draw(money))
            elif step == "cancel":
                version = replace(version, updated_at=at, cancelled=True)
            elif step in ("refund", "full_refund"):
                amount = (
                    version.total if step == "full_refund" else (version.total / 3).quantize(Decimal("0.01"))
                )
                refunded_at = at - timedelta(seconds=30)
                deliveries.append(
                    (
                        "refunds/create",
                        refund_payload(next(_refund_ids), order_id, f"{amount:.2f}", refunded_at.isoformat()),
                    )
                )
                status = "refunded" if step == "full_refund" else "partially_refunded"
                version = replace(
                    version, updated_at=at, total=version.total - amount, financial_status=status
                )
            elif step == "move":
                version = replace(
                    version, updated_at=at, customer_id=draw(st.sampled_from((*CUSTOMERS, None)))
                )
            elif step == "void":
                version = replace(version, updated_at=at, financial_status="voided")
            elif step == "test":
                version = replace(version, updated_at=at, test=True)
            else:
                version = replace(version, updated_at=at, discounted=not version.discounted)
            deliveries.append(("orders/updated", version.payload()))
        finals[order_id] = version
        if draw(st.integers(0, 5)) == 0:
            deliveries.append(("orders/delete", {"id": order_id}))
            finals[order_id] = None
    duplicates = draw(st.lists(st.sampled_from(deliveries), max_size=6))
    return draw(st.permutations(deliveries + duplicates)), finals


def expected_aggregates(finals: dict[int, Version | None]) -> dict[int, tuple[int, Decimal, int, Any, Any]]:
    per: dict[int, list[Version]] = {}
    for v in finals.values():
        if v is not None and v.counts():
            assert v.customer_id is not None
            per.setdefault(v.customer_id, []).append(v)
    return {
        c: (
            len(vs),
            sum((v.total for v in vs), Decimal(0)),
            sum(v.discounted for v in vs),
            min(v.processed_at for v in vs),
            max(v.processed_at for v in vs),
        )
        for c, vs in per.items()
    }


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(history=histories())
def test_any_delivery_order_gives_the_aggregates_of_the_final_states(
    client: TestClient, session: Session, history: tuple[list[tuple[str, Any]], dict[int, Version | None]]
) -> None:
    deliveries, finals = history
    shop = create_shop(session, f"prop-{next(_shops)}.myshopify.com")
    for topic, payload in deliveries:
        response = post_webhook(client, topic, payload, shop.domain)
        assert response.status_code == 200, response.text
    session.rollback()

    stored = {
        c.customer_id: (
            c.orders_count,
            c.total_spent,
            c.discounted_orders_count,
            c.first_order_at,
            c.last_order_at,
        )
        for c in session.scalars(select(Customer).where(Customer.shop_id == shop.shop_id))
        if c.orders_count > 0
    }
    assert stored == expected_aggregates(finals)
    ledger = set(session.scalars(select(Order.order_id).where(Order.shop_id == shop.shop_id)))
    assert ledger == {oid for oid, v in finals.items() if v is not None}
