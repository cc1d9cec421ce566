"""Orders as the Admin GraphQL API returns them (bulk JSONL lines and `orders` pages), parsed into
the same :class:`OrderFacts` the webhook path stores, and the import's progress as shown to the
merchant."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import StrEnum
from functools import lru_cache
from typing import Any

from app.kit.money import AmountError, parse_amount
from app.orders.schemas import (
    EARLIEST_TIMESTAMP,
    FUTURE_LEEWAY,
    MAX_ID,
    OrderFacts,
    PayloadError,
    order_counts,
    parse_gid,
    parse_timestamp,
)


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


# -- the ledger's row, and its COPY text ---------------------------------------------------------

LEDGER_COLUMNS = (
    "order_id",
    "customer_id",
    "ordered_at",
    "source_updated_at",
    "cancelled_at",
    "test",
    "financial_status",
    "current_total",
    "presentment_total",
    "pending_refunds",
    "value",
    "total_discounts",
    "discount_codes",
    "discounted",
    "source_name",
    "qualifies",
)

LedgerRow = tuple[Any, ...]


def ledger_row(facts: OrderFacts) -> LedgerRow:
    """The ledger row for `facts`, assuming no refund is pending (the batch write corrects the rare
    rows that have one: `app.imports.repository`)."""
    total = facts.current_total
    return (
        facts.order_id,
        facts.customer_id,
        facts.ordered_at,
        facts.updated_at,
        facts.cancelled_at,
        facts.test,
        facts.financial_status,
        total,
        facts.presentment_total,
        Decimal(0),
        total,
        facts.total_discounts,
        ",".join(facts.discount_codes) or None,
        bool(facts.discount_codes) or facts.total_discounts > 0,
        facts.source_name,
        order_counts(
            customer_id=facts.customer_id,
            test=facts.test,
            cancelled_at=facts.cancelled_at,
            financial_status=facts.financial_status,
            current_total=total,
            pending_refunds=Decimal(0),
        ),
    )


def copy_text(row: LedgerRow) -> str:
    """A ledger row as a line of COPY text of `LEDGER_COLUMNS`."""
    return "\t".join(_copy_field(value) for value in row) + "\n"


def _copy_field(value: Any) -> str:
    if value is None:
        return "\\N"
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, str):
        return value.translate(_COPY_ESCAPES)
    return str(value)


_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


@dataclass(frozen=True)
class LedgerText:
    """A batch of ledger rows as COPY text in the columns of ``COPY orders (shop_id,
    LEDGER_COLUMNS…)``, one row per order id, in ascending order id (the lock order); ``first`` and
    ``last`` are the smallest and largest order id (0 when empty)."""

    data: bytes
    first: int
    last: int
    rows: int

    @classmethod
    def of(cls, shop_id: int, lines: Sequence[tuple[int, str]]) -> LedgerText:
        """From (order id, COPY text of `LEDGER_COLUMNS`) pairs in ascending order id."""
        if not lines:
            return cls(b"", 0, 0, 0)
        prefix = f"{shop_id}\t"
        data = "".join([prefix + text for _, text in lines]).encode()
        return cls(data, lines[0][0], lines[-1][0], len(lines))

    def __len__(self) -> int:
        return self.rows


# -- the bulk line's fast path ------------------------------------------------------------------
#
# Nearly every line of the bulk file is an order in exactly the shape `BULK_ORDERS_QUERY` asks for:
# GraphQL serialises a response's fields in the order of the selection set
# (https://spec.graphql.org/October2021/#sec-Serialized-Map-Ordering), and the file is compact
# JSON. Such a line is read with one regular expression straight into the ledger's COPY text, with
# the rules of `order_facts_from_node` + `ledger_row`; any other line (other
# field order, escapes, fractional seconds, an amount with more places, a date to check more
# closely...) returns None and takes that slow path, so the two can only differ in speed
# (tests/imports/test_fast_lines.py holds them together).

_TIME = rb'"([0-9]{4}-[0-9]{2}-[0-9]{2}T(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]Z)"'
_TIME_OR_NULL = rb"(?:null|" + _TIME + rb")"
_AMOUNT = rb'"([0-9]{1,12}(?:\.[0-9]{1,4})?)"'
_PLAIN = rb'[^"\\\x00-\x1f]*'  # a JSON string without escapes
_TEXT_OR_NULL = rb'(?:null|"(' + _PLAIN + rb')")'
_FAST_LINE = re.compile(
    rb'\{"id":"gid://shopify/Order/([0-9]{1,19})"'
    rb',"createdAt":'
    + _TIME_OR_NULL
    + rb',"processedAt":'
    + _TIME_OR_NULL
    + rb',"updatedAt":'
    + _TIME_OR_NULL
    + rb',"cancelledAt":'
    + _TIME_OR_NULL
    + rb',"test":(true|false)'
    rb',"displayFinancialStatus":'
    + _TEXT_OR_NULL
    + rb',"currentTotalPriceSet":\{"shopMoney":\{"amount":'
    + _AMOUNT
    + rb'\},"presentmentMoney":\{"amount":'
    + _AMOUNT
    + rb"\}\}"
    rb',"currentTotalDiscountsSet":\{"shopMoney":\{"amount":' + _AMOUNT + rb"\}\}"
    rb',"discountCodes":\[((?:"' + _PLAIN + rb'"(?:,"' + _PLAIN + rb'")*)?)\]'
    rb',"sourceName":'
    + _TEXT_OR_NULL
    + rb',"customer":(?:null|\{"id":"gid://shopify/Customer/([0-9]{1,19})"\})\}\s*'
)
_EARLIEST = EARLIEST_TIMESTAMP.strftime("%Y-%m-%dT%H:%M:%SZ")
_NULL = "\\N"


@lru_cache(maxsize=100_000)
def _real_day(day: str) -> bool:
    try:
        date.fromisoformat(day)
    except ValueError:
        return False
    return True


def _fast_time(raw: bytes | None, latest: str) -> str | None:
    """The timestamp as given when it is a real instant inside the accepted range, else ''
    (which sends the line to the slow path); None for JSON null."""
    if raw is None:
        return None
    value = raw.decode()
    if not (_EARLIEST <= value <= latest and _real_day(value[:10])):
        return ""
    return value


def _fast_id(digits: bytes) -> int | None:
    value = int(digits)
    return value if 0 < value < MAX_ID else None


@dataclass(frozen=True, slots=True)
class LedgerLine:
    """One order of the bulk file as a row of COPY text for the ledger's columns, with what the
    batch needs to keep only the newest state of an order: ``updated_key`` orders like
    ``updated_at`` (whole seconds as text, then microseconds)."""

    order_id: int
    updated_key: tuple[str, int]
    text: str


def fast_ledger_line(line: bytes, latest: str) -> LedgerLine | None:
    """The COPY row of a bulk line in the query's exact shape, or None (use the slow path).
    ``latest`` is the latest accepted timestamp in the same format (now plus the leeway)."""
    match = _FAST_LINE.fullmatch(line)
    if match is None:
        return None
    try:
        return _ledger_line(match, latest)
    except UnicodeDecodeError:  # the slow path reports it as the webhook path would
        return None


def _ledger_line(match: re.Match[bytes], latest: str) -> LedgerLine | None:
    (
        oid,
        created,
        processed,
        updated,
        cancelled,
        test,
        status,
        total,
        presentment,
        discounts,
        codes,
        source,
        cid,
    ) = match.groups()
    order_id = _fast_id(oid)
    customer_id = _fast_id(cid) if cid is not None else None
    if order_id is None or (cid is not None and customer_id is None):
        return None
    ordered_at = _fast_time(processed, latest) if processed is not None else _fast_time(created, latest)
    updated_at = _fast_time(updated, latest) if updated is not None else ordered_at
    cancelled_at = _fast_time(cancelled, latest)
    if not ordered_at or not updated_at or cancelled_at == "":
        return None
    financial_status = status.decode().lower()[:32] if status else None
    code_list = [c[:255] for c in codes.decode()[1:-1].split('","')] if codes else []
    source_name = source.decode()[:255] if source else None
    total_text = total.decode()
    discount_text = discounts.decode()
    current_total = Decimal(total_text)
    counts = order_counts(
        customer_id=customer_id,
        test=test == b"true",
        cancelled_at=datetime.fromisoformat(cancelled_at) if cancelled_at else None,
        financial_status=financial_status,
        current_total=current_total,
        pending_refunds=Decimal(0),
    )
    text = "\t".join(
        (
            str(order_id),
            str(customer_id) if customer_id is not None else _NULL,
            ordered_at,
            updated_at,
            cancelled_at or _NULL,
            "t" if test == b"true" else "f",
            financial_status if financial_status is not None else _NULL,
            total_text,
            presentment.decode(),
            "0",
            total_text,
            discount_text,
            ",".join(code_list) or _NULL,
            "t" if code_list or Decimal(discount_text) > 0 else "f",
            source_name if source_name is not None else _NULL,
            "t" if counts else "f",
        )
    )
    return LedgerLine(order_id, (updated_at[:19], 0), text + "\n")


def latest_accepted_time() -> str:
    """The latest timestamp ``parse_timestamp`` accepts now, in the bulk file's format."""
    return (datetime.now(UTC) + FUTURE_LEEWAY).strftime("%Y-%m-%dT%H:%M:%SZ")
