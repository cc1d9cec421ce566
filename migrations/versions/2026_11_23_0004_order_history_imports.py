"""Order history imports (bulk operation state) and the reconciliation watermark.

Revision ID: 0004
Revises: 0001
Create Date: 2026-11-23 19:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.models.base


revision: str = '0004'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('imports',
    sa.Column('shop_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('run_id', sa.String(length=36), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('bulk_operation_id', sa.String(length=128), nullable=True),
    sa.Column('bulk_status', sa.String(length=16), nullable=True),
    sa.Column('bulk_created_at', app.models.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('orders_expected', sa.BigInteger(), nullable=True),
    sa.Column('orders_done', sa.BigInteger(), server_default=sa.text('0'), nullable=False),
    sa.Column('lines_done', sa.BigInteger(), server_default=sa.text('0'), nullable=False),
    sa.Column('bytes_done', sa.BigInteger(), server_default=sa.text('0'), nullable=False),
    sa.Column('last_updated_at_seen', app.models.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('ledger_done_at', app.models.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('aggregates_after', sa.BigInteger(), nullable=True),
    sa.Column('attempts', sa.Integer(), server_default=sa.text('0'), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('requested_at', app.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('started_at', app.models.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('ready_at', app.models.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('finished_at', app.models.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('updated_at', app.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['shop_id'], ['shops.shop_id'], name=op.f('fk_imports_shop_id_shops')),
    sa.PrimaryKeyConstraint('shop_id', name=op.f('pk_imports'))
    )
    op.create_table('shop_sync_state',
    sa.Column('shop_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('reconciled_through', app.models.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_reconciled_at', app.models.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_examined', sa.Integer(), nullable=True),
    sa.Column('last_repaired', sa.Integer(), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['shop_id'], ['shops.shop_id'], name=op.f('fk_shop_sync_state_shop_id_shops')),
    sa.PrimaryKeyConstraint('shop_id', name=op.f('pk_shop_sync_state'))
    )


def downgrade() -> None:
    op.drop_table('shop_sync_state')
    op.drop_table('imports')
