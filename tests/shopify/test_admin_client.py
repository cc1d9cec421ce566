"""The Admin GraphQL client against the Shopify double (ASGI), with a fake clock."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import httpx
import pytest

from app.config import Settings
from app.shopify.admin_client import (
    AdminClient,
    GraphQLError,
    RetriesExhausted,
    Unauthorized,
    UserErrors,
)
from shopify_double import DevStore, FakeClock, create_devstore_app

SHOP = "client.myshopify.com"
T = TypeVar("T")
SETTINGS = Settings(app_env="test", shopify_admin_base_url_template="http://devstore/shops/{shop}")
# requested cost 2 + 100 × (order 1 + customer 1) = 202
ORDERS_PAGE = "{ orders(first: 100) { nodes { id customer { id } } } }"


class Sleeper:
    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.slept: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.clock.advance(seconds)


def run(transport: httpx.AsyncBaseTransport, fn: Callable[[httpx.AsyncClient], Awaitable[T]]) -> T:
    async def go() -> T:
        async with httpx.AsyncClient(transport=transport, base_url="http://devstore") as http:
            return await fn(http)

    return asyncio.run(go())


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(clock: FakeClock) -> DevStore:
    s = DevStore(clock=clock)
    s.create_shop(SHOP)
    return s


@pytest.fixture
def token(store: DevStore) -> str:
    return store.issue_access_token(SHOP, "read_orders,read_customers,write_customers")


def client_for(http: httpx.AsyncClient, clock: FakeClock, sleeper: Sleeper, **kw: Any) -> AdminClient:
    return AdminClient(http, SETTINGS, sleep=sleeper, clock=clock, rng=random.Random(1), **kw)


def test_many_calls_never_exceed_the_cost_budget(store: DevStore, token: str, clock: FakeClock) -> None:
    sleeper = Sleeper(clock)
    buyer = store.create_customer(SHOP)
    store.create_orders(SHOP, [{"customer_id": buyer.id, "total_price": "10.00"}] * 100)

    async def calls(http: httpx.AsyncClient) -> AdminClient:
        admin = client_for(http, clock, sleeper)
        for _ in range(40):
            await admin.execute(SHOP, token, ORDERS_PAGE)
        return admin

    admin = run(httpx.ASGITransport(app=create_devstore_app(store)), calls)

    assert not any(c.throttled for c in store.calls_for(SHOP))
    assert len(store.calls_for(SHOP)) == 40
    assert admin.total_throttle_wait > 0 and sum(sleeper.slept) == pytest.approx(admin.total_throttle_wait)


def test_a_throttled_call_is_waited_out_and_retried(store: DevStore, token: str, clock: FakeClock) -> None:
    sleeper = Sleeper(clock)
    store.shop(SHOP).bucket.drain()

    result = run(
        httpx.ASGITransport(app=create_devstore_app(store)),
        lambda http: client_for(http, clock, sleeper).execute(SHOP, token, ORDERS_PAGE),
    )

    assert result.attempts == 2 and result.throttle_wait >= 1.0
    assert [c.throttled for c in store.calls_for(SHOP)] == [True, False]


def _scripted(responses: list[httpx.Response | Exception]) -> httpx.MockTransport:
    ok = {
        "data": {"shop": {"name": "x"}},
        "extensions": {
            "cost": {
                "requestedQueryCost": 1,
                "actualQueryCost": 1,
                "throttleStatus": {
                    "maximumAvailable": 2000.0,
                    "currentlyAvailable": 1999.0,
                    "restoreRate": 100.0,
                },
            }
        },
    }
    queue = list(responses)

    def handler(request: httpx.Request) -> httpx.Response:
        item = queue.pop(0) if queue else httpx.Response(200, json=ok)
        if isinstance(item, Exception):
            raise item
        return item

    return httpx.MockTransport(handler)


def test_http_429_is_retried_after_retry_after(clock: FakeClock) -> None:
    sleeper = Sleeper(clock)
    transport = _scripted([httpx.Response(429, headers={"Retry-After": "2"})])

    result = run(
        transport, lambda http: client_for(http, clock, sleeper).execute(SHOP, "t", "{ shop { name } }")
    )

    assert result.data == {"shop": {"name": "x"}} and result.attempts == 2 and sleeper.slept == [2.0]


def test_server_errors_and_timeouts_are_retried_with_backoff(clock: FakeClock) -> None:
    sleeper = Sleeper(clock)
    transport = _scripted([httpx.Response(502), httpx.ReadTimeout("slow"), httpx.Response(503)])

    result = run(
        transport, lambda http: client_for(http, clock, sleeper).execute(SHOP, "t", "{ shop { name } }")
    )

    assert result.attempts == 4 and len(sleeper.slept) == 3 and all(s >= 1.0 for s in sleeper.slept)


def test_retries_are_bounded(clock: FakeClock) -> None:
    sleeper = Sleeper(clock)
    transport = _scripted([httpx.Response(500)] * 10)

    with pytest.raises(RetriesExhausted):
        run(
            transport,
            lambda http: client_for(http, clock, sleeper, max_attempts=3).execute(
                SHOP, "t", "{ shop { name } }"
            ),
        )
    assert len(sleeper.slept) == 2


def test_user_errors_are_raised_with_field_message_and_code(
    store: DevStore, token: str, clock: FakeClock
) -> None:
    sleeper = Sleeper(clock)
    mutation = (
        "mutation($q: String!) { bulkOperationRunQuery(query: $q) {"
        " bulkOperation { id } userErrors { field message code } } }"
    )

    with pytest.raises(UserErrors) as caught:
        run(
            httpx.ASGITransport(app=create_devstore_app(store)),
            lambda http: client_for(http, clock, sleeper).execute(
                SHOP, token, mutation, {"q": "{ shop { name } }"}
            ),
        )

    error = caught.value.errors[0]
    assert caught.value.mutation == "bulkOperationRunQuery"
    assert error.code == "INVALID" and error.field == ("query",) and "connection" in error.message


def test_an_invalid_document_raises_graphql_error(store: DevStore, token: str, clock: FakeClock) -> None:
    sleeper = Sleeper(clock)

    with pytest.raises(GraphQLError) as caught:
        run(
            httpx.ASGITransport(app=create_devstore_app(store)),
            lambda http: client_for(http, clock, sleeper).execute(SHOP, token, "{ shop { noSuchField } }"),
        )

    assert "undefinedField" in caught.value.codes


def test_a_rejected_token_raises_unauthorized(store: DevStore, clock: FakeClock) -> None:
    sleeper = Sleeper(clock)

    with pytest.raises(Unauthorized):
        run(
            httpx.ASGITransport(app=create_devstore_app(store)),
            lambda http: client_for(http, clock, sleeper).execute(SHOP, "shpat_revoked", "{ shop { name } }"),
        )
