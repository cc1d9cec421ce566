"""metafieldsSet / metafieldsDelete: types, definitions, limits, atomicity, compare-and-set."""

from __future__ import annotations

from typing import Any

import pytest

from shopify_double import DevStore

from .conftest import SHOP, Gql

SET = """mutation($m: [MetafieldsSetInput!]!) { metafieldsSet(metafields: $m) {
  metafields { id namespace key type value compareDigest }
  userErrors { field message code elementIndex } } }"""
READ = """query($id: ID!) { customer(id: $id) {
  clv: metafield(key: "predicted_clv") { value jsonValue type compareDigest }
  seg: metafield(namespace: "$app", key: "rfm_segment") { value } } }"""
CHOICES = ["Champions", "Loyal", "At risk"]


@pytest.fixture
def customer_gid(store: DevStore) -> str:
    store.define_metafield(SHOP, "predicted_clv", "number_decimal")
    store.define_metafield(SHOP, "orders_12m", "number_integer")
    store.define_metafield(SHOP, "rfm_segment", "single_line_text_field", choices=CHOICES)
    store.define_metafield(SHOP, "last_scored_on", "date")
    return store.create_customer(SHOP).gid


def mf(owner: str, key: str, value: str, **extra: Any) -> dict[str, Any]:
    return {"ownerId": owner, "key": key, "value": value, **extra}


def test_set_then_read_round_trip(gql: Gql, customer_gid: str, store: DevStore) -> None:
    body = gql(
        SET, {"m": [mf(customer_gid, "predicted_clv", "123.45"), mf(customer_gid, "rfm_segment", "Loyal")]}
    )
    payload = body["data"]["metafieldsSet"]
    assert payload["userErrors"] == []
    assert [m["namespace"] for m in payload["metafields"]] == [f"app--{store.app_id}"] * 2
    read = gql(READ, {"id": customer_gid})["data"]["customer"]
    assert read["clv"]["value"] == "123.45"
    assert read["clv"]["type"] == "number_decimal"
    assert read["clv"]["compareDigest"] == payload["metafields"][0]["compareDigest"]
    assert read["seg"] == {"value": "Loyal"}


def test_set_costs_a_mutation_and_is_logged(gql: Gql, customer_gid: str, store: DevStore) -> None:
    body = gql(SET, {"m": [mf(customer_gid, "predicted_clv", "1.0")]})
    assert body["extensions"]["cost"]["requestedQueryCost"] == 10
    assert store.calls[-1].variables == {"m": [mf(customer_gid, "predicted_clv", "1.0")]}


@pytest.mark.parametrize(
    ("key", "value", "code"),
    [
        ("orders_12m", "1.5", "INVALID_VALUE"),
        ("orders_12m", "ten", "INVALID_VALUE"),
        ("predicted_clv", "12,50", "INVALID_VALUE"),
        ("rfm_segment", "Whales", "INCLUSION"),
        ("last_scored_on", "2026-13-01", "INVALID_VALUE"),
        ("last_scored_on", "01/02/2026", "INVALID_VALUE"),
        ("predicted_clv", "", "BLANK"),
    ],
)
def test_value_must_match_the_definition(
    gql: Gql, customer_gid: str, key: str, value: str, code: str
) -> None:
    errors = gql(SET, {"m": [mf(customer_gid, key, value)]})["data"]["metafieldsSet"]["userErrors"]
    assert [(e["field"], e["code"], e["elementIndex"]) for e in errors] == [
        (["metafields", "0", "value"], code, 0)
    ]


def test_type_must_equal_the_definition_type(gql: Gql, customer_gid: str) -> None:
    body = gql(SET, {"m": [mf(customer_gid, "predicted_clv", "12", type="number_integer")]})
    [error] = body["data"]["metafieldsSet"]["userErrors"]
    assert error["code"] == "INVALID_TYPE"


def test_type_is_required_without_a_definition(gql: Gql, customer_gid: str) -> None:
    body = gql(SET, {"m": [mf(customer_gid, "undeclared", "x")]})
    assert body["data"]["metafieldsSet"]["userErrors"][0]["code"] == "BLANK"


def test_an_error_anywhere_writes_nothing(gql: Gql, customer_gid: str, store: DevStore) -> None:
    body = gql(SET, {"m": [mf(customer_gid, "predicted_clv", "10"), mf(customer_gid, "rfm_segment", "Nope")]})
    [error] = body["data"]["metafieldsSet"]["userErrors"]
    assert error["elementIndex"] == 1
    assert store.metafield_value(SHOP, customer_gid, "predicted_clv") is None


