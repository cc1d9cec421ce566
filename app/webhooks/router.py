"""POST /webhooks: verify the signature of the raw body, then dispatch by topic.

Order of checks (STYLE.md): headers → HMAC (constant time, before any parsing) → JSON → shop →
payload shape → one transaction → 200 only after commit; 503 when the database is unavailable so
that Shopify retries."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session, sessionmaker

from app.config import Settings
from app.db import write_transaction
from app.errors import (
    AppError,
    BadRequest,
    Gone,
    NotFound,
    ServiceUnavailable,
    Unauthorized,
    UnprocessablePayload,
)
from app.observability import WEBHOOK_SECONDS, WEBHOOKS_RECEIVED, WEBHOOKS_REJECTED, Timer
from app.shopify.webhook_hmac import verify_webhook_hmac
from app.shops import repository as shops_repo
from app.webhooks.handlers import TOPICS, Apply, Topic

log = logging.getLogger(__name__)
router = APIRouter()

REQUIRED_HEADERS = (
    "x-shopify-topic",
    "x-shopify-hmac-sha256",
    "x-shopify-shop-domain",
    "x-shopify-api-version",
    "x-shopify-webhook-id",
)


@router.post("/webhooks")
async def receive_webhook(request: Request) -> JSONResponse:
    timer = Timer()
    try:
        topic_name, outcome = await _receive(request)
    except AppError as exc:
        WEBHOOKS_REJECTED.labels(str(exc.status_code)).inc()
        log.info("webhook refused: %s", exc.detail, extra={"status": exc.status_code})
        raise
    WEBHOOKS_RECEIVED.labels(topic_name).inc()
    WEBHOOK_SECONDS.observe(timer.seconds)
    return JSONResponse({"ok": True, "outcome": str(outcome) if outcome is not None else "applied"})


async def _receive(request: Request) -> tuple[str, object]:
    settings: Settings = request.app.state.settings
    raw = await request.body()
    headers = request.headers
    for name in REQUIRED_HEADERS:
        if not headers.get(name):
            raise BadRequest(f"missing header {name}")
    if not verify_webhook_hmac(raw, headers["x-shopify-hmac-sha256"], settings.webhook_secrets):
        raise Unauthorized("webhook signature does not match")
    topic_name = headers["x-shopify-topic"]
    topic = TOPICS.get(topic_name)
    if topic is None:
        raise BadRequest(f"topic {topic_name!r} is not handled by this app")
    try:
        payload = json.loads(raw)
    except (UnicodeDecodeError, ValueError):
        raise BadRequest("body is not JSON") from None
    apply = topic.parse(payload)
    domain = headers["x-shopify-shop-domain"].strip().lower()
    outcome = await run_in_threadpool(
        _apply_in_transaction, request.app.state.sessionmaker, topic, domain, apply
    )
    return topic_name, outcome


def _apply_in_transaction(factory: sessionmaker[Session], topic: Topic, domain: str, apply: Apply) -> object:
    now = datetime.now(UTC)
    try:
        with write_transaction(factory) as session:
            shop = shops_repo.ref_by_domain(session, domain)
            if shop is None:
                if topic.accepts_unknown_shop:
                    return "unknown shop"
                raise NotFound(f"shop {domain} is not installed")
            if not shop.is_installed and not topic.accepts_uninstalled:
                raise Gone(f"shop {domain} has uninstalled the app")
            outcome = apply(session, shop, now)
            if shop.is_installed:
                shops_repo.touch_last_webhook(session, shop.shop_id, now)
            return outcome
    except (DBAPIError, PoolTimeout) as exc:
        if isinstance(exc, DBAPIError) and not (
            isinstance(exc, OperationalError) or exc.connection_invalidated
        ):
            raise
        log.warning("database unavailable while handling a webhook: %s", type(exc).__name__)
        raise ServiceUnavailable("database unavailable; Shopify will retry") from None


__all__ = ["router", "UnprocessablePayload"]
