"""The demo of a store with no history (`--customers 0`): its buyers come from the order stream."""

from __future__ import annotations

from app.config import Settings
from tests.demo.conftest import headless_demo


def test_demo_of_an_empty_store_streams_orders_from_new_buyers(settings: Settings) -> None:
    result = headless_demo(settings, customers=0, seed=7, duration=1.0).run()

    assert result.errors == []
    assert result.customers_generated == 0
    assert result.streamed_orders > 0
    assert result.customers_scored > 0
    assert result.page_status == 200
