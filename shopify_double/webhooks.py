"""Webhook deliveries the way Shopify makes them, and REST-shape order payloads built from state.

A delivery is an HTTPS ``POST`` of the JSON body with ``X-Shopify-Topic``, ``X-Shopify-Hmac-Sha256``
(base64 HMAC-SHA256 of the raw body bytes, keyed with the app's client secret),
``X-Shopify-Shop-Domain``, ``X-Shopify-API-Version``, ``X-Shopify-Webhook-Id`` (same on every retry),
``X-Shopify-Triggered-At`` (the original trigger time on retries), ``X-Shopify-Event-Id`` and
``Content-Type: application/json``. A non-2xx answer, a timeout (5 s) or a connection error counts as
a failure; Shopify retries 8 times with exponential backoff (over 4 hours; here ``base_delay × 2ⁿ``
with an injectable ``sleep`` so tests do not wait) and always resends the original body.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from shopify_double.schema import API_VERSION
from shopify_double.state import DevStore, Order, ShopState, utcnow

SHOPIFY_RETRIES = 8
DELIVERY_TIMEOUT_S = 5.0


def sign_webhook(body: bytes, secret: str) -> str:
    """The ``X-Shopify-Hmac-Sha256`` value for ``body``: base64 of HMAC-SHA256 keyed with ``secret``."""
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


@dataclass
class DeliveryAttempt:
    number: int  # 1 = first try, 2.. = retries
    status_code: int | None
    error: str | None
    at: datetime


@dataclass
class Delivery:
    webhook_id: str
    event_id: str
    topic: str
    shop_domain: str
    url: str
    body: bytes
    headers: dict[str, str]
    attempts: list[DeliveryAttempt] = field(default_factory=list)
    delivered: bool = False

    @property
    def payload(self) -> Any:
        return json.loads(self.body)


class WebhookSender:
    """Signs and posts webhooks with an ``httpx.AsyncClient`` (ASGI transport or real HTTP)."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        secret: str,
        api_version: str = API_VERSION,
        max_retries: int = SHOPIFY_RETRIES,
        base_delay: float = 1.0,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        now: Callable[[], datetime] = utcnow,
    ) -> None:
        self.client = client
        self.secret = secret
        self.api_version = api_version
        self.max_retries = max_retries
        self.base_delay = base_delay
        self.sleep = sleep
        self.now = now
        self.deliveries: list[Delivery] = []

    def build(
        self,
        url: str,
        topic: str,
        shop_domain: str,
        payload: Any,
        *,
        event_id: str | None = None,
        name: str | None = None,
    ) -> Delivery:
        body = payload if isinstance(payload, bytes) else json.dumps(payload, separators=(",", ":")).encode()
        webhook_id = str(uuid.uuid4())
        event = event_id or str(uuid.uuid4())
        headers = {
            "Content-Type": "application/json",
            "X-Shopify-Topic": topic,
            "X-Shopify-Hmac-Sha256": sign_webhook(body, self.secret),
            "X-Shopify-Shop-Domain": shop_domain,
            "X-Shopify-API-Version": self.api_version,
            "X-Shopify-Webhook-Id": webhook_id,
            "X-Shopify-Triggered-At": self.now().isoformat(timespec="microseconds").replace("+00:00", "Z"),
            "X-Shopify-Event-Id": event,
        }
        if name:
            headers["X-Shopify-Name"] = name
        return Delivery(webhook_id, event, topic, shop_domain, url, body, headers)

    async def deliver(self, delivery: Delivery) -> Delivery:
        """Post ``delivery`` until a 2xx or the retries run out; records every attempt."""
        self.deliveries.append(delivery)
        for number in range(1, self.max_retries + 2):
            status: int | None = None
            error: str | None = None
            try:
                response = await self.client.post(
                    delivery.url, content=delivery.body, headers=delivery.headers, timeout=DELIVERY_TIMEOUT_S
                )
                status = response.status_code
            except httpx.HTTPError as exc:
                error = f"{type(exc).__name__}: {exc}"
            delivery.attempts.append(DeliveryAttempt(number, status, error, self.now()))
            if status is not None and 200 <= status < 300:
                delivery.delivered = True
                return delivery
            if number <= self.max_retries:
                await self.sleep(self.base_delay * 2 ** (number - 1))
        return delivery

    async def send(
        self,
        url: str,
        topic: str,
        shop_domain: str,
        payload: Any,
        *,
        event_id: str | None = None,
        name: str | None = None,
    ) -> Delivery:
        return await self.deliver(self.build(url, topic, shop_domain, payload, event_id=event_id, name=name))


# ---------------------------------------------------------------------------------------------
# REST-shape payloads (https://shopify.dev/docs/api/webhooks?reference=rest)
# ---------------------------------------------------------------------------------------------


