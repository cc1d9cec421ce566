from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from app.imports import pull
from app.models import Customer
from shopify_double import order_payload
from tests.fixtures.factories import create_shop
from tests.fixtures.webhooks import post_webhook
from tests.imports.conftest import SHOP, World, no_sleep, seed_history

TWIN = "twin.myshopify.com"
COLUMNS = (
    "customer_id",
    "first_order_at",
    "last_order_at",
    "orders_count",
    "total_spent",
    "average_order_value",
    "discounted_orders_count",
    "average_days_between_orders",
)


def _customers(world: World, shop_id: int) -> list[tuple[object, ...]]:
    with world.factory() as s:
        rows = s.execute(
            select(*(getattr(Customer, c) for c in COLUMNS))
            .where(Customer.shop_id == shop_id)
            .order_by(Customer.customer_id)
        )
        return [tuple(r) for r in rows]


@pytest.mark.both_dbs
def test_import_gives_exactly_the_aggregates_of_the_same_history_sent_as_webhooks(
    world: World, client: TestClient
) -> None:
    seed_history(world.store, 240, customers=40)
    # A buyer whose average order value falls exactly between two 4th places (8.01 / 8 = 1.00125).
    buyer = world.store.create_customer(SHOP)
    start = datetime(2022, 3, 1, 9, 30, 15, tzinfo=UTC)
    for i, total in enumerate(["1.00"] * 7 + ["1.01"]):
        world.store.create_order(
            SHOP,
            customer_id=buyer.id,
            total_price=total,
            processed_at=start + timedelta(days=13 * i, seconds=i),
        )
    with world.factory() as s:
        twin_id = create_shop(s, TWIN).shop_id
    for order in list(world.store.shop(SHOP).orders.values()):
        assert (
            post_webhook(client, "orders/create", order_payload(world.store, SHOP, order), TWIN).status_code
            == 200
        )

    world.run(lambda admin: pull.run_import(world.factory, admin, world.shop_id, sleep=no_sleep))

    imported = _customers(world, world.shop_id)
    assert imported == _customers(world, twin_id)
    assert any(row[0] == buyer.id and row[3] == 8 for row in imported)
