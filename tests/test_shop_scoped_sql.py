"""Every statement the app sends names one shop: each tenant table it reads or writes is filtered on
``shop_id`` (a bound value, or equal to another such table's ``shop_id``), so that with the tables
distributed by ``shop_id`` (docs/deployment.md, "Citus") it runs on one node, whole. Checked over
the SQL of a representative run (the demo: install, history import, order webhooks, rescores, the
CLV fit, the sync and the Flow triggers; then every other webhook topic and every page), parsed by
PostgreSQL's own parser (pglast), and over the order-delivery function's body.

The statements that span shops on purpose are allow-listed by the function that sends them, each
with its reason and what it does on Citus (the same list as docs/deployment.md)."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import pytest
from pglast import ast, parse_plpgsql, parse_sql
from pglast.enums import A_Expr_Kind, BoolExprType, SetOperation
from pglast.parser import ParseError
from sqlalchemy import Engine, event, select
from sqlalchemy.orm import Session, sessionmaker
from starlette.testclient import TestClient

from app.config import Settings
from app.demo.run import DEMO_SHOP
from app.jobs.metrics import QueueDepthCollector
from app.main import create_app
from app.models import Base, Customer, Order, Shop
from shopify_double.signing import make_session_token
from tests.demo.conftest import headless_demo
from tests.fixtures.factories import refund_payload
from tests.fixtures.webhooks import post_webhook
from tests.test_distribution import REFERENCE_TABLES

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "app"
TENANT_TABLES = frozenset(t.name for t in Base.metadata.sorted_tables) - set(REFERENCE_TABLES)

SPANS_SHOPS = {
    # the function that sends it: why it spans shops; what it does on Citus (docs/deployment.md)
    "app/jobs/repository.py:claim": "a worker takes the next due job of any shop; FOR UPDATE SKIP LOCKED "
    "across shards does not run: keep jobs on the coordinator, or claim in two steps",
    "app/jobs/repository.py:reclaim_expired": "jobs of any shop whose worker died; as the claim",
    "app/jobs/repository.py:shops_with_jobs": "the schedules' shops with a job queued, running or "
    "failed; a multi-shard read, runs",
    "app/jobs/repository.py:prune": "finished jobs of every shop; a multi-shard DELETE, runs",
    "app/jobs/metrics.py:_read": "the queue depth gauge; a multi-shard aggregate, runs",
    "app/scoring/repository.py:shops_with_pending_customers": "the rescore schedule; EXISTS correlated "
    "on shop_id, pushed down to every shard",
    "app/scoring/repository.py:shops_due_full_rescore": "the daily full rescore schedule; correlated on "
    "shop_id without LIMIT, pushed down",
    "app/scoring/repository.py:shops_due_fit": "the nightly fit schedule; its newest-fit subquery "
    "(ORDER BY … LIMIT 1, correlated) does not run across shards as is",
    "app/sync/repository.py:shops_due": "the sync schedule; shops joined to shop_metrics, then outer "
    "joins on shop_id",
    "app/imports/repository.py:active_import_shop_ids": "the import poll schedule; a multi-shard read",
    "app/imports/tasks.py:enqueue_due_reconciliations": "the hourly reconciliation schedule; shops "
    "(reference) LEFT JOIN shop_sync_state: Citus 11.2 and later",
}
DEMO = "app/demo/"  # `rfm-clv demo` counts its one shop's rows for its progress lines: not a deployment


# -- the checker --------------------------------------------------------------------------------


@dataclass
class Level:
    """One query level: its relations by alias, and which aliases are pinned to one shop."""

    tables: dict[str, str] = field(default_factory=dict)  # alias -> table
    equal: list[tuple[str, str]] = field(default_factory=list)  # alias.shop_id = alias.shop_id
    pinned: set[str] = field(default_factory=set)


def unpinned(sql: str, variables: frozenset[str] = frozenset()) -> list[str]:
    """The tenant tables a statement reaches without naming one shop (empty: it names one).
    ``variables`` are names that stand for bound values (a PL/pgSQL function's parameters)."""
    found: list[str] = []
    for raw in parse_sql(sql):
        _statement(raw.stmt, {}, found, variables)
    return found


def _statement(node: Any, outer: dict[str, bool], found: list[str], variables: frozenset[str]) -> None:
    if node is None:
        return
    with_clause = getattr(node, "withClause", None)
    for cte in (with_clause.ctes or ()) if with_clause else ():
        _statement(cte.ctequery, outer, found, variables)
    if isinstance(node, ast.SelectStmt) and node.op != SetOperation.SETOP_NONE:  # UNION / INTERSECT / EXCEPT
        _statement(node.larg, outer, found, variables)
        _statement(node.rarg, outer, found, variables)
        return
    if isinstance(node, ast.SelectStmt) and node.valuesLists:
        for row in node.valuesLists:
            _sublinks(row, outer, found, variables)
        return
    level = Level()
    quals: list[Any] = []
    subqueries: list[Any] = []
    if isinstance(node, ast.SelectStmt):
        for item in node.fromClause or ():
            _from(item, level, quals, subqueries)
        quals.append(node.whereClause)
        parts = [node.targetList, node.havingClause, node.groupClause, node.sortClause]
    elif isinstance(node, ast.InsertStmt):
        # the row's own shop_id decides its shard; a SELECT feeding it is checked as a query
        _statement(node.selectStmt, outer, found, variables)
        conflict = node.onConflictClause
        parts = [node.returningClause, conflict.targetList if conflict else None]
        quals.append(conflict.whereClause if conflict else None)
        if conflict is not None:
            level.tables[node.relation.alias.aliasname if node.relation.alias else node.relation.relname] = ""
    elif isinstance(node, ast.UpdateStmt | ast.DeleteStmt):
        _from(node.relation, level, quals, subqueries)
        for item in getattr(node, "fromClause", None) or getattr(node, "usingClause", None) or ():
            _from(item, level, quals, subqueries)
        quals.append(node.whereClause)
        parts = [getattr(node, "targetList", None), node.returningClause]
    else:
        return  # SET, SAVEPOINT, DDL, COPY, function calls without tables ...
    for qual in quals:
        for conjunct in _conjuncts(qual):
            _pin(conjunct, level, outer, variables)
    _propagate(level, outer)
    found += [
        table for alias, table in level.tables.items() if table in TENANT_TABLES and alias not in level.pinned
    ]
    inner = {**outer, **{alias: alias in level.pinned for alias in level.tables}}
    for sub in subqueries:
        _statement(sub, inner, found, variables)
    for part in [*quals, *parts]:
        _sublinks(part, inner, found, variables)


def _from(item: Any, level: Level, quals: list[Any], subqueries: list[Any]) -> None:
    if isinstance(item, ast.RangeVar):
        level.tables[item.alias.aliasname if item.alias else item.relname] = item.relname
    elif isinstance(item, ast.JoinExpr):
        _from(item.larg, level, quals, subqueries)
        _from(item.rarg, level, quals, subqueries)
        quals.append(item.quals)  # an outer join's condition names the shop of its inner side too
        if item.usingClause and any(n.sval == "shop_id" for n in item.usingClause):
            left, right = _names(item.larg), _names(item.rarg)
            level.equal += [(a, b) for a in left for b in right]
    elif isinstance(item, ast.RangeSubselect):
        subqueries.append(item.subquery)
        if item.alias:
            level.tables[item.alias.aliasname] = ""
    elif isinstance(item, ast.RangeFunction) and item.alias:
        level.tables[item.alias.aliasname] = ""


def _names(item: Any) -> list[str]:
    if isinstance(item, ast.RangeVar):
        return [item.alias.aliasname if item.alias else item.relname]
    if isinstance(item, ast.JoinExpr):
        return _names(item.larg) + _names(item.rarg)
    return []


def _conjuncts(node: Any) -> Iterator[Any]:
    if node is None:
        return
    if isinstance(node, ast.BoolExpr) and node.boolop == BoolExprType.AND_EXPR:  # AND
        for arg in node.args:
            yield from _conjuncts(arg)
    else:
        yield node


def _shop_column(node: Any, level: Level) -> str | None:
    """The alias whose shop_id ``node`` is (unqualified: the level's one tenant table)."""
    while isinstance(node, ast.TypeCast):
        node = node.arg
    if not isinstance(node, ast.ColumnRef):
        return None
    names = [f.sval for f in node.fields if isinstance(f, ast.String)]
    if names[-1:] != ["shop_id"]:
        return None
    if len(names) >= 2:
        return names[-2]
    tenants = [a for a, t in level.tables.items() if t in TENANT_TABLES or t == ""]
    return tenants[0] if len(tenants) == 1 else None


def _bound(node: Any, variables: frozenset[str]) -> bool:
    while isinstance(node, ast.TypeCast):
        node = node.arg
    if isinstance(node, ast.ParamRef | ast.A_Const):
        return True
    if isinstance(node, ast.ColumnRef):
        names = [f.sval for f in node.fields if isinstance(f, ast.String)]
        return len(names) == 1 and names[0] in variables
    return False


def _pin(conjunct: Any, level: Level, outer: dict[str, bool], variables: frozenset[str]) -> None:
    if not isinstance(conjunct, ast.A_Expr):
        return
    operator = [n.sval for n in conjunct.name] if conjunct.name else []
    if conjunct.kind == A_Expr_Kind.AEXPR_OP and operator == ["="]:  # a = b
        sides = (conjunct.lexpr, conjunct.rexpr)
    elif (
        conjunct.kind == A_Expr_Kind.AEXPR_IN
        and isinstance(conjunct.rexpr, tuple)
        and len(conjunct.rexpr) == 1
    ):  # IN (x)
        sides = (conjunct.lexpr, conjunct.rexpr[0])
    else:
        return
    for this, other in (sides, sides[::-1]):
        alias = _shop_column(this, level)
        if alias is None:
            continue
        if _bound(other, variables):
            level.pinned.add(alias)
        other_alias = _qualified_shop(other)
        if other_alias is not None:
            if other_alias in level.tables:
                level.equal.append((alias, other_alias))
            elif outer.get(other_alias):
                level.pinned.add(alias)


def _qualified_shop(node: Any) -> str | None:
    while isinstance(node, ast.TypeCast):
        node = node.arg
    if isinstance(node, ast.ColumnRef):
        names = [f.sval for f in node.fields if isinstance(f, ast.String)]
        if len(names) >= 2 and names[-1] == "shop_id":
            return names[-2]
    return None


def _propagate(level: Level, outer: dict[str, bool]) -> None:
    changed = True
    while changed:
        changed = False
        for a, b in level.equal:
            if (a in level.pinned) != (b in level.pinned):
                level.pinned |= {a, b}
                changed = True


def _sublinks(node: Any, outer: dict[str, bool], found: list[str], variables: frozenset[str]) -> None:
    """Check the subqueries anywhere inside an expression (EXISTS, IN, scalar)."""
    if node is None:
        return
    if isinstance(node, tuple | list):
        for item in node:
            _sublinks(item, outer, found, variables)
        return
    if isinstance(node, ast.SubLink):
        _statement(node.subselect, outer, found, variables)
        _sublinks(node.testexpr, outer, found, variables)
        return
    if isinstance(node, ast.Node):
        for name in node:
            _sublinks(getattr(node, name), outer, found, variables)


# -- the checker's own rules --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sql", "unpinned_tables"),
    [
        ("SELECT * FROM customers WHERE shop_id = $1 AND customer_id = $2", []),
        ("SELECT * FROM customers WHERE customer_id = $1", ["customers"]),
        ("SELECT * FROM customers WHERE shop_id = $1 OR customer_id = $2", ["customers"]),
        ("SELECT * FROM customers WHERE shop_id IN ($1, $2)", ["customers"]),
        (
            "SELECT * FROM customers c JOIN orders o"
            " ON o.shop_id = c.shop_id AND o.customer_id = c.customer_id WHERE c.shop_id = $1",
            [],
        ),
        (
            "SELECT * FROM customers c JOIN orders o ON o.customer_id = c.customer_id WHERE c.shop_id = $1",
            ["orders"],
        ),
        ("SELECT * FROM customers c JOIN orders o USING (shop_id, customer_id) WHERE o.shop_id = $1", []),
        (
            "SELECT * FROM customer_scores s WHERE s.shop_id = $1 AND NOT EXISTS"
            " (SELECT FROM customers c WHERE c.shop_id = s.shop_id AND c.customer_id = s.customer_id)",
            [],
        ),
        (
            "SELECT * FROM customer_scores s WHERE s.shop_id = $1 AND NOT EXISTS"
            " (SELECT FROM customers c WHERE c.customer_id = s.customer_id)",
            ["customers"],
        ),
        ("SELECT s.shop_id FROM shops s JOIN jobs j ON j.shop_id = s.shop_id", ["jobs"]),
        ("SELECT domain FROM shops WHERE domain = $1", []),
        ("UPDATE jobs SET state = 'done' WHERE shop_id = $1 AND id = $2", []),
        ("UPDATE jobs SET state = 'done' WHERE id = $1", ["jobs"]),
        ("DELETE FROM orders WHERE order_id = $1", ["orders"]),
        ("INSERT INTO jobs (shop_id, kind) VALUES ($1, $2) ON CONFLICT DO NOTHING", []),
        ("INSERT INTO stage_changes (shop_id) SELECT shop_id FROM customer_scores", ["customer_scores"]),
        ("WITH x AS (SELECT * FROM orders WHERE shop_id = $1) SELECT * FROM x", []),
        ("WITH x AS (SELECT * FROM orders) SELECT * FROM x", ["orders"]),
    ],
)
def test_the_checker_tells_a_statement_that_names_one_shop(sql: str, unpinned_tables: list[str]) -> None:
    assert unpinned(sql) == unpinned_tables


