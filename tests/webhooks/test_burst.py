"""Under a burst, a delivery that cannot start within the wait is answered 503 at once (Shopify
retries it) rather than queueing past Shopify's 5-second limit; the held one still lands, the retry
lands, and nothing is written twice."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

from sqlalchemy import Engine, text
from sqlalchemy.orm import Session
from starlette.testclient import TestClient

from app.config import Settings
from app.kit.sql import lock_key
from app.main import create_app
from app.models import Customer
from tests.fixtures.factories import create_shop, order_payload, row_counts
from tests.fixtures.webhooks import webhook_headers

SHOP = "burst-shop.myshopify.com"
WAIT = 0.3


def _waiting_for_a_lock(engine: Engine) -> bool:
    with engine.connect() as conn:
        # this database only: the other test databases (pytest-xdist workers) share the lock table
        waiting = (
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
            " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        )
        return bool(conn.scalar(text(waiting)))


def _until(condition: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the held delivery never reached the database lock"
        time.sleep(0.01)


def test_a_delivery_that_cannot_start_within_the_wait_is_a_503_and_its_retry_lands(
    settings: Settings, session: Session, engine: Engine
) -> None:
    shop = create_shop(session, SHOP)
    one_at_a_time = settings.model_copy(
        update={"webhook_max_concurrency": 1, "webhook_slot_wait_seconds": WAIT}
    )
    deliveries = []
    for order_id, customer_id in ((1001, 501), (1002, 502)):
        body = json.dumps(order_payload(order_id, customer_id)).encode()
        deliveries.append((body, webhook_headers("orders/create", body, SHOP)))
    first: dict[str, Any] = {}

    with TestClient(create_app(one_at_a_time)) as client:

        def post(n: int) -> Any:
            body, headers = deliveries[n]
            return client.post("/webhooks", content=body, headers=headers)

        with engine.connect() as blocker:
            # a writer holding order 1001's lock keeps the first delivery inside the endpoint
            blocker.execute(
                text("SELECT pg_advisory_xact_lock(hashtextextended(:k, 0))"),
                {"k": lock_key("order", shop.shop_id, 1001)},
            )
            held = threading.Thread(target=lambda: first.update(response=post(0)))
            held.start()
            _until(lambda: _waiting_for_a_lock(engine))

            started = time.monotonic()
            refused = post(1)
            elapsed = time.monotonic() - started
            assert refused.status_code == 503, refused.text
            assert refused.headers["retry-after"].isdigit()
            assert WAIT * 0.9 <= elapsed < WAIT + 1.0
            blocker.rollback()
        held.join(timeout=10)
        assert first["response"].status_code == 200, first["response"].text

        assert post(1).status_code == 200  # Shopify's retry: the same body and webhook id
        assert post(0).status_code == 200  # and a repeat of the first changes nothing

    session.expire_all()
    assert row_counts(session)["orders"] == 2
    counts = {c.customer_id: c.orders_count for c in session.query(Customer).all()}
    assert counts == {501: 1, 502: 1}
