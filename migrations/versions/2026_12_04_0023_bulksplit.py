"""A bulk sync in parts: ``sync_bulk_parts`` holds each staged file of a bulk sync (the customers of
one phase that fit under Shopify's 100 MB bulk-mutation file limit) and how far it went, so that a
crash resumes part by part; ``shop_push_state.bulk_error`` says which parts Shopify refused.

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-04 13:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.models.base

revision: str = "0023"
down_revision: str | Sequence[str] | None = "0022"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "sync_bulk_parts",
        sa.Column("shop_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("phase", sa.String(length=16), nullable=False),
        sa.Column("part", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("first_customer_id", sa.BigInteger(), nullable=False),
        sa.Column("last_customer_id", sa.BigInteger(), nullable=False),
        sa.Column("lines", sa.Integer(), nullable=False),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("staged_path", sa.Text(), nullable=True),
        sa.Column("staged_at", app.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("operation_id", sa.String(length=128), nullable=True),
        sa.Column("attempts", sa.SmallInteger(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("updated_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["shop_id"], ["shops.shop_id"], name=op.f("fk_sync_bulk_parts_shop_id_shops")),
        sa.PrimaryKeyConstraint("shop_id", "phase", "part", name=op.f("pk_sync_bulk_parts")),
    )
    with op.batch_alter_table("shop_push_state", schema=None) as batch_op:
        batch_op.add_column(sa.Column("bulk_error", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("shop_push_state", schema=None) as batch_op:
        batch_op.drop_column("bulk_error")
    op.drop_table("sync_bulk_parts")