def rest_money(amount: Decimal) -> str:
    return str(amount.quantize(Decimal("0.01")))


def _money_set(amount: Decimal, currency: str) -> dict[str, Any]:
    money = {"amount": rest_money(amount), "currency_code": currency}
    return {"shop_money": money, "presentment_money": dict(money)}


def _local(shop: ShopState, ts: datetime | None) -> str | None:
    if ts is None:
        return None
    return ts.astimezone(ZoneInfo(shop.iana_timezone)).isoformat(timespec="seconds")


def order_payload(store: DevStore, shop_domain: str, order: Order) -> dict[str, Any]:
    """The ``orders/create|updated|cancelled`` body for ``order``: ids exact ints, money decimal
    strings, timestamps in the shop's offset."""
    shop = store.shop(shop_domain)
    cur = order.currency_code
    customer = shop.customers.get(order.customer_id) if order.customer_id is not None else None
    current_discounts = Decimal("0") if order.cancelled_at else order.total_discounts
    return {
        "id": order.id,
        "admin_graphql_api_id": order.gid,
        "name": order.name,
        "number": order.number - 1000,
        "order_number": order.number,
        "created_at": _local(shop, order.created_at),
        "updated_at": _local(shop, order.updated_at),
        "processed_at": _local(shop, order.processed_at),
        "cancelled_at": _local(shop, order.cancelled_at),
        "cancel_reason": order.cancel_reason,
        "closed_at": _local(shop, order.closed_at),
        "test": order.test,
        "financial_status": order.financial_status.lower(),
        "currency": cur,
        "presentment_currency": cur,
        "total_price": rest_money(order.total_price),
        "subtotal_price": rest_money(order.total_price),
        "total_discounts": rest_money(order.total_discounts),
        "total_tax": "0.00",
        "current_total_price": rest_money(order.current_total_price),
        "current_subtotal_price": rest_money(order.current_total_price),
        "current_total_discounts": rest_money(current_discounts),
        "current_total_tax": "0.00",
        "total_price_set": _money_set(order.total_price, cur),
        "subtotal_price_set": _money_set(order.total_price, cur),
        "total_discounts_set": _money_set(order.total_discounts, cur),
        "current_total_price_set": _money_set(order.current_total_price, cur),
        "current_subtotal_price_set": _money_set(order.current_total_price, cur),
        "current_total_discounts_set": _money_set(current_discounts, cur),
        "discount_codes": [
            {"code": d.code, "amount": rest_money(d.amount), "type": d.type} for d in order.discount_codes
        ],
        "discount_applications": [],
        "source_name": order.source_name,
        "tags": ", ".join(order.tags),
        "customer": None
        if customer is None
        else {
            "id": customer.id,
            "admin_graphql_api_id": customer.gid,
            "created_at": _local(shop, customer.created_at),
            "updated_at": _local(shop, customer.updated_at),
            "tags": ", ".join(customer.tags),
            "currency": shop.currency_code,
            "state": "enabled",
        },
        "refunds": [
            {
                "id": r.id,
                "admin_graphql_api_id": f"gid://shopify/Refund/{r.id}",
                "order_id": order.id,
                "created_at": _local(shop, r.created_at),
                "processed_at": _local(shop, r.created_at),
                "transactions": [
                    {
                        "id": r.id + 1,
                        "kind": "refund",
                        "amount": rest_money(r.amount),
                        "currency": cur,
                        "status": "success",
                    }
                ],
                "refund_line_items": [],
            }
            for r in order.refunds
        ],
        "line_items": [],
    }


def shop_payload(shop: ShopState) -> dict[str, Any]:
    """The REST Shop resource, the body of ``shop/update`` and ``app/uninstalled``
    (https://shopify.dev/docs/api/admin-rest/latest/resources/shop): the fields the double keeps."""
    return {
        "id": shop.id,
        "name": shop.name,
        "domain": shop.domain,
        "myshopify_domain": shop.domain,
        "currency": shop.currency_code,
        "enabled_presentment_currencies": [shop.currency_code],
        "iana_timezone": shop.iana_timezone,
        "plan_name": shop.plan.lower(),
        "plan_display_name": shop.plan,
        "created_at": None,
        "updated_at": None,
    }


async def shop_update(
    store: DevStore,
    sender: WebhookSender,
    shop_domain: str,
    *,
    currency_code: str | None = None,
    iana_timezone: str | None = None,
    url: str = "/webhooks",
) -> Delivery:
    """The merchant edits the store's currency or time zone; Shopify sends ``shop/update``."""
    shop = store.update_shop(shop_domain, currency_code=currency_code, iana_timezone=iana_timezone)
    return await sender.send(url, "shop/update", shop_domain, shop_payload(shop))


def order_delete_payload(order: Order) -> dict[str, Any]:
    """``orders/delete`` carries only the id."""
    return {"id": order.id}
