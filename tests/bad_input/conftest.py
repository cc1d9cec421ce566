"""The bad-input suite: every body here is correctly signed and posted through the real endpoint,
each must be refused with a 4xx naming the field, and no table may change."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session
from starlette.testclient import TestClient

from app.models import Base

# the embedded app wired to the Shopify double, for the settings form's body limits
from tests.admin.conftest import admin_app, admin_settings, shopify_http, store  # noqa: F401
from tests.bad_input.bodies import (
    CUSTOMER_ID,
    MERGED_CUSTOMER_ID,
    ORDER_ID,
    OTHER,
    OTHER_SHOPIFY_ID,
    SHOP,
    SHOP_SHOPIFY_ID,
    body,
)
from tests.fixtures import database
from tests.fixtures.factories import create_shop, order_payload
from tests.fixtures.webhooks import post_webhook

if TYPE_CHECKING:
    from tests.conftest import Databases

Snapshot = dict[str, list[str]]


def snapshot(session: Session) -> Snapshot:
    """Every row of every table, each as the database's own JSON text of its columns: a refused
    delivery changes none of them. One query reads them all (one per table cost more than the
    deliveries being checked)."""
    session.rollback()  # a new snapshot: SQLite readers otherwise keep seeing the old one
    rows = session.execute(text(_every_row(session.get_bind().dialect.name))).all()
    found: Snapshot = {table.name: [] for table in Base.metadata.sorted_tables}
    for table, row in rows:
        found[table].append(row)
    return {table: sorted(values) for table, values in found.items()}


@cache
def _every_row(dialect: str) -> str:
    as_json = "json_build_array" if dialect == "postgresql" else "json_array"
    selects = []
    for table in Base.metadata.sorted_tables:
        columns = ", ".join(f'"{column.name}"' for column in table.columns)
        selects.append(f"SELECT '{table.name}', CAST({as_json}({columns}) AS TEXT) FROM \"{table.name}\"")
    return " UNION ALL ".join(selects)


@pytest.fixture(scope="session")
def seeded_once() -> set[str]:
    """The databases (by URL) whose seeded state `database.snapshot` keeps for this session."""
    return set()


_CLEARED = pytest.StashKey[bool]()  # set when `engine` emptied the database: `seeded` restores it


@pytest.fixture
def engine(
    request: pytest.FixtureRequest, databases: Databases, backend: str, seeded_once: set[str]
) -> Engine:
    """The test database emptied (tests/conftest.py), except under `seeded` when it still holds
    exactly the seeded state: a refused delivery writes nothing, so the test before most often
    left it so, and one query that says so costs less than emptying and restoring it."""
    engine = databases.get(backend)[0]
    keep = "seeded" in request.fixturenames and str(engine.url) in seeded_once
    if not (keep and database.unchanged_since(engine, "bad_input")):
        database.clear(engine)
        request.node.stash[_CLEARED] = True
    return engine


@pytest.fixture
def seeded(
    request: pytest.FixtureRequest,
    client: TestClient,
    session: Session,
    engine: Engine,
    seeded_once: set[str],
) -> Snapshot:
    """Two installed shops whose Shopify ids we know, each with orders, and a data request.

    The deliveries go through the real endpoint once per session and database; on PostgreSQL the
    later tests get a copy of the rows they left (`database.restore`), as the admin tests do, or
    the rows themselves when no test changed them (`engine` above)."""
    url = str(engine.url)
    if url in seeded_once:
        if request.node.stash.get(_CLEARED, False):
            database.restore(engine, "bad_input")
        return snapshot(session)
    _seed(client, session)
    if engine.dialect.name == "postgresql":
        database.snapshot(engine, "bad_input")
        seeded_once.add(url)
    return snapshot(session)


def _seed(client: TestClient, session: Session) -> None:
    create_shop(session, SHOP, shopify_shop_id=SHOP_SHOPIFY_ID)
    create_shop(session, OTHER, shopify_shop_id=OTHER_SHOPIFY_ID)
    for shop in (SHOP, OTHER):
        for payload in (
            order_payload(ORDER_ID, CUSTOMER_ID),
            order_payload(ORDER_ID + 1, MERGED_CUSTOMER_ID),
        ):
            assert post_webhook(client, "orders/create", payload, shop).status_code == 200
    request = body("customers/data_request")
    assert post_webhook(client, "customers/data_request", request, SHOP).status_code == 200


Refuse = Callable[..., str]


@pytest.fixture
def refused(client: TestClient, session: Session, seeded: Snapshot) -> Refuse:
    """Post a signed delivery; assert its status and that nothing was written; return the detail."""

    def send(
        topic: str, payload: Any, *, status: int = 422, field: str | None = None, shop: str = SHOP
    ) -> str:
        response = post_webhook(client, topic, payload, shop)
        assert response.status_code == status, response.text
        detail = str(response.json()["detail"])
        if field is not None:
            assert detail.startswith(f"{field}: "), detail
        assert snapshot(session) == seeded
        return detail

    return send


def refuse_each(refused: Refuse, topic: str, payloads: dict[str, Any], **expected: Any) -> None:
    """`refused` for each payload (one test per field, not per value: each test seeds the
    database), reporting every payload that was not refused."""
    failures = []
    for label, payload in payloads.items():
        try:
            refused(topic, payload, **expected)
        except AssertionError as exc:
            failures.append(f"{label}: {str(exc).splitlines()[0]}")
    assert not failures, "\n".join(failures)