# -- what the app sends -------------------------------------------------------------------------


def _sender(frame: FrameType | None) -> str:
    """``app/<file>:<function>`` of the innermost app frame outside app/kit (the SQL helpers)."""
    while frame is not None:
        path = Path(frame.f_code.co_filename)
        if path.is_relative_to(APP) and not path.is_relative_to(APP / "kit"):
            return f"{path.relative_to(ROOT)}:{frame.f_code.co_name}"
        frame = frame.f_back
    return "outside app"


def _pyformat_to_postgres(sql: str) -> str:
    """psycopg's ``%(name)s`` / ``%s`` placeholders as PostgreSQL's ``$n`` (what the server sees)."""
    return re.sub(r"%\((\w+)\)s|%s", "$1", sql).replace("%%", "%")


@pytest.fixture
def sent(engine: Engine) -> Iterator[dict[str, set[str]]]:
    """Every statement sent through SQLAlchemy while the test runs, by the app function sending it."""
    statements: dict[str, set[str]] = {}

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.setdefault(_sender(sys._getframe(1)), set()).add(statement)

    event.listen(Engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(Engine, "before_cursor_execute", record)


def spanning(statements: dict[str, set[str]]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for sender, texts in statements.items():
        for sql in texts:
            tables = unpinned(_pyformat_to_postgres(sql))
            if tables:
                out.setdefault(sender, []).append(f"{sorted(set(tables))}: {sql[:300]}")
    return out


PAGES = [
    "/app",
    "/app/customers",
    "/app/cohorts",
    "/app/accuracy",
    "/app/outcomes",
    "/app/settings",
    "/app/plays",
    "/app/status",
    "/app/customers.csv",
    "/api/shop",
    "/api/overview",
    "/api/customers",
    "/api/metrics",
    "/api/accuracy",
    "/api/status",
]


def test_every_statement_of_a_representative_run_names_one_shop(
    settings: Settings, session: Session, engine: Engine, sent: dict[str, set[str]]
) -> None:
    demo = headless_demo(settings, customers=12, seed=5, duration=0.5)
    result = demo.run()
    assert result.errors == [] and result.customers_scored > 0 and result.metafields_in_store > 0
    shop = session.scalars(select(Shop).where(Shop.domain == DEMO_SHOP)).one()
    customer = session.scalars(select(Customer.customer_id).where(Customer.shop_id == shop.shop_id)).first()
    order = session.scalars(select(Order.order_id).where(Order.shop_id == shop.shop_id)).first()
    assert customer is not None and order is not None

    app = create_app(settings.model_copy(update={"app_url": "https://app.example.com"}))
    with TestClient(app, base_url="https://app.example.com", follow_redirects=False) as client:
        token = make_session_token(DEMO_SHOP, settings.shopify_api_key, settings.shopify_api_secret)
        for path in PAGES:
            response = client.get(
                path,
                params={"shop": DEMO_SHOP, "embedded": "1", "id_token": token},
                headers={"Authorization": f"Bearer {token}"},
            )
            assert response.status_code == 200, (path, response.status_code)
        now = "2026-12-04T12:00:00Z"
        for topic, payload in [
            ("orders/edited", {"order_edit": {"id": 1, "order_id": order, "created_at": now}}),
            ("refunds/create", refund_payload(901, order, "1.00", now)),
            ("orders/delete", {"id": order}),
            (
                "customers/data_request",
                {
                    "shop_id": shop.shopify_shop_id,
                    "shop_domain": DEMO_SHOP,
                    "customer": {"id": customer},
                    "orders_requested": [],
                    "data_request": {"id": 77},
                },
            ),
            (
                "customers/redact",
                {
                    "shop_id": shop.shopify_shop_id,
                    "shop_domain": DEMO_SHOP,
                    "customer": {"id": customer},
                    "orders_to_redact": [],
                },
            ),
            (
                "app/uninstalled",
                {"id": shop.shopify_shop_id, "domain": DEMO_SHOP, "myshopify_domain": DEMO_SHOP},
            ),
        ]:
            response = post_webhook(client, topic, payload, DEMO_SHOP, secret=settings.shopify_api_secret)
            assert response.status_code == 200, (topic, response.text)

    QueueDepthCollector(sessionmaker(engine)).rows()

    found = spanning(sent)
    unexpected = {
        sender: sqls
        for sender, sqls in found.items()
        if sender not in SPANS_SHOPS and not sender.startswith(DEMO)
    }
    assert unexpected == {}
    assert set(SPANS_SHOPS) - set(found) == set()  # each entry still needed (and the run reached it)


def test_the_guide_names_each_statement_that_spans_shops() -> None:
    guide = (ROOT / "docs" / "deployment.md").read_text()
    assert [s for s in SPANS_SHOPS if f"`{s.split(':')[1]}`" not in guide] == []


def _function_statements(path: Path) -> tuple[list[str], frozenset[str]]:
    """The SQL statements and expressions inside a PL/pgSQL file's functions, and the names of
    their parameters and variables (which stand for bound values)."""
    queries: list[str] = []
    names: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "query" and isinstance(value, str):
                    queries.append(value)
                elif key == "refname" and isinstance(value, str):
                    names.add(value)
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(parse_plpgsql(path.read_text()))
    return queries, frozenset(names)


def test_every_statement_of_the_order_delivery_function_names_one_shop() -> None:
    # On Citus the function runs on the coordinator (it finds the shop by domain, so it cannot be
    # sent to the shop's node by a distribution argument): each statement inside is single-shard.
    queries, variables = _function_statements(APP / "orders" / "ingest_order.sql")
    assert len(queries) > 10
    wrong = []
    for query in queries:
        try:
            parse_sql(query)
        except ParseError:  # an expression (IF, assignment): PL/pgSQL runs it as SELECT <expr>
            query = "SELECT " + re.sub(r"^\s*[\w.]+\s*:=", "", query)
        if unpinned(query, variables):
            wrong.append(query)
    assert wrong == []
