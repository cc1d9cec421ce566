"""stage_changes.cause: why a customer's stage changed. "behaviour" (an order, or time passing
without one) is what the overview's stage movements count; "refit" (a new model fit, or the switch
between the fitted model and the segment formula) is a reclassification, shown apart.

Revision ID: 0016
Revises: 0014
Create Date: 2026-12-04 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | Sequence[str] | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("stage_changes", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("cause", sa.String(length=16), server_default="behaviour", nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("stage_changes", schema=None) as batch_op:
        batch_op.drop_column("cause")
