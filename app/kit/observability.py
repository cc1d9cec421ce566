"""Structured JSON logs with shop and request ids (never a token, secret or customer data), and the
Prometheus metrics the operations docs list."""

from __future__ import annotations

import itertools
import json
import logging
import os
import re
import sys
import time
import uuid
from collections.abc import Iterator
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)
shop_var: ContextVar[str | None] = ContextVar("shop", default=None)

# -- logs --------------------------------------------------------------------------------------

_STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}
# Extra fields a log call may attach; anything else passed as `extra=` is dropped, so that a
# careless `extra={"payload": …}` cannot put customer data in the logs.
_ALLOWED_EXTRA = {
    "topic",
    "status",
    "outcome",
    "duration_ms",
    "job_id",
    "kind",
    "attempt",
    "count",
    "path",
    "method",
}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        if (request_id := request_id_var.get()) is not None:
            entry["request_id"] = request_id
        if (shop := shop_var.get()) is not None:
            entry["shop"] = shop
        for key, value in record.__dict__.items():
            if key not in _STANDARD and key in _ALLOWED_EXTRA:
                entry[key] = value
        if record.exc_info:
            entry["exception"] = redact(self.formatException(record.exc_info))
        return json.dumps(entry, default=str)


def configure_logging(level: str = "INFO", *, json_logs: bool = True) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter() if json_logs else logging.Formatter("%(levelname)s %(name)s: %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True


_id_source: tuple[int, str, Iterator[int]] = (0, "", iter(()))


def _new_request_id() -> str:
    """A random prefix per process and a counter: unique like a uuid4, without a system call per
    request (webhooks are the hot path)."""
    global _id_source
    pid, prefix, numbers = _id_source
    if pid != os.getpid():  # first use, or a forked child
        pid, prefix, numbers = _id_source = (os.getpid(), uuid.uuid4().hex[:16], itertools.count(1))
    return f"{prefix}{next(numbers):016x}"


class RequestContextMiddleware:
    """Gives every request an id (`X-Request-Id` when the caller sent a sane one) for the logs and
    the response, and names the shop of a webhook delivery."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        given = headers.get(b"x-request-id", b"").decode("latin-1")
        request_id = given if 0 < len(given) <= 64 and given.replace("-", "").isalnum() else _new_request_id()
        shop = headers.get(b"x-shopify-shop-domain", b"").decode("latin-1")[:255] or None
        rid_token, shop_token = request_id_var.set(request_id), shop_var.set(shop)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            request_id_var.reset(rid_token)
            shop_var.reset(shop_token)


# -- metrics -----------------------------------------------------------------------------------

WEBHOOKS_RECEIVED = Counter("rfm_webhooks_received_total", "Webhooks accepted (2xx)", ["topic"])
WEBHOOKS_REJECTED = Counter("rfm_webhooks_rejected_total", "Webhooks refused, by HTTP status", ["status"])
WEBHOOK_SECONDS = Histogram(
    "rfm_webhook_ingest_seconds",
    "Time from receiving a webhook to answering it",
    buckets=(0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
SHOPIFY_CALLS = Counter("rfm_shopify_calls_total", "Admin GraphQL calls made", ["outcome"])
SHOPIFY_THROTTLE_WAIT = Counter(
    "rfm_shopify_throttle_wait_seconds_total", "Seconds spent waiting for cost budget"
)
SHOPIFY_COST = Counter("rfm_shopify_cost_points_total", "Admin GraphQL cost points charged (actual)")
JOB_RUNS = Counter("rfm_job_runs_total", "Worker job runs", ["kind", "outcome"])
STARTED = Gauge("rfm_process_started_seconds", "Unix time the process started")
STARTED.set_to_current_time()


def metrics_payload(queue_depth: Collector | None) -> bytes:
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        MultiProcessCollector(registry)
    else:
        from prometheus_client import REGISTRY

        registry = REGISTRY
    output = generate_latest(registry)
    if queue_depth is not None:
        depth = CollectorRegistry()
        depth.register(queue_depth)
        output += generate_latest(depth)
    return output


class Timer:
    def __init__(self) -> None:
        self.start = time.perf_counter()

    @property
    def seconds(self) -> float:
        return time.perf_counter() - self.start


# Log hygiene: what must never sit in a log line, access, refresh and session tokens (e.g.
# `id_token=` in an access-log URL, which Shopify puts in the App URL).
_SECRET_PARAMS = re.compile(
    r"(?i)\b(id_token|code|access_token|refresh_token|subject_token|client_secret)=([^&\s\"']+)"
)
_SHOPIFY_TOKEN = re.compile(r"\bshp(?:at|ua|ca|pa|ss|rt)_[A-Za-z0-9]+")
_JWT = re.compile(r"\beyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")


def redact(text: str) -> str:
    text = _SECRET_PARAMS.sub(lambda m: f"{m.group(1)}=[redacted]", text)
    text = _SHOPIFY_TOKEN.sub("[redacted]", text)
    return _JWT.sub("[redacted]", text)


class RedactTokensFilter(logging.Filter):
    """Masks tokens in a record's final message (URLs logged by httpx and uvicorn included)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg = cleaned
            record.args = None
        return True


# Loggers that print request URLs; the app's own code never passes a token to a logger.
REDACTED_LOGGERS = ("httpx", "httpcore", "uvicorn.access", "uvicorn.error", "fastapi")


def install_token_redaction(names: tuple[str, ...] = REDACTED_LOGGERS) -> None:
    for name in names:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactTokensFilter) for f in logger.filters):
            logger.addFilter(RedactTokensFilter())
