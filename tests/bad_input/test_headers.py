"""Webhook headers: a security header given twice, or one that cannot be Shopify's, is refused
with a 400 naming it, before the body is read, and nothing is written."""

from __future__ import annotations

import json

import pytest
from fastapi import FastAPI
from sqlalchemy.orm import Session
from starlette.testclient import TestClient

from app.shopify.webhook_hmac import webhook_digest
from tests.fixtures.asgi import Body, call
from tests.fixtures.factories import create_shop, order_payload, row_counts
from tests.fixtures.webhooks import SECRET, webhook_headers

pytestmark = pytest.mark.both_dbs

SHOP = "headers-shop.myshopify.com"
OTHER_SHOP = "headers-other.myshopify.com"


@pytest.fixture
def shops(session: Session) -> None:
    create_shop(session, SHOP)
    create_shop(session, OTHER_SHOP)


def _body() -> bytes:
    return json.dumps(order_payload(1001, 501)).encode()


# For each header: a decoy sent first, then the genuine value. Were the last value to win, the
# delivery would be applied.
DECOYS = {
    "X-Shopify-Topic": "app/uninstalled",
    "X-Shopify-Hmac-Sha256": webhook_digest(b"{}", SECRET),
    "X-Shopify-Shop-Domain": OTHER_SHOP,
    "X-Shopify-API-Version": "2019-04",
    "X-Shopify-Webhook-Id": "another-delivery",
}


@pytest.mark.parametrize("header", list(DECOYS))
def test_a_security_header_given_twice_is_a_400_naming_it(
    client: TestClient, session: Session, shops: None, header: str
) -> None:
    body = _body()
    genuine = webhook_headers("orders/create", body, SHOP)
    headers = [(header, DECOYS[header])] + list(genuine.items())
    response = client.post("/webhooks", content=body, headers=headers)
    assert response.status_code == 400, response.text
    assert header.lower() in response.json()["detail"]
    assert "more than once" in response.json()["detail"]
    counts = row_counts(session)
    assert (counts["orders"], counts["customers"]) == (0, 0)
    assert all(s.is_installed for s in _shops(session))


def test_the_same_header_twice_with_the_same_value_is_still_a_400(
    client: TestClient, session: Session, shops: None
) -> None:
    body = _body()
    genuine = webhook_headers("orders/create", body, SHOP)
    headers = list(genuine.items()) + [("X-Shopify-Topic", "orders/create")]
    assert client.post("/webhooks", content=body, headers=headers).status_code == 400
    assert row_counts(session)["orders"] == 0


def _shops(session: Session) -> list:
    from app.models import Shop

    session.expire_all()
    return list(session.query(Shop).all())


def _unread(app: FastAPI, headers: dict[str, str]) -> tuple[int, str, int]:
    body = Body([_body()])
    answer = call(app, "POST", "/webhooks", list(headers.items()), body)
    return answer.status, json.loads(answer.body)["detail"], body.received


def test_an_unhandled_topic_is_refused_before_the_body_is_read(app: FastAPI) -> None:
    body = _body()
    headers = {**webhook_headers("products/create", body, SHOP), "Content-Length": str(len(body))}
    status, detail, received = _unread(app, headers)
    assert (status, received) == (400, 0)
    assert "products/create" in detail


@pytest.mark.parametrize(
    "domain",
    [
        "evil.example.com",
        "headers-shop.myshopify.com.evil.example",
        "https://headers-shop.myshopify.com",
        "admin.shopify.com/store/headers-shop",
        "headers shop.myshopify.com",
        "",
    ],
)
def test_a_shop_domain_that_is_not_a_myshopify_domain_is_refused_before_the_body_is_read(
    app: FastAPI, domain: str
) -> None:
    body = _body()
    headers = {**webhook_headers("orders/create", body, SHOP), "Content-Length": str(len(body))}
    headers["X-Shopify-Shop-Domain"] = domain
    status, detail, received = _unread(app, headers)
    assert (status, received) == (400, 0)
    assert "x-shopify-shop-domain" in detail
