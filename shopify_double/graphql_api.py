"""Execution of Admin GraphQL documents against the double's state, over the real 2026-10 schema.

Every document is parsed and validated against Shopify's published schema (see ``schema.py``), so a
query Shopify would reject is rejected here with the same kind of error. Valid documents run through
graphql-core's ``execute`` with one field resolver: objects are plain dicts carrying ``__typename``;
a field with a dedicated resolver (``RESOLVERS[(type, field)]``) computes its value from state,
otherwise the dict's own key is used. **Any other field of the real schema can be requested: it
resolves to ``null`` when nullable, and to an empty value when non-null** (``""``, ``0``, ``false``,
``[]``, the first enum value, an empty connection, an object whose fields follow the same rule).

Real behaviour: ``shop``, ``customer``, ``customers`` (query ``id:``, ``tag:``, ``tag_not:``,
``updated_at:``/``created_at:`` with ``> >= < <= :``), ``customersCount``, ``node``/``nodes``,
``order``, ``orders`` (``updated_at``, ``created_at``, ``processed_at``, ``test``,
``financial_status``, ``customer_id``, ``source_name``, ``status``; ``sortKey`` ID / CREATED_AT /
UPDATED_AT / PROCESSED_AT; ``reverse``), ``ordersCount``, ``segment(s)``, ``metafieldDefinitions``,
``Customer.metafield(s)``, ``Customer.lastOrder``; mutations ``metafieldsSet``, ``metafieldsDelete``,
``tagsAdd``, ``tagsRemove``, ``segmentCreate``, ``segmentUpdate``, ``segmentDelete``,
``flowTriggerReceive`` (``flow.py``). Unknown search
terms are ignored (Shopify would run them as full-text search). Access scopes are checked for these
root fields (``ACCESS_DENIED`` as Shopify words it). Bulk query operations: ``bulk.py``.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, TypeGuard

from graphql import (
    DocumentNode,
    ExecutionResult,
    FieldNode,
    GraphQLEnumType,
    GraphQLError,
    GraphQLInterfaceType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLResolveInfo,
    GraphQLScalarType,
    GraphQLUnionType,
    OperationDefinitionNode,
    execute,
    get_operation_ast,
    print_ast,
)
from graphql.execution.values import VariableValues, get_argument_values, get_variable_values

from shopify_double import customer_search
from shopify_double.cost import MAX_QUERY_COST, actual_cost, requested_cost
from shopify_double.schema import check_document, load_schema
from shopify_double.segments import SegmentQueryError, parse_segment_query
from shopify_double.state import (
    CallRecord,
    Customer,
    DevStore,
    Metafield,
    MetafieldDefinition,
    Order,
    Segment,
    ShopState,
    iso,
    metafield_digest,
    normalize_tags,
    parse_gid,
)

JsonDict = dict[str, Any]
MAX_PAGE_SIZE = 250
MAX_INPUT_ARRAY = 250
METAFIELDS_SET_MAX = 25
MAX_TAGS = 250


@dataclass
class RequestContext:
    store: DevStore
    shop: ShopState
    scopes: frozenset[str]


# ---------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------


def _invalid_gid(value: Any) -> GraphQLError:
    return GraphQLError(
        f"Invalid global id '{value}'",
        extensions={"code": "argumentLiteralsIncompatible", "typeName": "CoercionError"},
    )


def _require_scope(info: GraphQLResolveInfo, scope: str) -> None:
    ctx: RequestContext = info.context
    resource = scope.split("_", 1)[1]
    if scope in ctx.scopes or (scope.startswith("read_") and f"write_{resource}" in ctx.scopes):
        return
    required = f"`{scope}` access scope."
    raise GraphQLError(
        f"Access denied for {info.field_name} field. Required access: {required}",
        extensions={
            "code": "ACCESS_DENIED",
            "documentation": "https://shopify.dev/api/usage/access-scopes",
            "requiredAccess": required,
        },
    )


# ---------------------------------------------------------------------------------------------
# Views: state objects as dicts with __typename
# ---------------------------------------------------------------------------------------------


def money_amount(value: Decimal) -> str:
    """Shopify renders Decimal amounts like Ruby's BigDecimal: ``10.0``, ``199.65``."""
    text = format(value.normalize(), "f") if value == value.to_integral() else format(value, "f").rstrip("0")
    return text if "." in text else f"{text}.0"


def money(amount: Decimal, currency: str) -> JsonDict:
    return {"amount": money_amount(amount), "currencyCode": currency}


def money_bag(amount: Decimal, currency: str) -> JsonDict:
    m = money(amount, currency)
    return {"shopMoney": m, "presentmentMoney": dict(m)}


def shop_view(shop: ShopState) -> JsonDict:
    return {
        "__typename": "Shop",
        "id": shop.gid,
        "name": shop.name,
        "myshopifyDomain": shop.domain,
        "url": f"https://{shop.domain}",
        "email": f"owner@{shop.domain}",
        "contactEmail": f"owner@{shop.domain}",
        "currencyCode": shop.currency_code,
        "ianaTimezone": shop.iana_timezone,
        "plan": {
            "displayName": shop.plan,
            "publicDisplayName": shop.plan,
            "partnerDevelopment": False,
            "shopifyPlus": shop.plan in ("Plus", "Enterprise"),
        },
    }


def customer_view(ctx: RequestContext, c: Customer) -> JsonDict:
    name = " ".join(p for p in (c.first_name, c.last_name) if p) or (c.email or "")
    return {
        "__typename": "Customer",
        "_obj": c,
        "id": c.gid,
        "legacyResourceId": str(c.id),
        "tags": list(c.tags),
        "createdAt": iso(c.created_at),
        "updatedAt": iso(c.updated_at),
        "numberOfOrders": str(c.number_of_orders),
        "amountSpent": money(c.amount_spent, ctx.shop.currency_code),
        "displayName": name,
        "firstName": c.first_name,
        "lastName": c.last_name,
        "email": c.email,
        "defaultEmailAddress": {"emailAddress": c.email} if c.email else None,
    }


