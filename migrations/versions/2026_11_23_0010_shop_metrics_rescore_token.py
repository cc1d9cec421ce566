"""shop_metrics.rescore_token: a random number per rescore, so that a worker that kept the arrays
of the rescore it committed can tell that nothing rescored the shop since (and that its own
transaction was not rolled back).

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-23 21:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("shop_metrics", schema=None) as batch_op:
        batch_op.add_column(sa.Column("rescore_token", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("shop_metrics", schema=None) as batch_op:
        batch_op.drop_column("rescore_token")
