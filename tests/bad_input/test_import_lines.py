"""The history import reads Shopify's GraphQL orders with the same id and timestamp rules as the
webhooks: a line that breaks them is a `PayloadError` naming the field (the import records it),
never a crash of the import."""

from __future__ import annotations

from typing import Any

import pytest

from app.imports.schemas import order_facts_from_node
from app.orders.schemas import PayloadError


def _node(**changes: Any) -> dict[str, Any]:
    node: dict[str, Any] = {
        "id": "gid://shopify/Order/1001",
        "createdAt": "2026-01-10T12:00:00Z",
        "processedAt": "2026-01-10T12:00:00Z",
        "updatedAt": "2026-01-10T12:05:00Z",
        "cancelledAt": None,
        "test": False,
        "displayFinancialStatus": "PAID",
        "currentTotalPriceSet": {"shopMoney": {"amount": "10.00"}, "presentmentMoney": {"amount": "10.00"}},
        "currentTotalDiscountsSet": {"shopMoney": {"amount": "0.00"}},
        "discountCodes": [],
        "sourceName": "web",
        "customer": {"id": "gid://shopify/Customer/501"},
    }
    node.update(changes)
    return node


def test_a_good_line_is_read() -> None:
    facts = order_facts_from_node(_node())
    assert (facts.order_id, facts.customer_id) == (1001, 501)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"id": "gid://shopify/Order/²"}, "id"),
        ({"id": "gid://shopify/Order/٣٤"}, "id"),
        ({"id": "gid://shopify/Order/0"}, "id"),
        ({"id": f"gid://shopify/Order/{2**63}"}, "id"),
        ({"id": "gid://shopify/Customer/1001"}, "id"),
        ({"customer": {"id": "gid://shopify/Customer/²"}}, "customer.id"),
        ({"updatedAt": "9999-12-31T23:59:59-05:00"}, "updatedAt"),
        ({"updatedAt": "9999-12-31T23:59:59Z"}, "updatedAt"),
        ({"processedAt": "0001-01-01T00:00:00+05:00"}, "processedAt"),
        ({"cancelledAt": "1969-01-01T00:00:00Z"}, "cancelledAt"),
    ],
)
def test_a_bad_line_is_a_payload_error_naming_the_field(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(PayloadError) as refused:
        order_facts_from_node(_node(**changes))
    assert refused.value.field == field
