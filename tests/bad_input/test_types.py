"""A field of the wrong JSON type, or a body that is not an object, is a 422 naming the field."""

from __future__ import annotations

from typing import Any

import pytest

from app.webhooks.handlers import TOPICS
from tests.bad_input.bodies import BODIES, body, spoil
from tests.bad_input.conftest import Refuse, refuse_each


@pytest.mark.parametrize("topic", sorted(TOPICS))
def test_body_that_is_not_an_object_is_a_422(refused: Refuse, topic: str) -> None:
    refuse_each(refused, topic, {repr(v): v for v in ([], [body(topic)], "x", 5, None, True)})


# (topic, where, the field the answer names, wrong values)
WRONG_TYPES: list[tuple[str, tuple[str | int, ...], str, list[Any]]] = [
    ("customers/data_request", ("data_request", "id"), "data_request.id", [True, False, "x", {}]),
    ("customers/data_request", ("data_request",), "data_request", [5, None, [9999], "9999"]),
    ("customers/data_request", ("orders_requested",), "orders_requested", ["1,2", None, {"1": 1}, 5]),
    ("customers/redact", ("orders_to_redact",), "orders_to_redact", ["1,2", None, {"1": 1}, 5]),
    ("customers/redact", ("orders_to_redact", 0), "orders_to_redact[0]", [-1, True, "x", {}]),
    ("customers/redact", ("customer",), "customer", ["601", None, [601], 601]),
    ("customers/redact", ("shop_domain",), "shop_domain", [None, 5, "", ["target-shop.myshopify.com"]]),
    ("shop/redact", ("shop_domain",), "shop_domain", [None, 5, "", ["target-shop.myshopify.com"]]),
    ("app/uninstalled", ("myshopify_domain",), "myshopify_domain", [None, 5, ""]),
    ("shop/update", ("myshopify_domain",), "myshopify_domain", [None, 5, ""]),
    ("shop/update", ("currency",), "currency", [None, 5, "", "usd", "EURO", "€", ["EUR"]]),
    (
        "shop/update",
        ("iana_timezone",),
        "iana_timezone",
        [5, "", "Not/AZone", " UTC", "../../etc/passwd", "/usr/share/zoneinfo/UTC", ["UTC"], "X" * 300],
    ),
    ("customers/merge", ("status",), "status", [5, True, ["completed"]]),
    ("app/scopes_update", ("current",), "current", ["read_orders", None, [5]]),
    ("bulk_operations/finish", ("status",), "status", [None, 5]),
    ("orders/edited", ("order_edit",), "order_edit", [None, [], "x"]),
    ("refunds/create", ("transactions",), "transactions", ["x", 5, {}]),
    ("orders/create", ("customer",), "customer", ["601", [601], 601]),
    ("orders/create", ("test",), "test", ["no", 0, None]),
]


def _field_ids(v: Any) -> str:
    return v if isinstance(v, str) else ""


@pytest.mark.parametrize("topic, path, field, values", WRONG_TYPES, ids=_field_ids)
def test_wrong_type_is_a_422_naming_the_field(
    refused: Refuse, topic: str, path: tuple[str | int, ...], field: str, values: list[Any]
) -> None:
    payloads = {repr(v): spoil(body(topic), path, v) for v in values}
    refuse_each(refused, topic, payloads, field=field)


@pytest.mark.both_dbs
def test_data_request_id_true_and_negative_order_id_are_refused_on_both_databases(refused: Refuse) -> None:
    refused(
        "customers/data_request",
        spoil(body("customers/data_request"), ("data_request", "id"), True),
        field="data_request.id",
    )
    refused(
        "customers/redact",
        spoil(body("customers/redact"), ("orders_to_redact",), [-1]),
        field="orders_to_redact[0]",
    )


def test_every_topic_has_a_valid_body_here() -> None:
    assert {k if k != "order" else "orders/create" for k in BODIES} | {
        "orders/updated",
        "orders/paid",
        "orders/cancelled",
        "shop/update",  # the Shop resource, as app/uninstalled's body
    } == set(TOPICS)
