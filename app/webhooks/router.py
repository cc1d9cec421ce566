"""POST /webhooks: verify the signature of the raw body, then dispatch by topic.

Order of checks (STYLE.md): headers → HMAC (constant time, before any parsing) → JSON → shop →
payload shape → one transaction → 200 only after commit; 503 when the database is unavailable so
that Shopify retries. Errors are `{"detail": ...}` with the status of their `AppError`, as
everywhere in the app.

The endpoint is a plain ASGI layer (`WebhookEndpoint`, installed by `create_app` inside the request
id middleware) rather than a FastAPI route: webhooks are the app's hot path, and FastAPI's routing
and request/response objects cost more than the ledger work itself. On PostgreSQL an order
delivery is one call of `rfm_ingest_order` on a pooled async connection in autocommit (one round
trip, no thread hop); every other topic, the rare order delivery with refunds still to net, and
everything on SQLite run the Python rules in a worker thread, in one transaction."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool, PoolTimeout
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as SQLAlchemyPoolTimeout
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Receive, Scope, Send

from app.config import Settings
from app.db import write_transaction
from app.errors import (
    AppError,
    BadRequest,
    Gone,
    NotFound,
    PayloadTooLarge,
    ServiceUnavailable,
    Unauthorized,
)
from app.observability import WEBHOOK_SECONDS, WEBHOOKS_RECEIVED, WEBHOOKS_REJECTED, Timer
from app.orders import service as orders
from app.shopify.webhook_hmac import verify_webhook_hmac
from app.shops import repository as shops_repo
from app.webhooks.handlers import TOPICS, Apply, OrderDelivery, Topic

log = logging.getLogger(__name__)

PATH = "/webhooks"
# Shopify's order payloads with hundreds of line items stay well under this.
MAX_BODY_BYTES = 8 * 1024 * 1024
REQUIRED_HEADERS = (
    b"x-shopify-topic",
    b"x-shopify-hmac-sha256",
    b"x-shopify-shop-domain",
    b"x-shopify-api-version",
    b"x-shopify-webhook-id",
)
_JSON = (b"content-type", b"application/json")


class WebhookEndpoint:
    """ASGI middleware that answers `PATH` itself and passes every other request on."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != PATH:
            await self.app(scope, receive, send)
            return
        if scope["method"] != "POST":
            await _respond(send, 405, _json({"detail": "Method Not Allowed"}), (b"allow", b"POST"))
            return
        timer = Timer()
        try:
            topic_name, outcome = await _receive(scope["app"].state, scope, receive)
        except AppError as exc:
            WEBHOOKS_REJECTED.labels(str(exc.status_code)).inc()
            log.info("webhook refused: %s", exc.detail, extra={"status": exc.status_code})
            await _respond(send, exc.status_code, _json({"detail": exc.detail}))
            return
        _received(topic_name).inc()
        WEBHOOK_SECONDS.observe(timer.seconds)
        await _respond(send, 200, _accepted_body(str(outcome) if outcome is not None else "applied"))


@lru_cache(maxsize=64)
def _received(topic: str) -> Any:
    return WEBHOOKS_RECEIVED.labels(topic)


@lru_cache(maxsize=64)
def _accepted_body(outcome: str) -> bytes:
    return _json({"ok": True, "outcome": outcome})


def _json(body: dict[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode()


async def _respond(send: Send, status: int, data: bytes, *headers: tuple[bytes, bytes]) -> None:
    head = [_JSON, (b"content-length", str(len(data)).encode()), *headers]
    await send({"type": "http.response.start", "status": status, "headers": head})
    await send({"type": "http.response.body", "body": data})


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise BadRequest("the request body was cut off")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise PayloadTooLarge(f"webhook body over {MAX_BODY_BYTES} bytes")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _receive(state: Any, scope: Scope, receive: Receive) -> tuple[str, object]:
    settings: Settings = state.settings
    raw = await _read_body(receive)
    wanted = dict.fromkeys(REQUIRED_HEADERS, "")
    for name, value in scope["headers"]:
        if name in wanted:
            wanted[name] = value.decode("latin-1")
    for name, value in wanted.items():
        if not value:
            raise BadRequest(f"missing header {name.decode()}")
    if not verify_webhook_hmac(raw, wanted[b"x-shopify-hmac-sha256"], settings.webhook_secrets):
        raise Unauthorized("webhook signature does not match")
    topic_name = wanted[b"x-shopify-topic"]
    topic = TOPICS.get(topic_name)
    if topic is None:
        raise BadRequest(f"topic {topic_name!r} is not handled by this app")
    try:
        payload = json.loads(raw)
    except (UnicodeDecodeError, ValueError):
        raise BadRequest("body is not JSON") from None
    except RecursionError:
        raise BadRequest("body is JSON nested too deeply") from None
    domain = wanted[b"x-shopify-shop-domain"].strip().lower()
    apply = topic.parse(payload, domain)
    pool: AsyncConnectionPool[Any] | None = getattr(state, "webhook_pool", None)
    if isinstance(apply, OrderDelivery) and pool is not None:
        outcome = await _ingest_order(pool, domain, apply)
        if outcome is not orders.Ingested.needs_full_rules:
            return topic_name, outcome
    outcome = await run_in_threadpool(_apply_in_transaction, state.sessionmaker, topic, domain, apply)
    return topic_name, outcome


async def _ingest_order(pool: AsyncConnectionPool[Any], domain: str, delivery: OrderDelivery) -> object:
    now = datetime.now(UTC)
    try:
        async with pool.connection() as conn:
            outcome = await orders.ingest_order(
                conn, domain, delivery.facts, now, touch=shops_repo.touch_due(domain)
            )
    except (psycopg.OperationalError, PoolTimeout) as exc:
        raise _database_unavailable(exc) from None
    if outcome is orders.Ingested.unknown_shop:
        raise _not_installed(domain)
    if outcome is orders.Ingested.uninstalled:
        raise _uninstalled(domain)
    return outcome


def _apply_in_transaction(factory: sessionmaker[Session], topic: Topic, domain: str, apply: Apply) -> object:
    now = datetime.now(UTC)
    try:
        with write_transaction(factory) as session:
            shop = shops_repo.ref_by_domain(session, domain)
            if shop is None:
                if topic.accepts_unknown_shop:
                    return "unknown shop"
                raise _not_installed(domain)
            if not shop.is_installed and not topic.accepts_uninstalled:
                raise _uninstalled(domain)
            outcome = apply(session, shop, now)
            if shop.is_installed:
                shops_repo.touch_last_webhook(session, shop.shop_id, now)
            return outcome
    except (DBAPIError, SQLAlchemyPoolTimeout) as exc:
        if isinstance(exc, DBAPIError) and not (
            isinstance(exc, OperationalError) or exc.connection_invalidated
        ):
            raise
        raise _database_unavailable(exc) from None


def _not_installed(domain: str) -> NotFound:
    return NotFound(f"shop {domain} is not installed")


def _uninstalled(domain: str) -> Gone:
    return Gone(f"shop {domain} has uninstalled the app")


def _database_unavailable(exc: Exception) -> ServiceUnavailable:
    log.warning("database unavailable while handling a webhook: %s", type(exc).__name__)
    return ServiceUnavailable("database unavailable; Shopify will retry")
