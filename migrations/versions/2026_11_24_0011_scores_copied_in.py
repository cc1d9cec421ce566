"""Scores are copied in (binary COPY of the stored values) and updated from a copied temp table:

* ``shops.customers_removed`` counts removed customer rows (redactions, merges), so that a rescore
  that read a customer before a removal drops the row it copied in for them;
* ``customer_scores`` keeps more than half of each page free (fillfactor 45, was 70): a daily
  rescore rewrites nearly every row, and each new version then fits on its page next to the old
  one (an in-place update that touches no index; at 70 most did not fit, and each of those
  inserted into both indexes);
* its ``segment`` compares bytewise (``COLLATE "C"``, PostgreSQL): the names are fixed ASCII words,
  and each row copied in costs its index a fifth of the time the database's locale collation does.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-24 00:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | Sequence[str] | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("shops", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("customers_removed", sa.BigInteger(), server_default=sa.text("0"), nullable=False)
        )
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE customer_scores SET (fillfactor = 45)")
        op.execute('ALTER TABLE customer_scores ALTER COLUMN segment TYPE varchar(32) COLLATE "C"')


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE customer_scores ALTER COLUMN segment TYPE varchar(32) COLLATE \"default\"")
        op.execute("ALTER TABLE customer_scores SET (fillfactor = 70)")
    with op.batch_alter_table("shops", schema=None) as batch_op:
        batch_op.drop_column("customers_removed")