def order_view(ctx: RequestContext, o: Order) -> JsonDict:
    cur = o.currency_code
    return {
        "__typename": "Order",
        "_obj": o,
        "id": o.gid,
        "legacyResourceId": str(o.id),
        "name": o.name,
        "createdAt": iso(o.created_at),
        "updatedAt": iso(o.updated_at),
        "processedAt": iso(o.processed_at),
        "cancelledAt": iso(o.cancelled_at),
        "cancelReason": o.cancel_reason.upper() if o.cancel_reason else None,
        "closedAt": iso(o.closed_at),
        "closed": o.closed_at is not None,
        "test": o.test,
        "displayFinancialStatus": o.financial_status,
        "currencyCode": cur,
        "presentmentCurrencyCode": cur,
        "totalPriceSet": money_bag(o.total_price, cur),
        "currentTotalPriceSet": money_bag(o.current_total_price, cur),
        "subtotalPriceSet": money_bag(o.total_price, cur),
        "currentSubtotalPriceSet": money_bag(o.current_total_price, cur),
        "totalDiscountsSet": money_bag(o.total_discounts, cur),
        "currentTotalDiscountsSet": money_bag(o.total_discounts, cur),
        "totalRefundedSet": money_bag(o.total_refunded, cur),
        "netPaymentSet": money_bag(o.total_price - o.total_refunded, cur),
        "discountCodes": [d.code for d in o.discount_codes],
        "discountCode": o.discount_codes[0].code if o.discount_codes else None,
        "sourceName": o.source_name,
        "tags": list(o.tags),
        "refunds": [
            {
                "__typename": "Refund",
                "id": f"gid://shopify/Refund/{r.id}",
                "legacyResourceId": str(r.id),
                "createdAt": iso(r.created_at),
                "processedAt": iso(r.created_at),
                "updatedAt": iso(r.created_at),
                "totalRefundedSet": money_bag(r.amount, cur),
            }
            for r in o.refunds
        ],
    }


def metafield_view(ctx: RequestContext, m: Metafield) -> JsonDict:
    json_value: Any = m.value
    if m.type == "number_integer":
        json_value = int(m.value)
    elif m.type == "boolean":
        json_value = m.value == "true"
    elif m.type == "json" or m.type.startswith("list."):
        json_value = json.loads(m.value)
    return {
        "__typename": "Metafield",
        "_obj": m,
        "id": m.gid,
        "legacyResourceId": str(m.id),
        "namespace": m.namespace,
        "key": m.key,
        "type": m.type,
        "value": m.value,
        "jsonValue": json_value,
        "compareDigest": m.compare_digest,
        "createdAt": iso(m.created_at),
        "updatedAt": iso(m.updated_at),
        "ownerType": "CUSTOMER",
        "sizeInBytes": len(m.value.encode()),
    }


def definition_view(d: MetafieldDefinition) -> JsonDict:
    return {
        "__typename": "MetafieldDefinition",
        "_obj": d,
        "id": d.gid,
        "namespace": d.namespace,
        "key": d.key,
        "name": d.name,
        "description": d.description,
        "ownerType": d.owner_type,
        "type": {"name": d.type, "category": d.type.split("_")[0].upper()},
        "validations": [{"name": k, "value": v, "type": "json"} for k, v in d.validations.items()],
        "capabilities": {
            "adminFilterable": {"enabled": d.admin_filterable, "eligible": True, "status": "FILTERABLE"}
        },
    }


def segment_view(s: Segment) -> JsonDict:
    return {
        "__typename": "Segment",
        "id": s.gid,
        "name": s.name,
        "query": s.query,
        "creationDate": iso(s.creation_date),
        "lastEditDate": iso(s.last_edit_date),
    }


def node_view(ctx: RequestContext, value: str) -> JsonDict | None:
    parsed = parse_gid(value)
    if parsed is None:
        raise _invalid_gid(value)
    kind, num = parsed
    shop = ctx.shop
    if kind == "Customer" and num in shop.customers:
        return customer_view(ctx, shop.customers[num])
    if kind == "Order" and num in shop.orders:
        return order_view(ctx, shop.orders[num])
    if kind == "Segment" and num in shop.segments:
        return segment_view(shop.segments[num])
    if kind == "MetafieldDefinition" and num in shop.metafield_definitions:
        return definition_view(shop.metafield_definitions[num])
    if kind == "Metafield":
        for m in shop.metafields.values():
            if m.id == num:
                return metafield_view(ctx, m)
    if kind == "Shop" and num == shop.id:
        return shop_view(shop)
    return None


# ---------------------------------------------------------------------------------------------
# Connections and search syntax
# ---------------------------------------------------------------------------------------------


def _encode_cursor(key: tuple[Any, ...]) -> str:
    return base64.b64encode(json.dumps({"last_id": key[-1], "last_value": list(key)}).encode()).decode()


def _decode_cursor(cursor: str) -> tuple[Any, ...]:
    try:
        data = json.loads(base64.b64decode(cursor.encode(), validate=True))
        return tuple(data["last_value"])
    except Exception:
        raise GraphQLError(
            "Invalid cursor for current pagination sort.", extensions={"code": "BAD_REQUEST"}
        ) from None


def connection(
    info: GraphQLResolveInfo,
    items: Iterable[Any],
    *,
    key: Callable[[Any], tuple[Any, ...]],
    node: Callable[[Any], JsonDict | None],
    first: int | None = None,
    last: int | None = None,
    after: str | None = None,
    before: str | None = None,
    reverse: bool | None = False,
    **_: Any,
) -> JsonDict:
    bulk = getattr(info.context, "bulk", False)  # a bulk operation reads connections whole
    if first is None and last is None and not bulk:
        raise GraphQLError("you must provide one of first or last", extensions={"code": "BAD_REQUEST"})
    if first is not None and last is not None:
        raise GraphQLError(
            "providing both first and last is not supported", extensions={"code": "BAD_REQUEST"}
        )
    for label, size in (("first", first), ("last", last)):
        if size is not None and not bulk and not 0 <= size <= MAX_PAGE_SIZE:
            raise GraphQLError(
                f"Argument '{label}' on Field '{info.field_name}' has an invalid value ({size}). "
                f"Expected a page size from 0 to {MAX_PAGE_SIZE}.",
                extensions={"code": "BAD_REQUEST"},
            )
    ordered = sorted(items, key=key, reverse=bool(reverse))
    if after is not None:
        a = _decode_cursor(after)
        ordered = [i for i in ordered if (key(i) < a if reverse else key(i) > a)]
    if before is not None:
        b = _decode_cursor(before)
        ordered = [i for i in ordered if (key(i) > b if reverse else key(i) < b)]
    if first is None and last is None:
        page, has_next, has_prev = ordered, False, False
    elif first is not None:
        page = ordered[:first]
        has_next, has_prev = len(ordered) > first, after is not None
    else:
        assert last is not None
        page = ordered[-last:] if last else []
        has_next, has_prev = before is not None, len(ordered) > last
    edges = [{"cursor": _encode_cursor(key(i)), "node": node(i)} for i in page]
    return {
        "edges": edges,
        "nodes": [e["node"] for e in edges],
        "pageInfo": {
            "hasNextPage": has_next,
            "hasPreviousPage": has_prev,
            "startCursor": edges[0]["cursor"] if edges else None,
            "endCursor": edges[-1]["cursor"] if edges else None,
        },
    }


