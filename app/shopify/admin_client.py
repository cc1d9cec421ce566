"""The one Admin GraphQL client (API 2026-10), the way Shopify's own libraries behave.

- One instance per process over the app's shared ``httpx.AsyncClient``; any number of shops.
- Paces itself by each shop's cost bucket: every response carries
  ``extensions.cost.throttleStatus`` (``maximumAvailable``, ``currentlyAvailable``, ``restoreRate``);
  before a call whose expected cost exceeds what the bucket holds now, it sleeps the time the bucket
  needs to refill (https://shopify.dev/docs/api/usage/limits). The expected cost of a document is the
  requested cost Shopify last reported for it (or the caller's hint).
- Retries ``THROTTLED``, HTTP 429 (``Retry-After``), 5xx and timeouts with exponential backoff and
  full jitter, a bounded number of times; then raises.
- Raises typed errors: :class:`GraphQLError` (top-level ``errors``: syntax, validation, access),
  :class:`UserErrors` (a mutation's ``userErrors``), :class:`Unauthorized` (401: the token is
  revoked, the caller deletes it) and :class:`AccessDenied` (403).

Sleep and clock are injectable so tests run against the Shopify double with a fake clock.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from app.config import Settings
from app.kit.observability import SHOPIFY_CALLS, SHOPIFY_COST, SHOPIFY_THROTTLE_WAIT

API_VERSION = "2026-10"
DEFAULT_EXPECTED_COST = 50.0
MAX_ATTEMPTS = 6
BASE_DELAY_S = 1.0
MAX_DELAY_S = 30.0
PACING_MARGIN_S = 0.1

log = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[Any]]
Clock = Callable[[], float]


class AdminApiError(Exception):
    """Base of every error the client raises."""


class GraphQLError(AdminApiError):
    """Top-level ``errors`` of a response (syntax, validation, access, cost)."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        self.errors = errors
        super().__init__("; ".join(str(e.get("message", e)) for e in errors) or "GraphQL error")

    @property
    def codes(self) -> set[str]:
        return {str((e.get("extensions") or {}).get("code")) for e in self.errors}


@dataclass(frozen=True)
class UserError:
    message: str
    field: tuple[str, ...] | None = None
    code: str | None = None


class UserErrors(AdminApiError):
    """A mutation answered with a non-empty ``userErrors`` list."""

    def __init__(self, mutation: str, errors: list[UserError], data: Any = None) -> None:
        self.mutation = mutation
        self.errors = errors
        self.data = data
        super().__init__(f"{mutation}: " + "; ".join(e.message for e in errors))

    @property
    def codes(self) -> set[str | None]:
        return {e.code for e in self.errors}


class Unauthorized(AdminApiError):
    """HTTP 401: the access token is invalid or revoked; delete it."""


class AccessDenied(AdminApiError):
    """HTTP 403: the shop (or app) may not use this API."""


class RetriesExhausted(AdminApiError):
    """Throttling, 429, 5xx or timeouts outlasted the bounded retries."""


@dataclass(frozen=True)
class Cost:
    requested: float
    actual: float | None


@dataclass(frozen=True)
class Result:
    data: dict[str, Any]
    cost: Cost | None
    throttle_wait: float  # seconds slept for this call (pacing, THROTTLED, 429, backoff)
    attempts: int


@dataclass
class _Bucket:
    """What we last learnt about one shop's cost bucket."""

    maximum: float = 1000.0
    available: float = 1000.0
    restore_rate: float = 50.0
    observed_at: float | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def available_at(self, now: float) -> float:
        if self.observed_at is None:
            return self.available
        return min(self.maximum, self.available + (now - self.observed_at) * self.restore_rate)


def graphql_url(settings: Settings, shop: str) -> str:
    return settings.admin_base_url(shop).rstrip("/") + f"/admin/api/{API_VERSION}/graphql.json"


def _document_key(document: str) -> str:
    return hashlib.blake2b(" ".join(document.split()).encode(), digest_size=8).hexdigest()


