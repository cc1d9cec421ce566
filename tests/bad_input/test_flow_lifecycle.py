"""Flow's trigger lifecycle callback (POST /flow/lifecycle): a signed body that is not what Flow
sends is refused with a 4xx naming the field, and nothing is written."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy.orm import Session
from starlette.testclient import TestClient

from app.shopify.webhook_hmac import webhook_digest
from tests.bad_input.bodies import SHOP, SHOP_SHOPIFY_ID
from tests.bad_input.conftest import Snapshot, snapshot
from tests.fixtures.webhooks import SECRET

GOOD: dict[str, Any] = {
    "flow_trigger_definition_id": "lifecycle-stage-changed",
    "has_enabled_flow": True,
    "shop_id": SHOP_SHOPIFY_ID,
    "shopify_domain": SHOP,
    "timestamp": "2026-11-23T10:00:00.000Z",
}


def post(client: TestClient, body: bytes, secret: str = SECRET) -> Any:
    return client.post(
        "/flow/lifecycle",
        content=body,
        headers={"Content-Type": "application/json", "X-Shopify-Hmac-SHA256": webhook_digest(body, secret)},
    )


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"flow_trigger_definition_id": "Add row to spreadsheet"}, "flow_trigger_definition_id"),
        ({"flow_trigger_definition_id": None}, "flow_trigger_definition_id"),
        ({"has_enabled_flow": "true"}, "has_enabled_flow"),
        ({"shop_id": -1}, "shop_id"),
        ({"shop_id": SHOP_SHOPIFY_ID + 1}, "shop_id"),
        ({"shopify_domain": "evil.example.com"}, "shopify_domain"),
        ({"timestamp": "yesterday"}, "timestamp"),
        ({"timestamp": "2026-11-23T10:00:00"}, "timestamp"),
        ({"timestamp": None}, "timestamp"),
    ],
)
def test_a_callback_with_a_bad_field_is_refused_and_writes_nothing(
    client: TestClient, session: Session, seeded: Snapshot, change: dict[str, Any], field: str
) -> None:
    response = post(client, json.dumps({**GOOD, **change}).encode())
    assert response.status_code == 422, response.text
    assert response.json()["detail"].startswith(f"{field}: ")
    assert snapshot(session) == seeded


@pytest.mark.parametrize("missing", sorted(GOOD))
def test_a_callback_missing_a_field_is_refused(
    client: TestClient, session: Session, seeded: Snapshot, missing: str
) -> None:
    body = {k: v for k, v in GOOD.items() if k != missing}
    response = post(client, json.dumps(body).encode())
    assert response.status_code == 422 and response.json()["detail"] == f"{missing}: is missing"
    assert snapshot(session) == seeded


def test_a_callback_signed_with_another_secret_is_refused(
    client: TestClient, session: Session, seeded: Snapshot
) -> None:
    assert post(client, json.dumps(GOOD).encode(), secret="another-apps-secret").status_code == 401
    assert snapshot(session) == seeded


def test_a_callback_without_a_signature_or_json_is_refused(
    client: TestClient, session: Session, seeded: Snapshot
) -> None:
    assert client.post("/flow/lifecycle", content=json.dumps(GOOD).encode()).status_code == 400
    assert post(client, b"not json").status_code == 400
    assert post(client, b"[1]").status_code == 422
    assert snapshot(session) == seeded


def test_a_callback_for_a_shop_that_has_not_installed_the_app_is_refused(
    client: TestClient, session: Session, seeded: Snapshot
) -> None:
    body = {**GOOD, "shopify_domain": "stranger.myshopify.com"}
    assert post(client, json.dumps(body).encode()).status_code == 404
    assert snapshot(session) == seeded


def test_a_good_callback_is_stored(client: TestClient, session: Session, seeded: Snapshot) -> None:
    assert post(client, json.dumps(GOOD).encode()).status_code == 200
    after = snapshot(session)
    assert len(after["flow_trigger_usage"]) == 1 and after != seeded
