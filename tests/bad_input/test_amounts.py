"""Amounts outside the value limits (app/kit/money.py, docs/operations.md "Value limits") are refused
through the real webhook endpoint: a 422 naming the field, nothing written, never a 500."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.testclient import TestClient

from app.models import Customer, Order
from tests.fixtures.factories import create_shop, order_payload, refund_payload, row_counts
from tests.fixtures.webhooks import post_webhook

pytestmark = pytest.mark.both_dbs

SHOP = "amounts-shop.myshopify.com"
LARGEST = "999999999999.9999"
TOTAL_FIELD = "current_total_price_set.shop_money.amount"


@pytest.fixture
def shop(session: Session) -> int:
    return create_shop(session, SHOP).shop_id


def _written(session: Session) -> dict[str, int]:
    counts = row_counts(session)
    return {table: counts[table] for table in ("orders", "customers", "order_refunds", "jobs")}


@pytest.mark.parametrize(
    "amount",
    [
        "1e-999999999",
        "1e999999999",
        "NaN",
        "-0.00",
        "12.34567",
        "0.00001",
        "1000000000000.00",
        "1e12",
        "999999999999999.00",
    ],
)
def test_an_order_amount_outside_the_limits_is_a_422_naming_the_field(
    client: TestClient, session: Session, shop: int, amount: str
) -> None:
    before = _written(session)
    response = post_webhook(client, "orders/create", order_payload(1001, 501, total=amount), SHOP)
    assert response.status_code == 422, response.text
    assert TOTAL_FIELD in response.json()["detail"]
    assert _written(session) == before


def test_an_order_total_as_a_json_number_past_any_float_is_a_422(
    client: TestClient, session: Session, shop: int
) -> None:
    body = json.dumps(order_payload(1001, 501)).encode().replace(b'"100.00"', b"1e999999999")
    response = post_webhook(client, "orders/create", None, SHOP, raw=body)
    assert response.status_code == 422, response.text
    assert TOTAL_FIELD in response.json()["detail"]
    assert row_counts(session)["orders"] == 0


def test_discounts_with_too_many_decimals_are_a_422_naming_them(
    client: TestClient, session: Session, shop: int
) -> None:
    payload = order_payload(1001, 501, total_discounts="1.000001")
    response = post_webhook(client, "orders/create", payload, SHOP)
    assert response.status_code == 422, response.text
    assert "current_total_discounts" in response.json()["detail"]
    assert row_counts(session)["orders"] == 0


def test_the_largest_amount_is_accepted_and_stored_exactly(
    client: TestClient, session: Session, shop: int
) -> None:
    response = post_webhook(client, "orders/create", order_payload(1001, 501, total=LARGEST), SHOP)
    assert response.status_code == 200, response.text
    assert session.scalar(select(Order.current_total)) == Decimal(LARGEST)
    assert session.scalar(select(Customer.total_spent)) == Decimal(LARGEST)


def test_refund_transactions_summing_to_the_limit_are_a_422_and_nothing_is_written(
    client: TestClient, session: Session, shop: int
) -> None:
    assert (
        post_webhook(client, "orders/create", order_payload(1001, 501, total=LARGEST), SHOP).status_code
        == 200
    )
    refund = refund_payload(7001, 1001, "600000000000.00", "2026-01-11T12:00:00Z")
    refund["transactions"] *= 2
    before = _written(session)
    response = post_webhook(client, "refunds/create", refund, SHOP)
    assert response.status_code == 422, response.text
    assert "transactions" in response.json()["detail"]
    assert _written(session) == before


@pytest.mark.parametrize("amount", ["1e-999999999", "-0.00", "1.00001", "1000000000000"])
def test_a_refund_transaction_outside_the_limits_is_a_422_naming_it(
    client: TestClient, session: Session, shop: int, amount: str
) -> None:
    response = post_webhook(
        client, "refunds/create", refund_payload(7001, 1001, amount, "2026-01-11T12:00:00Z"), SHOP
    )
    assert response.status_code == 422, response.text
    assert "transactions[0].amount" in response.json()["detail"]
    assert row_counts(session)["order_refunds"] == 0


def test_refunds_past_an_order_paid_in_a_tiny_presentment_total_net_it_to_zero(
    client: TestClient, session: Session, shop: int
) -> None:
    """Converting at the order's rate (shop total / presentment total) would take the refund past
    Decimal's 28 digits; a refund of the whole presentment total is the whole order."""
    order = order_payload(1001, 501, total=LARGEST, presentment_total="0.0001")
    assert post_webhook(client, "orders/create", order, SHOP).status_code == 200
    for refund_id in (7001, 7002):
        refund = refund_payload(refund_id, 1001, "900000000000.00", f"2026-01-1{refund_id - 7000}T12:00:00Z")
        response = post_webhook(client, "refunds/create", refund, SHOP)
        assert response.status_code == 200, response.text
    session.expire_all()
    stored = session.scalars(select(Order)).one()
    assert (stored.value, stored.qualifies) == (Decimal(0), False)
    assert stored.pending_refunds == Decimal(LARGEST)
