"""One handler per topic: parse (pure, may raise PayloadError) and then apply (in a transaction)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from app.models import Shop
from app.orders import service as orders
from app.orders.schemas import (
    OrderFacts,
    PayloadError,
    parse_order,
    parse_order_edit,
    parse_order_id,
    parse_refund,
    shopify_id,
)
from app.shops import service as shops
from app.shops.repository import ShopRef

Apply = Callable[[Session, ShopRef, datetime], object]


@dataclass(frozen=True)
class Topic:
    parse: Callable[[Any], Apply]
    # compliance and uninstall deliveries still arrive after the app was removed
    accepts_uninstalled: bool = False
    # shop/redact may name a shop already erased: answer 200 so Shopify stops asking
    accepts_unknown_shop: bool = False


def _orm(session: Session, ref: ShopRef) -> Shop:
    shop = session.get(Shop, ref.shop_id)
    assert shop is not None  # the row was read in this same transaction
    return shop


@dataclass(frozen=True)
class OrderDelivery:
    """orders/create, /updated, /paid, /cancelled. Carries its facts so that the webhook endpoint
    can hand them to the one-round-trip path on PostgreSQL (`orders.ingest_order`)."""

    facts: OrderFacts

    def __call__(self, session: Session, shop: ShopRef, now: datetime) -> object:
        return orders.apply_order(session, shop.shop_id, self.facts, now)


def _order(payload: Any) -> Apply:
    return OrderDelivery(parse_order(payload))


def _order_delete(payload: Any) -> Apply:
    order_id = parse_order_id(payload)
    return lambda s, shop, now: orders.delete_order(s, shop.shop_id, order_id, now)


def _order_edit(payload: Any) -> Apply:
    edit = parse_order_edit(payload)
    return lambda s, shop, now: orders.flag_order_edit(s, shop.shop_id, edit)


def _refund(payload: Any) -> Apply:
    refund = parse_refund(payload)
    return lambda s, shop, now: orders.apply_refund(s, shop.shop_id, refund, now)


def _customer_ref(payload: Any, key: str) -> int:
    value = payload.get(key)
    if not isinstance(value, str):
        raise PayloadError(key, "is missing")
    return shopify_id({"admin_graphql_api_id": value, "id": None}, key, "Customer")


def _customers_merge(payload: Any) -> Apply:
    _require_object(payload)
    kept = _customer_ref(payload, "admin_graphql_api_customer_kept_id")
    gone = _customer_ref(payload, "admin_graphql_api_customer_deleted_id")
    if payload.get("status") not in ("completed", None):
        return lambda s, shop, now: orders.Outcome.unknown
    return lambda s, shop, now: orders.merge_customers(s, shop.shop_id, kept, gone, now)


def _id_list(payload: dict[str, Any], key: str) -> list[int]:
    value = payload.get(key) or []
    if not isinstance(value, list) or not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        raise PayloadError(key, "must be a list of order ids")
    return list(value)


def _customer_id(payload: dict[str, Any]) -> int:
    customer = payload.get("customer")
    if not isinstance(customer, dict):
        raise PayloadError("customer", "must be an object with the customer's id")
    return shopify_id(customer, "customer.id", "Customer")


def _require_object(payload: Any) -> dict[str, Any]:
    if not isinstance(payload, dict):
        raise PayloadError("body", "must be a JSON object")
    return payload


def _customers_redact(payload: Any) -> Apply:
    payload = _require_object(payload)
    customer_id = _customer_id(payload)
    order_ids = _id_list(payload, "orders_to_redact")
    return lambda s, shop, now: shops.redact_customer(s, shop.shop_id, customer_id, order_ids, now)


def _customers_data_request(payload: Any) -> Apply:
    payload = _require_object(payload)
    customer_id = _customer_id(payload)
    order_ids = _id_list(payload, "orders_requested")
    request = payload.get("data_request")
    if not isinstance(request, dict) or not isinstance(request.get("id"), int):
        raise PayloadError("data_request.id", "is missing")
    request_id = request["id"]
    return lambda s, shop, now: shops.record_data_request(
        s, shop.shop_id, request_id, customer_id, order_ids, now
    )


def _shop_redact(payload: Any) -> Apply:
    _require_object(payload)
    return lambda s, shop, now: shops.redact_shop(s, shop.shop_id)


def _app_uninstalled(payload: Any) -> Apply:
    _require_object(payload)
    return lambda s, shop, now: shops.mark_uninstalled(s, _orm(s, shop), now)


def _app_scopes_update(payload: Any) -> Apply:
    current = _require_object(payload).get("current")
    if not isinstance(current, list) or not all(isinstance(s, str) for s in current):
        raise PayloadError("current", "must be the list of granted scopes")
    return lambda s, shop, now: shops.record_scopes(_orm(s, shop), current)


def _bulk_operation_finish(payload: Any) -> Apply:
    from app.imports.service import record_bulk_finished

    body = _require_object(payload)
    gid, status = body.get("admin_graphql_api_id"), body.get("status")
    if not isinstance(gid, str) or not gid.startswith("gid://shopify/BulkOperation/"):
        raise PayloadError("admin_graphql_api_id", "must be a BulkOperation GID")
    if not isinstance(status, str):
        raise PayloadError("status", "is missing")
    return lambda s, shop, now: record_bulk_finished(s, shop.shop_id, gid, status, now)


TOPICS: dict[str, Topic] = {
    "orders/create": Topic(_order),
    "orders/updated": Topic(_order),
    "orders/paid": Topic(_order),
    "orders/cancelled": Topic(_order),
    "orders/edited": Topic(_order_edit),
    "orders/delete": Topic(_order_delete),
    "refunds/create": Topic(_refund),
    "customers/merge": Topic(_customers_merge),
    "app/uninstalled": Topic(_app_uninstalled, accepts_uninstalled=True),
    "app/scopes_update": Topic(_app_scopes_update),
    "bulk_operations/finish": Topic(_bulk_operation_finish),
    "customers/data_request": Topic(
        _customers_data_request, accepts_uninstalled=True, accepts_unknown_shop=True
    ),
    "customers/redact": Topic(_customers_redact, accepts_uninstalled=True, accepts_unknown_shop=True),
    "shop/redact": Topic(_shop_redact, accepts_uninstalled=True, accepts_unknown_shop=True),
}
