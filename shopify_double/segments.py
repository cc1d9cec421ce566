"""A small parser and evaluator for the customer segment query language (ShopifyQL WHERE subset).

Supported (https://shopify.dev/docs/api/shopifyql/segment-query-language-reference):

- ``customer_tags CONTAINS 'x'`` / ``customer_tags NOT CONTAINS 'x'``
- ``number_of_orders <op> n`` and ``amount_spent <op> n`` with ``= != > >= < <=``
- ``metafields.<namespace>.<key> <op> value`` (value: ``'text'``, number, ``true``/``false``,
  ``YYYY-MM-DD``), ``IS NULL`` / ``IS NOT NULL``; the namespace is the shop's resolved one
  (``app--<id>``) or ``$app``; the definition must exist and be filterable
- ``AND`` / ``OR`` / parentheses, at most 10 filter conditions.

Errors mimic Shopify's userError messages (``Line 1 Column 6: 'foo' filter cannot be found.``); the
exact wording for the clause limit is the double's own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from shopify_double.state import Customer, DevStore, ShopState

MAX_CONDITIONS = 10
_OPS = ("!=", ">=", "<=", "=", ">", "<")
_FILTERABLE_TYPES = {
    "number_integer",
    "number_decimal",
    "single_line_text_field",
    "boolean",
    "date",
    "date_time",
}


class SegmentQueryError(ValueError):
    pass


@dataclass
class Condition:
    attribute: str  # customer_tags | number_of_orders | amount_spent | metafield
    op: str
    value: Any
    namespace: str | None = None
    key: str | None = None
    metafield_type: str | None = None


@dataclass
class BoolOp:
    op: str  # AND | OR
    parts: list[Any]


_TOKEN = re.compile(
    r"\s*(?:(?P<str>'(?:[^'\\]|\\.)*')|(?P<op>!=|>=|<=|=|>|<)|(?P<lp>\()|(?P<rp>\))"
    r"|(?P<word>[A-Za-z0-9_.$:\-]+))"
)


def _tokenize(query: str) -> list[tuple[str, str, int]]:
    tokens: list[tuple[str, str, int]] = []
    pos = 0
    while pos < len(query):
        if query[pos:].strip() == "":
            break
        m = _TOKEN.match(query, pos)
        if not m or m.end() == pos:
            col = pos + 1
            raise SegmentQueryError(f"Line 1 Column {col}: '{query[pos:].strip()[:1]}' is unexpected.")
        kind = m.lastgroup or "word"
        text = m.group(kind)
        start = m.start(kind)
        tokens.append((kind, text, start + 1))
        pos = m.end()
    return tokens


class _Parser:
    def __init__(self, query: str, store: DevStore, shop: ShopState) -> None:
        self.tokens = _tokenize(query)
        self.i = 0
        self.store = store
        self.shop = shop
        self.conditions = 0

    def peek(self) -> tuple[str, str, int] | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self) -> tuple[str, str, int]:
        tok = self.peek()
        if tok is None:
            raise SegmentQueryError("Line 1: Query is incomplete.")
        self.i += 1
        return tok

    def keyword(self, word: str) -> bool:
        tok = self.peek()
        if tok and tok[0] == "word" and tok[1].upper() == word:
            self.i += 1
            return True
        return False

    def parse(self) -> Any:
        if not self.tokens:
            raise SegmentQueryError("Query can't be blank")
        expr = self.expr()
        if self.peek() is not None:
            tok = self.take()
            raise SegmentQueryError(f"Line 1 Column {tok[2]}: '{tok[1]}' is unexpected.")
        return expr

    def expr(self) -> Any:
        parts = [self.term()]
        while self.keyword("OR"):
            parts.append(self.term())
        return parts[0] if len(parts) == 1 else BoolOp("OR", parts)

    def term(self) -> Any:
        parts = [self.factor()]
        while self.keyword("AND"):
            parts.append(self.factor())
        return parts[0] if len(parts) == 1 else BoolOp("AND", parts)

    def factor(self) -> Any:
        tok = self.peek()
        if tok and tok[0] == "lp":
            self.take()
            inner = self.expr()
            close = self.take()
            if close[0] != "rp":
                raise SegmentQueryError(f"Line 1 Column {close[2]}: '{close[1]}' is unexpected.")
            return inner
        return self.condition()

    def condition(self) -> Condition:
        kind, name, col = self.take()
        if kind != "word":
            raise SegmentQueryError(f"Line 1 Column {col}: '{name}' is unexpected.")
        self.conditions += 1
        if self.conditions > MAX_CONDITIONS:
            raise SegmentQueryError(
                f"Line 1 Column {col}: Query exceeds the maximum of {MAX_CONDITIONS} filter conditions."
            )
        if name == "customer_tags":
            negate = self.keyword("NOT")
            if not self.keyword("CONTAINS"):
                tok = self.peek()
                where = f"Column {tok[2]}: '{tok[1]}'" if tok else "Column end:"
                raise SegmentQueryError(f"Line 1 {where} is not a valid operator for 'customer_tags'.")
            value = self.string_value()
            return Condition("customer_tags", "NOT CONTAINS" if negate else "CONTAINS", value)
        if name in ("number_of_orders", "amount_spent"):
            op = self.operator(name)
            v_kind, v_text, v_col = self.take()
            try:
                number = Decimal(v_text)
            except InvalidOperation:
                raise SegmentQueryError(
                    f"Line 1 Column {v_col}: Value '{v_text}' is invalid for '{name}'. Expected a number."
                ) from None
            return Condition(name, op, number)
        if name.startswith("metafields."):
            parts = name.split(".")
            if len(parts) != 3:
                raise SegmentQueryError(f"Line 1 Column {col}: '{name}' filter cannot be found.")
            ns = self.store.resolve_namespace(parts[1])
            definition = self.shop.definition_for("CUSTOMER", ns, parts[2])
            if (
                definition is None
                or not definition.admin_filterable
                or definition.type not in _FILTERABLE_TYPES
            ):
                raise SegmentQueryError(f"Line 1 Column {col}: '{name}' filter cannot be found.")
            if self.keyword("IS"):
                negate = self.keyword("NOT")
                if not self.keyword("NULL"):
                    raise SegmentQueryError(f"Line 1 Column {col}: Expected NULL after IS.")
                return Condition(
                    "metafield", "IS NOT NULL" if negate else "IS NULL", None, ns, parts[2], definition.type
                )
            op = self.operator(name)
            v_kind, v_text, v_col = self.take()
            value = self.literal(v_kind, v_text, v_col, definition.type, name)
            return Condition("metafield", op, value, ns, parts[2], definition.type)
        raise SegmentQueryError(f"Line 1 Column {col}: '{name}' filter cannot be found.")

    def operator(self, name: str) -> str:
        kind, text, col = self.take()
        if kind != "op":
            raise SegmentQueryError(f"Line 1 Column {col}: '{text}' is not a valid operator for '{name}'.")
        return text

    def string_value(self) -> str:
        kind, text, col = self.take()
        if kind != "str":
            raise SegmentQueryError(
                f"Line 1 Column {col}: Value '{text}' is invalid. Expected a quoted string."
            )
        return text[1:-1].replace("\\'", "'")

    def literal(self, kind: str, text: str, col: int, type_: str, name: str) -> Any:
        bad = SegmentQueryError(f"Line 1 Column {col}: Value '{text}' is invalid for '{name}'.")
        if type_ in ("number_integer", "number_decimal"):
            try:
                return Decimal(text)
            except InvalidOperation:
                raise bad from None
        if type_ == "boolean":
            if text.lower() not in ("true", "false"):
                raise bad
            return text.lower() == "true"
        if kind != "str" and type_ in ("single_line_text_field",):
            raise bad
        raw = text[1:-1] if kind == "str" else text
        if type_ == "date":
            try:
                return date.fromisoformat(raw)
            except ValueError:
                raise bad from None
        return raw


def parse_segment_query(query: str, store: DevStore, shop: ShopState) -> Any:
    """Parse ``query`` for ``shop``; raises :class:`SegmentQueryError` with Shopify-like text."""
    return _Parser(query, store, shop).parse()


def _compare(left: Any, op: str, right: Any) -> bool:
    if left is None:
        return op == "!="
    if op == "=":
        return bool(left == right)
    if op == "!=":
        return bool(left != right)
    if op == ">":
        return bool(left > right)
    if op == ">=":
        return bool(left >= right)
    if op == "<":
        return bool(left < right)
    return bool(left <= right)


def evaluate(expr: Any, customer: Customer, store: DevStore, shop: ShopState) -> bool:
    if isinstance(expr, BoolOp):
        results = (evaluate(p, customer, store, shop) for p in expr.parts)
        return all(results) if expr.op == "AND" else any(results)
    cond: Condition = expr
    if cond.attribute == "customer_tags":
        has = cond.value.lower() in {t.lower() for t in customer.tags}
        return has if cond.op == "CONTAINS" else not has
    if cond.attribute == "number_of_orders":
        return _compare(Decimal(customer.number_of_orders), cond.op, cond.value)
    if cond.attribute == "amount_spent":
        return _compare(customer.amount_spent, cond.op, cond.value)
    assert cond.namespace is not None and cond.key is not None
    mf = shop.metafields.get((customer.gid, cond.namespace, cond.key))
    if cond.op == "IS NULL":
        return mf is None
    if cond.op == "IS NOT NULL":
        return mf is not None
    if mf is None:
        return False
    left: Any
    if cond.metafield_type in ("number_integer", "number_decimal"):
        left = Decimal(mf.value)
    elif cond.metafield_type == "boolean":
        left = mf.value == "true"
    elif cond.metafield_type == "date":
        left = date.fromisoformat(mf.value)
    else:
        left = mf.value
    return _compare(left, cond.op, cond.value)
