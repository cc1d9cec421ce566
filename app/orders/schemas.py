"""Order, refund and edit deliveries, parsed into the facts the ledger keeps.

Parsing is strict and happens before any database work: a payload that is not the shape Shopify
sends raises `PayloadError` naming the field, and nothing is written."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from app.kit.errors import UnprocessablePayload
from app.kit.money import AMOUNT_LIMIT, AmountError, parse_amount

# Orders that count for nothing whatever else they say (docs/metrics.md).
NON_QUALIFYING_FINANCIAL_STATUSES = frozenset({"refunded", "voided"})
# `[0-9]`, not `\d`: in a str pattern `\d` matches every Unicode decimal digit
_GID = re.compile(r"gid://shopify/(?P<type>[A-Za-z]+)/(?P<id>[0-9]+)(?:\?[^\n]*)?", re.ASCII)
_ASCII_DIGITS = re.compile(r"[0-9]+", re.ASCII)
MAX_ID = 2**63  # ids are stored as BIGINT
EARLIEST_TIMESTAMP = datetime(1970, 1, 1, tzinfo=UTC)
FUTURE_LEEWAY = timedelta(days=1)  # clocks disagree, but not by a day


class PayloadError(UnprocessablePayload):
    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field


@dataclass(frozen=True, slots=True)
class OrderFacts:
    order_id: int
    customer_id: int | None
    ordered_at: datetime
    updated_at: datetime
    cancelled_at: datetime | None
    test: bool
    financial_status: str | None
    current_total: Decimal
    total_discounts: Decimal
    discount_codes: tuple[str, ...]
    source_name: str | None
    # brings a refund's transactions (presentment currency) into shop currency
    presentment_total: Decimal | None


@dataclass(frozen=True, slots=True)
class RefundFacts:
    refund_id: int
    order_id: int
    refunded_at: datetime
    presentment_amount: Decimal


@dataclass(frozen=True, slots=True)
class OrderEditFacts:
    order_id: int
    committed_at: datetime


def parse_id(value: Any, field: str) -> int:
    """Every Shopify id the app reads: a positive integer below 2^63 (PostgreSQL BIGINT), given as a
    JSON integer or a string of ASCII digits (`str.isdigit` would take "²" and "٣٤")."""
    if isinstance(value, bool):
        raise PayloadError(field, "must be an integer id")
    if isinstance(value, str):
        if not _ASCII_DIGITS.fullmatch(value):
            raise PayloadError(field, f"must be an integer id of ASCII digits, got {value[:40]!r}")
        if len(value) > len(str(MAX_ID)):
            raise PayloadError(field, "must be a positive id below 2^63")
        value = int(value)
    elif value is None:
        raise PayloadError(field, "is missing")
    elif not isinstance(value, int):
        raise PayloadError(field, f"must be an integer id, got {type(value).__name__}")
    if not 0 < value < MAX_ID:
        raise PayloadError(field, "must be a positive id below 2^63")
    return value


def parse_gid(value: Any, field: str, gid_type: str) -> int:
    """The numeric id of a `gid://shopify/<gid_type>/<id>`; another resource type is refused."""
    if not isinstance(value, str):
        raise PayloadError(field, f"must be a gid://shopify/{gid_type}/… string")
    m = _GID.fullmatch(value)
    if m is None or m.group("type") != gid_type:
        raise PayloadError(field, f"must be a gid://shopify/{gid_type}/… id, got {value[:60]!r}")
    return parse_id(m.group("id"), field)


def shopify_id(
    obj: dict[str, Any], field: str, gid_type: str, *, gid_key: str = "admin_graphql_api_id"
) -> int:
    """The numeric id of a resource. The GID wins over `id`: some JSON tooling rounds large ints.
    Both are checked when both are there, so a body of another resource type is refused."""
    prefix = field.rpartition(".")[0]
    gid = obj.get(gid_key)
    numeric = obj.get("id")
    if gid is not None:
        exact = parse_gid(gid, f"{prefix}.{gid_key}" if prefix else gid_key, gid_type)
        if numeric is not None:
            parse_id(numeric, field)
        return exact
    return parse_id(numeric, field)


def _object(payload: Any, field: str) -> dict[str, Any]:
    if not isinstance(payload, dict):
        raise PayloadError(field, "must be a JSON object")
    return payload


def parse_timestamp(value: Any, field: str, *, required: bool = True) -> datetime | None:
    if value is None:
        if required:
            raise PayloadError(field, "is missing")
        return None
    if not isinstance(value, str):
        raise PayloadError(field, "must be an ISO 8601 timestamp")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise PayloadError(field, f"is not an ISO 8601 timestamp: {value[:40]!r}") from None
    if parsed.tzinfo is None:
        raise PayloadError(field, "has no UTC offset")
    try:
        parsed = parsed.astimezone(UTC)
    except OverflowError:  # year 1 with a positive offset, 9999 with a negative one
        raise PayloadError(field, f"is out of range in UTC: {value[:40]!r}") from None
    # A date far in the future would make every later delivery of the order look stale (the ledger
    # keeps the newest `updated_at`), and one far in the past would stretch the shop's model fit
    # (customer ages) for every buyer: neither comes from a real store.
    if parsed < EARLIEST_TIMESTAMP:
        raise PayloadError(field, f"is before {EARLIEST_TIMESTAMP:%Y-%m-%d}: {value[:40]!r}")
    if parsed > datetime.now(UTC) + FUTURE_LEEWAY:
        raise PayloadError(field, f"is in the future: {value[:40]!r}")
    return parsed


def _required_timestamp(value: Any, field: str) -> datetime:
    parsed = parse_timestamp(value, field)
    assert parsed is not None
    return parsed


def _money(value: Any, field: str) -> Decimal:
    try:
        return parse_amount(value)
    except AmountError as error:
        raise PayloadError(field, str(error)) from None


def _set_amount(payload: dict[str, Any], key: str, money: str) -> Decimal | None:
    twin = payload.get(key)
    if twin is None:
        return None
    twin = _object(twin, key)
    inner = twin.get(money)
    if inner is None:
        return None
    return _money(_object(inner, f"{key}.{money}").get("amount"), f"{key}.{money}.amount")


def _optional_str(payload: dict[str, Any], key: str, max_len: int) -> str | None:
    value = payload.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise PayloadError(key, "must be a string")
    return value[:max_len]


def parse_order(payload: Any) -> OrderFacts:
    order = _object(payload, "order")
    order_id = shopify_id(order, "id", "Order")
    customer = order.get("customer")
    customer_id = None
    if customer is not None:
        customer_id = shopify_id(_object(customer, "customer"), "customer.id", "Customer")
    created_at = parse_timestamp(order.get("created_at"), "created_at", required=False)
    processed_at = parse_timestamp(order.get("processed_at"), "processed_at", required=False)
    ordered_at = processed_at or created_at
    if ordered_at is None:
        raise PayloadError("processed_at", "is missing, and so is created_at")
    updated_at = parse_timestamp(order.get("updated_at"), "updated_at", required=False) or ordered_at
    test = order.get("test", False)
    if not isinstance(test, bool):
        raise PayloadError("test", "must be true or false")
    status = _optional_str(order, "financial_status", 32)

    shop_total = _set_amount(order, "current_total_price_set", "shop_money")
    if shop_total is None:
        # Older REST shapes have no `_set` twins.
        for key in ("current_total_price", "total_price"):
            if order.get(key) is not None:
                shop_total = _money(order[key], key)
                break
    if shop_total is None:
        raise PayloadError(
            "current_total_price_set", "is missing, and so are current_total_price and total_price"
        )
    presentment_total = _set_amount(order, "current_total_price_set", "presentment_money")

    discounts = _set_amount(order, "current_total_discounts_set", "shop_money")
    if discounts is None:
        key = (
            "current_total_discounts"
            if order.get("current_total_discounts") is not None
            else "total_discounts"
        )
        discounts = _money(order[key], key) if order.get(key) is not None else Decimal(0)
    codes_raw = order.get("discount_codes")
    if codes_raw is None:
        codes_raw = []
    if not isinstance(codes_raw, list):
        raise PayloadError("discount_codes", "must be a list")
    codes = []
    for i, entry in enumerate(codes_raw):
        code = entry.get("code") if isinstance(entry, dict) else entry
        if not isinstance(code, str):
            raise PayloadError(f"discount_codes[{i}].code", "must be a string")
        codes.append(code[:255])
    return OrderFacts(
        order_id=order_id,
        customer_id=customer_id,
        ordered_at=ordered_at,
        updated_at=updated_at,
        cancelled_at=parse_timestamp(order.get("cancelled_at"), "cancelled_at", required=False),
        test=test,
        financial_status=status.lower() if status else None,
        current_total=shop_total,
        total_discounts=discounts,
        discount_codes=tuple(codes),
        source_name=_optional_str(order, "source_name", 255),
        presentment_total=presentment_total,
    )


def parse_order_id(payload: Any) -> int:
    """`orders/delete` carries only the id."""
    return shopify_id(_object(payload, "order"), "id", "Order")


def parse_refund(payload: Any) -> RefundFacts:
    refund = _object(payload, "refund")
    refund_id = shopify_id(refund, "id", "Refund")
    order_id = parse_id(refund.get("order_id"), "order_id")
    # `created_at`, not `processed_at`: an imported refund may be backdated, but the order's
    # `updated_at` moves when the refund is created.
    refunded_at = _required_timestamp(refund.get("created_at"), "created_at")
    transactions = refund.get("transactions")
    if transactions is None:
        transactions = []
    if not isinstance(transactions, list):
        raise PayloadError("transactions", "must be a list")
    amount = Decimal(0)
    for i, tx in enumerate(transactions):
        tx = _object(tx, f"transactions[{i}]")
        if tx.get("kind") == "refund" and tx.get("status") == "success":
            amount += _money(tx.get("amount"), f"transactions[{i}].amount")
    if amount >= AMOUNT_LIMIT:
        raise PayloadError("transactions", f"must together refund less than {AMOUNT_LIMIT:,}")
    return RefundFacts(
        refund_id=refund_id, order_id=order_id, refunded_at=refunded_at, presentment_amount=amount
    )


def parse_order_edit(payload: Any) -> OrderEditFacts:
    body = _object(payload, "body")
    edit = _object(body.get("order_edit"), "order_edit")
    order_id = parse_id(edit.get("order_id"), "order_edit.order_id")
    committed = parse_timestamp(edit.get("committed_at"), "order_edit.committed_at", required=False)
    committed = committed or _required_timestamp(edit.get("created_at"), "order_edit.created_at")
    return OrderEditFacts(order_id=order_id, committed_at=committed)


def order_counts(
    *,
    customer_id: int | None,
    test: bool,
    cancelled_at: datetime | None,
    financial_status: str | None,
    current_total: Decimal,
    pending_refunds: Decimal,
) -> bool:
    """Whether an order is "qualifying" (docs/metrics.md). Refunds seen through `refunds/create` but not
    yet in an order delivery, when they cover the whole order, count as a full refund."""
    if customer_id is None or test or cancelled_at is not None:
        return False
    if financial_status in NON_QUALIFYING_FINANCIAL_STATUSES:
        return False
    return not (pending_refunds > 0 and pending_refunds >= current_total)


def refunds_in_shop_money(
    presentment_amount: Decimal, current_total: Decimal, presentment_total: Decimal | None
) -> Decimal:
    """Refund transactions are in the buyer's (presentment) currency; convert at the order's own rate.

    At most ``AMOUNT_LIMIT``: an order's refunds can add up past any column, and past its total
    they change nothing (it is wholly refunded; see :func:`order_counts`)."""
    if presentment_total is None or presentment_total == 0 or presentment_total == current_total:
        return min(presentment_amount, AMOUNT_LIMIT)
    if presentment_amount >= presentment_total:
        return current_total  # all of it; the product below could exceed Decimal's 28 digits
    return (presentment_amount * current_total / presentment_total).quantize(Decimal("0.01"))
