"""shop_cleanups: the merchant's "remove everything this app wrote to Shopify" per shop (what was
counted, how far it went, what Shopify confirmed removed), so the job resumes after a crash.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-04 11:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.models.base

revision: str = "0018"
down_revision: str | Sequence[str] | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "shop_cleanups",
        sa.Column("shop_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("requested_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("started_at", app.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("finished_at", app.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("after_customer_id", sa.BigInteger(), nullable=False),
        sa.Column("planned_customers", sa.Integer(), nullable=False),
        sa.Column("planned_metafields", sa.Integer(), nullable=False),
        sa.Column("planned_segments", sa.Integer(), nullable=False),
        sa.Column("removed_customers", sa.Integer(), nullable=False),
        sa.Column("removed_metafields", sa.Integer(), nullable=False),
        sa.Column("removed_segments", sa.Integer(), nullable=False),
        sa.Column("refused_customers", sa.Integer(), nullable=False),
        sa.Column("bulk_phase", sa.String(length=16), nullable=True),
        sa.Column("bulk_operation_id", sa.String(length=128), nullable=True),
        sa.Column("bulk_customers", sa.Text(), nullable=True),
        sa.Column("bulk_lines", sa.Text(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("updated_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["shop_id"], ["shops.shop_id"], name=op.f("fk_shop_cleanups_shop_id_shops")),
        sa.PrimaryKeyConstraint("shop_id", name=op.f("pk_shop_cleanups")),
    )


def downgrade() -> None:
    op.drop_table("shop_cleanups")
