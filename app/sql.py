"""Small dialect-aware SQL helpers shared by the repositories (PostgreSQL and SQLite)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from functools import lru_cache

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session
from sqlalchemy.sql import Insert, text


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


def lock_key(namespace: str, *parts: int) -> int:
    digest = hashlib.blake2b(f"{namespace}:{':'.join(map(str, parts))}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def advisory_lock(session: Session, keys: Iterable[int]) -> None:
    """Transaction-scoped locks, taken in sorted order so that two writers never deadlock.

    PostgreSQL only: SQLite transactions already hold the whole database's write lock."""
    if session.get_bind().dialect.name != "postgresql":
        return
    ordered = sorted(set(keys))
    if not ordered:
        return
    conn = session.connection()
    if len(ordered) == 1:
        conn.execute(_LOCK_ONE, {"k": ordered[0]})
    else:
        conn.execute(_LOCK_MANY, {"keys": ordered})


_LOCK_ONE = text("SELECT pg_advisory_xact_lock(:k)")
_LOCK_MANY = text(
    "SELECT pg_advisory_xact_lock(k)"
    " FROM (SELECT k FROM unnest(CAST(:keys AS bigint[])) AS k ORDER BY k) AS sorted"
)
