"""Query cost and the per-shop leaky bucket, as Shopify documents them.

Requested cost (https://shopify.dev/docs/apps/build/apis/graphql-admin/rate-limits):

- scalar and enum fields cost 0, object fields 1 (plus their selections);
- interfaces and unions cost the maximum over the possible selections;
- a connection (a ``…Connection`` type taking ``first``/``last``) costs ``2 + size × per-item``,
  where ``size`` is ``first``/``last`` and per-item is the cost of what is selected under
  ``edges { node }`` and ``nodes`` (the node object itself counts 1); ``pageInfo`` and ``cursor``
  are free. Nested connections multiply;
- a list field taking ``ids`` (``nodes(ids:)``) is sized by the number of ids;
- every root mutation field costs 10, whatever its payload selects;
- a single query may cost at most 1000 (``MAX_COST_EXCEEDED``).

Actual cost walks the response data with the same rules, sizing each connection by the items it
really returned; the bucket is charged the requested cost up front and refunded the difference.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLInterfaceType,
    GraphQLList,
    GraphQLNamedType,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLSchema,
    GraphQLUnionType,
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    get_named_type,
    is_leaf_type,
    value_from_ast_untyped,
)

MAX_QUERY_COST = 1000
MUTATION_COST = 10
CONNECTION_BASE_COST = 2


class FakeClock:
    """A monotonic clock for tests: ``clock()`` returns the time, ``advance(s)`` moves it."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class LeakyBucket:
    """Per-(app, shop) cost bucket: ``maximum`` points, refilled at ``restore_rate`` points/s."""

    def __init__(
        self, *, maximum: float = 2000.0, restore_rate: float = 100.0, clock: Callable[[], float]
    ) -> None:
        self.maximum = float(maximum)
        self.restore_rate = float(restore_rate)
        self._clock = clock
        self._available = float(maximum)
        self._last = clock()
        self._lock = threading.Lock()

    def _refill(self) -> None:
        now = self._clock()
        elapsed = max(0.0, now - self._last)
        self._available = min(self.maximum, self._available + elapsed * self.restore_rate)
        self._last = now

    @property
    def available(self) -> float:
        with self._lock:
            self._refill()
            return self._available

    def try_charge(self, cost: float) -> bool:
        """Take ``cost`` points if the bucket holds them; ``False`` (nothing taken) otherwise."""
        with self._lock:
            self._refill()
            if cost > self._available:
                return False
            self._available -= cost
            return True

    def refund(self, points: float) -> None:
        with self._lock:
            self._refill()
            self._available = min(self.maximum, self._available + max(0.0, points))

    def drain(self, points: float | None = None) -> None:
        """Test helper: empty the bucket (or take ``points``)."""
        with self._lock:
            self._refill()
            self._available = 0.0 if points is None else max(0.0, self._available - points)

    def status(self) -> dict[str, float]:
        with self._lock:
            self._refill()
            return {
                "maximumAvailable": self.maximum,
                "currentlyAvailable": round(self._available, 1),
                "restoreRate": self.restore_rate,
            }


# ---------------------------------------------------------------------------------------------


def _is_connection(named: GraphQLNamedType) -> bool:
    return (
        isinstance(named, GraphQLObjectType)
        and named.name.endswith("Connection")
        and ("edges" in named.fields or "nodes" in named.fields)
    )


def _is_list(type_: Any) -> bool:
    if isinstance(type_, GraphQLNonNull):
        type_ = type_.of_type
    return isinstance(type_, GraphQLList)


