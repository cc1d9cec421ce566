"""Two deliveries for the same order or buyer, in flight together, both answer 200.

Shopify sends some topics together (the order update with its refunds/create, orders/updated with
customers/merge, an order's last update with orders/delete). Each pair is run through the webhook
endpoint with a fixed interleaving: a third transaction holds one of the pair's locks, the first
delivery queues behind it, then the second (pg_locks shows each one waiting), then the holder
commits. With two lock orders in the code this interleaving is a deadlock, and one side gets 503.
The final ledger and aggregates must equal those of the two deliveries applied one after the other.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, text
from sqlalchemy.orm import Session
from starlette.testclient import TestClient

from app.kit.sql import lock_key
from tests.fixtures.factories import create_shop, order_payload, refund_payload
from tests.fixtures.webhooks import post_webhook

ORDER = 7001
FIRST = "2026-01-10T12:00:00Z"
LATER = "2026-01-10T13:00:00Z"
REFUNDED = "2026-01-10T12:30:00Z"


@dataclass(frozen=True)
class Delivery:
    topic: str
    payload: dict[str, Any]


def _key(conn: Connection, name: str) -> int:
    return int(conn.execute(text("SELECT hashtextextended(:n, 0)"), {"n": name}).scalar_one())


def _customer_below(conn: Connection, shop_id: int, name: str, start: int) -> int:
    """A customer id whose lock key sorts below the lock named `name` (the order a sorted lock
    statement takes first is what makes the interleaving a deadlock)."""
    limit = _key(conn, name)
    return next(c for c in range(start, start + 1000) if _key(conn, lock_key("customer", shop_id, c)) < limit)


def _waiting(conn: Connection) -> int:
    # this database only: the other test databases (pytest-xdist workers) share the lock table
    sql = (
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
        " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
    )
    return int(conn.execute(text(sql)).scalar_one())


def _until_waiting(engine: Engine, count: int) -> None:
    deadline = time.monotonic() + 20
    with engine.connect() as conn:
        while _waiting(conn) < count:
            conn.rollback()
            assert time.monotonic() < deadline, f"expected {count} deliveries waiting on a lock"
            time.sleep(0.01)


@contextmanager
def _holding(engine: Engine, name: str) -> Iterator[Callable[[], None]]:
    with engine.connect() as conn:
        conn.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:n, 0))"), {"n": name})
        yield conn.commit
        conn.rollback()


@pytest.fixture(params=["function", "python"])
def webhooks(request: pytest.FixtureRequest, client: TestClient) -> Iterator[TestClient]:
    """The endpoint with its PostgreSQL fast path (`rfm_ingest_order`), or with the Python rules
    only (as on SQLite, and as after a delivery the function hands back)."""
    app: Any = client.app
    pool = app.state.webhook_pool
    if request.param == "python":
        app.state.webhook_pool = None
    yield client
    app.state.webhook_pool = pool


def _post(client: TestClient, domain: str, delivery: Delivery) -> int:
    return int(post_webhook(client, delivery.topic, delivery.payload, domain).status_code)


def _state(session: Session, shop_id: int) -> dict[str, list[tuple[Any, ...]]]:
    queries = {
        "orders": "SELECT order_id, customer_id, source_updated_at, current_total, pending_refunds, value,"
        " qualifies FROM orders WHERE shop_id = :s ORDER BY order_id",
        "refunds": "SELECT refund_id, order_id, amount FROM order_refunds WHERE shop_id = :s"
        " ORDER BY refund_id",
        "deleted": "SELECT order_id FROM deleted_orders WHERE shop_id = :s ORDER BY order_id",
        "customers": "SELECT customer_id, orders_count, total_spent, first_order_at, last_order_at,"
        " score_pending FROM customers WHERE shop_id = :s ORDER BY customer_id",
    }
    return {
        name: [tuple(r) for r in session.execute(text(sql), {"s": shop_id})] for name, sql in queries.items()
    }


def _race(
    engine: Engine,
    session: Session,
    client: TestClient,
    *,
    setup: Callable[[int], tuple[list[Delivery], Delivery, Delivery, str]],
) -> None:
    """Apply setup's deliveries, then its first and second concurrently with the lock `held`
    taken first by a third transaction; compare with the same deliveries applied in sequence."""
    raced, alone = create_shop(session), create_shop(session)
    before, first, second, held = setup(raced.shop_id)
    for delivery in before:
        assert _post(client, raced.domain, delivery) == 200
        assert _post(client, alone.domain, delivery) == 200

    with _holding(engine, held) as release, ThreadPoolExecutor(2) as pool:
        answers = [pool.submit(_post, client, raced.domain, first)]
        _until_waiting(engine, 1)
        answers.append(pool.submit(_post, client, raced.domain, second))
        _until_waiting(engine, 2)
        release()
        statuses = [a.result(timeout=30) for a in answers]

    assert statuses == [200, 200]
    for delivery in (first, second):
        assert _post(client, alone.domain, delivery) == 200
    assert _state(session, raced.shop_id) == _state(session, alone.shop_id)


def test_order_update_and_delete_together_both_succeed(
    engine: Engine, session: Session, webhooks: TestClient
) -> None:
    def setup(shop_id: int) -> tuple[list[Delivery], Delivery, Delivery, str]:
        with engine.connect() as conn:
            customer = _customer_below(conn, shop_id, lock_key("order", shop_id, ORDER), 9001)
        created = Delivery("orders/create", order_payload(ORDER, customer, updated_at=FIRST))
        updated = Delivery("orders/updated", order_payload(ORDER, customer, total="80.00", updated_at=LATER))
        deleted = Delivery("orders/delete", {"id": ORDER})
        return [created], deleted, updated, lock_key("order", shop_id, ORDER)

    _race(engine, session, webhooks, setup=setup)


def test_order_update_and_its_refund_together_both_succeed(
    engine: Engine, session: Session, webhooks: TestClient
) -> None:
    def setup(shop_id: int) -> tuple[list[Delivery], Delivery, Delivery, str]:
        with engine.connect() as conn:
            customer = _customer_below(conn, shop_id, lock_key("order", shop_id, ORDER), 9001)
        created = Delivery("orders/create", order_payload(ORDER, customer, updated_at=FIRST))
        refund = Delivery("refunds/create", refund_payload(8001, ORDER, "20.00", REFUNDED))
        updated = Delivery("orders/updated", order_payload(ORDER, customer, total="80.00", updated_at=LATER))
        return [created], refund, updated, lock_key("order", shop_id, ORDER)

    _race(engine, session, webhooks, setup=setup)


def test_order_moved_to_the_kept_customer_and_the_merge_together_both_succeed(
    engine: Engine, session: Session, webhooks: TestClient
) -> None:
    def setup(shop_id: int) -> tuple[list[Delivery], Delivery, Delivery, str]:
        kept = 9500
        with engine.connect() as conn:
            gone = _customer_below(conn, shop_id, lock_key("customer", shop_id, kept), 9001)
        created = Delivery("orders/create", order_payload(ORDER, gone, updated_at=FIRST))
        moved = Delivery("orders/updated", order_payload(ORDER, kept, updated_at=LATER))
        merge = Delivery(
            "customers/merge",
            {
                "admin_graphql_api_customer_kept_id": f"gid://shopify/Customer/{kept}",
                "admin_graphql_api_customer_deleted_id": f"gid://shopify/Customer/{gone}",
                "status": "completed",
            },
        )
        return [created], moved, merge, lock_key("customer", shop_id, kept)

    _race(engine, session, webhooks, setup=setup)
