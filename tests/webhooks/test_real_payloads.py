"""Every real Shopify payload in tests/data/shopify_payloads (see SOURCES.md there) ingests."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.testclient import TestClient

from app.models import Customer, DataRequest, Order, OrderRefund, Shop
from tests.fixtures.factories import create_shop
from tests.fixtures.webhooks import post_webhook

pytestmark = pytest.mark.both_dbs

PAYLOADS = Path(__file__).resolve().parents[1] / "data" / "shopify_payloads"
SHOP = "payload-shop.myshopify.com"
ORDER_TOPICS = ("orders/create", "orders/updated", "orders/paid", "orders/cancelled")


def load(name: str) -> Any:
    """A documented body with its placeholders made real: Shopify's examples name the shop
    `{shop}.myshopify.com` (and the Shop resource's `myshopify_domain` is null), Gadget's
    anonymised exemplars replaced every GID with a URL. A real delivery names its shop and its
    resources, and the webhook endpoint checks both."""
    data = json.loads((PAYLOADS / name).read_text())
    body = data["response"] if name.startswith("gadget_2026-04") else data
    if isinstance(body, dict):
        if body.get("shop_domain") == "{shop}.myshopify.com":
            body["shop_domain"] = SHOP
        if "myshopify_domain" in body and body["myshopify_domain"] is None:
            body["myshopify_domain"] = SHOP
        if name.startswith("gadget_exemplar"):
            resource = "Refund" if "refund" in name else "Order"
            _real_gid(body, resource)
            _real_gid(body.get("customer"), "Customer")
    return body


def _real_gid(obj: Any, resource: str) -> None:
    if isinstance(obj, dict) and obj.get("admin_graphql_api_id") == "https://www.example.com/":
        obj["admin_graphql_api_id"] = f"gid://shopify/{resource}/{obj['id']}"


@pytest.fixture(autouse=True)
def shop(session: Session) -> Shop:
    return create_shop(session, SHOP)


@pytest.fixture
def accept(client: TestClient, session: Session):  # type: ignore[no-untyped-def]
    def send(topic: str, payload: Any) -> str:
        response = post_webhook(client, topic, payload, SHOP)
        assert response.status_code == 200, response.text
        session.rollback()  # a new snapshot: SQLite readers otherwise keep seeing the old one
        return str(response.json()["outcome"])

    return send


def test_shopify_order_example_is_stored_under_its_exact_gid(accept, session: Session) -> None:
    body = load("gadget_2026-04_orders_create.json")
    for topic in ORDER_TOPICS:
        accept(topic, body)
    order = session.scalars(select(Order)).one()
    # the file's "id" was rounded by JavaScript; the GID keeps the exact value
    assert order.order_id == 820982911946154508
    assert order.customer_id == 115310627314723954
    assert order.current_total == Decimal("414.95")
    assert order.qualifies is False  # test order, cancelled and voided


def test_python_api_order_old_shape_counts_by_total_price(accept, session: Session) -> None:
    accept("orders/create", load("python_api_order.json")["order"])
    for order in load("python_api_orders.json")["orders"]:
        accept("orders/updated", order)
    customer = session.scalars(select(Customer)).one()
    assert (customer.customer_id, customer.orders_count, customer.total_spent) == (
        207119551,
        1,
        Decimal("409.94"),
    )


def test_refund_examples_are_kept_until_their_orders_arrive(accept, session: Session) -> None:
    assert accept("refunds/create", load("gadget_2026-04_refunds_create.json")) == "pending"
    assert accept("refunds/create", load("python_api_refund.json")["refund"]) == "pending"
    assert accept("refunds/create", load("gadget_exemplar_2025-04_refund.json")) == "pending"
    refunds = {r.refund_id: r.amount for r in session.scalars(select(OrderRefund))}
    assert refunds[890088186047892319] == Decimal("85.00")
    assert refunds[509562969] == Decimal("209.00")


def test_order_edit_and_delete_examples_are_accepted(accept, session: Session) -> None:
    assert accept("orders/edited", load("gadget_2026-04_orders_edited.json")) == "unknown"
    assert accept("orders/delete", load("gadget_2026-04_orders_delete.json")) == "applied"


def test_anonymised_exemplar_order_names_its_placeholder_amounts(
    client: TestClient, session: Session
) -> None:
    response = post_webhook(client, "orders/create", load("gadget_exemplar_2025-04_order.json"), SHOP)
    assert response.status_code == 422
    assert "example string" in response.json()["detail"]
    assert session.scalars(select(Order)).first() is None


def test_exemplar_order_with_real_values_in_its_placeholders_ingests(accept, session: Session) -> None:
    """The exemplar keeps every key of a real delivery but replaced values with "example string";
    put plausible values back and the real key set must ingest."""

    def fill(value: Any, key: str = "") -> Any:
        if isinstance(value, dict):
            return {k: fill(v, k) for k, v in value.items()}
        if isinstance(value, list):
            return [fill(v, key) for v in value]
        if value == "example string":
            if (
                key in ("amount",)
                or "price" in key
                or "total" in key
                or "discount" in key
                or key == "subtotal_price"
            ):
                return "12.50"
            if key == "financial_status":
                return "paid"
            return "x"
        return value

    accept("orders/create", fill(load("gadget_exemplar_2025-04_order.json")))
    customer = session.scalars(select(Customer)).one()
    assert (customer.customer_id, customer.orders_count, customer.total_spent) == (123, 1, Decimal("12.50"))


def test_failed_customer_merge_changes_nothing(accept) -> None:
    assert accept("customers/merge", load("gadget_2026-04_customers_merge.json")) == "unknown"


def test_compliance_examples_are_answered(accept, session: Session) -> None:
    accept("customers/data_request", load("gadget_2026-04_customers_data_request.json"))
    assert session.scalars(select(DataRequest.customer_id)).all() == [191167]
    accept("customers/redact", load("gadget_2026-04_customers_redact.json"))
    assert session.scalars(select(DataRequest)).first() is None


def test_app_lifecycle_examples_are_answered(accept, session: Session, shop: Shop) -> None:
    accept("app/scopes_update", load("gadget_2026-04_app_scopes_update.json"))
    session.refresh(shop)
    assert shop.scope == "read_products,write_products"
    accept("app/uninstalled", load("gadget_2026-04_app_uninstalled.json"))
    accept("shop/redact", load("gadget_2026-04_shop_redact.json"))
    session.rollback()
    assert session.scalars(select(Shop)).first() is None


def test_documented_shop_update_stores_the_currency_and_keeps_an_unnamed_time_zone(
    accept, session: Session, shop: Shop
) -> None:
    # Shopify's example names no IANA zone (`iana_timezone: null`): the stored one stays.
    shop.currency_code, shop.iana_timezone = "EUR", "Europe/Paris"
    session.commit()
    accept("shop/update", load("gadget_2026-04_shop_update.json"))
    session.refresh(shop)
    assert (shop.currency_code, shop.iana_timezone) == ("USD", "Europe/Paris")


# Each documented body, for its own topic, and the Shopify shop id it carries (if any).
OWN_TOPIC = [
    *[("gadget_2026-04_orders_create.json", t, None) for t in ORDER_TOPICS],
    ("gadget_2026-04_orders_delete.json", "orders/delete", None),
    ("gadget_2026-04_orders_edited.json", "orders/edited", None),
    ("gadget_2026-04_refunds_create.json", "refunds/create", None),
    ("gadget_exemplar_2025-04_refund.json", "refunds/create", None),
    ("python_api_refund.json", "refunds/create", None),
    ("python_api_order.json", "orders/create", None),
    ("gadget_2026-04_customers_merge.json", "customers/merge", None),
    ("gadget_2026-04_customers_data_request.json", "customers/data_request", 954889),
    ("gadget_2026-04_customers_redact.json", "customers/redact", 954889),
    ("gadget_2026-04_shop_redact.json", "shop/redact", 954889),
    ("gadget_2026-04_app_uninstalled.json", "app/uninstalled", 548380009),
    ("gadget_2026-04_shop_update.json", "shop/update", 548380009),
    ("gadget_2026-04_app_scopes_update.json", "app/scopes_update", 548380009),
    ("gadget_2026-04_bulk_operations_finish.json", "bulk_operations/finish", None),
]


@pytest.mark.parametrize("known_shop_id", [False, True], ids=["shop id unknown", "shop id stored"])
@pytest.mark.parametrize("name, topic, shopify_shop_id", OWN_TOPIC)
def test_each_documented_body_is_accepted_for_its_own_topic(
    client: TestClient,
    session: Session,
    shop: Shop,
    name: str,
    topic: str,
    shopify_shop_id: int | None,
    known_shop_id: bool,
) -> None:
    if known_shop_id:
        shop.shopify_shop_id = shopify_shop_id
        session.commit()
    body = load(name)
    body = body.get(name.removeprefix("python_api_").removesuffix(".json"), body)
    response = post_webhook(client, topic, body, SHOP)
    assert response.status_code == 200, response.text
