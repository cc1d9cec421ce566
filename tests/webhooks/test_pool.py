"""The order webhooks' PostgreSQL pool: the connections it keeps open, and its settings."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session
from starlette.testclient import TestClient

from app.config import Settings
from app.main import create_app
from tests.fixtures.factories import create_shop, order_payload, row_counts
from tests.fixtures.webhooks import post_webhook

SHOP = "pool-shop.myshopify.com"


@pytest.mark.parametrize("min_size", [0, 1])
def test_the_webhook_pool_keeps_its_minimum_open_and_opens_more_for_orders(
    settings: Settings, session: Session, min_size: int
) -> None:
    create_shop(session, SHOP)
    with TestClient(create_app(settings.model_copy(update={"webhook_pool_min_size": min_size}))) as client:
        pool = client.app.state.webhook_pool  # type: ignore[attr-defined]
        client.portal.call(pool.wait)  # the minimum is open once the pool is ready
        assert pool.get_stats()["pool_size"] == min_size
        response = post_webhook(client, "orders/create", order_payload(1001, 501), SHOP)
        assert response.status_code == 200
        assert pool.get_stats()["pool_size"] == max(min_size, 1)
    assert row_counts(session)["orders"] == 1


def test_a_webhook_pool_minimum_above_its_size_is_refused() -> None:
    with pytest.raises(ValueError, match="WEBHOOK_POOL_MIN_SIZE"):
        Settings(app_env="test", webhook_pool_size=2, webhook_pool_min_size=3)
