"""The database runs the functions whose live source is in the repository: for each `.sql` file,
the definition the migrations installed is exactly what the file creates. Editing a file without a
migration that installs it (or the reverse) fails here."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

import app

SOURCES = sorted(Path(app.__file__).parent.rglob("*.sql"))
_NAME = re.compile(r"CREATE OR REPLACE FUNCTION (\w+)\(", re.IGNORECASE)


def _definitions(conn: object, name: str) -> list[str]:
    rows = conn.execute(  # type: ignore[attr-defined]
        text("SELECT pg_get_functiondef(p.oid) FROM pg_proc p WHERE p.proname = :n ORDER BY p.oid"),
        {"n": name},
    )
    return [row[0] for row in rows]


def test_every_function_source_is_found() -> None:
    assert {p.name for p in SOURCES} >= {"ingest_order.sql", "lock_key.sql"}


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.name)
def test_the_database_runs_the_function_in_the_file(engine: Engine, source: Path) -> None:
    sql = source.read_text()
    names = _NAME.findall(sql)
    assert names, f"{source} creates no function"
    with engine.connect() as conn:
        installed = {name: _definitions(conn, name) for name in names}
        conn.exec_driver_sql(sql)  # in the connection's transaction, rolled back below
        from_file = {name: _definitions(conn, name) for name in names}
        conn.rollback()
    for name in names:
        assert len(installed[name]) == 1, f"{name}: {len(installed[name])} overloads installed"
        assert installed[name] == from_file[name], f"{name} in the database differs from {source}"
