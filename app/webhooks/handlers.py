"""One handler per topic: parse (pure, may raise PayloadError) and then apply (in a transaction).

Shopify's HMAC covers the body only, not `X-Shopify-Topic` or `X-Shopify-Shop-Domain`
(https://shopify.dev/docs/apps/build/webhooks/subscribe/https): a body Shopify signed for one
topic and shop could be re-sent under other headers. So each body must have its own topic's
documented shape (https://shopify.dev/docs/api/webhooks), a body of another topic is refused, and
the shop fields a body carries must name the shop of the header and the shop we installed."""

from __future__ import annotations

import logging
from collections.abc import Collection
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from app.kit.errors import AppError
from app.models import Shop
from app.orders import service as orders
from app.orders.schemas import (
    PayloadError,
    parse_gid,
    parse_id,
    parse_order,
    parse_order_edit,
    parse_order_id,
    parse_refund,
)
from app.privacy import service as privacy
from app.scoring import service as scoring
from app.shops import service as shops
from app.shops.repository import ShopRef
from app.webhooks.schemas import Apply, OrderDelivery, Topic

log = logging.getLogger(__name__)


class ShopMismatch(AppError):
    """A signed body that names another shop than the header or the installed shop: the body is
    Shopify's, the headers it came with are not what Shopify sent with it."""

    status_code = 403

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        log.warning("webhook body names another shop: %s: %s", field, problem)


def _orm(session: Session, ref: ShopRef) -> Shop:
    shop = session.get(Shop, ref.shop_id)
    assert shop is not None  # the row was read in this same transaction
    return shop


def _require_object(payload: Any) -> dict[str, Any]:
    if not isinstance(payload, dict):
        raise PayloadError("body", "must be a JSON object")
    return payload


def _keys(payload: dict[str, Any], topic: str, required: Collection[str], allowed: Collection[str]) -> None:
    """The body has the keys its topic's body always has, and (for the destructive topics, whose
    bodies are small and fixed) nothing else: a bigger body of another topic is refused."""
    for key in required:
        if key not in payload:
            raise PayloadError(key, f"is missing: not a {topic} body")
    for key in payload:
        if key not in allowed:
            raise PayloadError(str(key)[:60], f"is not part of a {topic} body")


def _shop_domain(payload: dict[str, Any], key: str, domain: str) -> None:
    value = payload.get(key)
    if not isinstance(value, str) or not value:
        raise PayloadError(key, "must be the shop's myshopify.com domain")
    if value.lower() != domain:
        raise ShopMismatch(key, f"{value[:100]!r} is not the shop {domain!r} of X-Shopify-Shop-Domain")


def _for_shop(shopify_shop_id: int, field: str, apply: Apply) -> Apply:
    """`apply`, once the body's Shopify shop id is the installed shop's (when we know it)."""

    def checked(session: Session, shop: ShopRef, now: datetime) -> object:
        stored = _orm(session, shop).shopify_shop_id
        if stored is not None and stored != shopify_shop_id:
            raise ShopMismatch(field, f"{shopify_shop_id} is not the id of the installed shop {shop.domain}")
        return apply(session, shop, now)

    return checked


def _order(payload: Any, domain: str) -> Apply:
    return OrderDelivery(parse_order(payload))


def _order_delete(payload: Any, domain: str) -> Apply:
    # the body is `{"id": …}` and nothing else (https://shopify.dev/docs/api/webhooks)
    _keys(_require_object(payload), "orders/delete", ("id",), ("id",))
    order_id = parse_order_id(payload)
    return lambda s, shop, now: orders.delete_order(s, shop.shop_id, order_id, now)


def _order_edit(payload: Any, domain: str) -> Apply:
    edit = parse_order_edit(payload)
    return lambda s, shop, now: orders.flag_order_edit(s, shop.shop_id, edit)


def _refund(payload: Any, domain: str) -> Apply:
    refund = parse_refund(payload)
    return lambda s, shop, now: orders.apply_refund(s, shop.shop_id, refund, now)


def _customers_merge(payload: Any, domain: str) -> Apply:
    payload = _require_object(payload)
    kept_key, gone_key = "admin_graphql_api_customer_kept_id", "admin_graphql_api_customer_deleted_id"
    kept = parse_gid(payload.get(kept_key), kept_key, "Customer")
    gone = parse_gid(payload.get(gone_key), gone_key, "Customer")
    status = payload.get("status")
    if status is not None and not isinstance(status, str):
        raise PayloadError("status", "must be a string")
    if status not in ("completed", None):
        return lambda s, shop, now: orders.Outcome.unknown
    if kept == gone:
        # merging a customer into itself would delete it
        raise PayloadError(gone_key, "is the kept customer")
    return lambda s, shop, now: orders.merge_customers(s, shop.shop_id, kept, gone, now)


def _id_list(payload: dict[str, Any], key: str) -> list[int]:
    value = payload.get(key)
    if not isinstance(value, list):
        raise PayloadError(key, "must be a list of order ids")
    return [parse_id(v, f"{key}[{i}]") for i, v in enumerate(value)]


def _customer_id(payload: dict[str, Any]) -> int:
    customer = payload.get("customer")
    if not isinstance(customer, dict):
        raise PayloadError("customer", "must be an object with the customer's id")
    return parse_id(customer.get("id"), "customer.id")


