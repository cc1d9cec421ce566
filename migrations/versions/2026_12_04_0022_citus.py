"""Every table keyed by shop first: the tables that numbered their rows by ``id`` alone (jobs, the
CLV fits and backtests, the stage and segment history, the Flow trigger outbox) are keyed by
``(shop_id, id)``, so that each can be distributed by ``shop_id`` with Citus (docs/deployment.md,
"Citus"): a distributed table's primary key must contain its distribution column. ``id`` keeps its
sequence.

On PostgreSQL each key is dropped and rebuilt in one ALTER TABLE (the new unique index is built
under an exclusive lock: seconds per million history rows). On SQLite nothing changes: there the
``id`` of a ``(shop_id, id)`` key stays the rowid key it already is (app/models/base.py says why).

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-04 13:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0022"
down_revision: str | Sequence[str] | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("jobs", "clv_fits", "backtests", "stage_changes", "segment_changes", "flow_trigger_events")


def _rekey(columns: str) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in TABLES:
        key = f"pk_{table}"
        op.execute(f"ALTER TABLE {table} DROP CONSTRAINT {key}, ADD CONSTRAINT {key} PRIMARY KEY ({columns})")


def upgrade() -> None:
    _rekey("shop_id, id")


def downgrade() -> None:
    _rekey("id")
