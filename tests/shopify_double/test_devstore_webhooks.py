"""Webhook signing, delivery with retries, and REST-shape order payloads."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime
from decimal import Decimal

import httpx

from shopify_double import DevStore, DiscountCode, WebhookSender, order_payload, sign_webhook

from .conftest import SHOP

SECRET = "hush"


def independent_hmac(body: bytes, secret: str) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def test_signature_matches_an_independent_hmac() -> None:
    body = b'{"id":820982911946154508,"total_price":"199.65"}'
    assert sign_webhook(body, SECRET) == independent_hmac(body, SECRET)


class Receiver:
    """A webhook endpoint that fails ``failures`` times with 500, then answers 200."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return httpx.Response(500 if len(self.requests) <= self.failures else 200)


def deliver(receiver: Receiver, payload: object) -> tuple[object, list[float]]:
    slept: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        slept.append(seconds)

    async def go() -> object:
        async with httpx.AsyncClient(transport=httpx.MockTransport(receiver)) as client:
            sender = WebhookSender(client, secret=SECRET, sleep=fake_sleep)
            return await sender.send("https://app.example.com/webhooks", "orders/updated", SHOP, payload)

    return asyncio.run(go()), slept


def test_delivery_headers_verify_like_shopifys() -> None:
    receiver = Receiver(failures=0)
    deliver(receiver, {"id": 820982911946154508})
    [request] = receiver.requests
    raw = request.content
    assert request.headers["X-Shopify-Hmac-Sha256"] == independent_hmac(raw, SECRET)
    assert request.headers["X-Shopify-Topic"] == "orders/updated"
    assert request.headers["X-Shopify-Shop-Domain"] == SHOP
    assert request.headers["X-Shopify-API-Version"] == "2026-10"
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["X-Shopify-Webhook-Id"] and request.headers["X-Shopify-Event-Id"]
    assert request.headers["X-Shopify-Triggered-At"]
    assert json.loads(raw) == {"id": 820982911946154508}


def test_retries_on_500_with_the_same_body_and_webhook_id() -> None:
    receiver = Receiver(failures=2)
    delivery, slept = deliver(receiver, {"id": 1})
    assert delivery.delivered  # type: ignore[attr-defined]
    assert [a.status_code for a in delivery.attempts] == [500, 500, 200]  # type: ignore[attr-defined]
    assert len({r.headers["X-Shopify-Webhook-Id"] for r in receiver.requests}) == 1
    assert len({r.headers["X-Shopify-Triggered-At"] for r in receiver.requests}) == 1
    assert len({r.content for r in receiver.requests}) == 1
    assert slept == [1.0, 2.0]


def test_gives_up_after_eight_retries() -> None:
    receiver = Receiver(failures=100)
    delivery, slept = deliver(receiver, {"id": 1})
    assert not delivery.delivered  # type: ignore[attr-defined]
    assert len(receiver.requests) == 9
    assert slept == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0]


def test_order_payload_is_rest_shaped(store: DevStore) -> None:
    customer = store.create_customer(SHOP)
    order = store.create_order(
        SHOP,
        customer_id=customer.id,
        total_price=Decimal("199.65"),
        total_discounts="10",
        discount_codes=[DiscountCode("WELCOME10", Decimal("10"), "fixed_amount")],
        processed_at=datetime(2022, 1, 1, 0, 0, tzinfo=UTC),
    )
    body = json.dumps(order_payload(store, SHOP, order)).encode()
    payload = json.loads(body)
    assert payload["id"] == order.id and isinstance(payload["id"], int)
    assert payload["admin_graphql_api_id"] == f"gid://shopify/Order/{order.id}"
    assert payload["customer"] == {
        **payload["customer"],
        "id": customer.id,
        "admin_graphql_api_id": customer.gid,
    }
    assert payload["total_price"] == "199.65"
    assert payload["current_total_price_set"]["shop_money"] == {"amount": "199.65", "currency_code": "USD"}
    assert payload["discount_codes"] == [{"code": "WELCOME10", "amount": "10.00", "type": "fixed_amount"}]
    assert payload["processed_at"] == "2021-12-31T19:00:00-05:00"
    assert payload["financial_status"] == "paid"
    assert payload["refunds"] == []


def test_guest_order_payload_has_null_customer(store: DevStore) -> None:
    order = store.create_order(SHOP, customer_id=None, total_price=5)
    assert order_payload(store, SHOP, order)["customer"] is None