def test_more_than_25_inputs_are_rejected(gql: Gql, customer_gid: str, store: DevStore) -> None:
    body = gql(SET, {"m": [mf(customer_gid, "predicted_clv", str(i)) for i in range(26)]})
    assert "data" not in body
    [error] = body["errors"]
    assert error["extensions"]["code"] == "MAX_INPUT_SIZE_EXCEEDED"
    assert error["message"] == "The input array size of 26 is greater than the maximum allowed of 25."
    assert store.metafield_value(SHOP, customer_gid, "predicted_clv") is None


def test_exactly_25_inputs_are_accepted(gql: Gql, store: DevStore, customer_gid: str) -> None:
    owners = [c.gid for c in store.create_customers(SHOP, 25)]
    body = gql(SET, {"m": [mf(o, "predicted_clv", "1.5") for o in owners]})
    assert body["data"]["metafieldsSet"]["userErrors"] == []


def test_compare_digest_null_creates_when_absent(gql: Gql, customer_gid: str) -> None:
    body = gql(SET, {"m": [mf(customer_gid, "predicted_clv", "5", compareDigest=None)]})
    assert body["data"]["metafieldsSet"]["userErrors"] == []


def test_compare_digest_null_conflicts_when_present(gql: Gql, customer_gid: str, store: DevStore) -> None:
    gql(SET, {"m": [mf(customer_gid, "predicted_clv", "5")]})
    body = gql(SET, {"m": [mf(customer_gid, "predicted_clv", "6", compareDigest=None)]})
    [error] = body["data"]["metafieldsSet"]["userErrors"]
    assert error["code"] == "STALE_OBJECT"
    assert store.metafield_value(SHOP, customer_gid, "predicted_clv") == "5"


def test_compare_digest_must_match_the_stored_value(gql: Gql, customer_gid: str, store: DevStore) -> None:
    first = gql(SET, {"m": [mf(customer_gid, "predicted_clv", "5")]})
    digest = first["data"]["metafieldsSet"]["metafields"][0]["compareDigest"]
    gql(SET, {"m": [mf(customer_gid, "predicted_clv", "7")]})  # someone else writes meanwhile
    stale = gql(SET, {"m": [mf(customer_gid, "predicted_clv", "6", compareDigest=digest)]})
    assert stale["data"]["metafieldsSet"]["userErrors"][0]["code"] == "STALE_OBJECT"
    current = gql(READ, {"id": customer_gid})["data"]["customer"]["clv"]["compareDigest"]
    fresh = gql(SET, {"m": [mf(customer_gid, "predicted_clv", "6", compareDigest=current)]})
    assert fresh["data"]["metafieldsSet"]["userErrors"] == []
    assert store.metafield_value(SHOP, customer_gid, "predicted_clv") == "6"


def test_malformed_compare_digest_is_invalid(gql: Gql, customer_gid: str) -> None:
    body = gql(SET, {"m": [mf(customer_gid, "predicted_clv", "6", compareDigest="nope")]})
    assert body["data"]["metafieldsSet"]["userErrors"][0]["code"] == "INVALID_COMPARE_DIGEST"


def test_unknown_owner_is_a_user_error(gql: Gql, customer_gid: str) -> None:
    body = gql(SET, {"m": [mf("gid://shopify/Customer/1", "predicted_clv", "6")]})
    assert body["data"]["metafieldsSet"]["userErrors"][0]["field"] == ["metafields", "0", "ownerId"]


def test_delete_removes_the_value(gql: Gql, customer_gid: str, store: DevStore) -> None:
    gql(SET, {"m": [mf(customer_gid, "predicted_clv", "5")]})
    body = gql(
        """mutation($m: [MetafieldIdentifierInput!]!) { metafieldsDelete(metafields: $m) {
             deletedMetafields { key namespace ownerId } userErrors { message } } }""",
        {
            "m": [
                {"ownerId": customer_gid, "namespace": "$app", "key": "predicted_clv"},
                {"ownerId": customer_gid, "namespace": "$app", "key": "rfm_segment"},
            ]
        },
    )
    deleted = body["data"]["metafieldsDelete"]["deletedMetafields"]
    assert deleted[0]["key"] == "predicted_clv"
    assert deleted[1] is None
    assert store.metafield_value(SHOP, customer_gid, "predicted_clv") is None
