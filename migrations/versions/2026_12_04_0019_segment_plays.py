"""segment_plays: a shop's own wording of each segment's suggested play (the default lives in
app/vocabulary.py; a segment without a row shows it).

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-04 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.models.base

revision: str = "0019"
down_revision: str | Sequence[str] | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "segment_plays",
        sa.Column("shop_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("segment", sa.String(length=32), nullable=False),
        sa.Column("play", sa.String(length=500), nullable=False),
        sa.Column("updated_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["shop_id"], ["shops.shop_id"], name=op.f("fk_segment_plays_shop_id_shops")),
        sa.PrimaryKeyConstraint("shop_id", "segment", name=op.f("pk_segment_plays")),
    )


def downgrade() -> None:
    op.drop_table("segment_plays")