# The compliance bodies (https://shopify.dev/docs/apps/build/compliance/privacy-law-compliance).
_SHOP_FIELDS = ("shop_id", "shop_domain")
_CUSTOMERS_REDACT = (*_SHOP_FIELDS, "customer", "orders_to_redact")
_DATA_REQUEST = (*_SHOP_FIELDS, "customer", "orders_requested", "data_request")


def _compliance_shop(payload: dict[str, Any], domain: str) -> int:
    _shop_domain(payload, "shop_domain", domain)
    return parse_id(payload.get("shop_id"), "shop_id")


def _customers_redact(payload: Any, domain: str) -> Apply:
    payload = _require_object(payload)
    # A data request's body is a redaction's plus `data_request`: the extra keys tell them apart.
    _keys(payload, "customers/redact", _CUSTOMERS_REDACT, _CUSTOMERS_REDACT)
    shop_id = _compliance_shop(payload, domain)
    customer_id = _customer_id(payload)
    order_ids = _id_list(payload, "orders_to_redact")
    return _for_shop(
        shop_id,
        "shop_id",
        lambda s, shop, now: privacy.redact_customer(s, shop.shop_id, customer_id, order_ids, now),
    )


def _customers_data_request(payload: Any, domain: str) -> Apply:
    payload = _require_object(payload)
    _keys(payload, "customers/data_request", _DATA_REQUEST, _DATA_REQUEST)
    shop_id = _compliance_shop(payload, domain)
    customer_id = _customer_id(payload)
    order_ids = _id_list(payload, "orders_requested")
    request = payload.get("data_request")
    if not isinstance(request, dict):
        raise PayloadError("data_request", "must be an object with the request's id")
    request_id = parse_id(request.get("id"), "data_request.id")

    def record(session: Session, shop: ShopRef, now: datetime) -> None:
        privacy.record_data_request(session, shop.shop_id, request_id, customer_id, order_ids, now)

    return _for_shop(shop_id, "shop_id", record)


def _shop_redact(payload: Any, domain: str) -> Apply:
    payload = _require_object(payload)
    _keys(payload, "shop/redact", _SHOP_FIELDS, _SHOP_FIELDS)
    shop_id = _compliance_shop(payload, domain)

    def erase(session: Session, shop: ShopRef, now: datetime) -> object:
        if shop.is_installed:
            # Shopify sends shop/redact 48 h after an uninstall, and not at all once the app is
            # installed again: erasing an installed shop would act on a stale or replayed body.
            return "installed"
        privacy.redact_shop(session, shop.shop_id)
        return None

    return _for_shop(shop_id, "shop_id", erase)


def _app_uninstalled(payload: Any, domain: str) -> Apply:
    # The Shop resource (https://shopify.dev/docs/api/admin-rest/latest/resources/shop). Its
    # `domain` is the shop's primary domain, often a custom one, so `myshopify_domain` is compared.
    payload = _require_object(payload)
    _shop_domain(payload, "myshopify_domain", domain)
    shop_id = parse_id(payload.get("id"), "id")
    return _for_shop(shop_id, "id", lambda s, shop, now: shops.mark_uninstalled(s, _orm(s, shop), now))


def _shop_update(payload: Any, domain: str) -> Apply:
    # The Shop resource, as for app/uninstalled; `currency` and `iana_timezone` are what the app
    # keeps (https://shopify.dev/docs/api/webhooks/2026-10?reference=toml#list-of-topics-shop/update).
    payload = _require_object(payload)
    _shop_domain(payload, "myshopify_domain", domain)
    shop_id = parse_id(payload.get("id"), "id")
    currency, zone = payload.get("currency"), payload.get("iana_timezone")
    if not shops.is_currency_code(currency):
        raise PayloadError("currency", "must be the shop's three-letter ISO 4217 currency code")
    if zone is not None and not shops.is_timezone(zone):
        raise PayloadError("iana_timezone", "must be an IANA time zone name (or null)")
    locale = shops.ShopLocale(currency, zone)

    def record(session: Session, shop: ShopRef, now: datetime) -> None:
        if shops.record_locale(_orm(session, shop), locale):
            scoring.timezone_changed(session, shop.shop_id, now)

    return _for_shop(shop_id, "id", record)


def _app_scopes_update(payload: Any, domain: str) -> Apply:
    payload = _require_object(payload)
    shop_id = parse_gid(payload.get("shop_id"), "shop_id", "Shop")
    current = payload.get("current")
    if not isinstance(current, list) or not all(isinstance(s, str) for s in current):
        raise PayloadError("current", "must be the list of granted scopes")
    return _for_shop(shop_id, "shop_id", lambda s, shop, now: shops.record_scopes(_orm(s, shop), current))


def _bulk_operation_finish(payload: Any, domain: str) -> Apply:
    from app.imports.service import record_bulk_finished

    body = _require_object(payload)
    gid, status = body.get("admin_graphql_api_id"), body.get("status")
    parse_gid(gid, "admin_graphql_api_id", "BulkOperation")
    assert isinstance(gid, str)
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
    "shop/update": Topic(_shop_update),
    "bulk_operations/finish": Topic(_bulk_operation_finish),
    "customers/data_request": Topic(
        _customers_data_request, accepts_uninstalled=True, accepts_unknown_shop=True
    ),
    "customers/redact": Topic(_customers_redact, accepts_uninstalled=True, accepts_unknown_shop=True),
    "shop/redact": Topic(_shop_redact, accepts_uninstalled=True, accepts_unknown_shop=True),
}
