"""Orders as the Admin GraphQL API returns them (bulk JSONL lines and `orders` pages), parsed into
the same :class:`OrderFacts` the webhook path stores, and the import's progress as shown to the
merchant."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from app.money import AmountError, parse_amount
from app.orders.schemas import OrderFacts, PayloadError


class ImportState(StrEnum):
    queued = "queued"  # requested; the bulk operation is not started yet (or is being retried)
    running = "running"  # the bulk operation runs on Shopify
    downloading = "downloading"  # Shopify finished; the file is being fetched
    ingesting = "ingesting"  # rows are going into the ledger / aggregates are recomputed
    done = "done"
    failed = "failed"


ACTIVE_STATES = frozenset(
    {ImportState.queued, ImportState.running, ImportState.downloading, ImportState.ingesting}
)

# What the merchant reads on the status panel (PRODUCT §7 "errors in plain words").
BULK_FAILURE_WORDS = {
    "ACCESS_DENIED": "Shopify refused to export the orders: the app lacks the read_all_orders permission.",
    "INTERNAL_SERVER_ERROR": "Shopify had an internal error while exporting the orders.",
    "TIMEOUT": "Shopify took too long to export the orders.",
    "EXPIRED": "Shopify's export file expired before it was downloaded.",
    "CANCELED": "The export was cancelled on Shopify.",
    "FAILED": "Shopify could not export the orders.",
}


@dataclass(frozen=True)
class ImportProgress:
    """The import as the merchant sees it."""

    state: ImportState
    orders_done: int
    orders_expected: int | None
    started_at: datetime | None
    finished_at: datetime | None
    error: str | None
    attempts: int

    @property
    def percent(self) -> float | None:
        if not self.orders_expected:
            return None
        return min(100.0, 100.0 * self.orders_done / self.orders_expected)


def numeric_id(gid: Any, kind: str, field: str) -> int:
    """``gid://shopify/Order/123`` → 123 (never through float: ids exceed 2^53)."""
    prefix = f"gid://shopify/{kind}/"
    if not isinstance(gid, str) or not gid.startswith(prefix):
        raise PayloadError(field, f"must be a {kind} GID")
    tail = gid[len(prefix) :].split("?", 1)[0]
    if not tail.isdigit():
        raise PayloadError(field, f"must be a {kind} GID")
    return int(tail)


def _time(value: Any, field: str) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise PayloadError(field, "must be an ISO 8601 timestamp")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise PayloadError(field, f"is not an ISO 8601 timestamp: {value[:40]!r}") from None
    if parsed.tzinfo is None:
        raise PayloadError(field, "has no UTC offset")
    return parsed.astimezone(UTC)


def _amount(bag: Any, money: str, field: str) -> Decimal | None:
    if not isinstance(bag, dict):
        return None
    inner = bag.get(money)
    if not isinstance(inner, dict) or inner.get("amount") is None:
        return None
    try:
        return parse_amount(inner["amount"])
    except AmountError as error:
        raise PayloadError(f"{field}.{money}.amount", str(error)) from None


def order_facts_from_node(node: dict[str, Any]) -> OrderFacts:
    """One GraphQL ``Order`` node (bulk line or page item) → the ledger's facts; same rules as
    :func:`app.orders.schemas.parse_order` for webhooks (PLATFORM §12 field names)."""
    order_id = numeric_id(node.get("id"), "Order", "id")
    customer = node.get("customer")
    customer_id = numeric_id(customer.get("id"), "Customer", "customer.id") if customer else None
    ordered_at = _time(node.get("processedAt"), "processedAt") or _time(node.get("createdAt"), "createdAt")
    if ordered_at is None:
        raise PayloadError("processedAt", "is missing, and so is createdAt")
    updated_at = _time(node.get("updatedAt"), "updatedAt") or ordered_at
    test = node.get("test", False)
    if not isinstance(test, bool):
        raise PayloadError("test", "must be true or false")
    status = node.get("displayFinancialStatus")
    if status is not None and not isinstance(status, str):
        raise PayloadError("displayFinancialStatus", "must be a string")
    total = _amount(node.get("currentTotalPriceSet"), "shopMoney", "currentTotalPriceSet")
    if total is None:
        raise PayloadError("currentTotalPriceSet", "is missing")
    discounts = _amount(node.get("currentTotalDiscountsSet"), "shopMoney", "currentTotalDiscountsSet")
    if discounts is None:
        discounts = _amount(node.get("totalDiscountsSet"), "shopMoney", "totalDiscountsSet") or Decimal(0)
    codes = node.get("discountCodes") or []
    if not isinstance(codes, list) or not all(isinstance(c, str) for c in codes):
        raise PayloadError("discountCodes", "must be a list of strings")
    source = node.get("sourceName")
    if source is not None and not isinstance(source, str):
        raise PayloadError("sourceName", "must be a string")
    return OrderFacts(
        order_id=order_id,
        customer_id=customer_id,
        ordered_at=ordered_at,
        updated_at=updated_at,
        cancelled_at=_time(node.get("cancelledAt"), "cancelledAt"),
        test=test,
        financial_status=status.lower()[:32] if status else None,
        current_total=total,
        total_discounts=discounts,
        discount_codes=tuple(c[:255] for c in codes),
        source_name=source[:255] if source else None,
        presentment_total=_amount(
            node.get("currentTotalPriceSet"), "presentmentMoney", "currentTotalPriceSet"
        ),
    )
