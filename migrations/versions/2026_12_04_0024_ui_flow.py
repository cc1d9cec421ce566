"""The customers Shopify refused, indexed on their own (a partial index on the refused sync states),
so that the status page counts and lists them without reading every customer the app wrote to.

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-04 13:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0024"
down_revision: str | Sequence[str] | None = "0023"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_customer_sync_state_refused",
        "customer_sync_state",
        ["shop_id", "updated_at"],
        postgresql_where=sa.text("error IS NOT NULL"),
        sqlite_where=sa.text("error IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_customer_sync_state_refused", table_name="customer_sync_state")
