"""A faithful local double of Shopify's Admin GraphQL API (2026-10), used by tests and the demo.

Typical use::

    store = DevStore()
    store.create_shop("demo.myshopify.com")
    token = store.issue_access_token("demo.myshopify.com", "read_orders,read_customers,write_customers")
    app = create_devstore_app(store)
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://devstore")
    await client.post("/shops/demo.myshopify.com/admin/api/2026-10/graphql.json",
                      json={"query": "{ shop { name } }"}, headers={"X-Shopify-Access-Token": token})
"""

from shopify_double.cost import FakeClock, LeakyBucket
from shopify_double.graphql_api import AdminGraphQL
from shopify_double.schema import API_VERSION, check_document, load_schema
from shopify_double.server import (
    IN_PROCESS_BASE_URL_TEMPLATE,
    create_devstore_app,
    graphql_url,
    shop_base_url,
    shop_from_request,
)
from shopify_double.state import (
    CallRecord,
    Customer,
    DevStore,
    DiscountCode,
    Metafield,
    MetafieldDefinition,
    Order,
    Refund,
    Segment,
    ShopState,
)
from shopify_double.webhooks import (
    Delivery,
    WebhookSender,
    order_delete_payload,
    order_payload,
    shop_payload,
    shop_update,
    sign_webhook,
)

__all__ = [
    "API_VERSION",
    "IN_PROCESS_BASE_URL_TEMPLATE",
    "AdminGraphQL",
    "CallRecord",
    "Customer",
    "Delivery",
    "DevStore",
    "DiscountCode",
    "FakeClock",
    "LeakyBucket",
    "Metafield",
    "MetafieldDefinition",
    "Order",
    "Refund",
    "Segment",
    "ShopState",
    "WebhookSender",
    "check_document",
    "create_devstore_app",
    "graphql_url",
    "load_schema",
    "order_delete_payload",
    "order_payload",
    "shop_base_url",
    "shop_from_request",
    "shop_payload",
    "shop_update",
    "sign_webhook",
]
