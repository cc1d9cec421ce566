"""The demo command, headless and bounded: history imported from the Shopify double, customers
scored, results written back into the double, pages answering, and no token or email in any log
line of the whole run."""

from __future__ import annotations

import logging
import re
from dataclasses import replace
from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.config import Settings
from app.demo.run import DEMO_SHOP
from app.kit.observability import JsonFormatter
from app.models import Customer, FlowTriggerEvent
from app.sync.desired import (
    METAFIELD_TYPES,
    OPTIONAL_METAFIELDS,
    CustomerValues,
    TagPrefixes,
    desired_state,
    metafields_expected,
)
from tests.demo.conftest import headless_demo

pytestmark = pytest.mark.both_dbs

SECRETS = re.compile(
    r"shp(?:at|ua|ca|pa|ss|rt)_[A-Za-z0-9]+|eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+|[\w.+-]+@example\.com"
)


def test_demo_runs_the_whole_product_headless(
    settings: Settings, session: Session, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    demo = headless_demo(settings, customers=250, seed=3, duration=2.0)
    result = demo.run()

    assert result.errors == []
    assert result.import_state == "done"
    assert result.orders_imported > 0
    assert result.customers_scored > 0
    assert result.page_status == 200
    assert result.streamed_orders > 0
    assert result.metafields_in_store > 0
    assert result.tagged_customers > 0
    # the progress bar's goal is what the sync's one list of metafields writes: once the orders
    # stop and the sync has caught up, Shopify holds exactly that
    assert result.metafields_in_store == result.metafields_expected
    per_customer = len(METAFIELD_TYPES) - len(OPTIONAL_METAFIELDS)
    assert result.metafields_expected >= result.customers_scored * per_customer
    # live orders moved customers between segments and stages: Flow received each trigger once
    session.rollback()
    sent = session.scalar(select(func.count()).where(FlowTriggerEvent.status == "sent"))
    assert sum(result.flow_triggers_fired.values()) == sent > 0
    assert "Flow triggers fired" in demo.out.getvalue()  # type: ignore[attr-defined]

    # what the app holds equals the double's final orders (imported history + streamed webhooks)
    expected: dict[int, tuple[int, Decimal]] = {}
    for order in demo.store.shop(DEMO_SHOP).orders.values():
        if (
            order.customer_id is not None
            and not order.test
            and order.cancelled_at is None
            and order.financial_status not in ("REFUNDED", "VOIDED")
        ):
            n, total = expected.get(order.customer_id, (0, Decimal(0)))
            expected[order.customer_id] = (n + 1, total + order.current_total_price)
    session.rollback()
    stored = {
        c.customer_id: (c.orders_count, c.total_spent)
        for c in session.scalars(select(Customer).where(Customer.orders_count > 0))
    }
    assert stored == expected

    formatter = JsonFormatter()
    leaks = [formatter.format(r) for r in caplog.records if SECRETS.search(r.getMessage())]
    assert leaks == []


def test_metafields_expected_counts_what_desired_state_writes() -> None:
    dated = CustomerValues(
        5, 4, 3, "Champions", "active", Decimal("10"), Decimal("20"), 0.1, date(2026, 1, 2), None
    )
    undated = replace(dated, expected_next_order_at=None)
    written = [len(desired_state(v, TagPrefixes()).metafields) for v in (dated, dated, undated)]
    assert metafields_expected(3, 2) == sum(written)
    assert written[0] == len(METAFIELD_TYPES)
