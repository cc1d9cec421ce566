"""Shopify Flow's trigger lifecycle callback: ``POST /flow/lifecycle``, declared by the
``flow_trigger_lifecycle_callback`` extension (extensions/flow-trigger-usage/shopify.extension.toml).

Flow calls it when a merchant turns on (or off) a workflow that starts with one of the app's
triggers; the body names the trigger, the shop, whether an enabled workflow uses it, and when
(https://shopify.dev/docs/apps/build/flow/track-lifecycle-events). It is signed like a webhook
(base64 HMAC-SHA256 of the raw body with the app's client secret in ``X-Shopify-Hmac-SHA256``).
A newer ``timestamp`` wins; an older one changes nothing. The merchant cannot turn the workflow
on unless this answers 2xx promptly, so the answer follows one small write.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Final

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session

from app.config import Settings
from app.kit.errors import BadRequest, NotFound, PayloadTooLarge, Unauthorized, UnprocessablePayload
from app.kit.web import write_in_thread
from app.orders.schemas import parse_id
from app.shopify.shop_domain import sanitize_shop_domain
from app.shopify.webhook_hmac import verify_webhook_hmac
from app.shops import repository as shops_repo
from app.sync import service as sync
from app.vocabulary import FLOW_TRIGGER_HANDLES

PATH: Final = "/flow/lifecycle"
HMAC_HEADER: Final = "x-shopify-hmac-sha256"
FIELDS: Final = frozenset(
    {"flow_trigger_definition_id", "has_enabled_flow", "shop_id", "shopify_domain", "timestamp"}
)

router = APIRouter()


def _field_error(field: str, message: str) -> UnprocessablePayload:
    return UnprocessablePayload(f"{field}: {message}")


def parse_callback(body: Any) -> tuple[str, bool, int, str, datetime]:
    """(handle, enabled, Shopify shop id, shop domain, timestamp), or a 422 naming the field."""
    if not isinstance(body, dict):
        raise UnprocessablePayload("the body must be a JSON object")
    missing = sorted(FIELDS - body.keys())
    if missing:
        raise _field_error(missing[0], "is missing")
    handle = body["flow_trigger_definition_id"]
    if not isinstance(handle, str) or handle not in FLOW_TRIGGER_HANDLES:
        raise _field_error("flow_trigger_definition_id", f"must be one of {', '.join(FLOW_TRIGGER_HANDLES)}")
    enabled = body["has_enabled_flow"]
    if not isinstance(enabled, bool):
        raise _field_error("has_enabled_flow", "must be true or false")
    shop_id = parse_id(body["shop_id"], "shop_id")
    domain = sanitize_shop_domain(body["shopify_domain"] if isinstance(body["shopify_domain"], str) else None)
    if domain is None:
        raise _field_error("shopify_domain", "must be a <name>.myshopify.com domain")
    stamp = body["timestamp"]
    try:
        moment = datetime.fromisoformat(stamp) if isinstance(stamp, str) else None
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise _field_error("timestamp", "must be an ISO 8601 time with its offset")
    return handle, enabled, shop_id, domain, moment


def record_callback(
    session: Session,
    handle: str,
    enabled: bool,
    shopify_shop_id: int,
    domain: str,
    moment: datetime,
) -> None:
    """The callback's one write. It runs in a write transaction (`write_in_thread`): on SQLite that
    takes the write lock before the shop is read, so that a writer of another process (the worker)
    is waited for instead of failing the callback (a deferred transaction that has read cannot take
    the lock once another writer has committed: SQLITE_BUSY_SNAPSHOT,
    https://www.sqlite.org/rescode.html#busy_snapshot)."""
    shop = shops_repo.get_by_domain(session, domain)
    if shop is None or not shop.is_installed:
        raise NotFound("shopify_domain names a shop that has not installed the app")
    if shop.shopify_shop_id is not None and shop.shopify_shop_id != shopify_shop_id:
        raise _field_error("shop_id", "does not match the shop of shopify_domain")
    sync.record_trigger_usage(session, shop.shop_id, handle, enabled, moment)


@router.post(PATH)
async def flow_lifecycle(request: Request) -> JSONResponse:
    settings: Settings = request.app.state.settings
    given = request.headers.get(HMAC_HEADER)
    if not given:
        raise BadRequest("the X-Shopify-Hmac-SHA256 header is missing")
    raw = await request.body()
    if len(raw) > settings.webhook_max_body_bytes:
        raise PayloadTooLarge("the body is too large")
    if not verify_webhook_hmac(raw, given, settings.webhook_secrets):
        raise Unauthorized("the X-Shopify-Hmac-SHA256 signature does not match the body")
    try:
        body = json.loads(raw)
    except ValueError as exc:
        raise BadRequest("the body is not JSON") from exc
    handle, enabled, shopify_shop_id, domain, moment = parse_callback(body)
    await write_in_thread(request, record_callback, handle, enabled, shopify_shop_id, domain, moment)
    return JSONResponse({"ok": True})