class CostCalculator:
    def __init__(
        self, schema: GraphQLSchema, document: DocumentNode, variables: Mapping[str, Any] | None
    ) -> None:
        self.schema = schema
        self.variables = dict(variables or {})
        self.fragments = {
            d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
        }

    # -- argument values ----------------------------------------------------------------------
    def arg(self, field: FieldNode, name: str) -> Any:
        for a in field.arguments or ():
            if a.name.value == name:
                return value_from_ast_untyped(a.value, self.variables)
        return None

    # -- selections ---------------------------------------------------------------------------
    def _flatten(
        self, selection_set: SelectionSetNode | None, parent: GraphQLNamedType
    ) -> list[tuple[FieldNode, GraphQLNamedType, str | None]]:
        """Fields with the type they are selected on and the fragment's type condition."""
        out: list[tuple[FieldNode, GraphQLNamedType, str | None]] = []
        if selection_set is None:
            return out
        for sel in selection_set.selections:
            if isinstance(sel, FieldNode):
                out.append((sel, parent, None))
            elif isinstance(sel, InlineFragmentNode):
                cond = self.schema.get_type(sel.type_condition.name.value) if sel.type_condition else parent
                assert cond is not None
                out.extend((f, t, c or cond.name) for f, t, c in self._flatten(sel.selection_set, cond))
            elif isinstance(sel, FragmentSpreadNode):
                frag = self.fragments.get(sel.name.value)
                if frag is not None:
                    cond = self.schema.get_type(frag.type_condition.name.value)
                    assert cond is not None
                    out.extend((f, t, c or cond.name) for f, t, c in self._flatten(frag.selection_set, cond))
        return out

    def _applies(self, condition: str | None, candidate: str) -> bool:
        if condition is None or condition == candidate:
            return True
        cond_type = self.schema.get_type(condition)
        cand_type = self.schema.get_type(candidate)
        if isinstance(cond_type, GraphQLInterfaceType | GraphQLUnionType) and isinstance(
            cand_type, GraphQLObjectType
        ):
            return self.schema.is_sub_type(cond_type, cand_type)
        return False

    def selection_cost(self, selection_set: SelectionSetNode | None, parent: GraphQLNamedType) -> int:
        flat = self._flatten(selection_set, parent)
        if isinstance(parent, GraphQLInterfaceType | GraphQLUnionType):
            # Maximum over the possible types the selection distinguishes.
            candidates = {c for _, _, c in flat if c is not None} or {parent.name}
            return (
                max(
                    sum(self.field_cost(f, t) for f, t, c in flat if self._applies(c, cand))
                    for cand in candidates
                )
                if flat
                else 0
            )
        return sum(self.field_cost(f, t) for f, t, _ in flat)

    def field_cost(self, field: FieldNode, parent: GraphQLNamedType) -> int:
        name = field.name.value
        if name.startswith("__") or not isinstance(parent, GraphQLObjectType | GraphQLInterfaceType):
            return 0
        field_def = parent.fields.get(name)
        if field_def is None:
            return 0
        named = get_named_type(field_def.type)
        if is_leaf_type(named):
            return 0
        if _is_connection(named) and ("first" in field_def.args or "last" in field_def.args):
            size = self.arg(field, "first") or self.arg(field, "last") or 0
            return CONNECTION_BASE_COST + int(size) * self.per_item_cost(field, named)
        children = self.selection_cost(field.selection_set, named)
        if _is_list(field_def.type) and "ids" in field_def.args:
            ids = self.arg(field, "ids") or []
            return len(ids) * (1 + children)
        return 1 + children

    def per_item_cost(self, field: FieldNode, connection: GraphQLNamedType) -> int:
        assert isinstance(connection, GraphQLObjectType)
        total = 0
        for sub, _, _ in self._flatten(field.selection_set, connection):
            sub_name = sub.name.value
            if sub_name == "nodes":
                node_type = get_named_type(connection.fields["nodes"].type)
                total += 1 + self.selection_cost(sub.selection_set, node_type)
            elif sub_name == "edges":
                edge_type = get_named_type(connection.fields["edges"].type)
                assert isinstance(edge_type, GraphQLObjectType)
                for edge_field, _, _ in self._flatten(sub.selection_set, edge_type):
                    if edge_field.name.value == "node":
                        node_type = get_named_type(edge_type.fields["node"].type)
                        total += 1 + self.selection_cost(edge_field.selection_set, node_type)
        return total

    # -- actual cost --------------------------------------------------------------------------
    def actual_selection_cost(
        self, selection_set: SelectionSetNode | None, parent: GraphQLNamedType, data: Any
    ) -> int:
        if not isinstance(data, dict):
            return 0
        total = 0
        seen: set[str] = set()
        for f, t, _ in self._flatten(selection_set, parent):
            key = f.alias.value if f.alias else f.name.value
            if key in seen or key not in data:
                continue
            seen.add(key)
            total += self.actual_field_cost(f, t, data[key])
        return total

    def actual_field_cost(self, field: FieldNode, parent: GraphQLNamedType, value: Any) -> int:
        name = field.name.value
        if (
            value is None
            or name.startswith("__")
            or not isinstance(parent, GraphQLObjectType | GraphQLInterfaceType)
        ):
            return 0
        field_def = parent.fields.get(name)
        if field_def is None:
            return 0
        named = get_named_type(field_def.type)
        if is_leaf_type(named):
            return 0
        if _is_connection(named) and isinstance(named, GraphQLObjectType) and isinstance(value, dict):
            total = CONNECTION_BASE_COST
            for sub, _, _ in self._flatten(field.selection_set, named):
                key = sub.alias.value if sub.alias else sub.name.value
                items = value.get(key)
                if not isinstance(items, list):
                    continue
                if sub.name.value == "nodes":
                    node_type = get_named_type(named.fields["nodes"].type)
                    total += sum(
                        1 + self.actual_selection_cost(sub.selection_set, node_type, i) for i in items
                    )
                elif sub.name.value == "edges":
                    edge_type = get_named_type(named.fields["edges"].type)
                    assert isinstance(edge_type, GraphQLObjectType)
                    node_type = get_named_type(edge_type.fields["node"].type)
                    for edge_field, _, _ in self._flatten(sub.selection_set, edge_type):
                        if edge_field.name.value != "node":
                            continue
                        nkey = edge_field.alias.value if edge_field.alias else "node"
                        total += sum(
                            1 + self.actual_selection_cost(edge_field.selection_set, node_type, e.get(nkey))
                            for e in items
                            if isinstance(e, dict) and e.get(nkey) is not None
                        )
            return total
        if isinstance(value, list):
            return sum(
                1 + self.actual_selection_cost(field.selection_set, named, v) for v in value if v is not None
            )
        return 1 + self.actual_selection_cost(field.selection_set, named, value)


def requested_cost(
    schema: GraphQLSchema,
    document: DocumentNode,
    operation: OperationDefinitionNode,
    variables: Mapping[str, Any] | None,
) -> int:
    calc = CostCalculator(schema, document, variables)
    if operation.operation == OperationType.MUTATION:
        return MUTATION_COST * len(
            [
                f
                for f, _, _ in calc._flatten(operation.selection_set, schema.mutation_type)  # type: ignore[arg-type]
                if not f.name.value.startswith("__")
            ]
        )
    root = schema.query_type
    assert root is not None
    return calc.selection_cost(operation.selection_set, root)


def actual_cost(
    schema: GraphQLSchema,
    document: DocumentNode,
    operation: OperationDefinitionNode,
    variables: Mapping[str, Any] | None,
    data: Any,
) -> int:
    calc = CostCalculator(schema, document, variables)
    if operation.operation == OperationType.MUTATION:
        if not isinstance(data, dict):
            return 0
        return MUTATION_COST * len([k for k, v in data.items() if v is not None and not k.startswith("__")])
    root = schema.query_type
    assert root is not None
    return calc.actual_selection_cost(operation.selection_set, root, data)
