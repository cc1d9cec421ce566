"""A valid body for every topic the app handles (the documented shapes, see
tests/data/shopify_payloads), for the bad-input tests to spoil one field at a time."""

from __future__ import annotations

import copy
from typing import Any

from tests.fixtures.factories import order_payload, refund_payload

SHOP = "target-shop.myshopify.com"
SHOP_SHOPIFY_ID = 61001
OTHER = "other-shop.myshopify.com"
OTHER_SHOPIFY_ID = 61002

ORDER_ID = 5001  # stored for SHOP before each test
CUSTOMER_ID = 601
MERGED_CUSTOMER_ID = 603

ORDER_TOPICS = ("orders/create", "orders/updated", "orders/paid", "orders/cancelled")
# Both bodies are the Shop resource (tests/data/shopify_payloads: the two documented examples are
# the same object), so neither body can be told from the other's.
SHOP_RESOURCE_TOPICS = ("app/uninstalled", "shop/update")


def order(shop: str = SHOP) -> dict[str, Any]:
    return order_payload(ORDER_ID, CUSTOMER_ID, updated_at="2026-02-01T00:00:00Z")


def _shop_id(shop: str) -> int:
    return SHOP_SHOPIFY_ID if shop == SHOP else OTHER_SHOPIFY_ID


BODIES: dict[str, Any] = {
    "order": order,
    "orders/delete": lambda shop=SHOP: {"id": ORDER_ID},
    "orders/edited": lambda shop=SHOP: {
        "order_edit": {
            "id": 78912328793123780,
            "created_at": "2026-02-02T00:00:00-05:00",
            "committed_at": "2026-02-02T00:00:00-05:00",
            "order_id": ORDER_ID,
            "line_items": {"additions": [], "removals": []},
        }
    },
    "refunds/create": lambda shop=SHOP: refund_payload(7001, ORDER_ID, "10.00", "2026-02-03T00:00:00Z"),
    "customers/merge": lambda shop=SHOP: {
        "admin_graphql_api_customer_kept_id": f"gid://shopify/Customer/{CUSTOMER_ID}",
        "admin_graphql_api_customer_deleted_id": f"gid://shopify/Customer/{MERGED_CUSTOMER_ID}",
        "admin_graphql_api_job_id": None,
        "status": "completed",
        "errors": [],
    },
    "customers/redact": lambda shop=SHOP: {
        "shop_id": _shop_id(shop),
        "shop_domain": shop,
        "customer": {"id": CUSTOMER_ID, "email": "john@example.com", "phone": "555-625-1199"},
        "orders_to_redact": [ORDER_ID],
    },
    "customers/data_request": lambda shop=SHOP: {
        "shop_id": _shop_id(shop),
        "shop_domain": shop,
        "customer": {"id": CUSTOMER_ID, "email": "john@example.com", "phone": "555-625-1199"},
        "orders_requested": [ORDER_ID],
        "data_request": {"id": 9999},
    },
    "shop/redact": lambda shop=SHOP: {"shop_id": _shop_id(shop), "shop_domain": shop},
    "app/uninstalled": lambda shop=SHOP: {
        "id": _shop_id(shop),
        "name": "Super Toys",
        "domain": "supertoys.example",
        "myshopify_domain": shop,
        "created_at": "2020-01-01T00:00:00-05:00",
        "currency": "USD",
        "iana_timezone": "America/New_York",
        "plan_name": "enterprise",
    },
    "app/scopes_update": lambda shop=SHOP: {
        "id": 1,
        "shop_id": f"gid://shopify/Shop/{_shop_id(shop)}",
        "previous": ["read_orders"],
        "current": ["read_orders", "read_customers"],
        "updated_at": "2026-02-01T00:00:00.000Z",
    },
    "bulk_operations/finish": lambda shop=SHOP: {
        "admin_graphql_api_id": "gid://shopify/BulkOperation/147595010",
        "completed_at": "2026-02-01T07:34:56-05:00",
        "created_at": "2026-02-01T07:30:00-05:00",
        "error_code": None,
        "status": "completed",
        "type": "query",
    },
}


def kind_of(topic: str) -> str:
    if topic in SHOP_RESOURCE_TOPICS:
        return "app/uninstalled"
    return "order" if topic in ORDER_TOPICS else topic


def body(topic: str, shop: str = SHOP) -> Any:
    return BODIES[kind_of(topic)](shop)


def spoil(value: Any, path: tuple[str | int, ...], new: Any) -> Any:
    """A copy of `value` with the field at `path` set to `new` (or removed, for `DROP`)."""
    value = copy.deepcopy(value)
    target = value
    for key in path[:-1]:
        target = target[key]
    if new is DROP:
        del target[path[-1]]
    else:
        target[path[-1]] = new
    return value


DROP = object()
