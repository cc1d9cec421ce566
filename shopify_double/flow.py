"""Shopify Flow in the double: the app's trigger extensions, ``flowTriggerReceive`` and the trigger
lifecycle callback.

``deploy_flow_triggers(store, extensions_dir)`` does what `shopify app deploy` does with the app's
``extensions/*/shopify.extension.toml`` of type ``flow_trigger``: the handles and their fields become
known. ``flowTriggerReceive(handle, payload)`` then refuses, as a ``userErrors`` entry
(``FlowTriggerReceivePayload.userErrors: [UserError!]!``, fields ``field`` and ``message``):

* a handle no deployed trigger has;
* a payload that is not a JSON object, or larger than ``MAX_PAYLOAD_BYTES``;
* a field the trigger does not declare, a declared field missing, or a value of the wrong type
  (``customer_reference`` → ``customer_id``, a positive integer; ``number_decimal`` a number;
  ``single_line_text_field`` a string without line breaks; ``boolean``; ``email``; ``url``).

Accepted triggers are recorded per shop (``ShopState.flow_runs``), so tests and the demo can count
what would have started workflows. Sources: https://shopify.dev/docs/apps/build/flow/triggers/reference
(toml format, field types, the `customer_id` reference key, the payload size limit),
https://shopify.dev/docs/api/admin-graphql/latest/mutations/flowTriggerReceive (arguments, payload
type), https://shopify.dev/docs/apps/build/flow/track-lifecycle-events (the callback's body).
The wording of the messages is the double's own.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from graphql import GraphQLResolveInfo

from shopify_double.signing import sign_webhook_body
from shopify_double.state import DevStore, iso

MAX_PAYLOAD_BYTES: Final = 50_000
"""Flow's limit on a trigger payload (50 KB, the trigger reference)."""
REFERENCE_KEYS: Final = {
    "customer_reference": "customer_id",
    "order_reference": "order_id",
    "product_reference": "product_id",
}
TRIGGER_FIELD_TYPES: Final = frozenset(
    {"boolean", "email", "single_line_text_field", "url", "number_decimal", *REFERENCE_KEYS}
)
"""The field types a trigger may declare (Shopify CLI's flow constants)."""


@dataclass(frozen=True, slots=True)
class FlowTriggerDefinition:
    handle: str
    name: str
    fields: tuple[tuple[str, str], ...]
    """(payload key, type), the references under their payload key (``customer_id``)."""


@dataclass(frozen=True, slots=True)
class FlowRun:
    """One trigger Flow accepted."""

    handle: str
    payload: dict[str, Any]
    at: datetime


def load_flow_triggers(extensions_dir: Path) -> dict[str, FlowTriggerDefinition]:
    """Every ``flow_trigger`` extension under ``extensions_dir``, by handle."""
    found: dict[str, FlowTriggerDefinition] = {}
    for path in sorted(extensions_dir.glob("*/shopify.extension.toml")):
        config = tomllib.loads(path.read_text())
        for ext in config.get("extensions") or []:
            if ext.get("type") != "flow_trigger":
                continue
            fields = []
            for field in (config.get("settings") or {}).get("fields") or []:
                kind = field["type"]
                if kind not in TRIGGER_FIELD_TYPES:
                    raise ValueError(f"{path}: field type {kind} is not supported on Flow triggers")
                key = REFERENCE_KEYS.get(kind) or field["key"]
                fields.append((key, kind))
            found[ext["handle"]] = FlowTriggerDefinition(ext["handle"], ext["name"], tuple(fields))
    return found


def deploy_flow_triggers(store: DevStore, extensions_dir: Path) -> int:
    definitions = load_flow_triggers(extensions_dir)
    store.flow_triggers.update(definitions)
    return len(definitions)


def _type_error(key: str, kind: str, value: Any) -> str | None:
    if kind in REFERENCE_KEYS:
        ok = isinstance(value, int) and not isinstance(value, bool) and value > 0
        return None if ok else f"'{key}' must be a positive integer id"
    if kind == "number_decimal":
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        return None if ok else f"'{key}' must be a number"
    if kind == "boolean":
        return None if isinstance(value, bool) else f"'{key}' must be true or false"
    if not isinstance(value, str):
        return f"'{key}' must be a string"
    if kind == "single_line_text_field" and ("\n" in value or "\r" in value):
        return f"'{key}' must be a single line"
    if kind == "email" and "@" not in value:
        return f"'{key}' must be an email address"
    if kind == "url" and not value.startswith(("http://", "https://")):
        return f"'{key}' must be a URL"
    return None


def payload_errors(definition: FlowTriggerDefinition, payload: Any) -> list[dict[str, Any]]:
    if not isinstance(payload, dict):
        return [{"field": ["payload"], "message": "Payload must be a JSON object"}]
    size = len(json.dumps(payload, separators=(",", ":")).encode())
    if size > MAX_PAYLOAD_BYTES:
        message = f"Payload is {size} bytes, more than the {MAX_PAYLOAD_BYTES} allowed"
        return [{"field": ["payload"], "message": message}]
    declared = dict(definition.fields)
    errors = [
        {"field": ["payload", key], "message": f"'{key}' is not a field of trigger '{definition.handle}'"}
        for key in payload
        if key not in declared
    ]
    for key, kind in definition.fields:
        if key not in payload:
            errors.append({"field": ["payload", key], "message": f"'{key}' is required"})
        elif (problem := _type_error(key, kind, payload[key])) is not None:
            errors.append({"field": ["payload", key], "message": problem})
    return errors


def flow_trigger_receive(
    _: Any, info: GraphQLResolveInfo, handle: str | None = None, payload: Any = None, body: str | None = None
) -> dict[str, Any]:
    ctx = info.context
    store: DevStore = ctx.store
    if body is not None and handle is None:
        return {"userErrors": [{"field": ["body"], "message": "body is deprecated: send handle and payload"}]}
    definition = store.flow_triggers.get(handle or "")
    if definition is None:
        return {"userErrors": [{"field": ["handle"], "message": f"Invalid handle '{handle}'"}]}
    errors = payload_errors(definition, payload)
    if errors:
        return {"userErrors": errors}
    with ctx.shop.lock:
        ctx.shop.flow_runs.append(FlowRun(definition.handle, dict(payload), store.now()))
    return {"userErrors": []}


def lifecycle_callback(
    store: DevStore, shop_domain: str, handle: str, enabled: bool, at: datetime
) -> tuple[bytes, dict[str, str]]:
    """The body and headers of Flow's trigger lifecycle callback for ``shop_domain``, signed with
    the app's client secret like a webhook."""
    shop = store.shop(shop_domain)
    body = json.dumps(
        {
            "flow_trigger_definition_id": handle,
            "has_enabled_flow": enabled,
            "shop_id": shop.id,
            "shopify_domain": shop_domain,
            "timestamp": iso(at),
        }
    ).encode()
    headers = {
        "Content-Type": "application/json",
        "X-Shopify-Hmac-SHA256": sign_webhook_body(body, store.client_secret),
    }
    return body, headers
