"""Small dialect-aware SQL helpers shared by the repositories (PostgreSQL and SQLite)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import Any

from psycopg.rows import namedtuple_row
from sqlalchemy import Connection, Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session
from sqlalchemy.sql import ClauseElement, Insert, text


def upsert(
    session: Session,
    table: Table,
    *,
    keys: Sequence[str],
    update: Iterable[str] = (),
    only_if_newer: str | None = None,
) -> Insert:
    """INSERT … ON CONFLICT (keys) DO UPDATE (or DO NOTHING when `update` is empty), without
    values: execute it with the row(s) as parameters. With `only_if_newer="col"` an existing row is
    replaced only when the incoming `col` is greater. Built once per shape (webhooks are a hot
    path, and building an ON CONFLICT clause costs more than running it)."""
    return _upsert(session.get_bind().dialect.name, table, tuple(keys), tuple(update), only_if_newer)


@lru_cache(maxsize=256)
def _upsert(
    dialect: str, table: Table, keys: tuple[str, ...], update: tuple[str, ...], only_if_newer: str | None
) -> Insert:
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(table)
    if update:
        where = table.c[only_if_newer] < stmt.excluded[only_if_newer] if only_if_newer else None
        return stmt.on_conflict_do_update(
            index_elements=list(keys), set_={c: stmt.excluded[c] for c in update}, where=where
        )
    return stmt.on_conflict_do_nothing(index_elements=list(keys))


def lock_key(namespace: str, *parts: int) -> str:
    """The name of an advisory lock, `namespace:part:…`. PostgreSQL turns it into the 64-bit key
    (`hashtextextended(name, 0)`), as `rfm_lock_key(namespace, shop_id, id)` does inside the
    order-delivery function (app/kit/lock_key.sql, app/orders/ingest_order.sql), so that both paths
    lock each other out."""
    return f"{namespace}:{':'.join(map(str, parts))}"


def advisory_lock(session: Session, names: Iterable[str]) -> None:
    """Transaction-scoped locks, taken in the order of their keys. With several namespaces, the
    order all writers (and the order-delivery function, migration 0013) follow is: orders, then
    customers, then the shop's scores; one call per namespace, none after a later one, so that no
    two writers wait on each other in a circle (app.orders.repository.lock_orders).

    PostgreSQL only: SQLite transactions already hold the whole database's write lock."""
    if session.get_bind().dialect.name != "postgresql":
        return
    unique = sorted(set(names))
    if not unique:
        return
    if len(unique) == 1:
        execute(session, _LOCK_ONE, {"name": unique[0]})
    else:
        execute(session, _LOCK_MANY, {"names": unique})


_LOCK_ONE = text("SELECT pg_advisory_xact_lock(hashtextextended(:name, 0))")
_LOCK_MANY = text(
    "SELECT pg_advisory_xact_lock(k) FROM"
    " (SELECT hashtextextended(n, 0) AS k FROM unnest(CAST(:names AS text[])) AS n ORDER BY k) AS sorted"
)


# -- the webhook hot path on PostgreSQL ------------------------------------------------------------
# SQLAlchemy's per-statement overhead is most of a webhook's CPU time. For the few statements of
# the hot path, run their PostgreSQL text (compiled once) straight on the psycopg cursor of the
# session's connection: same transaction, server-side prepared after a few uses. PostgreSQL's own
# types need none of the column types' conversions (aware datetimes, NUMERIC as Decimal).
_compiled: dict[tuple[int, tuple[str, ...]], tuple[str, dict[str, Any], ClauseElement]] = {}


def _pg_sql(conn: Connection, stmt: ClauseElement, params: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    key = (id(stmt), tuple(params))
    entry = _compiled.get(key)
    if entry is None:
        compiled = stmt.compile(dialect=conn.dialect, column_keys=list(params))
        # literal values of the statement itself (e.g. `literal(1)`) are bound parameters too
        defaults = {k: v for k, v in compiled.params.items() if k not in params and v is not None}
        entry = _compiled[key] = (str(compiled), defaults, stmt)  # holding `stmt` keeps its id unique
    sql, defaults = entry[0], entry[1]
    return sql, ({**defaults, **params} if defaults else params)


def execute(session: Session, stmt: Any, params: dict[str, Any]) -> None:
    conn = session.connection()
    if conn.dialect.name != "postgresql":
        conn.execute(stmt, params)
        return
    with conn.connection.driver_connection.cursor() as cur:  # type: ignore[union-attr]
        cur.execute(*_pg_sql(conn, stmt, params), prepare=True)


def fetch_one(session: Session, stmt: Any, params: dict[str, Any], *, allow_none: bool = False) -> Any:
    """One row with attribute access (None when there is none and `allow_none`)."""
    conn = session.connection()
    if conn.dialect.name != "postgresql":
        result = conn.execute(stmt, params)
        return result.first() if allow_none else result.one()
    driver = conn.connection.driver_connection
    with driver.cursor(row_factory=namedtuple_row) as cur:  # type: ignore[union-attr]
        cur.execute(*_pg_sql(conn, stmt, params), prepare=True)
        row = cur.fetchone()
    if row is None and not allow_none:
        raise LookupError("expected one row")
    return row
