"""shop_push_state.repair_after: the customer id a manual "Sync to Shopify now" has compared with
what Shopify holds so far (NULL: no comparison under way), so that the read resumes across steps.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-04 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | Sequence[str] | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("shop_push_state", schema=None) as batch_op:
        batch_op.add_column(sa.Column("repair_after", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("shop_push_state", schema=None) as batch_op:
        batch_op.drop_column("repair_after")
