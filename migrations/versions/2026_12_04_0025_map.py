"""CLV fits by maximum a posteriori: how much the prior contributed to each model of a fit, and which
prior it was (the built-in one or one estimated from the deployment's larger shops; docs/predictions.md).
NULL shares: a fit by plain maximum likelihood (every fit before this revision).

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-04 13:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0025"
down_revision: str | Sequence[str] | None = "0024"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("clv_fits") as batch:
        batch.add_column(sa.Column("purchases_prior_share", sa.Float(), nullable=True))
        batch.add_column(sa.Column("spend_prior_share", sa.Float(), nullable=True))
        batch.add_column(sa.Column("prior_source", sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("clv_fits") as batch:
        batch.drop_column("prior_source")
        batch.drop_column("spend_prior_share")
        batch.drop_column("purchases_prior_share")