class AdminClient:
    def __init__(
        self,
        http: httpx.AsyncClient,
        settings: Settings,
        *,
        sleep: Sleep = asyncio.sleep,
        clock: Clock = time.monotonic,
        max_attempts: int = MAX_ATTEMPTS,
        base_delay: float = BASE_DELAY_S,
        max_delay: float = MAX_DELAY_S,
        rng: random.Random | None = None,
    ) -> None:
        self.http = http
        self.settings = settings
        self.sleep = sleep
        self.clock = clock
        self.max_attempts = max(1, max_attempts)
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.rng = rng or random.Random()
        self._buckets: dict[str, _Bucket] = {}
        self._expected: dict[tuple[str, str], float] = {}
        # metrics
        self.calls = 0
        self.total_throttle_wait = 0.0
        self.total_requested_cost = 0.0
        self.total_actual_cost = 0.0

    def bucket(self, shop: str) -> _Bucket:
        return self._buckets.setdefault(shop, _Bucket())

    async def execute(
        self,
        shop: str,
        token: str,
        document: str,
        variables: Mapping[str, Any] | None = None,
        *,
        expected_cost: float | None = None,
        raise_user_errors: bool = True,
    ) -> Result:
        """Run one document for ``shop``; returns ``data`` or raises a typed error."""
        key = (shop, _document_key(document))
        cost = expected_cost if expected_cost is not None else self._expected.get(key, DEFAULT_EXPECTED_COST)
        body = {"query": document, "variables": dict(variables or {})}
        headers = {"X-Shopify-Access-Token": token, "Content-Type": "application/json"}
        url = graphql_url(self.settings, shop)
        waited = 0.0
        for attempt in range(1, self.max_attempts + 1):
            waited += await self._pace(shop, cost)
            self.calls += 1
            SHOPIFY_CALLS.labels("sent").inc()
            delay: float | None = None
            try:
                response = await self.http.post(url, json=body, headers=headers)
            except httpx.TimeoutException as exc:
                delay, reason = self._backoff(attempt), f"timeout ({type(exc).__name__})"
            except httpx.TransportError as exc:
                delay, reason = self._backoff(attempt), f"transport error ({type(exc).__name__})"
            else:
                status = response.status_code
                if status == 401:
                    raise Unauthorized(f"{shop}: access token rejected (401)")
                if status == 403:
                    raise AccessDenied(f"{shop}: access denied (403)")
                if status == 429:
                    delay, reason = self._retry_after(response, attempt), "HTTP 429"
                elif status >= 500:
                    delay, reason = self._backoff(attempt), f"HTTP {status}"
                elif status >= 400:
                    raise AdminApiError(f"{shop}: HTTP {status}: {response.text[:200]}")
                else:
                    payload = response.json()
                    observed = self._observe(shop, payload)
                    if observed is not None:
                        self._expected[key] = observed.requested
                        cost = observed.requested
                    errors = payload.get("errors")
                    if errors and _is_throttled(errors):
                        delay, reason = self._throttled_wait(shop, cost, attempt), "THROTTLED"
                    elif errors:
                        raise GraphQLError(errors if isinstance(errors, list) else [{"message": errors}])
                    else:
                        data = payload.get("data") or {}
                        if raise_user_errors:
                            _raise_user_errors(data)
                        return Result(data=data, cost=observed, throttle_wait=waited, attempts=attempt)
            if attempt == self.max_attempts:
                raise RetriesExhausted(f"{shop}: gave up after {attempt} attempts ({reason})")
            log.info("shopify %s: %s, retrying in %.2fs (attempt %d)", shop, reason, delay, attempt)
            waited += delay
            self.total_throttle_wait += delay
            SHOPIFY_THROTTLE_WAIT.inc(delay)
            SHOPIFY_CALLS.labels("retried").inc()
            await self.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    # -- pacing -------------------------------------------------------------------------------
    async def _pace(self, shop: str, cost: float) -> float:
        """Sleep until the bucket holds ``cost`` points, then reserve them locally so that
        concurrent calls for the same shop do not all spend the same points."""
        bucket = self.bucket(shop)
        async with bucket.lock:
            cost = min(cost, bucket.maximum)
            now = self.clock()
            available = bucket.available_at(now)
            wait = 0.0
            if available < cost and bucket.restore_rate > 0:
                # a margin: our view of the bucket lags Shopify's (network time, clock rounding)
                wait = (cost - available) / bucket.restore_rate + PACING_MARGIN_S
                self.total_throttle_wait += wait
                await self.sleep(wait)
                now = self.clock()
                available = max(bucket.available_at(now), cost)
            bucket.available, bucket.observed_at = available - cost, now
            return wait

    def _observe(self, shop: str, payload: Any) -> Cost | None:
        cost = ((payload.get("extensions") or {}).get("cost")) if isinstance(payload, dict) else None
        if not isinstance(cost, dict):
            return None
        status = cost.get("throttleStatus") or {}
        bucket = self.bucket(shop)
        try:
            bucket.maximum = float(status.get("maximumAvailable", bucket.maximum))
            bucket.available = float(status.get("currentlyAvailable", bucket.available))
            bucket.restore_rate = float(status.get("restoreRate", bucket.restore_rate))
            bucket.observed_at = self.clock()
            requested = float(cost.get("requestedQueryCost") or 0)
            actual = cost.get("actualQueryCost")
        except (TypeError, ValueError):
            return None
        self.total_requested_cost += requested
        if actual is not None:
            self.total_actual_cost += float(actual)
            SHOPIFY_COST.inc(float(actual))
        return Cost(requested=requested, actual=float(actual) if actual is not None else None)

    # -- retry delays -------------------------------------------------------------------------
    def _backoff(self, attempt: int) -> float:
        ceiling = min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
        # full jitter, but never below the 1 s Shopify asks for (https://shopify.dev/docs/api/usage/limits)
        return max(self.base_delay, self.rng.uniform(0, ceiling))

    def _retry_after(self, response: httpx.Response, attempt: int) -> float:
        header = response.headers.get("retry-after")
        try:
            return (
                min(self.max_delay, max(float(header), self.base_delay)) if header else self._backoff(attempt)
            )
        except ValueError:
            return self._backoff(attempt)

    def _throttled_wait(self, shop: str, cost: float, attempt: int) -> float:
        bucket = self.bucket(shop)
        if bucket.restore_rate > 0:
            need = (min(cost, bucket.maximum) - bucket.available) / bucket.restore_rate
            return min(self.max_delay, max(need, self.base_delay)) + self.rng.uniform(0, 0.1)
        return self._backoff(attempt)


def _is_throttled(errors: Any) -> bool:
    return isinstance(errors, list) and any(
        isinstance(e, dict) and (e.get("extensions") or {}).get("code") == "THROTTLED" for e in errors
    )


def _raise_user_errors(data: dict[str, Any]) -> None:
    for name, payload in data.items():
        if isinstance(payload, dict) and payload.get("userErrors"):
            errors = [
                UserError(
                    message=str(e.get("message")),
                    field=tuple(e["field"]) if e.get("field") else None,
                    code=e.get("code"),
                )
                for e in payload["userErrors"]
            ]
            raise UserErrors(name, errors, data)
