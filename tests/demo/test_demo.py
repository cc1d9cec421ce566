"""The demo command: a seeded history in the Shopify double, sent as signed webhooks through the
real endpoint, ends with the app's aggregates equal to what the double's final orders say."""

from __future__ import annotations

import asyncio
import io
from decimal import Decimal

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.config import Settings
from app.demo.run import DEMO_SHOP, print_summary, send_history
from app.devstore.state import DevStore
from app.models import Customer

pytestmark = pytest.mark.both_dbs


def expected_from_store(store: DevStore) -> dict[int, tuple[int, Decimal]]:
    expected: dict[int, tuple[int, Decimal]] = {}
    for order in store.shop(DEMO_SHOP).orders.values():
        counts = (
            order.customer_id is not None
            and not order.test
            and order.cancelled_at is None
            and order.financial_status not in ("REFUNDED", "VOIDED")
        )
        if counts:
            assert order.customer_id is not None
            n, total = expected.get(order.customer_id, (0, Decimal(0)))
            expected[order.customer_id] = (n + 1, total + order.current_total_price)
    return expected


def test_demo_aggregates_equal_the_doubles_final_orders(settings: Settings, session: Session) -> None:
    store = DevStore()
    out = io.StringIO()
    summary = asyncio.run(send_history(settings, store, customers=150, seed=3, out=out))
    print_summary(summary, out)
    stored = {
        c.customer_id: (c.orders_count, c.total_spent)
        for c in session.scalars(select(Customer).where(Customer.orders_count > 0))
    }
    expected = expected_from_store(store)
    assert stored == expected
    assert summary.customers == len(expected)
    assert "repeat purchase rate" in out.getvalue()
