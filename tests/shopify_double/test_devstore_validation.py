"""The double rejects what Shopify rejects, in Shopify's shape, and resolves the rest."""

from __future__ import annotations

import time

from shopify_double import load_schema

from .conftest import Gql


def test_schema_is_built_once_per_process() -> None:
    load_schema()
    started = time.perf_counter()
    assert load_schema() is load_schema()
    assert time.perf_counter() - started < 0.01


def test_unknown_field_is_rejected_with_undefined_field(gql: Gql) -> None:
    body = gql("{ shop { name financialStatus } }")
    assert "data" not in body
    [error] = body["errors"]
    assert error["message"] == "Field 'financialStatus' doesn't exist on type 'Shop'"
    assert error["extensions"]["code"] == "undefinedField"
    assert error["locations"] == [{"line": 1, "column": 15}]
    assert error["path"] == ["query", "shop", "financialStatus"]


def test_deprecated_rest_style_field_on_order_is_rejected(gql: Gql) -> None:
    body = gql("{ orders(first: 1) { nodes { financialStatus } } }")
    assert body["errors"][0]["extensions"]["code"] == "undefinedField"


def test_wrong_argument_type_is_rejected(gql: Gql) -> None:
    body = gql('{ customers(first: "ten") { nodes { id } } }')
    [error] = body["errors"]
    assert error["extensions"]["code"] == "argumentLiteralsIncompatible"
    assert "Argument 'first' on Field 'customers' has an invalid value" in error["message"]


def test_missing_required_argument_is_rejected(gql: Gql) -> None:
    body = gql("{ customer { id } }")
    assert body["errors"][0]["message"] == "Field 'customer' is missing required arguments: id"
    assert body["errors"][0]["extensions"]["code"] == "missingRequiredArguments"


def test_missing_required_variable_is_rejected(gql: Gql) -> None:
    body = gql("query($id: ID!) { customer(id: $id) { id } }", {})
    [error] = body["errors"]
    assert error["message"] == "Variable $id of type ID! was provided invalid value"
    assert error["extensions"]["code"] == "INVALID_VARIABLE"
    assert error["extensions"]["problems"] == [{"path": [], "explanation": "Expected value to not be null"}]


def test_input_object_missing_required_field_is_rejected(gql: Gql) -> None:
    body = gql(
        "mutation($m: [MetafieldsSetInput!]!) { metafieldsSet(metafields: $m) { userErrors { message } } }",
        {"m": [{"ownerId": "gid://shopify/Customer/1", "key": "rfm_segment"}]},
    )
    problems = body["errors"][0]["extensions"]["problems"]
    assert problems == [{"path": [0, "value"], "explanation": "Expected value to not be null"}]


def test_unused_variable_is_rejected(gql: Gql) -> None:
    body = gql("query Q($id: ID!) { shop { id } }", {"id": "x"})
    assert body["errors"][0]["extensions"]["code"] == "variableNotUsed"


def test_syntax_error_is_rejected_with_location(gql: Gql) -> None:
    body = gql("{ shop { id } } }")
    [error] = body["errors"]
    assert error["message"] == 'Parse error on "}" (RCURLY) at [1, 17]'
    assert error["locations"] == [{"line": 1, "column": 17}]


def test_valid_query_resolves_the_shop(gql: Gql) -> None:
    body = gql("{ shop { id name myshopifyDomain currencyCode ianaTimezone plan { shopifyPlus } } }")
    assert "errors" not in body
    shop = body["data"]["shop"]
    assert shop["myshopifyDomain"] == "demo.myshopify.com"
    assert shop["id"].startswith("gid://shopify/Shop/")
    assert shop["currencyCode"] == "USD"
    assert shop["plan"] == {"shopifyPlus": False}


def test_fields_the_double_does_not_model_resolve_to_null_or_empty(gql: Gql) -> None:
    body = gql("{ shop { billingAddress { city } features { giftCards } taxesIncluded } }")
    assert "errors" not in body
    shop = body["data"]["shop"]
    assert shop["billingAddress"] == {"city": None}
    assert shop["features"] == {"giftCards": False}
    assert shop["taxesIncluded"] is False


def test_connection_without_first_or_last_is_an_error(gql: Gql) -> None:
    body = gql("{ customers { nodes { id } } }")
    assert body["errors"][0]["message"] == "you must provide one of first or last"
    assert body["data"] is None


def test_page_size_over_250_is_an_error(gql: Gql) -> None:
    body = gql("{ customers(first: 251) { nodes { id } } }")
    assert "Expected a page size from 0 to 250" in body["errors"][0]["message"]


def test_invalid_global_id_is_an_error(gql: Gql) -> None:
    body = gql('{ customer(id: "42") { id } }')
    assert body["errors"][0]["message"] == "Invalid global id '42'"
