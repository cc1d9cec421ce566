"""A real sync of the seeded shop into the Shopify double (the sync's own steps, as the worker runs
them), so that the pages link to the segments the sync created and stored."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import Engine

from app.config import Settings
from app.kit.db import make_sessionmaker
from app.shopify.admin_client import AdminClient
from app.sync import push
from shopify_double import DevStore, FakeClock, create_devstore_app
from shopify_double.cost import LeakyBucket
from tests.sync.conftest import deploy_metafield_definitions


def sync_into_double(engine: Engine, store: DevStore, settings: Settings, shop_id: int, domain: str) -> None:
    """Run the shop's sync against the double until Shopify is in step."""
    deploy_metafield_definitions(store, domain)
    token = store.issue_access_token(domain, "read_orders,read_customers,write_customers")
    factory = make_sessionmaker(engine)
    moment = [datetime.now(UTC)]

    def now() -> datetime:
        moment[0] += timedelta(seconds=1)
        return moment[0]

    # the shop's cost budget on a fake clock that the client's waits move, as tests/sync does
    clock = FakeClock()
    shop = store.shop(domain)
    real_bucket = shop.bucket
    shop.bucket = LeakyBucket(maximum=real_bucket.maximum, restore_rate=real_bucket.restore_rate, clock=clock)

    async def sleep(seconds: float) -> None:
        clock.advance(seconds)

    async def go() -> None:
        transport = httpx.ASGITransport(app=create_devstore_app(store))
        async with httpx.AsyncClient(transport=transport, base_url="http://devstore") as http:
            admin = AdminClient(http, settings, sleep=sleep, clock=clock)
            for _ in range(50):
                again = await push.sync_shop(factory, admin, shop_id, token, now)
                if again is None:
                    return
                clock.advance(again)
            raise AssertionError("the sync never finished")

    failures: list[BaseException] = []

    def run() -> None:
        try:
            asyncio.run(go())
        except BaseException as exc:  # handed to the test's thread below
            failures.append(exc)

    # on a thread of its own: the browser tests keep Playwright's event loop running in this one
    worker = threading.Thread(target=run)
    try:
        worker.start()
        worker.join()
    finally:
        shop.bucket = real_bucket
    if failures:
        raise failures[0]


def double_segments(store: DevStore, domain: str) -> dict[str, int]:
    """{segment name: numeric id} of the segments the double holds for the shop."""
    return {s.name: s.id for s in store.shop(domain).segments.values()}
