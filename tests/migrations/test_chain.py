"""The migrations are one linear chain with one head, every step can be undone (upgrade to the head,
downgrade to the base, upgrade again, on PostgreSQL and on SQLite), and the models describe the
schema the migrations build (`alembic check`)."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect
from sqlalchemy.engine import make_url

from app.kit.db import alembic_config, normalise_url
from app.models import Base
from tests.fixtures.database import POSTGRES_URL, empty_postgres_database


def _script() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config("sqlite://"))


def test_there_is_one_head_and_one_linear_chain() -> None:
    script = _script()
    assert len(script.get_heads()) == 1, script.get_heads()
    revisions = list(script.walk_revisions())
    merges = [r.revision for r in revisions if isinstance(r.down_revision, tuple)]
    # 0007 merged two branches before this test existed; no later revision may branch or merge
    assert merges == ["0007"]
    later = [r for r in revisions if r.revision > "0007"]
    children: dict[str, list[str]] = {}
    for r in revisions:
        for parent in r.down_revision if isinstance(r.down_revision, tuple) else (r.down_revision,):
            children.setdefault(str(parent), []).append(r.revision)
    assert all(len(children.get(r.revision, [])) <= 1 for r in later)


def _scratch_postgres() -> str:
    url = make_url(normalise_url(POSTGRES_URL))
    scratch = url.set(database=f"{url.database}_migrations")
    empty_postgres_database(scratch.render_as_string(hide_password=False))
    return scratch.render_as_string(hide_password=False)


def _tables(url: str) -> set[str]:
    engine = create_engine(normalise_url(url))
    try:
        with engine.connect() as conn:
            return set(inspect(conn).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()


@pytest.mark.both_dbs
def test_upgrade_downgrade_upgrade(backend: str, tmp_path: Path) -> None:
    url = _scratch_postgres() if backend == "postgresql" else f"sqlite:///{tmp_path / 'chain.db'}"
    cfg = alembic_config(url)
    command.upgrade(cfg, "head")
    assert _tables(url) == {t.name for t in Base.metadata.sorted_tables}
    command.downgrade(cfg, "base")
    assert _tables(url) == set()
    command.upgrade(cfg, "head")
    assert _tables(url) == {t.name for t in Base.metadata.sorted_tables}
    command.check(cfg)  # the models and the migrations describe the same schema
