"""Each order topic leaves the ledger and the buyer's aggregates right (docs/metrics.md)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.testclient import TestClient

from app.models import Customer, DeletedOrder, Order
from tests.fixtures.factories import create_shop, order_payload, refund_payload
from tests.fixtures.webhooks import post_webhook

pytestmark = pytest.mark.both_dbs

SHOP = "ledger-shop.myshopify.com"
T0 = "2026-01-10T12:00:00-05:00"
T1 = "2026-01-10T13:00:00-05:00"
T2 = "2026-01-10T14:00:00-05:00"


@pytest.fixture(autouse=True)
def shop(session: Session):
    return create_shop(session, SHOP)


def send(client: TestClient, topic: str, payload: object) -> str:
    r = post_webhook(client, topic, payload, SHOP)
    assert r.status_code == 200, r.text
    return str(r.json()["outcome"])


def customer(session: Session, customer_id: int) -> Customer | None:
    session.rollback()
    return session.scalars(select(Customer).where(Customer.customer_id == customer_id)).first()


def test_create_counts_the_order(client: TestClient, session: Session) -> None:
    send(client, "orders/create", order_payload(1, 10, total="40.00"))
    c = customer(session, 10)
    assert c is not None
    assert (c.orders_count, c.total_spent, c.average_order_value) == (1, Decimal("40.00"), Decimal("40.00"))
    assert c.first_order_at == c.last_order_at == datetime(2026, 1, 10, 17, tzinfo=UTC)
    assert c.score_pending is True


def test_aggregates_over_several_orders(client: TestClient, session: Session) -> None:
    send(client, "orders/create", order_payload(1, 10, total="10.00", processed_at="2026-01-01T00:00:00Z"))
    send(
        client,
        "orders/create",
        order_payload(2, 10, total="20.00", processed_at="2026-01-11T00:00:00Z", discount_codes=["X"]),
    )
    send(client, "orders/create", order_payload(3, 10, total="30.01", processed_at="2026-01-31T00:00:00Z"))
    c = customer(session, 10)
    assert c is not None
    assert c.orders_count == 3
    assert c.total_spent == Decimal("60.01")
    assert c.average_order_value == Decimal("20.0033")
    assert c.discounted_orders_count == 1
    assert c.average_days_between_orders == pytest.approx(15.0)


def test_older_update_changes_nothing(client: TestClient, session: Session) -> None:
    send(client, "orders/updated", order_payload(1, 10, total="50.00", updated_at=T2))
    assert send(client, "orders/updated", order_payload(1, 10, total="70.00", updated_at=T1)) == "stale"
    assert customer(session, 10).total_spent == Decimal("50.00")


def test_duplicate_delivery_changes_nothing(client: TestClient, session: Session) -> None:
    send(client, "orders/create", order_payload(1, 10, total="50.00"))
    assert send(client, "orders/create", order_payload(1, 10, total="50.00")) == "stale"
    assert customer(session, 10).orders_count == 1


def test_paid_update_replaces_the_total(client: TestClient, session: Session) -> None:
    send(
        client,
        "orders/create",
        order_payload(1, 10, total="50.00", financial_status="pending", updated_at=T0),
    )
    send(client, "orders/paid", order_payload(1, 10, total="55.00", updated_at=T1))
    assert customer(session, 10).total_spent == Decimal("55.00")


def test_cancel_stops_the_order_counting(client: TestClient, session: Session) -> None:
    send(client, "orders/create", order_payload(1, 10, updated_at=T0))
    send(
        client,
        "orders/cancelled",
        order_payload(1, 10, updated_at=T1, cancelled_at=T1, financial_status="voided"),
    )
    c = customer(session, 10)
    assert c is not None
    assert (c.orders_count, c.total_spent, c.first_order_at) == (0, Decimal(0), None)


@pytest.mark.parametrize("status", ["refunded", "voided"])
def test_refunded_or_voided_status_does_not_count(client: TestClient, session: Session, status: str) -> None:
    send(client, "orders/create", order_payload(1, 10, financial_status=status))
    assert customer(session, 10).orders_count == 0


def test_test_order_does_not_count(client: TestClient, session: Session) -> None:
    send(client, "orders/create", order_payload(1, 10, test=True))
    assert customer(session, 10).orders_count == 0


def test_guest_order_counts_for_nothing(client: TestClient, session: Session) -> None:
    assert send(client, "orders/create", order_payload(1, None)) == "guest"
    assert session.scalars(select(Customer)).first() is None


def test_guest_update_newer_than_a_late_customer_version_wins(client: TestClient, session: Session) -> None:
    send(client, "orders/updated", order_payload(1, None, updated_at=T2))
    assert send(client, "orders/create", order_payload(1, 10, updated_at=T0)) == "stale"
    assert customer(session, 10) is None


def test_partial_refund_lowers_the_value_until_the_order_update_nets_it(
    client: TestClient, session: Session
) -> None:
    send(client, "orders/create", order_payload(1, 10, total="100.00", updated_at=T0))
    send(client, "refunds/create", refund_payload(900, 1, "30.00", T1))
    assert customer(session, 10).total_spent == Decimal("70.00")
    send(
        client,
        "orders/updated",
        order_payload(1, 10, total="70.00", updated_at=T1, financial_status="partially_refunded"),
    )
    assert customer(session, 10).total_spent == Decimal("70.00")


def test_refund_before_its_order_arrives_is_applied_when_it_does(
    client: TestClient, session: Session
) -> None:
    assert send(client, "refunds/create", refund_payload(900, 1, "30.00", T1)) == "pending"
    send(client, "orders/create", order_payload(1, 10, total="100.00", updated_at=T0))
    assert customer(session, 10).total_spent == Decimal("70.00")


def test_repeated_refund_is_subtracted_once(client: TestClient, session: Session) -> None:
    send(client, "orders/create", order_payload(1, 10, total="100.00", updated_at=T0))
    send(client, "refunds/create", refund_payload(900, 1, "30.00", T1))
    assert send(client, "refunds/create", refund_payload(900, 1, "30.00", T1)) == "duplicate"
    assert customer(session, 10).total_spent == Decimal("70.00")


def test_full_refund_stops_the_order_counting(client: TestClient, session: Session) -> None:
    send(client, "orders/create", order_payload(1, 10, total="100.00", updated_at=T0))
    send(client, "refunds/create", refund_payload(900, 1, "100.00", T1))
    assert customer(session, 10).orders_count == 0


def test_refund_in_presentment_currency_is_converted_at_the_orders_rate(
    client: TestClient, session: Session
) -> None:
    send(
        client,
        "orders/create",
        order_payload(1, 10, total="100.00", presentment_total="200.00", updated_at=T0),
    )
    send(client, "refunds/create", refund_payload(900, 1, "50.00", T1))
    assert customer(session, 10).total_spent == Decimal("75.00")


def test_delete_removes_the_row_and_a_late_update_cannot_revive_it(
    client: TestClient, session: Session
) -> None:
    send(client, "orders/create", order_payload(1, 10, updated_at=T0))
    send(client, "orders/delete", {"id": 1})
    assert send(client, "orders/updated", order_payload(1, 10, updated_at=T2)) == "deleted"
    assert session.scalars(select(Order)).first() is None
    assert session.scalars(select(DeletedOrder.order_id)).all() == [1]
    assert customer(session, 10).orders_count == 0


def test_order_moved_to_another_customer_moves_its_aggregate(client: TestClient, session: Session) -> None:
    send(client, "orders/create", order_payload(1, 10, total="40.00", updated_at=T0))
    send(client, "orders/updated", order_payload(1, 11, total="40.00", updated_at=T1))
    assert customer(session, 10).orders_count == 0
    assert customer(session, 11).total_spent == Decimal("40.00")


def test_edit_marks_the_order_for_reconciliation_until_the_update_arrives(
    client: TestClient, session: Session
) -> None:
    send(client, "orders/create", order_payload(1, 10, updated_at=T0))
    edit = {"order_edit": {"id": 5, "order_id": 1, "committed_at": T1, "created_at": T1}}
    assert send(client, "orders/edited", edit) == "flagged"
    order = session.scalars(select(Order)).one()
    assert order.stale_since == datetime(2026, 1, 10, 18, tzinfo=UTC)
    send(client, "orders/updated", order_payload(1, 10, total="80.00", updated_at=T2))
    session.rollback()
    assert session.scalars(select(Order)).one().stale_since is None
    assert customer(session, 10).total_spent == Decimal("80.00")


def test_customers_merge_moves_orders_to_the_kept_customer(client: TestClient, session: Session) -> None:
    send(client, "orders/create", order_payload(1, 10, total="40.00"))
    send(client, "orders/create", order_payload(2, 11, total="60.00"))
    merge = {
        "admin_graphql_api_customer_kept_id": "gid://shopify/Customer/10",
        "admin_graphql_api_customer_deleted_id": "gid://shopify/Customer/11",
        "status": "completed",
        "errors": [],
    }
    send(client, "customers/merge", merge)
    assert customer(session, 11) is None
    kept = customer(session, 10)
    assert kept is not None
    assert (kept.orders_count, kept.total_spent) == (2, Decimal("100.00"))
