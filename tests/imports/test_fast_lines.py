"""The bulk file's fast path (``app.imports.schemas.fast_ledger_line``) gives exactly the COPY row
of the slow path (``order_facts_from_node`` → ``ledger_row`` → ``copy_text``), or
declines the line. No database: these are pure functions."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from app.imports.schemas import (
    copy_text,
    fast_ledger_line,
    latest_accepted_time,
    ledger_row,
    order_facts_from_node,
)
from app.orders.schemas import PayloadError

_TIMES = (2, 3, 4)  # ordered_at, source_updated_at, cancelled_at
_AMOUNTS = (7, 8, 9, 10, 11)


def _slow(node: dict[str, Any]) -> str | None:
    try:
        return copy_text(ledger_row(order_facts_from_node(node)))
    except PayloadError:
        return None


def _same_row(fast: str, slow: str) -> bool:
    a, b = fast.rstrip("\n").split("\t"), slow.rstrip("\n").split("\t")
    if len(a) != len(b):
        return False
    for i, (x, y) in enumerate(zip(a, b, strict=True)):
        if x == y:
            continue
        if i in _TIMES and "\\N" not in (x, y):
            if datetime.fromisoformat(x) != datetime.fromisoformat(y):
                return False
        elif i in _AMOUNTS:
            if Decimal(x) != Decimal(y):
                return False
        else:
            return False
    return True


def _line(node: dict[str, Any]) -> bytes:
    return json.dumps(node, separators=(",", ":"), ensure_ascii=False).encode()


def _node(**changes: Any) -> dict[str, Any]:
    node: dict[str, Any] = {
        "id": "gid://shopify/Order/6000000000001",
        "createdAt": "2024-02-29T10:00:00Z",
        "processedAt": "2024-02-29T09:59:00Z",
        "updatedAt": "2024-03-01T00:00:00Z",
        "cancelledAt": None,
        "test": False,
        "displayFinancialStatus": "PAID",
        "currentTotalPriceSet": {"shopMoney": {"amount": "12.50"}, "presentmentMoney": {"amount": "13.0"}},
        "currentTotalDiscountsSet": {"shopMoney": {"amount": "0.0"}},
        "discountCodes": [],
        "sourceName": "web",
        "customer": {"id": "gid://shopify/Customer/5000000000001"},
    }
    node.update(changes)
    return node


def test_an_order_in_the_querys_shape_takes_the_fast_path_with_the_slow_paths_row() -> None:
    node = _node()
    fast = fast_ledger_line(_line(node), latest_accepted_time())
    slow = _slow(node)
    assert fast is not None and slow is not None
    assert _same_row(fast.text, slow)
    assert fast.order_id == 6000000000001 and fast.updated_key == ("2024-03-01T00:00:00", 0)


def test_lines_in_another_shape_are_left_to_the_slow_path() -> None:
    latest = latest_accepted_time()
    reordered = dict(reversed(list(_node().items())))
    for line in (
        _line(reordered),
        json.dumps(_node()).encode(),  # with spaces
        _line(_node(updatedAt="2024-03-01T00:00:00.5Z")),
        _line(_node(updatedAt="2024-02-30T00:00:00Z")),  # no such day: the slow path refuses it
        _line(_node(updatedAt="1969-12-31T23:59:59Z")),
        _line(_node(sourceName='we"b')),
        _line(_node(id="gid://shopify/Order/0")),
        _line(_node(id="gid://shopify/Order/9223372036854775808")),
        _line(_node(currentTotalPriceSet={"shopMoney": {"amount": "1.23456"}, "presentmentMoney": None})),
        b'{"id":"gid://shopify/LineItem/1","__parentId":"gid://shopify/Order/1"}',
        b"",
    ):
        assert fast_ledger_line(line, latest) is None, line


# Mostly well-formed values (the fast path's business), with the edge cases mixed in.
_good_time = st.datetimes(
    min_value=datetime(1970, 1, 1), max_value=datetime.now() + timedelta(hours=23), timezones=st.just(UTC)
).map(lambda d: d.replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ"))


def _mostly(good: st.SearchStrategy[Any], *odd: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(*([good] * 12), *odd)


_time = _mostly(
    _good_time,
    st.none(),
    st.datetimes(
        min_value=datetime(1969, 12, 30), max_value=datetime.now() + timedelta(days=3), timezones=st.just(UTC)
    ).map(lambda d: d.strftime("%Y-%m-%dT%H:%M:%S.%fZ" if d.microsecond % 2 else "%Y-%m-%dT%H:%M:%SZ")),
    st.sampled_from(["2023-02-29T00:00:00Z", "2024-13-01T00:00:00Z", "2024-01-01T24:00:00Z", "x"]),
)
_good_amount = st.decimals(min_value=0, max_value=10**12 - 1, places=2, allow_nan=False).map(str)
_amount = _mostly(
    _good_amount,
    st.decimals(min_value=0, max_value=10**12, places=4, allow_nan=False).map(str),
    st.sampled_from(["0", "0.0", "007.10", "1.23000", "-1.00", "1e3", "999999999999.9999", "1000000000000"]),
)
_plain = st.text(st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters='"\\'), max_size=300)
_text = st.one_of(
    _plain, st.none(), st.text(max_size=40), st.sampled_from(["", "PAID", "REFUNDED", "Voided", "ÄÖ"])
)
_good_id = st.integers(min_value=1, max_value=2**63 - 1).map(str)
_gid = _mostly(
    _good_id,
    st.integers(min_value=0, max_value=2**63 + 5).map(str),
    st.sampled_from(["", "0", "12?x=1", "١٢", str(2**63)]),
)


def _order_node(f: dict[str, Any]) -> dict[str, Any]:
    """A bulk order node from the fields the strategies below draw."""
    return _node(
        id=f"gid://shopify/Order/{f['order']}",
        customer={"id": f"gid://shopify/Customer/{f['customer']}"} if f["customer"] is not None else None,
        createdAt=f["created"],
        processedAt=f["processed"],
        updatedAt=f["updated"],
        cancelledAt=f["cancelled"],
        test=f["test"],
        displayFinancialStatus=f["status"],
        currentTotalPriceSet={
            "shopMoney": {"amount": f["total"]},
            "presentmentMoney": {"amount": f["presentment"]},
        },
        currentTotalDiscountsSet={"shopMoney": {"amount": f["discounts"]}},
        discountCodes=f["codes"],
        sourceName=f["source"],
    )


_any_fields = st.fixed_dictionaries(
    {
        "order": _gid,
        "customer": _mostly(_gid, st.none()),
        "created": _time,
        "processed": _time,
        "updated": _time,
        "cancelled": _time,
        "test": st.booleans(),
        "status": _text,
        "total": _amount,
        "presentment": _amount,
        "discounts": _amount,
        "codes": st.lists(_mostly(_plain, st.text(max_size=20)), max_size=3),
        "source": _text,
    }
)
_good_fields = st.fixed_dictionaries(
    {
        "order": _good_id,
        "customer": st.one_of(st.none(), _good_id),
        "created": st.one_of(st.none(), _good_time),
        "processed": _good_time,
        "updated": st.one_of(st.none(), _good_time),
        "cancelled": st.one_of(st.none(), _good_time),
        "test": st.booleans(),
        "status": st.one_of(st.none(), _plain),
        "total": _good_amount,
        "presentment": _good_amount,
        "discounts": _good_amount,
        "codes": st.lists(_plain, max_size=3),
        "source": st.one_of(st.none(), _plain),
    }
)


@settings(max_examples=60, deadline=None)
@given(fields=_any_fields)
def test_the_fast_path_gives_the_slow_paths_row_or_declines(fields: dict[str, Any]) -> None:
    node = _order_node(fields)
    fast = fast_ledger_line(_line(node), latest_accepted_time())
    if fast is None:
        return
    slow = _slow(node)
    assert slow is not None, node
    assert _same_row(fast.text, slow), (fast.text, slow)


@settings(max_examples=40, deadline=None)
@given(fields=_good_fields)
def test_well_formed_orders_always_take_the_fast_path_with_the_slow_paths_row(fields: dict[str, Any]) -> None:
    node = _order_node(fields)
    fast = fast_ledger_line(_line(node), latest_accepted_time())
    slow = _slow(node)
    assert fast is not None and slow is not None, node
    assert _same_row(fast.text, slow), (fast.text, slow)
