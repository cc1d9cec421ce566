"""customer_scores without the foreign key to shops: a shop's first scoring inserts every buyer's
row, and PostgreSQL checks a foreign key with one lookup of the shop per row (40 % of that insert).
The rescore checks the shop once instead, locking its row as the key check would.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-23 21:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("customer_scores", schema=None) as batch_op:
        batch_op.drop_constraint("fk_customer_scores_shop_id_shops", type_="foreignkey")


def downgrade() -> None:
    with op.batch_alter_table("customer_scores", schema=None) as batch_op:
        batch_op.create_foreign_key("fk_customer_scores_shop_id_shops", "shops", ["shop_id"], ["shop_id"])
