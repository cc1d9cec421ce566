"""`shopify.app.toml` and `shopify.web.toml` agree with the code and with what `shopify app deploy`
accepts (https://shopify.dev/docs/apps/build/cli-for-apps/app-configuration)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from starlette.testclient import TestClient

import app.main
from app.auth.service import CALLBACK_PATH
from app.config import API_VERSION, Settings
from app.vocabulary import RFM_SEGMENT_NAMES, SEGMENT_NAMES, STAGE_NAMES, THIRDS_GROUP_NAMES
from app.webhooks.handlers import TOPICS
from shopify_double.grants import DEFAULT_APP_SCOPES

ROOT = Path(__file__).resolve().parents[1]
APP_TOML = ROOT / "shopify.app.toml"
WEB_TOML = ROOT / "shopify.web.toml"
COMPLIANCE_TOPICS = {"customers/data_request", "customers/redact", "shop/redact"}

# Topics with a handler but deliberately not subscribed (or the other way round), with the reason.
# Whoever adds the subscription removes the entry (the test then insists on both sides).
NOT_SUBSCRIBED: dict[str, str] = {}

# The scopes the app declares; write_customers implies read_customers, which is therefore not listed
# (Shopify's own libraries compress it away: shopify-app-js lib/auth/scopes).
SCOPES = "read_orders,read_all_orders,write_customers,read_customer_merge"

# The app-owned customer metafields (docs/architecture.md) and their types.
METAFIELDS = {
    "rfm_recency": "number_integer",
    "rfm_frequency": "number_integer",
    "rfm_monetary": "number_integer",
    "rfm_segment": "single_line_text_field",
    "lifecycle_stage": "single_line_text_field",
    "predicted_clv": "number_decimal",
    "historic_clv": "number_decimal",
    "total_clv": "number_decimal",
    "churn_risk": "number_decimal",
    "next_order_date": "date",
}


@pytest.fixture(scope="module")
def config() -> dict[str, Any]:
    return tomllib.loads(APP_TOML.read_text())


@pytest.fixture(scope="module")
def web() -> dict[str, Any]:
    return tomllib.loads(WEB_TOML.read_text())


def subscribed(config: dict[str, Any]) -> set[str]:
    topics: set[str] = set()
    for sub in config["webhooks"]["subscriptions"]:
        topics.update(sub.get("topics", []), sub.get("compliance_topics", []))
    return topics


def test_every_subscribed_topic_has_a_handler_and_every_handler_a_subscription(
    config: dict[str, Any],
) -> None:
    assert subscribed(config) ^ set(TOPICS) == set(NOT_SUBSCRIBED)


def test_compliance_topics_are_subscribed_as_compliance_topics(config: dict[str, Any]) -> None:
    compliance = {t for s in config["webhooks"]["subscriptions"] for t in s.get("compliance_topics", [])}
    assert compliance == COMPLIANCE_TOPICS
    ordinary = {t for s in config["webhooks"]["subscriptions"] for t in s.get("topics", [])}
    assert not ordinary & COMPLIANCE_TOPICS


def test_each_subscription_names_the_handlers_of_its_topics() -> None:
    blocks = re.findall(
        r"# Handled by: app/webhooks/handlers\.py \(([^)]*)\)\n\s*\[\[webhooks\.subscriptions\]\]\n"
        r"\s*(?:topics|compliance_topics) = \[([^\]]*)\]",
        APP_TOML.read_text(),
    )
    assert len(blocks) == APP_TOML.read_text().count("[[webhooks.subscriptions]]")
    for comment, topic_list in blocks:
        named = set(re.findall(r"_[a-z_]+", comment))
        topics = re.findall(r'"([^"]+)"', topic_list)
        assert {TOPICS[t].parse.__name__ for t in topics} == named, topics


@pytest.fixture(scope="module")
def client() -> TestClient:
    # No lifespan, no database: only whether a route exists is asked.
    return TestClient(app.main.create_app(Settings(app_env="test")))


def test_webhooks_use_the_pinned_api_version_and_the_webhook_route(
    config: dict[str, Any], client: TestClient
) -> None:
    assert config["webhooks"]["api_version"] == API_VERSION
    for sub in config["webhooks"]["subscriptions"]:
        assert sub["uri"] == "/webhooks"
    assert client.get("/webhooks").status_code == 405  # exists, POST only


def _listed(scopes: str) -> set[str]:
    return {s.strip() for s in scopes.split(",") if s.strip()}


def _implied(scopes: str) -> set[str]:
    return {"read_" + s.removeprefix("write_") for s in _listed(scopes) if s.startswith("write_")}


def test_scopes_list_nothing_that_another_scope_implies(config: dict[str, Any]) -> None:
    scopes = config["access_scopes"]["scopes"]
    assert scopes == SCOPES
    assert not _listed(scopes) & _implied(scopes)


def test_scopes_are_the_ones_the_app_asks_for(config: dict[str, Any]) -> None:
    assert config["access_scopes"]["scopes"] == Settings(app_env="test").scopes
    assert config["embedded"] is True


def test_the_shopify_double_grants_the_declared_scopes(config: dict[str, Any]) -> None:
    assert config["access_scopes"]["scopes"] == DEFAULT_APP_SCOPES


def test_bulk_operations_finish_is_subscribed(config: dict[str, Any]) -> None:
    assert "bulk_operations/finish" in subscribed(config)


def test_redirect_urls_contain_the_callback_route(config: dict[str, Any], client: TestClient) -> None:
    assert f"{config['application_url']}{CALLBACK_PATH}" in config["auth"]["redirect_urls"]
    response = client.get(CALLBACK_PATH)
    assert response.status_code == 400 and "hmac" in response.json()["detail"]  # the callback route


def test_every_product_metafield_is_declared_with_its_type(config: dict[str, Any]) -> None:
    declared = config["customer"]["metafields"]["app"]
    assert {key: d["type"] for key, d in declared.items()} == METAFIELDS
    for key, definition in declared.items():
        assert definition["name"] and definition["description"], key
        assert definition["access"]["admin"] == "merchant_read", key


def test_admin_filterable_only_on_text_definitions(config: dict[str, Any]) -> None:
    # Number and date definitions are not eligible: a deploy would answer INVALID_CAPABILITY.
    declared = config["customer"]["metafields"]["app"]
    filterable = {k for k, d in declared.items() if d.get("capabilities", {}).get("admin_filterable")}
    assert filterable == {k for k, t in METAFIELDS.items() if t == "single_line_text_field"}


def test_choice_metafields_list_the_names_the_scoring_uses(config: dict[str, Any]) -> None:
    declared = config["customer"]["metafields"]["app"]
    # the quintile method's ten segments and the thirds method's three groups
    assert set(declared["rfm_segment"]["validations"]["choices"]) == set(RFM_SEGMENT_NAMES)
    assert set(SEGMENT_NAMES) | set(THIRDS_GROUP_NAMES) == set(RFM_SEGMENT_NAMES)
    assert len(RFM_SEGMENT_NAMES) == 13
    assert declared["lifecycle_stage"]["validations"]["choices"] == list(STAGE_NAMES)


def test_numeric_metafields_are_bounded(config: dict[str, Any]) -> None:
    declared = config["customer"]["metafields"]["app"]
    for key in ("rfm_recency", "rfm_frequency", "rfm_monetary"):
        assert declared[key]["validations"] == {"min": 1, "max": 5}
    assert declared["churn_risk"]["validations"] == {"min": 0, "max": 1}


def test_web_toml_runs_this_app(web: dict[str, Any]) -> None:
    assert web["roles"] == ["frontend", "backend"]
    assert web["webhooks_path"] == "/webhooks"
    assert web["auth_callback_path"] == CALLBACK_PATH
    assert web["commands"]["predev"] == "alembic upgrade heads"
    module, _, attribute = web["commands"]["dev"].split()[1].partition(":")
    assert (module, attribute) == ("app.main", "app")
    assert "$PORT" in web["commands"]["dev"]
    built = app.main.app  # what uvicorn reads: the module builds it on first access
    assert isinstance(built, FastAPI)
