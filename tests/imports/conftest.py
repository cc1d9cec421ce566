"""A shop installed in the app, its twin in the Shopify double, and an Admin client between them."""

from __future__ import annotations

import asyncio
import functools
import itertools
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TypeVar

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from app.config import Settings
from app.kit.db import make_sessionmaker
from app.models import Customer, OrderImport
from app.shopify.admin_client import AdminClient
from app.shops.tokens import token_cipher
from shopify_double import DevStore, DiscountCode, Refund, create_devstore_app
from tests.fixtures.factories import create_shop

SHOP = "history.myshopify.com"
SCOPES = "read_orders,read_all_orders,read_customers,write_customers"
T = TypeVar("T")


class Ticking:
    """A `now` for the double that moves one second per call, so every change has its own time."""

    def __init__(self, start: datetime) -> None:
        self.at = start

    def __call__(self) -> datetime:
        self.at += timedelta(seconds=1)
        return self.at


@dataclass
class World:
    store: DevStore
    settings: Settings
    factory: sessionmaker[Session]
    shop_id: int
    engine: Engine

    @functools.cached_property
    def double(self) -> FastAPI:
        """The double's app, made once per test: a new one costs about 2 ms of CPU before its first
        answer (its routes, then its middleware on that first request), more than most requests."""
        return create_devstore_app(self.store)

    def run(self, fn: Callable[[AdminClient], Awaitable[T]]) -> T:
        async def go() -> T:
            transport = httpx.ASGITransport(app=self.double)
            async with httpx.AsyncClient(transport=transport, base_url="http://devstore") as http:
                return await fn(AdminClient(http, self.settings, sleep=no_sleep))

        return asyncio.run(go())

    def import_row(self) -> OrderImport:
        with self.factory() as s:
            row = s.get(OrderImport, self.shop_id)
            assert row is not None
            return row

    def aggregates(self, shop_id: int | None = None) -> dict[int, tuple[int, Decimal]]:
        with self.factory() as s:
            rows = s.execute(
                select(Customer.customer_id, Customer.orders_count, Customer.total_spent).where(
                    Customer.shop_id == (shop_id or self.shop_id), Customer.orders_count > 0
                )
            )
            return {c: (n, t) for c, n, t in rows}


async def no_sleep(_: float) -> None:
    return None


@pytest.fixture
def world(engine: Engine, session: Session, settings: Settings) -> World:
    store = DevStore(now=Ticking(datetime(2024, 1, 1, tzinfo=UTC)))
    store.create_shop(SHOP)
    token = store.issue_access_token(SHOP, SCOPES)
    app_settings = settings.model_copy(
        update={"shopify_admin_base_url_template": "http://devstore/shops/{shop}"}
    )
    shop = create_shop(session, SHOP)
    shop.access_token_encrypted = token_cipher(app_settings).encrypt(token)
    session.commit()
    return World(store, app_settings, make_sessionmaker(engine), shop.shop_id, engine)


def seed_history(store: DevStore, orders: int, *, seed: int = 1, customers: int | None = None) -> list[int]:
    """A mixed history: repeat buyers, guests, test orders, cancels, partial and full refunds,
    discounts, and some deleted orders. Returns the deleted order ids."""
    rng = random.Random(seed)
    people = store.create_customers(SHOP, customers or max(1, orders // 4))
    shop = store.shop(SHOP)
    ids = itertools.count(1)
    deleted = []
    base = datetime(2021, 1, 1, tzinfo=UTC)
    for _ in range(orders):
        kind = rng.random()
        customer = None if kind < 0.07 else rng.choice(people).id
        when = base + timedelta(days=rng.uniform(0, 1000), seconds=rng.randrange(86400))
        total = Decimal(rng.randrange(500, 40000)) / 100
        codes = [DiscountCode("SAVE10", Decimal("10.00"))] if rng.random() < 0.2 else []
        order = store.create_order(
            SHOP,
            customer_id=customer,
            total_price=total,
            processed_at=when,
            created_at=when,
            test=0.07 <= kind < 0.1,
            total_discounts=Decimal("10.00") if codes else Decimal("0"),
            discount_codes=codes,
            source_name=rng.choice(["web", "pos"]),
        )
        roll = rng.random()
        if roll < 0.05:
            store.update_order(
                SHOP, order.id, cancelled_at=when + timedelta(hours=2), financial_status="VOIDED"
            )
        elif roll < 0.10:
            refund = Refund(id=order.id * 10 + next(ids), created_at=when + timedelta(days=3), amount=total)
            store.update_order(SHOP, order.id, refunds=[refund], financial_status="REFUNDED")
        elif roll < 0.18:
            part = (total / 3).quantize(Decimal("0.01"))
            refund = Refund(id=order.id * 10 + next(ids), created_at=when + timedelta(days=3), amount=part)
            store.update_order(SHOP, order.id, refunds=[refund], financial_status="PARTIALLY_REFUNDED")
        elif roll < 0.21:
            deleted.append(order.id)
    for order_id in deleted:
        del shop.orders[order_id]
    return deleted


def expected_aggregates(store: DevStore) -> dict[int, tuple[int, Decimal]]:
    """The qualifying rule (docs/metrics.md) recomputed from the double's state: qualifying orders
    and their current totals."""
    out: dict[int, tuple[int, Decimal]] = {}
    for o in store.shop(SHOP).orders.values():
        if o.customer_id is None or o.test or o.cancelled_at is not None:
            continue
        if o.financial_status in ("REFUNDED", "VOIDED"):
            continue
        n, t = out.get(o.customer_id, (0, Decimal(0)))
        out[o.customer_id] = (n + 1, t + o.current_total_price)
    return {c: (n, t.quantize(Decimal("0.0001"))) for c, (n, t) in out.items()}
