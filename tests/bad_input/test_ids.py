"""Every id the app reads is a positive integer of ASCII digits below 2^63 (BIGINT), as a JSON
integer or a numeric string; a GID names the resource type the field is about. Anything else is a
422 naming the field, never a 500, and nothing is written."""

from __future__ import annotations

from typing import Any

import pytest

from tests.bad_input.bodies import DROP, body, spoil
from tests.bad_input.conftest import Refuse, refuse_each

# (topic, where the id is, the field the answer names, a field to drop first so the id is read)
ID_FIELDS: list[tuple[str, tuple[str | int, ...], str, tuple[str, ...] | None]] = [
    ("orders/create", ("id",), "id", ("admin_graphql_api_id",)),
    ("orders/updated", ("customer", "id"), "customer.id", ("customer", "admin_graphql_api_id")),
    ("refunds/create", ("id",), "id", ("admin_graphql_api_id",)),
    ("refunds/create", ("order_id",), "order_id", None),
    ("orders/delete", ("id",), "id", None),
    ("orders/edited", ("order_edit", "order_id"), "order_edit.order_id", None),
    ("customers/redact", ("customer", "id"), "customer.id", None),
    ("customers/redact", ("orders_to_redact", 0), "orders_to_redact[0]", None),
    ("customers/redact", ("shop_id",), "shop_id", None),
    ("customers/data_request", ("customer", "id"), "customer.id", None),
    ("customers/data_request", ("orders_requested", 0), "orders_requested[0]", None),
    ("customers/data_request", ("data_request", "id"), "data_request.id", None),
    ("customers/data_request", ("shop_id",), "shop_id", None),
    ("shop/redact", ("shop_id",), "shop_id", None),
    ("app/uninstalled", ("id",), "id", None),
    ("shop/update", ("id",), "id", None),
]
BAD_IDS: list[Any] = [
    2**63,
    2**64,
    "9223372036854775808",
    "9" * 30,
    0,
    "0",
    -1,
    "-1",
    "²",
    "٣٤",
    "12a",
    "",
    " 12",
    "12\n",
    True,
    1.5,
    None,
    [1],
]
# the values the outside probe found: a 500, or written
PROBED_IDS: list[Any] = [2**63, "²", 0, "0", "٣٤", True]

# (topic, where the GID is, the field the answer names, the resource type it must name)
GID_FIELDS: list[tuple[str, tuple[str, ...], str, str]] = [
    ("orders/create", ("admin_graphql_api_id",), "admin_graphql_api_id", "Order"),
    ("orders/paid", ("customer", "admin_graphql_api_id"), "customer.admin_graphql_api_id", "Customer"),
    ("refunds/create", ("admin_graphql_api_id",), "admin_graphql_api_id", "Refund"),
    (
        "customers/merge",
        ("admin_graphql_api_customer_kept_id",),
        "admin_graphql_api_customer_kept_id",
        "Customer",
    ),
    (
        "customers/merge",
        ("admin_graphql_api_customer_deleted_id",),
        "admin_graphql_api_customer_deleted_id",
        "Customer",
    ),
    ("app/scopes_update", ("shop_id",), "shop_id", "Shop"),
    ("bulk_operations/finish", ("admin_graphql_api_id",), "admin_graphql_api_id", "BulkOperation"),
]


def bad_gids(resource: str) -> list[Any]:
    prefix = f"gid://shopify/{resource}/"
    return [
        f"{prefix}0",
        f"{prefix}{2**63}",
        f"{prefix}{'9' * 5000}",
        f"{prefix}٣٤",
        f"{prefix}²",
        f"{prefix}-5",
        f"{prefix}5\n",
        f"{prefix}",
        "gid://shopify/Product/5" if resource != "Product" else "gid://shopify/Order/5",
        "https://www.example.com/",
        5,
    ]


def _with_id(topic: str, path: tuple[str | int, ...], drop: tuple[str, ...] | None, value: Any) -> Any:
    payload = body(topic)
    if drop is not None:
        payload = spoil(payload, drop, DROP)
    return spoil(payload, path, value)


def _field_ids(v: Any) -> str:
    return v if isinstance(v, str) else ""


@pytest.mark.parametrize("topic, path, field, drop", ID_FIELDS, ids=_field_ids)
def test_bad_id_is_a_422_naming_the_field(
    refused: Refuse, topic: str, path: tuple[str | int, ...], field: str, drop: Any
) -> None:
    payloads = {repr(v)[:30]: _with_id(topic, path, drop, v) for v in BAD_IDS}
    refuse_each(refused, topic, payloads, field=field)


@pytest.mark.both_dbs
@pytest.mark.parametrize(
    "topic, path, field, drop",
    [ID_FIELDS[0], ID_FIELDS[4], ID_FIELDS[7], ID_FIELDS[11], ID_FIELDS[13]],
    ids=_field_ids,
)
def test_probed_id_is_refused_on_both_databases(
    refused: Refuse, topic: str, path: tuple[str | int, ...], field: str, drop: Any
) -> None:
    payloads = {repr(v): _with_id(topic, path, drop, v) for v in PROBED_IDS}
    refuse_each(refused, topic, payloads, field=field)


def test_order_id_beside_its_gid_is_checked_too(refused: Refuse) -> None:
    payloads = {repr(v): spoil(body("orders/create"), ("id",), v) for v in PROBED_IDS}
    refuse_each(refused, "orders/create", payloads, field="id")


@pytest.mark.parametrize("topic, path, field, resource", GID_FIELDS, ids=_field_ids)
def test_bad_gid_is_a_422_naming_the_field(
    refused: Refuse, topic: str, path: tuple[str, ...], field: str, resource: str
) -> None:
    payloads = {repr(v)[:50]: spoil(body(topic), path, v) for v in bad_gids(resource)}
    refuse_each(refused, topic, payloads, field=field)


@pytest.mark.both_dbs
def test_gid_with_id_zero_is_refused_on_both_databases(refused: Refuse) -> None:
    zero = spoil(body("orders/create"), ("admin_graphql_api_id",), "gid://shopify/Order/0")
    refused("orders/create", zero, field="admin_graphql_api_id")
