"""backtests.method: which method the backtest measured ("model" or "segment_formula", the one the
shop's CLV comes from), NULL when nothing could be measured (too little history, or the model could
not be fitted on the orders up to the cut-off).

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-04 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | Sequence[str] | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("backtests", schema=None) as batch_op:
        batch_op.add_column(sa.Column("method", sa.String(length=16), nullable=True))
    # Earlier backtests measured the model when it could be fitted, else repeated the naive forecast.
    op.execute("UPDATE backtests SET method = 'model' WHERE model_used")


def downgrade() -> None:
    with op.batch_alter_table("backtests", schema=None) as batch_op:
        batch_op.drop_column("method")
