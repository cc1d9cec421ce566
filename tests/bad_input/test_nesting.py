"""JSON nested deeper than the parser's recursion limit is a 400, not a 500 (RecursionError)."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session
from starlette.testclient import TestClient

from tests.bad_input.bodies import SHOP
from tests.bad_input.conftest import Snapshot, snapshot
from tests.fixtures.webhooks import post_webhook

DEPTH = 100_000
BODIES = {
    "arrays": b"[" * DEPTH + b"]" * DEPTH,
    "objects": b'{"a":' * DEPTH + b"1" + b"}" * DEPTH,
    "inside an order field": b'{"id": 5001, "note_attributes": ' + b"[" * DEPTH + b"]" * DEPTH + b"}",
}


@pytest.mark.both_dbs
@pytest.mark.parametrize("topic", ["orders/create", "shop/redact"])
@pytest.mark.parametrize("shape", sorted(BODIES))
def test_deeply_nested_json_is_a_400(
    client: TestClient, session: Session, seeded: Snapshot, topic: str, shape: str
) -> None:
    response = post_webhook(client, topic, None, SHOP, raw=BODIES[shape])
    assert response.status_code == 400, response.text
    assert "nested" in response.json()["detail"]
    assert snapshot(session) == seeded
