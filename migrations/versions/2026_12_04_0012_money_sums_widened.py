"""Money columns that hold sums of amounts widen to numeric(28, 4) (PostgreSQL), so that they hold
any sum of amounts the parser accepts (app/money.py, docs/operations.md "Value limits"):
``customers.total_spent``; ``customer_scores.monetary``, ``spent_last_year``, ``historic_clv``;
every money column of ``shop_segments`` (a segment's sums, and averages and formula values
derived from them). Ten orders at the old cap (10^15) overflowed numeric(20, 4) in a buyer's total and
failed every later rescore of the shop.

Raising a numeric's precision at the same scale rewrites no table and no index. ``rfm_ingest_order``
(migration 0009) needs no change: its money parameters are unconstrained ``numeric`` and it has
no money variables; the columns it writes decide.

SQLite: nothing to do. Its money columns are integers of 1/10,000 units whatever the precision,
and a value past int64 is stored as a REAL (app.models.base.Money).

Downgrade fails (numeric field overflow) when a stored value no longer fits numeric(20, 4), i.e.
is 10^16 or more: nothing is lost silently.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-04 10:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0012"
down_revision: str | Sequence[str] | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WIDENED = {
    "customers": ("total_spent",),
    "customer_scores": ("monetary", "spent_last_year", "historic_clv"),
    "shop_segments": (
        "revenue",
        "average_order_value",
        "average_predicted_clv",
        "average_historic_clv",
        "customer_value",
        "formula_clv",
        "max_cpc",
    ),
}


def _retype(precision: int) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, columns in WIDENED.items():
        changes = ", ".join(f"ALTER COLUMN {c} TYPE numeric({precision}, 4)" for c in columns)
        op.execute(f"ALTER TABLE {table} {changes}")


def upgrade() -> None:
    _retype(28)


def downgrade() -> None:
    _retype(20)
