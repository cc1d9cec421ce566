"""The migration that keys the id-numbered tables by ``(shop_id, id)`` (for Citus,
docs/deployment.md): down and up again on the migrated test database, the keys are the models'
on PostgreSQL, and on SQLite (where the id stays the rowid key) new rows are still numbered."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect
from sqlalchemy.orm import Session

from app.jobs.repository import enqueue
from app.kit.db import alembic_config
from app.models import Base, Job
from app.models.base import generated_id_of
from tests.fixtures.factories import create_shop

REKEYED = sorted(t.name for t in Base.metadata.sorted_tables if generated_id_of(t) is not None)


def _revision() -> tuple[str, str]:
    """This migration and the one before it (found by file name: revision ids change at merges)."""
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    [revision] = [r for r in script.walk_revisions() if r.path.endswith("_citus.py")]
    assert isinstance(revision.down_revision, str)
    return revision.revision, revision.down_revision


def _keys(engine: Engine) -> dict[str, list[str]]:
    with engine.connect() as conn:
        found = inspect(conn)
        return {t: found.get_pk_constraint(t)["constrained_columns"] for t in REKEYED}


@pytest.mark.both_dbs
def test_down_and_up_again(engine: Engine, database_url: str, backend: str) -> None:
    assert "jobs" in REKEYED and "stage_changes" in REKEYED
    _, before = _revision()
    cfg = alembic_config(database_url)
    try:
        command.downgrade(cfg, before)
        if backend == "postgresql":
            assert _keys(engine) == {t: ["id"] for t in REKEYED}
    finally:
        command.upgrade(cfg, "head")
    if backend == "postgresql":
        assert _keys(engine) == {t: ["shop_id", "id"] for t in REKEYED}
    else:
        assert _keys(engine) == {t: ["id"] for t in REKEYED}  # the rowid, app/models/base.py
    now = datetime(2026, 12, 4, tzinfo=UTC)
    with Session(engine) as session:
        shops = [create_shop(session, domain=f"keys-{n}.myshopify.com").shop_id for n in (1, 2)]
        for shop_id in shops:
            enqueue(session, shop_id, "rescore", now)
            enqueue(session, shop_id, "fit", now)
        session.commit()
        jobs = session.query(Job).order_by(Job.id).all()
        assert [(j.shop_id, j.id) for j in jobs] == [
            (shops[0], 1),
            (shops[0], 2),
            (shops[1], 3),
            (shops[1], 4),
        ]
        assert session.get(Job, (shops[1], 3)) is jobs[2]
