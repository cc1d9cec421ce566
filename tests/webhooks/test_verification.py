"""POST /webhooks refuses anything Shopify did not sign, with a clear 4xx, and writes nothing."""

from __future__ import annotations

import json
import time

import pytest
from sqlalchemy.orm import Session
from starlette.testclient import TestClient

from app.config import Settings
from app.main import create_app
from tests.fixtures.factories import create_shop, order_payload, row_counts
from tests.fixtures.webhooks import OTHER_APP_SECRET, SECRET, post_webhook, webhook_headers

pytestmark = pytest.mark.both_dbs

SHOP = "verify-shop.myshopify.com"


@pytest.fixture
def shop(session: Session):
    return create_shop(session, SHOP)


def _body() -> bytes:
    return json.dumps(order_payload(1001, 501)).encode()


def test_signed_order_is_accepted_and_counted(client: TestClient, session: Session, shop) -> None:
    response = post_webhook(client, "orders/create", order_payload(1001, 501), SHOP)
    assert response.status_code == 200, response.text
    assert row_counts(session)["orders"] == 1
    assert row_counts(session)["customers"] == 1


@pytest.mark.parametrize(
    "header",
    [
        "X-Shopify-Topic",
        "X-Shopify-Hmac-Sha256",
        "X-Shopify-Shop-Domain",
        "X-Shopify-API-Version",
        "X-Shopify-Webhook-Id",
    ],
)
def test_each_missing_header_is_a_400(client: TestClient, session: Session, shop, header: str) -> None:
    body = _body()
    headers = webhook_headers("orders/create", body, SHOP)
    del headers[header]
    response = client.post("/webhooks", content=body, headers=headers)
    assert response.status_code == 400
    assert header.lower() in response.json()["detail"]
    assert row_counts(session)["orders"] == 0


def test_tampered_body_is_a_401(client: TestClient, session: Session, shop) -> None:
    body = _body()
    headers = webhook_headers("orders/create", body, SHOP)
    tampered = body.replace(b'"100.00"', b'"999.00"')
    assert tampered != body
    assert client.post("/webhooks", content=tampered, headers=headers).status_code == 401
    assert row_counts(session)["orders"] == 0


def test_another_apps_secret_is_a_401(client: TestClient, session: Session, shop) -> None:
    response = post_webhook(client, "orders/create", order_payload(1001, 501), SHOP, secret=OTHER_APP_SECRET)
    assert response.status_code == 401
    assert row_counts(session)["orders"] == 0


def test_wrong_case_or_truncated_signature_is_a_401(client: TestClient, session: Session, shop) -> None:
    body = _body()
    headers = webhook_headers("orders/create", body, SHOP)
    for bad in (
        headers["X-Shopify-Hmac-Sha256"][:-2],
        headers["X-Shopify-Hmac-Sha256"].swapcase(),
        "é".encode(),
    ):
        response = client.post("/webhooks", content=body, headers={**headers, "X-Shopify-Hmac-Sha256": bad})
        assert response.status_code == 401
    assert row_counts(session)["orders"] == 0


def test_old_secret_is_accepted_during_a_rotation(settings: Settings, session: Session, shop) -> None:
    rotated = settings.model_copy(
        update={"shopify_api_secret": "new-secret", "shopify_api_secret_old": SECRET}
    )
    with TestClient(create_app(rotated)) as client:
        assert post_webhook(client, "orders/create", order_payload(1001, 501), SHOP).status_code == 200
        assert (
            post_webhook(
                client, "orders/create", order_payload(1002, 501), SHOP, secret="new-secret"
            ).status_code
            == 200
        )
        assert (
            post_webhook(client, "orders/create", order_payload(1003, 501), SHOP, secret="older").status_code
            == 401
        )


def test_non_post_is_a_405(client: TestClient) -> None:
    assert client.get("/webhooks").status_code == 405


def test_non_json_body_is_a_400(client: TestClient, session: Session, shop) -> None:
    response = post_webhook(client, "orders/create", None, SHOP, raw=b"{not json")
    assert response.status_code == 400
    assert "JSON" in response.json()["detail"]


@pytest.mark.parametrize(
    "payload, field",
    [
        ([1, 2], "order"),
        ({"customer": {"id": 5}}, "id"),
        ({**order_payload(1, 2), "current_total_price_set": {"shop_money": {"amount": "abc"}}}, "amount"),
        ({**order_payload(1, 2), "processed_at": "yesterday", "created_at": None}, "processed_at"),
        ({**order_payload(1, 2), "updated_at": "2026-01-10T12:00:00"}, "updated_at"),
        ({**order_payload(1, 2), "test": "no"}, "test"),
        ({**order_payload(1, 2), "customer": {"id": "x"}}, "customer.id"),
        (
            {
                **order_payload(1, 2),
                "current_total_price_set": None,
                "current_total_price": None,
                "total_price": None,
            },
            "current_total_price",
        ),
        ({**order_payload(1, 2), "current_total_price_set": {"shop_money": {"amount": "-5.00"}}}, "amount"),
        ({**order_payload(1, 2), "current_total_price_set": {"shop_money": {"amount": "NaN"}}}, "amount"),
        ({**order_payload(1, 2), "discount_codes": "SPRING"}, "discount_codes"),
    ],
)
def test_wrong_shape_is_a_422_naming_the_field(
    client: TestClient, session: Session, shop, payload, field: str
) -> None:
    response = post_webhook(client, "orders/updated", payload, SHOP)
    assert response.status_code == 422, response.text
    assert field in response.json()["detail"]
    assert row_counts(session)["orders"] == 0
    assert row_counts(session)["customers"] == 0


def test_unknown_shop_is_a_404(client: TestClient, session: Session) -> None:
    response = post_webhook(client, "orders/create", order_payload(1001, 501), "stranger.myshopify.com")
    assert response.status_code == 404
    assert row_counts(session)["orders"] == 0


def test_uninstalled_shop_is_a_410(client: TestClient, session: Session, shop) -> None:
    assert (
        post_webhook(client, "app/uninstalled", {"id": 1, "myshopify_domain": SHOP}, SHOP).status_code == 200
    )
    response = post_webhook(client, "orders/create", order_payload(1001, 501), SHOP)
    assert response.status_code == 410
    assert row_counts(session)["orders"] == 0


def test_unhandled_topic_is_a_400(client: TestClient, session: Session, shop) -> None:
    assert post_webhook(client, "products/create", {"id": 1}, SHOP).status_code == 400


def test_database_down_is_a_503_so_shopify_retries(settings: Settings) -> None:
    unreachable = "postgresql://postgres@127.0.0.1:1/none"
    down = settings.model_copy(update={"database_url": unreachable, "webhook_connection_wait_seconds": 0.2})
    with TestClient(create_app(down)) as client:
        started = time.monotonic()
        response = post_webhook(client, "orders/create", order_payload(1001, 501), SHOP)
        waited = time.monotonic() - started
    assert response.status_code == 503
    # the connection wait bounds the answer (the pool keeps retrying the database behind it)
    assert waited < 3.0


def test_the_default_waits_answer_within_shopifys_five_seconds() -> None:
    """A delivery's turn and its connection are waited for in turn; both at their defaults leave
    time for the work inside Shopify's 5 s (https://shopify.dev/docs/apps/webhooks/best-practices)."""
    fields = Settings.model_fields
    waits = fields["webhook_slot_wait_seconds"].default + fields["webhook_connection_wait_seconds"].default
    assert waits < 5.0
