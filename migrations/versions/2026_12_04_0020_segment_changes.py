"""segment_changes: every RFM segment change of a buyer, dated, with its cause ("behaviour", or
"settings" for a reclassification after the merchant changed the scoring settings), so that the
outcomes page can count who entered a segment and what they did afterwards. Ids and names only.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-04 12:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.models.base

revision: str = "0020"
down_revision: str | Sequence[str] | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "segment_changes",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("shop_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("customer_id", sa.BigInteger(), nullable=False),
        sa.Column("from_segment", sa.String(length=24), nullable=False),
        sa.Column("to_segment", sa.String(length=24), nullable=False),
        sa.Column("changed_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("cause", sa.String(length=16), nullable=False),
        sa.ForeignKeyConstraint(["shop_id"], ["shops.shop_id"], name=op.f("fk_segment_changes_shop_id_shops")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_segment_changes")),
    )
    with op.batch_alter_table("segment_changes", schema=None) as batch_op:
        batch_op.create_index("ix_segment_changes_shop_id_changed_at", ["shop_id", "changed_at"], unique=False)
        batch_op.create_index("ix_segment_changes_shop_id_customer_id", ["shop_id", "customer_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("segment_changes", schema=None) as batch_op:
        batch_op.drop_index("ix_segment_changes_shop_id_customer_id")
        batch_op.drop_index("ix_segment_changes_shop_id_changed_at")
    op.drop_table("segment_changes")
