"""A scored shop in the app, its twin in the Shopify double (metafield definitions deployed from
``shopify.app.toml``), and an Admin client between them on the double's fake clock."""

from __future__ import annotations

import asyncio
import functools
import json
import tomllib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from app.config import Settings
from app.kit.db import make_sessionmaker, write_transaction
from app.models import CustomerScore, CustomerSyncState, Shop, ShopMetricsSnapshot
from app.models.base import table_of
from app.scoring.store import lock_scores
from app.settings.service import update_settings
from app.shopify.admin_client import AdminClient
from app.shops.tokens import token_cipher
from app.sync import push
from app.vocabulary import CLV_TIERS, SEGMENT_NAMES, STAGE_NAMES
from shopify_double import DevStore, FakeClock, create_devstore_app
from shopify_double.flow import deploy_flow_triggers
from tests.fixtures.factories import create_shop

SHOP = "synced.myshopify.com"
SCOPES = "read_orders,read_customers,write_customers"
TOML = Path(__file__).resolve().parents[2] / "shopify.app.toml"
EXTENSIONS = Path(__file__).resolve().parents[2] / "extensions"
T = TypeVar("T")


def deploy_metafield_definitions(store: DevStore, shop: str) -> None:
    """What `shopify app deploy` does with the toml's `[customer.metafields.app.*]` entries."""
    config = tomllib.loads(TOML.read_text())
    for key, spec in config["customer"]["metafields"]["app"].items():
        validations = {k: str(v) for k, v in (spec.get("validations") or {}).items() if k != "choices"}
        choices = (spec.get("validations") or {}).get("choices")
        store.define_metafield(
            shop, key, spec["type"], name=spec.get("name"), choices=choices, validations=validations
        )