_TERM = re.compile(r"""(-?)(\w+):(>=|<=|>|<|=)?('[^']*'|"[^"]*"|\S+)""")


def parse_search(query: str | None) -> list[tuple[str, str, str, bool]]:
    """``updated_at:>'2026-01-01T00:00:00Z' tag:vip`` → ``[(field, op, value, negated)]``."""
    if not query:
        return []
    out = []
    for m in _TERM.finditer(query):
        value = m[4]
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        out.append((m[2].lower(), m[3] or ":", value, m[1] == "-"))
    return out


def _parse_time(value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise GraphQLError(
            f"Invalid timestamp for query filter: '{value}'", extensions={"code": "BAD_REQUEST"}
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _cmp(left: Any, op: str, right: Any) -> bool:
    if op in (":", "="):
        return bool(left == right)
    if op == ">":
        return bool(left > right)
    if op == ">=":
        return bool(left >= right)
    if op == "<":
        return bool(left < right)
    return bool(left <= right)


def _time_matches(ts: datetime | None, op: str, value: str) -> bool:
    if ts is None:
        return False
    bound = _parse_time(value)
    if op in (":", "=") and len(value) == 10:  # a bare date matches the whole day
        return ts.date() == bound.date()
    return _cmp(ts, op, bound)


def _customer_matches(c: Customer, terms: list[tuple[str, str, str, bool]]) -> bool:
    for field_name, op, value, negated in terms:
        if field_name == "id":
            ok = _cmp(c.id, op, int(value)) if value.isdigit() else False
        elif field_name == "tag":
            ok = value.lower() in {t.lower() for t in c.tags}
        elif field_name == "tag_not":
            ok = value.lower() not in {t.lower() for t in c.tags}
        elif field_name in ("updated_at", "created_at"):
            ok = _time_matches(getattr(c, field_name), op, value)
        elif field_name in ("orders_count", "number_of_orders"):
            ok = _cmp(c.number_of_orders, op, int(value))
        else:
            continue
        if ok == negated:
            return False
    return True


def _customer_query_matches(c: Customer, query: str | None) -> bool:
    """``customers(query:)``: any OR group whose terms all match (``customer_search`` for the text
    fields and the default search, the other fields as above)."""
    groups = customer_search.parse(query)
    if not groups:
        return True
    for group in groups:
        ok = True
        for term in group:
            matched = customer_search.text_term_matches(c, term)
            if matched is None:
                value = f"{term.value}*" if term.prefix else term.value
                matched = _customer_matches(c, [(term.field or "", term.op, value, False)])
            if matched == term.negated:
                ok = False
                break
        if ok:
            return True
    return False


def _order_matches(o: Order, terms: list[tuple[str, str, str, bool]]) -> bool:
    for field_name, op, value, negated in terms:
        if field_name == "id":
            ok = _cmp(o.id, op, int(value)) if value.isdigit() else False
        elif field_name in ("updated_at", "created_at", "processed_at"):
            ok = _time_matches(getattr(o, field_name), op, value)
        elif field_name == "test":
            ok = o.test == (value.lower() == "true")
        elif field_name == "financial_status":
            ok = o.financial_status.lower() == value.lower()
        elif field_name == "customer_id":
            ok = o.customer_id is not None and str(o.customer_id) == value
        elif field_name == "source_name":
            ok = o.source_name == value
        elif field_name == "status":
            status = "cancelled" if o.cancelled_at else ("closed" if o.closed_at else "open")
            ok = value.lower() in (status, "any")
        else:
            continue
        if ok == negated:
            return False
    return True


def _ts(value: datetime | None) -> float:
    return value.timestamp() if value else 0.0


_ORDER_SORT: dict[str, Callable[[Order], tuple[Any, ...]]] = {
    "ID": lambda o: (o.id,),
    "CREATED_AT": lambda o: (_ts(o.created_at), o.id),
    "UPDATED_AT": lambda o: (_ts(o.updated_at), o.id),
    "PROCESSED_AT": lambda o: (_ts(o.processed_at), o.id),
    "ORDER_NUMBER": lambda o: (o.number, o.id),
    "TOTAL_PRICE": lambda o: (float(o.total_price), o.id),
    "CURRENT_TOTAL_PRICE": lambda o: (float(o.current_total_price), o.id),
}
_CUSTOMER_SORT: dict[str, Callable[[Customer], tuple[Any, ...]]] = {
    "ID": lambda c: (c.id,),
    "CREATED_AT": lambda c: (_ts(c.created_at), c.id),
    "UPDATED_AT": lambda c: (_ts(c.updated_at), c.id),
}


# ---------------------------------------------------------------------------------------------
# Query resolvers
# ---------------------------------------------------------------------------------------------

Resolver = Callable[..., Any]
RESOLVERS: dict[tuple[str, str], Resolver] = {}


def resolver(type_name: str, field_name: str) -> Callable[[Resolver], Resolver]:
    def register(fn: Resolver) -> Resolver:
        RESOLVERS[(type_name, field_name)] = fn
        return fn

    return register


@resolver("QueryRoot", "shop")
def _shop(_: Any, info: GraphQLResolveInfo) -> JsonDict:
    return shop_view(info.context.shop)


@resolver("QueryRoot", "customer")
def _customer(_: Any, info: GraphQLResolveInfo, id: str) -> JsonDict | None:
    _require_scope(info, "read_customers")
    _customer_data.require_customer_data(info)
    parsed = parse_gid(id)
    if parsed is None:
        raise _invalid_gid(id)
    ctx: RequestContext = info.context
    c = ctx.shop.customers.get(parsed[1]) if parsed[0] == "Customer" else None
    return customer_view(ctx, c) if c else None


@resolver("QueryRoot", "customers")
def _customers(
    _: Any, info: GraphQLResolveInfo, query: str | None = None, sortKey: str = "ID", **args: Any
) -> JsonDict:
    _require_scope(info, "read_customers")
    _customer_data.require_customer_data(info)
    ctx: RequestContext = info.context
    with ctx.shop.lock:
        items = [c for c in ctx.shop.customers.values() if _customer_query_matches(c, query)]
    key = _CUSTOMER_SORT.get(sortKey, _CUSTOMER_SORT["ID"])
    return connection(info, items, key=key, node=lambda c: customer_view(ctx, c), **args)


@resolver("QueryRoot", "customersCount")
def _customers_count(
    _: Any, info: GraphQLResolveInfo, query: str | None = None, limit: int | None = 10000, **__: Any
) -> JsonDict:
    _require_scope(info, "read_customers")
    n = sum(1 for c in info.context.shop.customers.values() if _customer_query_matches(c, query))
    return _count(n, limit)


def _count(n: int, limit: int | None) -> JsonDict:
    if limit is not None and n > limit:
        return {"count": limit, "precision": "AT_LEAST"}
    return {"count": n, "precision": "EXACT"}


@resolver("QueryRoot", "node")
def _node(_: Any, info: GraphQLResolveInfo, id: str) -> JsonDict | None:
    view = node_view(info.context, id)
    if view and view["__typename"] in ("Customer", "Segment", "Metafield", "MetafieldDefinition"):
        _require_scope(info, "read_customers")
    if view and view["__typename"] == "Order":
        _require_scope(info, "read_orders")
    return view


@resolver("QueryRoot", "nodes")
def _nodes(_: Any, info: GraphQLResolveInfo, ids: list[str]) -> list[JsonDict | None]:
    views = [node_view(info.context, i) for i in ids]
    kinds = {v["__typename"] for v in views if v}
    if kinds & {"Customer", "Segment", "Metafield", "MetafieldDefinition"}:
        _require_scope(info, "read_customers")
    if "Customer" in kinds:
        _customer_data.require_customer_data(info)
    if "Order" in kinds:
        _require_scope(info, "read_orders")
    return views


@resolver("QueryRoot", "order")
def _order(_: Any, info: GraphQLResolveInfo, id: str) -> JsonDict | None:
    _require_scope(info, "read_orders")
    parsed = parse_gid(id)
    if parsed is None:
        raise _invalid_gid(id)
    o = info.context.shop.orders.get(parsed[1]) if parsed[0] == "Order" else None
    return order_view(info.context, o) if o else None


@resolver("QueryRoot", "orders")
def _orders(
    _: Any,
    info: GraphQLResolveInfo,
    query: str | None = None,
    sortKey: str = "ID",
    savedSearchId: str | None = None,
    **args: Any,
) -> JsonDict:
    _require_scope(info, "read_orders")
    ctx: RequestContext = info.context
    terms = parse_search(query)
    with ctx.shop.lock:
        items = [o for o in ctx.shop.orders.values() if _order_matches(o, terms)]
    key = _ORDER_SORT.get(sortKey, _ORDER_SORT["ID"])
    return connection(info, items, key=key, node=lambda o: order_view(ctx, o), **args)


@resolver("QueryRoot", "ordersCount")
def _orders_count(
    _: Any, info: GraphQLResolveInfo, query: str | None = None, limit: int | None = 10000, **__: Any
) -> JsonDict:
    _require_scope(info, "read_orders")
    terms = parse_search(query)
    n = sum(1 for o in info.context.shop.orders.values() if _order_matches(o, terms))
    return _count(n, limit)


@resolver("QueryRoot", "segments")
def _segments(
    _: Any, info: GraphQLResolveInfo, query: str | None = None, sortKey: str = "CREATION_DATE", **args: Any
) -> JsonDict:
    _require_scope(info, "read_customers")
    items = list(info.context.shop.segments.values())
    if query:
        items = [s for s in items if query.lower().replace("name:", "").strip("'\" ") in s.name.lower()]
    return connection(info, items, key=lambda s: (s.id,), node=segment_view, **args)


@resolver("QueryRoot", "segment")
def _segment(_: Any, info: GraphQLResolveInfo, id: str) -> JsonDict | None:
    _require_scope(info, "read_customers")
    parsed = parse_gid(id)
    if parsed is None:
        raise _invalid_gid(id)
    s = info.context.shop.segments.get(parsed[1]) if parsed[0] == "Segment" else None
    return segment_view(s) if s else None


@resolver("QueryRoot", "segmentsCount")
def _segments_count(_: Any, info: GraphQLResolveInfo, limit: int | None = 10000, **__: Any) -> JsonDict:
    _require_scope(info, "read_customers")
    return _count(len(info.context.shop.segments), limit)


@resolver("QueryRoot", "metafieldDefinitions")
def _definitions(
    _: Any,
    info: GraphQLResolveInfo,
    ownerType: str,
    namespace: str | None = None,
    key: str | None = None,
    **args: Any,
) -> JsonDict:
    ctx: RequestContext = info.context
    ns = ctx.store.resolve_namespace(namespace) if namespace else None
    items = [
        d
        for d in ctx.shop.metafield_definitions.values()
        if d.owner_type == ownerType and (ns is None or d.namespace == ns) and (key is None or d.key == key)
    ]
    page_args = {k: v for k, v in args.items() if k in ("first", "last", "after", "before", "reverse")}
    return connection(info, items, key=lambda d: (d.id,), node=definition_view, **page_args)


@resolver("Customer", "metafield")
def _customer_metafield(
    src: JsonDict, info: GraphQLResolveInfo, key: str, namespace: str | None = None
) -> JsonDict | None:
    ctx: RequestContext = info.context
    m = ctx.shop.metafields.get((src["id"], ctx.store.resolve_namespace(namespace), key))
    return metafield_view(ctx, m) if m else None


@resolver("Customer", "metafields")
def _customer_metafields(
    src: JsonDict,
    info: GraphQLResolveInfo,
    namespace: str | None = None,
    keys: list[str] | None = None,
    **args: Any,
) -> JsonDict:
    ctx: RequestContext = info.context
    ns = ctx.store.resolve_namespace(namespace) if namespace else None
    items = [
        m
        for m in ctx.shop.metafields_of(src["id"])
        if (ns is None or m.namespace == ns) and (keys is None or f"{m.namespace}.{m.key}" in keys)
    ]
    return connection(info, items, key=lambda m: (m.id,), node=lambda m: metafield_view(ctx, m), **args)


@resolver("Customer", "lastOrder")
def _customer_last_order(src: JsonDict, info: GraphQLResolveInfo) -> JsonDict | None:
    ctx: RequestContext = info.context
    cid = src["_obj"].id
    mine = [o for o in ctx.shop.orders.values() if o.customer_id == cid]
    return order_view(ctx, max(mine, key=lambda o: (o.processed_at, o.id))) if mine else None


@resolver("Customer", "orders")
def _customer_orders(
    src: JsonDict, info: GraphQLResolveInfo, query: str | None = None, sortKey: str = "ID", **args: Any
) -> JsonDict:
    ctx: RequestContext = info.context
    cid = src["_obj"].id
    terms = parse_search(query)
    items = [o for o in ctx.shop.orders.values() if o.customer_id == cid and _order_matches(o, terms)]
    key = _ORDER_SORT.get(sortKey, _ORDER_SORT["ID"])
    return connection(info, items, key=key, node=lambda o: order_view(ctx, o), **args)


@resolver("Order", "customer")
def _order_customer(src: JsonDict, info: GraphQLResolveInfo) -> JsonDict | None:
    ctx: RequestContext = info.context
    cid = src["_obj"].customer_id
    c = ctx.shop.customers.get(cid) if cid is not None else None
    return customer_view(ctx, c) if c else None


@resolver("Order", "refunds")
def _order_refunds(src: JsonDict, info: GraphQLResolveInfo, first: int | None = None) -> list[JsonDict]:
    refunds: list[JsonDict] = src["refunds"]
    return refunds[:first] if first is not None else refunds


@resolver("Metafield", "owner")
def _metafield_owner(src: JsonDict, info: GraphQLResolveInfo) -> JsonDict | None:
    return node_view(info.context, src["_obj"].owner_gid)


@resolver("Metafield", "definition")
def _metafield_definition(src: JsonDict, info: GraphQLResolveInfo) -> JsonDict | None:
    m: Metafield = src["_obj"]
    d = info.context.shop.definition_for("CUSTOMER", m.namespace, m.key)
    return definition_view(d) if d else None


# ---------------------------------------------------------------------------------------------
# Metafield value validation
# ---------------------------------------------------------------------------------------------

KNOWN_TYPES = {
    "boolean",
    "color",
    "date",
    "date_time",
    "dimension",
    "id",
    "json",
    "language",
    "link",
    "money",
    "multi_line_text_field",
    "number_decimal",
    "number_integer",
    "rating",
    "rich_text_field",
    "single_line_text_field",
    "url",
    "volume",
    "weight",
    "product_reference",
    "variant_reference",
    "collection_reference",
    "customer_reference",
    "file_reference",
    "metaobject_reference",
    "page_reference",
}
KNOWN_TYPES |= {
    f"list.{t}"
    for t in (
        "single_line_text_field",
        "number_integer",
        "number_decimal",
        "date",
        "date_time",
        "url",
        "color",
        "product_reference",
        "variant_reference",
        "collection_reference",
        "customer_reference",
        "file_reference",
        "metaobject_reference",
        "page_reference",
        "rating",
        "weight",
        "volume",
        "dimension",
        "link",
    )
}
_INT_RE = re.compile(r"^[-+]?\d+$")
_DEC_RE = re.compile(r"^[-+]?\d+(\.\d+)?$")
INT_MAX = 9_007_199_254_740_991


def validate_metafield_value(
    type_: str, value: str, definition: MetafieldDefinition | None
) -> tuple[str, str] | None:
    """``(code, message)`` when ``value`` is not a valid ``type_`` (and definition validations)."""
    if value == "":
        return "BLANK", "Value can't be blank."
    number: Decimal | None = None
    if type_ == "number_integer":
        if not _INT_RE.match(value) or abs(int(value)) > INT_MAX:
            return "INVALID_VALUE", "Value must be an integer."
        number = Decimal(value)
    elif type_ == "number_decimal":
        if not _DEC_RE.match(value):
            return "INVALID_VALUE", "Value must be a decimal."
        number = Decimal(value)
        if abs(number) >= Decimal("1e13") or (-number.as_tuple().exponent if "." in value else 0) > 9:  # type: ignore[operator]
            return (
                "INVALID_VALUE",
                "Value must be a decimal with up to 13 digits before and 9 after the point.",
            )
    elif type_ == "single_line_text_field":
        if "\n" in value or "\r" in value:
            return "INVALID_VALUE", "Value must be a single line text string."
    elif type_ == "boolean":
        if value not in ("true", "false"):
            return "INVALID_VALUE", "Value must be true or false."
    elif type_ == "date":
        try:
            if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
                raise ValueError
            date.fromisoformat(value)
        except ValueError:
            return "INVALID_VALUE", "Value must be in YYYY-MM-DD format."
    elif type_ == "date_time":
        try:
            datetime.fromisoformat(value)
        except ValueError:
            return "INVALID_VALUE", "Value must be in ISO 8601 date and time format."
    elif type_ == "json" or type_.startswith("list."):
        try:
            parsed = json.loads(value)
        except ValueError:
            return "INVALID_VALUE", "Value is invalid JSON."
        if type_.startswith("list.") and not isinstance(parsed, list):
            return "INVALID_VALUE", "Value must be an array."
    if definition is None:
        return None
    v = definition.validations
    if "choices" in v:
        choices = json.loads(v["choices"])
        if value not in choices:
            return "INCLUSION", f"Value does not exist in provided choices: {json.dumps(choices)}."
    if number is not None:
        try:
            if "min" in v and number < Decimal(v["min"]):
                return "INVALID_VALUE", f"Value must be greater than or equal to {v['min']}."
            if "max" in v and number > Decimal(v["max"]):
                return "LESS_THAN_OR_EQUAL_TO", f"Value must be less than or equal to {v['max']}."
        except InvalidOperation:
            pass
    if type_ in ("single_line_text_field", "multi_line_text_field"):
        if "max" in v and len(value) > int(v["max"]):
            return "TOO_LONG", f"Value is too long (maximum is {v['max']} characters)."
        if "min" in v and len(value) < int(v["min"]):
            return "TOO_SHORT", f"Value is too short (minimum is {v['min']} characters)."
        if "regex" in v and not re.fullmatch(v["regex"], value):
            return "INVALID_VALUE", "Value does not match the required format."
    return None


_STALE = "The resource has been updated since it was loaded. Try again with an updated `compareDigest` value."


# ---------------------------------------------------------------------------------------------
# Mutations
# ---------------------------------------------------------------------------------------------


@resolver("Mutation", "metafieldsSet")
def _metafields_set(_: Any, info: GraphQLResolveInfo, metafields: list[JsonDict]) -> JsonDict:
    _require_scope(info, "write_customers")
    ctx: RequestContext = info.context
    shop, store = ctx.shop, ctx.store
    errors: list[JsonDict] = []
    with shop.lock:
        planned: list[tuple[str, str, str, str, str]] = []
        for i, inp in enumerate(metafields):

            def err(field: str, message: str, code: str, i: int = i) -> None:
                errors.append(
                    {
                        "field": ["metafields", str(i), field],
                        "message": message,
                        "code": code,
                        "elementIndex": i,
                    }
                )

            owner = parse_gid(inp["ownerId"])
            if owner is None:
                raise _invalid_gid(inp["ownerId"])
            owner_gid = inp["ownerId"]
            if owner[0] != "Customer" or owner[1] not in shop.customers:
                err("ownerId", "Owner does not exist.", "INVALID")
                continue
            raw_ns = inp.get("namespace")
            ns = store.resolve_namespace(raw_ns)
            key: str = inp["key"]
            value: str = inp["value"]
            if raw_ns is not None and ns.startswith("app--") and not ns.startswith(store.app_namespace):
                err(
                    "namespace",
                    "Access to this namespace and key on Metafields for this resource type is not allowed.",
                    "APP_NOT_AUTHORIZED",
                )
                continue
            if len(ns) < 3:
                err("namespace", "Namespace is too short (minimum is 3 characters).", "TOO_SHORT")
                continue
            if len(key) < 2:
                err("key", "Key is too short (minimum is 2 characters).", "TOO_SHORT")
                continue
            if len(key) > 64:
                err("key", "Key is too long (maximum is 64 characters).", "TOO_LONG")
                continue
            if not re.fullmatch(r"[A-Za-z0-9_-]+", key):
                err("key", "Key contains one or more invalid characters.", "INVALID")
                continue
            definition = shop.definition_for("CUSTOMER", ns, key)
            existing = shop.metafields.get((owner_gid, ns, key))
            type_ = (
                inp.get("type")
                or (definition.type if definition else None)
                or (existing.type if existing else None)
            )
            if type_ is None:
                err("type", "Type can't be blank.", "BLANK")
                continue
            if type_ not in KNOWN_TYPES:
                err("type", "Type is invalid.", "INVALID_TYPE")
                continue
            if definition is not None and type_ != definition.type:
                err(
                    "type",
                    f"Type must be the same as the definition's type ({definition.type}).",
                    "INVALID_TYPE",
                )
                continue
            problem = validate_metafield_value(type_, value, definition)
            if problem:
                err("value", problem[1], problem[0])
                continue
            if "compareDigest" in inp:
                digest = inp["compareDigest"]
                if digest is None:
                    if existing is not None:
                        err("compareDigest", _STALE, "STALE_OBJECT")
                        continue
                elif not re.fullmatch(r"[0-9a-f]{64}", digest):
                    err("compareDigest", "The compareDigest is invalid.", "INVALID_COMPARE_DIGEST")
                    continue
                elif existing is None or existing.compare_digest != digest:
                    err("compareDigest", _STALE, "STALE_OBJECT")
                    continue
            planned.append((owner_gid, ns, key, type_, value))
        if errors:
            return {"metafields": [], "userErrors": errors}
        written = []
        now = store.now()
        for owner_gid, ns, key, type_, value in planned:
            m = shop.metafields.get((owner_gid, ns, key))
            if m is None:
                m = Metafield(
                    id=shop.next_id(),
                    owner_gid=owner_gid,
                    namespace=ns,
                    key=key,
                    type=type_,
                    value=value,
                    created_at=now,
                    updated_at=now,
                )
                shop.metafields[(owner_gid, ns, key)] = m
            elif metafield_digest(m.type, m.value) != metafield_digest(type_, value):
                m.type, m.value, m.updated_at = type_, value, now
            written.append(metafield_view(ctx, m))
    return {"metafields": written, "userErrors": []}


@resolver("Mutation", "metafieldsDelete")
def _metafields_delete(_: Any, info: GraphQLResolveInfo, metafields: list[JsonDict]) -> JsonDict:
    _require_scope(info, "write_customers")
    ctx: RequestContext = info.context
    out: list[JsonDict | None] = []
    with ctx.shop.lock:
        for ident in metafields:
            if parse_gid(ident["ownerId"]) is None:
                raise _invalid_gid(ident["ownerId"])
            ns = ctx.store.resolve_namespace(ident.get("namespace"))
            removed = ctx.shop.metafields.pop((ident["ownerId"], ns, ident["key"]), None)
            out.append(
                {"ownerId": ident["ownerId"], "namespace": ns, "key": ident["key"]} if removed else None
            )
    return {"deletedMetafields": out, "userErrors": []}


def _taggable(info: GraphQLResolveInfo, id: str) -> Customer | Order | None:
    ctx: RequestContext = info.context
    parsed = parse_gid(id)
    if parsed is None:
        raise _invalid_gid(id)
    if parsed[0] == "Customer":
        _require_scope(info, "write_customers")
        return ctx.shop.customers.get(parsed[1])
    if parsed[0] == "Order":
        _require_scope(info, "write_orders")
        return ctx.shop.orders.get(parsed[1])
    return None


def _tag_payload(ctx: RequestContext, obj: Customer | Order) -> JsonDict:
    node = customer_view(ctx, obj) if isinstance(obj, Customer) else order_view(ctx, obj)
    return {"node": node, "userErrors": []}


@resolver("Mutation", "tagsAdd")
def _tags_add(_: Any, info: GraphQLResolveInfo, id: str, tags: list[str]) -> JsonDict:
    ctx: RequestContext = info.context
    with ctx.shop.lock:
        obj = _taggable(info, id)
        if obj is None:
            return {"node": None, "userErrors": [{"field": ["id"], "message": "Resource does not exist"}]}
        new_tags = normalize_tags(obj.tags, tags)
        if any(len(t) > 255 for t in new_tags):
            return {
                "node": None,
                "userErrors": [
                    {"field": ["tags"], "message": "Tags is invalid: a tag can be at most 255 characters"}
                ],
            }
        if len(new_tags) > MAX_TAGS:
            return {
                "node": None,
                "userErrors": [{"field": ["tags"], "message": f"Tags cannot exceed {MAX_TAGS}"}],
            }
        if new_tags != obj.tags:
            obj.tags = new_tags
            obj.updated_at = ctx.store.now()
        return _tag_payload(ctx, obj)


@resolver("Mutation", "tagsRemove")
def _tags_remove(_: Any, info: GraphQLResolveInfo, id: str, tags: list[str]) -> JsonDict:
    ctx: RequestContext = info.context
    with ctx.shop.lock:
        obj = _taggable(info, id)
        if obj is None:
            return {"node": None, "userErrors": [{"field": ["id"], "message": "Resource does not exist"}]}
        drop = {t.lower() for t in normalize_tags([], tags)}
        kept = [t for t in obj.tags if t.lower() not in drop]
        if kept != obj.tags:
            obj.tags = kept
            obj.updated_at = ctx.store.now()
        return _tag_payload(ctx, obj)


def _segment_name_error(shop: ShopState, name: str, exclude: int | None = None) -> JsonDict | None:
    if not name.strip():
        return {"field": ["name"], "message": "Name can't be blank"}
    if len(name) > 255:
        return {"field": ["name"], "message": "Name is too long (maximum is 255 characters)"}
    if any(s.name.lower() == name.lower() and s.id != exclude for s in shop.segments.values()):
        return {"field": ["name"], "message": "Name has already been taken"}
    return None


def _segment_query_error(ctx: RequestContext, query: str) -> JsonDict | None:
    try:
        parse_segment_query(query, ctx.store, ctx.shop)
    except SegmentQueryError as exc:
        return {"field": ["query"], "message": str(exc)}
    return None


@resolver("Mutation", "segmentCreate")
def _segment_create(_: Any, info: GraphQLResolveInfo, name: str, query: str) -> JsonDict:
    _require_scope(info, "write_customers")
    ctx: RequestContext = info.context
    with ctx.shop.lock:
        errors = [e for e in (_segment_name_error(ctx.shop, name), _segment_query_error(ctx, query)) if e]
        if errors:
            return {"segment": None, "userErrors": errors}
        now = ctx.store.now()
        seg = Segment(id=ctx.shop.next_id(), name=name, query=query, creation_date=now, last_edit_date=now)
        ctx.shop.segments[seg.id] = seg
        return {"segment": segment_view(seg), "userErrors": []}


@resolver("Mutation", "segmentUpdate")
def _segment_update(
    _: Any, info: GraphQLResolveInfo, id: str, name: str | None = None, query: str | None = None
) -> JsonDict:
    _require_scope(info, "write_customers")
    ctx: RequestContext = info.context
    parsed = parse_gid(id)
    if parsed is None:
        raise _invalid_gid(id)
    with ctx.shop.lock:
        seg = ctx.shop.segments.get(parsed[1]) if parsed[0] == "Segment" else None
        if seg is None:
            return {"segment": None, "userErrors": [{"field": ["id"], "message": "Segment does not exist"}]}
        errors = []
        if name is not None and (e := _segment_name_error(ctx.shop, name, exclude=seg.id)):
            errors.append(e)
        if query is not None and (e := _segment_query_error(ctx, query)):
            errors.append(e)
        if errors:
            return {"segment": None, "userErrors": errors}
        if name is not None:
            seg.name = name
        if query is not None:
            seg.query = query
        seg.last_edit_date = ctx.store.now()
        return {"segment": segment_view(seg), "userErrors": []}


@resolver("Mutation", "segmentDelete")
def _segment_delete(_: Any, info: GraphQLResolveInfo, id: str) -> JsonDict:
    _require_scope(info, "write_customers")
    ctx: RequestContext = info.context
    parsed = parse_gid(id)
    if parsed is None:
        raise _invalid_gid(id)
    with ctx.shop.lock:
        seg = ctx.shop.segments.pop(parsed[1], None) if parsed[0] == "Segment" else None
    if seg is None:
        return {
            "deletedSegmentId": None,
            "userErrors": [{"field": ["id"], "message": "Segment does not exist"}],
        }
    return {"deletedSegmentId": seg.gid, "userErrors": []}


# ---------------------------------------------------------------------------------------------
# Generic resolution
# ---------------------------------------------------------------------------------------------

_SCALAR_DEFAULTS: dict[str, Any] = {
    "String": "",
    "Int": 0,
    "Float": 0.0,
    "Boolean": False,
    "ID": "gid://shopify/Unknown/0",
    "DateTime": "1970-01-01T00:00:00Z",
    "Date": "1970-01-01",
    "Decimal": "0.0",
    "Money": "0.0",
    "UnsignedInt64": "0",
    "URL": "https://example.invalid",
    "JSON": {},
    "HTML": "",
    "FormattedString": "",
}


def default_value(type_: Any) -> Any:
    """What a field the double does not model resolves to: null, or an empty non-null value."""
    if not isinstance(type_, GraphQLNonNull):
        return None
    inner = type_.of_type
    if isinstance(inner, GraphQLList):
        return []
    if isinstance(inner, GraphQLScalarType):
        return _SCALAR_DEFAULTS.get(inner.name, "")
    if isinstance(inner, GraphQLEnumType):
        return next(iter(inner.values))
    if isinstance(inner, GraphQLObjectType):
        if inner.name.endswith("Connection") and "pageInfo" in inner.fields:
            return {"edges": [], "nodes": [], "pageInfo": {"hasNextPage": False, "hasPreviousPage": False}}
        return {"__typename": inner.name}
    if isinstance(inner, GraphQLInterfaceType | GraphQLUnionType):
        possible = load_schema().get_possible_types(inner)
        return {"__typename": possible[0].name} if possible else None
    return None


def field_resolver(source: Any, info: GraphQLResolveInfo, **args: Any) -> Any:
    fn = RESOLVERS.get((info.parent_type.name, info.field_name))
    if fn is not None:
        return fn(source, info, **args)
    if isinstance(source, dict) and info.field_name in source:
        return source[info.field_name]
    return default_value(info.return_type)


def never_awaitable(value: Any) -> TypeGuard[Awaitable[Any]]:
    """graphql-core's check of every resolved value for an awaitable (``execute(is_awaitable=...)``):
    every resolver of the double is synchronous, so none is, and the default check's cost on each
    field of each object is saved."""
    return False


def type_resolver(value: Any, info: GraphQLResolveInfo, abstract_type: Any) -> str | None:
    if isinstance(value, dict):
        return value.get("__typename")
    return None


# ---------------------------------------------------------------------------------------------
# The request pipeline: validate → coerce variables → cost → bucket → execute → refund
# ---------------------------------------------------------------------------------------------

_MAX_COST_MESSAGE = (
    "Query cost is {cost}, which exceeds the single query max cost limit ({limit}).\n\n"
    "See https://shopify.dev/concepts/about-apis/rate-limits for more information on how the\n"
    "cost of a query is calculated.\n\n"
    "To query larger amounts of data with fewer limits, bulk operations should be used instead.\n"
    "See https://shopify.dev/tutorials/perform-bulk-operations-with-admin-api for usage details.\n"
)


def _variable_error(
    error: GraphQLError, operation: OperationDefinitionNode, variables: dict[str, Any]
) -> JsonDict:
    """graphql-core's variable coercion error in graphql-ruby's (Shopify's) words."""
    msg = error.message
    m = re.match(r"Variable '\$(\w+)' has invalid value(?: at ((?:\[\d+\]|\.\w+)+))?: (.*)", msg, re.S)
    name = m[1] if m else "?"
    types = {d.variable.name.value: print_ast(d.type) for d in operation.variable_definitions or ()}
    path: list[Any] = []
    if m and m[2]:
        path = [int(a) if a else b for a, b in re.findall(r"\[(\d+)\]|\.(\w+)", m[2])]
    detail = m[3] if m else msg
    if f := re.search(r"to include required field '(\w+)'", detail):
        path, explanation = [*path, f[1]], "Expected value to not be null"
    elif f := re.search(r"not to include unknown field '(\w+)'", detail):
        type_name = re.search(r"type '(\w+)'", detail)
        path = [*path, f[1]]
        explanation = f"Field is not defined on {type_name[1] if type_name else 'input'}"
    elif "non-null" in detail:
        explanation = "Expected value to not be null"
    elif f := re.match(r"(\w+) cannot represent [^:]*: (.*)", detail):
        explanation = f"Could not coerce value {f[2]} to {f[1]}"
    else:
        explanation = detail
    return {
        "message": f"Variable ${name} of type {types.get(name, '?')} was provided invalid value",
        "locations": [{"line": loc.line, "column": loc.column} for loc in error.locations or []],
        "extensions": {
            "code": "INVALID_VARIABLE",
            "value": variables.get(name),
            "problems": [{"path": path, "explanation": explanation}],
        },
    }


def _input_size_errors(
    operation: OperationDefinitionNode, var_values: VariableValues | None
) -> list[JsonDict]:
    schema = load_schema()
    root = schema.mutation_type if operation.operation.value == "mutation" else schema.query_type
    assert root is not None
    errors: list[JsonDict] = []
    for sel in operation.selection_set.selections:
        if not isinstance(sel, FieldNode) or sel.name.value not in root.fields:
            continue
        field_def = root.fields[sel.name.value]
        args = get_argument_values(field_def, sel, var_values)
        for arg_name, value in args.items():
            if not isinstance(value, list):
                continue
            limit = (
                METAFIELDS_SET_MAX
                if (sel.name.value, arg_name) == ("metafieldsSet", "metafields")
                else MAX_INPUT_ARRAY
            )
            if len(value) > limit:
                loc = sel.loc.source.get_location(sel.loc.start) if sel.loc and sel.loc.source else None
                errors.append(
                    {
                        "message": f"The input array size of {len(value)} is greater than "
                        f"the maximum allowed of {limit}.",
                        "locations": [{"line": loc.line, "column": loc.column}] if loc else [],
                        "path": [sel.alias.value if sel.alias else sel.name.value, arg_name],
                        "extensions": {"code": "MAX_INPUT_SIZE_EXCEEDED"},
                    }
                )
    return errors


class AdminGraphQL:
    """Runs Admin API requests for the shops of a :class:`DevStore`."""

    def __init__(self, store: DevStore) -> None:
        self.store = store
        self.schema = load_schema()

    def _cost_ext(self, shop: ShopState, requested: int, actual: int | None) -> JsonDict:
        return {
            "cost": {
                "requestedQueryCost": requested,
                "actualQueryCost": actual,
                "throttleStatus": shop.bucket.status(),
            }
        }

    def run(
        self,
        shop_domain: str,
        scopes: frozenset[str],
        query: str,
        variables: dict[str, Any] | None = None,
        operation_name: str | None = None,
    ) -> JsonDict:
        """One Admin GraphQL request; returns the JSON body (always HTTP 200, as Shopify answers)."""
        shop = self.store.shop(shop_domain)
        variables = variables or {}
        requested = 0
        actual: int | None = None
        throttled = False
        body: JsonDict
        document: DocumentNode | None
        document, errors = check_document(query)
        operation = get_operation_ast(document, operation_name) if document else None
        if document is not None and operation is None:
            errors = [
                {
                    "message": "An operation name is required"
                    if operation_name is None
                    else f'No operation named "{operation_name}"',
                    "extensions": {"code": "BAD_REQUEST"},
                }
            ]
        coerced: dict[str, Any] = {}
        var_values: VariableValues | None = None
        if not errors and operation is not None:
            result = get_variable_values(self.schema, operation.variable_definitions or [], variables)
            if isinstance(result, list):
                errors = [_variable_error(e, operation, variables) for e in result]
            else:
                var_values, coerced = result, result.coerced
        if not errors and operation is not None and document is not None:
            requested = requested_cost(self.schema, document, operation, coerced)
            if requested > MAX_QUERY_COST:
                errors = [
                    {
                        "message": _MAX_COST_MESSAGE.format(cost=requested, limit=MAX_QUERY_COST),
                        "extensions": {
                            "code": "MAX_COST_EXCEEDED",
                            "cost": requested,
                            "maxCost": MAX_QUERY_COST,
                        },
                    }
                ]
            else:
                errors = _input_size_errors(operation, var_values)
        if errors:
            body = {"errors": errors, "extensions": self._cost_ext(shop, requested, None)}
        elif not shop.bucket.try_charge(requested):
            throttled = True
            body = {
                "errors": [
                    {
                        "message": "Throttled",
                        "extensions": {
                            "code": "THROTTLED",
                            "documentation": "https://shopify.dev/api/usage/rate-limits",
                        },
                    }
                ],
                "extensions": self._cost_ext(shop, requested, None),
            }
        else:
            assert document is not None and operation is not None
            ctx = RequestContext(self.store, shop, scopes)
            executed = execute(
                self.schema,
                document,
                context_value=ctx,
                variable_values=variables,
                operation_name=operation_name,
                field_resolver=field_resolver,
                type_resolver=type_resolver,
                is_awaitable=never_awaitable,
            )
            assert isinstance(executed, ExecutionResult)
            data = executed.data
            actual = actual_cost(self.schema, document, operation, coerced, data) if data else 0
            actual = min(actual, requested)
            shop.bucket.refund(requested - actual)
            body = {}
            if executed.errors:
                body["errors"] = [e.formatted for e in executed.errors]
            body["data"] = data
            body["extensions"] = self._cost_ext(shop, requested, actual)
        self.store.record_call(
            CallRecord(
                shop=shop_domain,
                query=query,
                variables=variables or None,
                requested_cost=requested,
                actual_cost=actual or 0,
                throttled=throttled,
                errors=body.get("errors"),
                at=self.store.clock(),
            )
        )
        return _jsonable(body)


def _jsonable(value: Any) -> Any:
    """Strip the private ``_obj`` keys resolvers use (they never reach the response anyway)."""
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items() if k != "_obj"}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value


# Bulk operation resolvers and the protected customer data fields (they register themselves on
# RESOLVERS).
from shopify_double import bulk as _bulk  # noqa: E402, F401
from shopify_double import customer_data as _customer_data  # noqa: E402
from shopify_double.flow import flow_trigger_receive  # noqa: E402

resolver("Mutation", "flowTriggerReceive")(flow_trigger_receive)
