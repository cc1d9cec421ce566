from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from shopify_double import AdminGraphQL, DevStore, FakeClock

SHOP = "demo.myshopify.com"
SCOPES = "read_orders,read_customers,write_customers"

Gql = Callable[..., dict[str, Any]]


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
    return store.issue_access_token(SHOP, SCOPES)


@pytest.fixture
def gql(store: DevStore, token: str) -> Gql:
    """Run a document for SHOP with a full-scope token, bypassing HTTP."""
    api = AdminGraphQL(store)
    scopes = store.token_scopes(SHOP, token)
    assert scopes is not None

    def run(query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        return api.run(SHOP, scopes, query, variables)

    return run