@dataclass
class World:
    store: DevStore
    clock: FakeClock
    settings: Settings
    factory: sessionmaker[Session]
    shop_id: int
    token: str
    engine: Engine
    customers: list[int] = field(default_factory=list)
    now: datetime = datetime(2026, 3, 1, tzinfo=UTC)
    slept: list[float] = field(default_factory=list)

    @functools.cached_property
    def double(self) -> FastAPI:
        """The double's app, made once per test: a new one costs about 2 ms of CPU before its first
        answer (its routes, then its middleware on that first request), more than most requests."""
        return create_devstore_app(self.store)

    def tick(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now

    async def _sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.clock.advance(seconds)

    def run(self, fn: Callable[[AdminClient], Awaitable[T]]) -> T:
        async def go() -> T:
            transport = httpx.ASGITransport(app=self.double)
            async with httpx.AsyncClient(transport=transport, base_url="http://devstore") as http:
                return await fn(AdminClient(http, self.settings, sleep=self._sleep, clock=self.clock))

        return asyncio.run(go())

    def sync(self, **kwargs: Any) -> float | None:
        """Run sync steps until the shop is in step (bulk polls are waited out on the fake clock)."""

        async def go(admin: AdminClient) -> float | None:
            for _ in range(50):
                again = await push.sync_shop(
                    self.factory, admin, self.shop_id, self.token, self.tick, **kwargs
                )
                if again is None:
                    return None
                self.clock.advance(again)
            raise AssertionError("the sync never finished")

        return self.run(go)

    def calls(self) -> list[Any]:
        return self.store.calls_for(SHOP)

    def gid(self, customer_id: int) -> str:
        return f"gid://shopify/Customer/{customer_id}"

    def metafields(self, customer_id: int) -> dict[str, tuple[str, str]]:
        shop = self.store.shop(SHOP)
        return {m.key: (m.type, m.value) for m in shop.metafields_of(self.gid(customer_id))}

    def tags(self, customer_id: int) -> list[str]:
        return list(self.store.shop(SHOP).customers[customer_id].tags)

    def score(self, customer_id: int, **values: Any) -> None:
        """Write (or change) a customer's stored score as a rescore would (new synced_hash)."""
        row = score_row(self.shop_id, customer_id, self.tick(), **values)
        with write_transaction(self.factory) as session:
            lock_scores(session, self.shop_id)
            session.execute(
                table_of(CustomerScore)
                .delete()
                .where(CustomerScore.shop_id == self.shop_id, CustomerScore.customer_id == customer_id)
            )
            session.execute(table_of(CustomerScore).insert(), row)
            mark_rescored(session, self.shop_id, self.now)

    def drop_score(self, customer_id: int) -> None:
        with write_transaction(self.factory) as session:
            session.execute(
                table_of(CustomerScore)
                .delete()
                .where(CustomerScore.shop_id == self.shop_id, CustomerScore.customer_id == customer_id)
            )
            mark_rescored(session, self.shop_id, self.tick())

    def settings_change(self, **changes: Any) -> None:
        with write_transaction(self.factory) as session:
            update_settings(session, self.shop_id, changes, self.tick())

    def run_sync_jobs(self) -> int:
        """Run the pending sync jobs (customers/redact's among them) the way the worker does."""
        import app.tasks  # noqa: F401 - registers every job kind
        from app.jobs.services import services_factory
        from app.worker import Worker

        with write_transaction(self.factory) as session:
            shop = session.get(Shop, self.shop_id)
            assert shop is not None
            shop.access_token_expires_at = datetime.now(UTC) + timedelta(days=1)  # no refresh needed
        http = httpx.AsyncClient(transport=httpx.ASGITransport(app=self.double), base_url="http://devstore")
        worker = Worker(self.factory, kinds=["sync"], services=services_factory(self.settings, http=http))
        try:
            return worker.run_pending()
        finally:
            worker.close()

    def states(self) -> dict[int, CustomerSyncState]:
        with self.factory() as session:
            rows = session.scalars(select(CustomerSyncState).where(CustomerSyncState.shop_id == self.shop_id))
            return {r.customer_id: r for r in rows}


def mark_rescored(session: Session, shop_id: int, now: datetime) -> None:
    row = session.get(ShopMetricsSnapshot, shop_id)
    if row is None:
        session.add(
            ShopMetricsSnapshot(shop_id=shop_id, rescored_at=now, customers_scored=0, orders_scored=0)
        )
    else:
        row.rescored_at = now


_HASHES = iter(range(1, 10**9))


def score_row(shop_id: int, customer_id: int, now: datetime, **values: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "shop_id": shop_id,
        "customer_id": customer_id,
        "frequency": 2,
        "monetary": Decimal("120.00"),
        "orders_last_year": 2,
        "spent_last_year": Decimal("120.00"),
        "recency_score": 4,
        "frequency_score": 3,
        "monetary_score": 5,
        "rfm_code": "435",
        "fm_score": 4,
        "segment": "Loyal",
        "thirds_group": "Top",
        "stage": "active",
        "stage_since": now,
        "first_time_buyer": False,
        "repeat_buyer": True,
        "big_spender": False,
        "high_aov": False,
        "discount_shopper": False,
        "full_price_buyer": True,
        "vip": False,
        "historic_clv": Decimal("120.00"),
        "predicted_clv": Decimal("88.50"),
        "predicted_orders": 1.2,
        "churn_risk": 0.25,
        "expected_next_order_at": datetime(2026, 4, 2, tzinfo=UTC),
        "average_days_between_orders": 30.0,
        "clv_tier": "top-25",
        "clv_source": "model",
        "row_hash": 0,
        "synced_hash": 0,
        "values_changed_at": now,
    }
    base.update(values)
    # the rescore's hash of the synced values: any change gives a new one
    key = json.dumps({k: str(base[k]) for k in sorted(values)} | {"c": customer_id}, sort_keys=True)
    base["synced_hash"] = (hash(key) & 0x3FFFFFFFFFFFFFFF) or next(_HASHES)
    base["row_hash"] = base["synced_hash"]
    return base


def variety(i: int) -> dict[str, Any]:
    """Deterministic, varied scores for customer number ``i``."""
    return {
        "recency_score": 1 + i % 5,
        "frequency_score": 1 + (i // 5) % 5,
        "monetary_score": 1 + (i // 25) % 5,
        "segment": SEGMENT_NAMES[i % len(SEGMENT_NAMES)],
        "stage": STAGE_NAMES[i % len(STAGE_NAMES)],
        "predicted_clv": Decimal(i * 7 % 1000) + Decimal("0.25"),
        "historic_clv": Decimal(i * 3 % 500),
        "churn_risk": (i % 100) / 100,
        "expected_next_order_at": None if i % 7 == 0 else datetime(2026, 5, 1 + i % 28, tzinfo=UTC),
        "clv_tier": (*CLV_TIERS, None)[i % 3],
    }


def seed(world: World, count: int, *, merchant_tags: tuple[str, ...] = ("wholesale",)) -> list[int]:
    """``count`` customers in the double (with a merchant tag) and their scores in the app."""
    people = world.store.create_customers(SHOP, count, tags=merchant_tags)
    ids = [c.id for c in people]
    rows = [score_row(world.shop_id, cid, world.now, **variety(i)) for i, cid in enumerate(ids)]
    with write_transaction(world.factory) as session:
        lock_scores(session, world.shop_id)  # as a rescore does before it writes scores
        session.execute(table_of(CustomerScore).insert(), rows)
        mark_rescored(session, world.shop_id, world.tick())
    world.customers.extend(ids)
    return ids


@pytest.fixture
def world(engine: Engine, session: Session, settings: Settings) -> World:
    clock = FakeClock()
    store = DevStore(
        clock=clock, now=lambda: datetime(2026, 3, 1, tzinfo=UTC), client_secret=settings.shopify_api_secret
    )
    store.create_shop(SHOP, plan="Standard")
    deploy_metafield_definitions(store, SHOP)
    deploy_flow_triggers(store, EXTENSIONS)  # what `shopify app deploy` does with extensions/
    token = store.issue_access_token(SHOP, SCOPES)
    app_settings = settings.model_copy(
        update={"shopify_admin_base_url_template": "http://devstore/shops/{shop}"}
    )
    shop = create_shop(session, SHOP)
    shop.access_token_encrypted = token_cipher(app_settings).encrypt(token)
    session.commit()
    return World(store, clock, app_settings, make_sessionmaker(engine), shop.shop_id, token, engine)
