"""The Flow trigger extensions (extensions/*/shopify.extension.toml) and the names the app sends
(app/vocabulary.py) are one definition: same handles, same keys, types Flow accepts on triggers."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from app.sync.flow import document
from app.vocabulary import FLOW_CUSTOMER_FIELD, FLOW_TRIGGER_FIELDS, FLOW_TRIGGER_HANDLES
from shopify_double import check_document
from shopify_double.flow import TRIGGER_FIELD_TYPES, load_flow_triggers

EXTENSIONS = Path(__file__).resolve().parents[2] / "extensions"


def test_every_trigger_the_app_sends_is_declared_with_the_same_fields() -> None:
    declared = load_flow_triggers(EXTENSIONS)
    assert sorted(declared) == sorted(FLOW_TRIGGER_HANDLES)
    for handle, keys in FLOW_TRIGGER_FIELDS.items():
        assert [k for k, _ in declared[handle].fields] == [FLOW_CUSTOMER_FIELD, *keys]


def test_the_extensions_follow_shopify_cli_rules() -> None:
    for path in EXTENSIONS.glob("*/shopify.extension.toml"):
        config = tomllib.loads(path.read_text())
        [ext] = config["extensions"]
        assert re.fullmatch(r"[a-z0-9-]{1,30}", ext["handle"]) and path.parent.name == ext["handle"]
        if ext["type"] == "flow_trigger":
            for field in config["settings"]["fields"]:
                assert field["type"] in TRIGGER_FIELD_TYPES
                assert field["type"] == "customer_reference" or re.fullmatch(r"[A-Za-z ]+", field["key"])
        else:
            assert ext["type"] == "flow_trigger_lifecycle_callback" and ext["url"] == "/flow/lifecycle"


def test_the_trigger_document_is_valid_against_the_2026_10_schema() -> None:
    for count in (1, 20):
        parsed, errors = check_document(document(count))
        assert parsed is not None and errors == [], errors
    assert "body:" not in document(3)  # the deprecated argument
