"""Small dialect-aware SQL helpers shared by the repositories (PostgreSQL and SQLite)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session
from sqlalchemy.sql import Insert, text


def upsert(
    session: Session,
    table: Table,
    rows: Sequence[dict[str, Any]] | dict[str, Any],
    *,
    keys: Sequence[str],
    update: Iterable[str] | None = None,
) -> Insert:
    """INSERT … ON CONFLICT (keys) DO UPDATE (or DO NOTHING when `update` is empty)."""
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    stmt = insert(table).values(rows)
    cols = list(update) if update is not None else []
    if cols:
        return stmt.on_conflict_do_update(index_elements=list(keys), set_={c: stmt.excluded[c] for c in cols})
    return stmt.on_conflict_do_nothing(index_elements=list(keys))


def lock_key(namespace: str, *parts: int) -> int:
    digest = hashlib.blake2b(f"{namespace}:{':'.join(map(str, parts))}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def advisory_lock(session: Session, keys: Iterable[int]) -> None:
    """Transaction-scoped locks, taken in sorted order so that two writers never deadlock.

    PostgreSQL only: SQLite transactions already hold the whole database's write lock."""
    if session.get_bind().dialect.name != "postgresql":
        return
    for key in sorted(set(keys)):
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": key})
