"""A body Shopify signed for one topic, re-sent under another topic's header, is refused: each
topic's body must have its own documented shape. The destructive topics (shop/redact,
customers/redact, app/uninstalled, orders/delete) take exactly their small documented bodies."""

from __future__ import annotations

import json

import pytest
from sqlalchemy.orm import Session
from starlette.testclient import TestClient

from app.models import Shop
from app.webhooks.handlers import TOPICS
from tests.bad_input.bodies import BODIES, SHOP, body, kind_of, spoil
from tests.bad_input.conftest import Refuse, Snapshot, refuse_each, snapshot
from tests.fixtures.webhooks import post_webhook


@pytest.mark.parametrize("topic", sorted(TOPICS))
def test_body_of_every_other_topic_is_refused(refused: Refuse, topic: str) -> None:
    others = {kind: BODIES[kind]() for kind in BODIES if kind != kind_of(topic)}
    refuse_each(refused, topic, others, status=422)


@pytest.mark.both_dbs
@pytest.mark.parametrize(
    "topic, field",
    [
        ("shop/redact", "shop_id"),
        ("customers/redact", "shop_id"),
        ("app/uninstalled", "myshopify_domain"),
        ("orders/delete", "admin_graphql_api_id"),
    ],
)
def test_order_body_as_a_destructive_topic_is_a_422(refused: Refuse, topic: str, field: str) -> None:
    # the first field the shape check meets that an order body lacks, or has and must not
    refused(topic, body("orders/create"), field=field)


@pytest.mark.both_dbs
def test_data_request_body_as_customers_redact_is_a_422(refused: Refuse) -> None:
    refused("customers/redact", body("customers/data_request"), field="orders_to_redact")


@pytest.mark.parametrize("topic", ["customers/redact", "customers/data_request"])
def test_customer_body_as_shop_redact_is_a_422(refused: Refuse, topic: str) -> None:
    refused("shop/redact", body(topic), field="customer")


@pytest.mark.parametrize("extra", ["admin_graphql_api_id", "line_items", "updated_at"])
def test_orders_delete_takes_only_the_id(refused: Refuse, extra: str) -> None:
    refused("orders/delete", {**body("orders/delete"), extra: body("orders/create").get(extra)}, field=extra)


def test_merge_of_a_customer_into_itself_is_a_422(refused: Refuse) -> None:
    same = spoil(
        body("customers/merge"),
        ("admin_graphql_api_customer_deleted_id",),
        body("customers/merge")["admin_graphql_api_customer_kept_id"],
    )
    refused("customers/merge", same, field="admin_graphql_api_customer_deleted_id")


@pytest.mark.both_dbs
def test_shop_redact_for_an_installed_shop_erases_nothing(
    client: TestClient, session: Session, seeded: Snapshot
) -> None:
    """Shopify sends shop/redact 48 h after an uninstall, never once the app is installed again
    (https://shopify.dev/docs/apps/build/compliance/privacy-law-compliance)."""
    response = post_webhook(client, "shop/redact", body("shop/redact"), SHOP)
    assert response.status_code == 200, response.text
    assert response.json()["outcome"] == "installed"
    # the delivery itself is recorded (`last_webhook_at`, at most once a minute: when the seed is
    # older than that); every other value stays
    assert _without_last_webhook(snapshot(session)) == _without_last_webhook(seeded)


def _without_last_webhook(rows: Snapshot) -> Snapshot:
    at = [column.name for column in Shop.__table__.columns].index("last_webhook_at")
    shops = [json.dumps([v for i, v in enumerate(json.loads(row)) if i != at]) for row in rows["shops"]]
    return {**rows, "shops": sorted(shops)}


@pytest.mark.both_dbs
@pytest.mark.parametrize("topic", sorted(TOPICS))
def test_each_valid_body_here_is_accepted(client: TestClient, seeded: Snapshot, topic: str) -> None:
    """The bodies the other tests spoil are accepted as they are: a refusal is about the spoiled field."""
    response = post_webhook(client, topic, body(topic), SHOP)
    assert response.status_code == 200, response.text
