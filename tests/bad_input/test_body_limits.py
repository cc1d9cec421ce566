"""Request bodies: the webhook and the settings form refuse a body over their cap by its
Content-Length before reading a byte, stop reading a body that runs past its length or the cap, and
give up on a body that stops arriving; a large but genuine order delivery still passes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy.orm import Session
from starlette.testclient import TestClient

from app.admin.router import SETTINGS_MAX_BODY_BYTES
from app.config import Settings
from app.main import create_app
from app.shops.service import register_shop
from shopify_double import DevStore
from tests.admin.conftest import SCOPES, launch
from tests.admin.conftest import SHOP as ADMIN_SHOP
from tests.admin.seed import give_token
from tests.fixtures.asgi import Body, call
from tests.fixtures.factories import create_shop, order_payload, row_counts
from tests.fixtures.webhooks import webhook_headers

SHOP = "limits-shop.myshopify.com"
CHUNK = 64 * 1024


def _chunks(total: int) -> Iterator[bytes]:
    """`total` bytes of JSON-ish filler, made only as the app asks for them."""
    sent = 0
    while sent < total:
        size = min(CHUNK, total - sent)
        sent += size
        yield b" " * size


def _order_headers(body: bytes, **extra: str) -> list[tuple[str, str]]:
    return list({**webhook_headers("orders/create", body, SHOP), **extra}.items())


# -- the webhook ---------------------------------------------------------------------------------


def test_default_webhook_cap_is_between_shopifys_large_orders_and_the_old_8_mb() -> None:
    assert 2 * 1024 * 1024 <= Settings().webhook_max_body_bytes < 8 * 1024 * 1024


@pytest.mark.both_dbs
def test_webhook_body_over_the_cap_by_content_length_is_refused_unread(
    app: FastAPI, settings: Settings
) -> None:
    size = settings.webhook_max_body_bytes + 1
    body = Body(_chunks(size))
    answer = call(app, "POST", "/webhooks", _order_headers(b"{}", **{"Content-Length": str(size)}), body)
    assert answer.status == 413
    assert "content-length" in json.loads(answer.body)["detail"]
    assert body.received == 0
    assert answer.headers["connection"] == "close"


@pytest.mark.both_dbs
def test_webhook_body_longer_than_its_content_length_is_cut_off(app: FastAPI, session: Session) -> None:
    create_shop(session, SHOP)
    body = Body(_chunks(10 * 1024 * 1024))
    answer = call(app, "POST", "/webhooks", _order_headers(b"{}", **{"Content-Length": "1000"}), body)
    assert answer.status == 400
    assert "content-length" in json.loads(answer.body)["detail"]
    assert body.bytes_read <= CHUNK
    assert row_counts(session)["orders"] == 0


@pytest.mark.both_dbs
def test_chunked_webhook_body_over_the_cap_is_cut_off(settings: Settings, session: Session) -> None:
    small = create_app(settings.model_copy(update={"webhook_max_body_bytes": 100_000}))
    body = Body(_chunks(10 * 1024 * 1024))
    answer = call(small, "POST", "/webhooks", _order_headers(b"{}", **{"Transfer-Encoding": "chunked"}), body)
    assert answer.status == 413
    assert body.bytes_read <= 100_000 + CHUNK


@pytest.mark.both_dbs
def test_webhook_body_that_stops_arriving_is_a_408_and_the_connection_closes(
    settings: Settings, session: Session
) -> None:
    create_shop(session, SHOP)
    impatient = create_app(settings.model_copy(update={"webhook_body_timeout_seconds": 0.2}))
    body = Body([b'{"id":'], stall=True)
    answer = call(impatient, "POST", "/webhooks", _order_headers(b"{}", **{"Content-Length": "500"}), body)
    assert answer.status == 408
    assert answer.headers["connection"] == "close"
    assert row_counts(session)["orders"] == 0


@pytest.mark.both_dbs
def test_webhook_without_content_length_or_chunked_body_is_a_411(app: FastAPI) -> None:
    body = Body([])
    answer = call(app, "POST", "/webhooks", _order_headers(b""), body)
    assert answer.status == 411
    assert "content-length" in json.loads(answer.body)["detail"]


@pytest.mark.both_dbs
def test_webhook_with_a_malformed_content_length_is_a_400(app: FastAPI) -> None:
    body = Body([b"{}"])
    answer = call(app, "POST", "/webhooks", _order_headers(b"{}", **{"Content-Length": "-2"}), body)
    assert (answer.status, body.received) == (400, 0)


def _large_order(order_id: int, target: int) -> bytes:
    """An order with enough line items (shaped as Shopify's REST payload) to weigh `target` bytes."""
    payload: dict[str, Any] = order_payload(order_id, 501)
    item = {
        "id": 0,
        "admin_graphql_api_id": "gid://shopify/LineItem/0",
        "name": "Organic cotton crew-neck T-shirt - Large / Forest green",
        "price": "24.00",
        "price_set": {
            "shop_money": {"amount": "24.00", "currency_code": "USD"},
            "presentment_money": {"amount": "24.00", "currency_code": "USD"},
        },
        "quantity": 1,
        "sku": "TS-ORG-L-FG",
        "tax_lines": [{"price": "1.92", "rate": 0.08, "title": "State tax"}],
        "discount_allocations": [],
        "properties": [{"name": "engraving", "value": "x" * 200}],
    }

    def line(n: int) -> dict[str, Any]:
        return {**item, "id": n, "admin_graphql_api_id": f"gid://shopify/LineItem/{n}"}

    # one serialisation per estimate, not one per added line (that was quadratic: seconds of CPU)
    payload["line_items"] = []
    size = len(json.dumps(payload))
    while size < target:
        each = len(json.dumps(line(len(payload["line_items"]) + 1))) + 2
        first = len(payload["line_items"]) + 1
        payload["line_items"] += [line(n) for n in range(first, first + (target - size) // each + 1)]
        size = len(json.dumps(payload))
    return json.dumps(payload).encode()


@pytest.mark.both_dbs
def test_a_1_mb_order_with_its_valid_signature_is_applied(client: TestClient, session: Session) -> None:
    create_shop(session, SHOP)
    body = _large_order(1001, 1024 * 1024)
    assert len(body) >= 1024 * 1024
    response = client.post("/webhooks", content=body, headers=dict(_order_headers(body)))
    assert response.status_code == 200, response.text
    assert row_counts(session)["orders"] == 1


@pytest.mark.both_dbs
def test_a_chunked_order_within_the_cap_is_applied(client: TestClient, session: Session) -> None:
    create_shop(session, SHOP)
    body = json.dumps(order_payload(1001, 501)).encode()
    response = client.post(
        "/webhooks", content=iter([body[:100], body[100:]]), headers=dict(_order_headers(body))
    )
    assert response.status_code == 200, response.text
    assert row_counts(session)["orders"] == 1


# -- the settings form ---------------------------------------------------------------------------


@pytest.fixture
def installed(session: Session, store: DevStore, admin_settings: Settings) -> None:
    shop = register_shop(session, ADMIN_SHOP, datetime.now(UTC))
    give_token(session, shop, admin_settings, store.issue_access_token(ADMIN_SHOP, SCOPES))
    session.commit()


FORM = [("Content-Type", "application/x-www-form-urlencoded")]


def test_settings_form_over_the_cap_by_content_length_is_refused_unread(
    admin_app: FastAPI, installed: None
) -> None:
    size = 50 * 1024 * 1024
    body = Body(_chunks(size))
    answer = call(
        admin_app, "POST", f"/app/settings?{launch()}", [*FORM, ("Content-Length", str(size))], body
    )
    assert answer.status == 413
    assert body.received == 0


def test_settings_form_body_is_cut_off_at_the_cap_without_a_content_length(
    admin_app: FastAPI, installed: None
) -> None:
    body = Body(_chunks(50 * 1024 * 1024))
    answer = call(
        admin_app, "POST", f"/app/settings?{launch()}", [*FORM, ("Transfer-Encoding", "chunked")], body
    )
    assert answer.status == 413
    assert body.bytes_read <= SETTINGS_MAX_BODY_BYTES + CHUNK


def test_settings_form_body_longer_than_its_content_length_is_cut_off(
    admin_app: FastAPI, installed: None
) -> None:
    body = Body(_chunks(50 * 1024 * 1024))
    answer = call(admin_app, "POST", f"/app/settings?{launch()}", [*FORM, ("Content-Length", "100")], body)
    assert answer.status == 400
    assert body.bytes_read <= CHUNK
