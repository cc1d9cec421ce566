"""flowTriggerReceive in the double: checked against the app's own extension tomls (extensions/),
refused the way Shopify refuses (a userError), recorded when accepted."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from shopify_double import DevStore
from shopify_double.flow import MAX_PAYLOAD_BYTES, deploy_flow_triggers, load_flow_triggers

from .conftest import SHOP, Gql

EXTENSIONS = Path(__file__).resolve().parents[2] / "extensions"
RECEIVE = """mutation($handle: String, $payload: JSON) {
  flowTriggerReceive(handle: $handle, payload: $payload) { userErrors { field message } } }"""
GOOD: dict[str, Any] = {
    "customer_id": 42,
    "Previous stage": "Active",
    "New stage": "At risk",
    "Predicted CLV": 81.5,
    "Churn risk": 0.61,
    "Currency": "EUR",
}


@pytest.fixture(autouse=True)
def deployed(store: DevStore) -> None:
    deploy_flow_triggers(store, EXTENSIONS)


def receive(gql: Gql, handle: str | None, payload: Any) -> list[dict[str, Any]]:
    body = gql(RECEIVE, {"handle": handle, "payload": payload})
    assert "errors" not in body, body
    return list(body["data"]["flowTriggerReceive"]["userErrors"])


def test_the_app_declares_its_four_triggers_with_a_customer_reference() -> None:
    triggers = load_flow_triggers(EXTENSIONS)
    assert sorted(triggers) == [
        "churn-risk-crossed",
        "clv-tier-changed",
        "lifecycle-stage-changed",
        "rfm-segment-changed",
    ]
    assert all(("customer_id", "customer_reference") in t.fields for t in triggers.values())


def test_a_payload_matching_the_extension_is_accepted_and_recorded(store: DevStore, gql: Gql) -> None:
    assert receive(gql, "lifecycle-stage-changed", GOOD) == []
    [run] = store.shop(SHOP).flow_runs
    assert (run.handle, run.payload) == ("lifecycle-stage-changed", GOOD)


@pytest.mark.parametrize(
    ("handle", "payload", "field", "message"),
    [
        ("no-such-trigger", GOOD, ["handle"], "Invalid handle 'no-such-trigger'"),
        (None, GOOD, ["handle"], "Invalid handle 'None'"),
        ("lifecycle-stage-changed", [GOOD], ["payload"], "Payload must be a JSON object"),
        (
            "lifecycle-stage-changed",
            {k: v for k, v in GOOD.items() if k != "New stage"},
            ["payload", "New stage"],
            "'New stage' is required",
        ),
        (
            "lifecycle-stage-changed",
            {**GOOD, "customer_id": "42"},
            ["payload", "customer_id"],
            "'customer_id' must be a positive integer id",
        ),
        (
            "lifecycle-stage-changed",
            {**GOOD, "Churn risk": "0.61"},
            ["payload", "Churn risk"],
            "'Churn risk' must be a number",
        ),
        (
            "lifecycle-stage-changed",
            {**GOOD, "New stage": 3},
            ["payload", "New stage"],
            "'New stage' must be a string",
        ),
        (
            "lifecycle-stage-changed",
            {**GOOD, "New stage": "At\nrisk"},
            ["payload", "New stage"],
            "'New stage' must be a single line",
        ),
        (
            "lifecycle-stage-changed",
            {**GOOD, "Email": "a@b.c"},
            ["payload", "Email"],
            "'Email' is not a field of trigger 'lifecycle-stage-changed'",
        ),
    ],
)
def test_a_payload_that_does_not_match_the_extension_is_refused(
    store: DevStore, gql: Gql, handle: str | None, payload: Any, field: list[str], message: str
) -> None:
    assert receive(gql, handle, payload) == [{"field": field, "message": message}]
    assert store.shop(SHOP).flow_runs == []


def test_a_payload_over_the_size_limit_is_refused(store: DevStore, gql: Gql) -> None:
    big = {**GOOD, "Currency": "x" * MAX_PAYLOAD_BYTES}
    [error] = receive(gql, "lifecycle-stage-changed", big)
    assert error["field"] == ["payload"] and "more than the 50000 allowed" in error["message"]
    assert store.shop(SHOP).flow_runs == []


def test_an_undeclared_trigger_before_deploy_is_unknown(gql: Gql, store: DevStore) -> None:
    store.flow_triggers.clear()
    assert receive(gql, "lifecycle-stage-changed", GOOD)[0]["field"] == ["handle"]
