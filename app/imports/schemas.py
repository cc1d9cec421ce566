"""Orders as the Admin GraphQL API returns them (bulk JSONL lines and `orders` pages), parsed into
the same :class:`OrderFacts` the webhook path stores, and the import's progress as shown to the
merchant."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from app.kit.money import AmountError, parse_amount
from app.orders.schemas import OrderFacts, PayloadError, parse_gid, parse_timestamp


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

# What the merchant reads on the status panel (in plain words, docs/metrics.md).
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
    :func:`app.orders.schemas.parse_order` for webhooks."""
    order_id = parse_gid(node.get("id"), "id", "Order")
    customer = node.get("customer")
    customer_id = parse_gid(customer.get("id"), "customer.id", "Customer") if customer else None
    ordered_at = parse_timestamp(node.get("processedAt"), "processedAt", required=False) or parse_timestamp(
        node.get("createdAt"), "createdAt", required=False
    )
    if ordered_at is None:
        raise PayloadError("processedAt", "is missing, and so is createdAt")
    updated_at = parse_timestamp(node.get("updatedAt"), "updatedAt", required=False) or ordered_at
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
        cancelled_at=parse_timestamp(node.get("cancelledAt"), "cancelledAt", required=False),
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
