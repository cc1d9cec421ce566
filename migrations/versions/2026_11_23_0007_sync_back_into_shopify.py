"""Sync back into Shopify: per-customer sync state (the outbox), per-shop push state, app segments.

Revision ID: 0007
Revises: 0003, 0004 (merges the scoring and import heads)
Create Date: 2026-11-23 19:22:07.434546
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.models.base


revision: str = '0007'
down_revision: str | Sequence[str] | None = ('0003', '0004')
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('customer_sync_state',
    sa.Column('shop_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('customer_id', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('synced_hash', sa.BigInteger(), nullable=True),
    sa.Column('prefix_generation', sa.Integer(), nullable=False),
    sa.Column('metafields', sa.Text(), nullable=False),
    sa.Column('digests', sa.Text(), nullable=False),
    sa.Column('tags', sa.Text(), nullable=False),
    sa.Column('inflight', sa.Text(), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('error_hash', sa.BigInteger(), nullable=True),
    sa.Column('error_attempts', sa.SmallInteger(), nullable=False),
    sa.Column('updated_at', app.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['shop_id'], ['shops.shop_id'], name=op.f('fk_customer_sync_state_shop_id_shops')),
    sa.PrimaryKeyConstraint('shop_id', 'customer_id', name=op.f('pk_customer_sync_state'))
    )
    op.create_table('shop_push_state',
    sa.Column('shop_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('rfm_prefix', sa.String(length=32), nullable=False),
    sa.Column('stage_prefix', sa.String(length=32), nullable=False),
    sa.Column('clv_prefix', sa.String(length=32), nullable=False),
    sa.Column('prefix_generation', sa.Integer(), nullable=False),
    sa.Column('former_prefixes', sa.Text(), nullable=False),
    sa.Column('scores_seen_at', app.models.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('settings_seen_at', app.models.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_sync_at', app.models.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_written', sa.Integer(), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('bulk_phase', sa.String(length=16), nullable=True),
    sa.Column('bulk_operation_id', sa.String(length=128), nullable=True),
    sa.Column('updated_at', app.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['shop_id'], ['shops.shop_id'], name=op.f('fk_shop_push_state_shop_id_shops')),
    sa.PrimaryKeyConstraint('shop_id', name=op.f('pk_shop_push_state'))
    )
    op.create_table('synced_segments',
    sa.Column('shop_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('segment_gid', sa.String(length=128), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('query', sa.Text(), nullable=False),
    sa.Column('updated_at', app.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['shop_id'], ['shops.shop_id'], name=op.f('fk_synced_segments_shop_id_shops')),
    sa.PrimaryKeyConstraint('shop_id', 'key', name=op.f('pk_synced_segments'))
    )


def downgrade() -> None:
    op.drop_table('synced_segments')
    op.drop_table('shop_push_state')
    op.drop_table('customer_sync_state')
