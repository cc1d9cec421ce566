"""POST /webhooks: verify the signature of the raw body, then dispatch by topic (the topics are
given by `create_app`: `app.webhooks.handlers.TOPICS`).

Order of checks (STYLE.md): headers (each security header once, a handled topic, a myshopify.com
domain, a Content-Length under the cap) → a free slot (else 503 at once) → the body, capped and
with a deadline → HMAC (constant time, before any parsing) → JSON → shop → payload shape → one
transaction → 200 only after commit; 503 when the database is unavailable so that Shopify retries.
Errors are `{"detail": ...}` with the status of their `AppError`, as everywhere in the app.

The endpoint is a plain ASGI layer (`WebhookEndpoint`, installed by `create_app` inside the request
id middleware) rather than a FastAPI route: webhooks are the app's hot path, and FastAPI's routing
and request/response objects cost more than the ledger work itself. On PostgreSQL an order
delivery is one call of `rfm_ingest_order` on a pooled async connection in autocommit (one round
trip, no thread hop); every other topic, the rare order delivery with refunds still to net, and
everything on SQLite run the Python rules in a worker thread, in one transaction."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
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
from app.kit.db import write_transaction
from app.kit.errors import (
    AppError,
    BadRequest,
    Gone,
    LengthRequired,
    NotFound,
    ServiceUnavailable,
    Unauthorized,
)
from app.kit.observability import WEBHOOK_SECONDS, WEBHOOKS_RECEIVED, WEBHOOKS_REJECTED, Timer
from app.kit.request_body import declared_length, is_chunked, read_body
from app.orders import service as orders
from app.shopify.shop_domain import sanitize_shop_domain
from app.shopify.webhook_hmac import verify_webhook_hmac
from app.shops import repository as shops_repo
from app.webhooks.schemas import Apply, OrderDelivery, Topic

log = logging.getLogger(__name__)

PATH = "/webhooks"
# One each (https://shopify.dev/docs/apps/build/webhooks/delivery-structure): a second copy is refused
# rather than letting one of them win.
REQUIRED_HEADERS = (
    b"x-shopify-topic",
    b"x-shopify-hmac-sha256",
    b"x-shopify-shop-domain",
    b"x-shopify-api-version",
    b"x-shopify-webhook-id",
)
_JSON = (b"content-type", b"application/json")
_CLOSE = (b"connection", b"close")
# Shopify retries on its own schedule; the header tells anyone else the refusal is momentary.
_RETRY_AFTER = (b"retry-after", b"1")


@dataclass(frozen=True)
class _Delivery:
    topic_name: str
    topic: Topic
    hmac: str
    domain: str
    length: int | None  # None: a chunked body


class _Busy(ServiceUnavailable):
    pass


class WebhookEndpoint:
    """ASGI middleware that answers `PATH` itself and passes every other request on.

    What a delivery may cost before it is known to be Shopify's is bounded: the headers are
    checked before the body is read, the body is capped and given a deadline, and at most
    `Settings.webhook_concurrency` deliveries are past the headers at once per process. One that
    cannot start within `webhook_slot_wait_seconds` of its arrival is answered 503 there and then,
    so that a burst is shed (Shopify retries) instead of queueing past Shopify's 5 s limit
    (https://shopify.dev/docs/apps/webhooks/best-practices)."""

    def __init__(self, app: ASGIApp, topics: Mapping[str, Topic]) -> None:
        self.app = app
        self.topics = topics
        # a semaphore belongs to one event loop; tests run one app under several in turn
        self._slots: tuple[asyncio.AbstractEventLoop, asyncio.Semaphore] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != PATH:
            await self.app(scope, receive, send)
            return
        if scope["method"] != "POST":
            await _respond(send, 405, _json({"detail": "Method Not Allowed"}), (b"allow", b"POST"))
            return
        timer = Timer()
        state = scope["app"].state
        settings: Settings = state.settings
        body_read = False
        try:
            delivery = _check_headers(scope["headers"], settings, self.topics)
            slots = self._slots_for(settings)
            await _take_slot(slots, settings.webhook_slot_wait_seconds - timer.seconds)
            try:
                raw = await read_body(
                    receive,
                    limit=settings.webhook_max_body_bytes,
                    declared=delivery.length,
                    timeout=settings.webhook_body_timeout_seconds,
                )
                body_read = True
                outcome = await _apply(state, settings, delivery, raw)
            finally:
                slots.release()
        except AppError as exc:
            WEBHOOKS_REJECTED.labels(str(exc.status_code)).inc()
            log.info("webhook refused: %s", exc.detail, extra={"status": exc.status_code})
            headers = [] if body_read else [_CLOSE]  # the rest of the body is not worth reading
            if isinstance(exc, _Busy):
                headers.append(_RETRY_AFTER)
            await _respond(send, exc.status_code, _json({"detail": exc.detail}), *headers)
            return
        _received(delivery.topic_name).inc()
        WEBHOOK_SECONDS.observe(timer.seconds)
        await _respond(send, 200, _accepted_body(str(outcome) if outcome is not None else "applied"))

    def _slots_for(self, settings: Settings) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        if self._slots is None or self._slots[0] is not loop:
            self._slots = (loop, asyncio.Semaphore(settings.webhook_concurrency))
        return self._slots[1]


async def _take_slot(slots: asyncio.Semaphore, wait: float) -> None:
    try:
        async with asyncio.timeout(max(wait, 0.0)):
            await slots.acquire()
    except TimeoutError:
        raise _Busy("too many deliveries at once; Shopify will retry") from None


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


def _check_headers(
    headers: list[tuple[bytes, bytes]], settings: Settings, topics: Mapping[str, Topic]
) -> _Delivery:
    """Everything that can be judged before the body is read: one copy of each security header,
    a topic this app handles, a myshopify.com shop domain, and the body's length."""
    found: dict[bytes, str] = {}
    for name, value in headers:
        if name in REQUIRED_HEADERS:
            if name in found:
                raise BadRequest(f"header {name.decode()} appears more than once")
            found[name] = value.decode("latin-1")
    for name in REQUIRED_HEADERS:
        if not found.get(name):
            raise BadRequest(f"missing header {name.decode()}")
    topic_name = found[b"x-shopify-topic"]
    topic = topics.get(topic_name)
    if topic is None:
        raise BadRequest(f"topic {topic_name!r} is not handled by this app")
    given = found[b"x-shopify-shop-domain"].strip().lower()
    if sanitize_shop_domain(given) != given:
        raise BadRequest("header x-shopify-shop-domain is not a shop's myshopify.com domain")
    length = declared_length(headers, settings.webhook_max_body_bytes)
    if length is None and not is_chunked(headers):
        raise LengthRequired("header content-length is required")
    return _Delivery(topic_name, topic, found[b"x-shopify-hmac-sha256"], given, length)


async def _apply(state: Any, settings: Settings, delivery: _Delivery, raw: bytes) -> object:
    if not verify_webhook_hmac(raw, delivery.hmac, settings.webhook_secrets):
        raise Unauthorized("webhook signature does not match")
    try:
        payload = json.loads(raw)
    except (UnicodeDecodeError, ValueError):
        raise BadRequest("body is not JSON") from None
    except RecursionError:
        raise BadRequest("body is JSON nested too deeply") from None
    domain = delivery.domain
    apply = delivery.topic.parse(payload, domain)
    pool: AsyncConnectionPool[Any] | None = getattr(state, "webhook_pool", None)
    if isinstance(apply, OrderDelivery) and pool is not None:
        outcome = await _ingest_order(pool, domain, apply)
        if outcome is not orders.Ingested.needs_full_rules:
            return outcome
    return await run_in_threadpool(_apply_in_transaction, state.sessionmaker, delivery.topic, domain, apply)


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
