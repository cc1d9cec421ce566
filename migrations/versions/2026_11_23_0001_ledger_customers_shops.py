"""The order ledger, customer aggregates, shops, refunds, deletions and data requests.

Revision ID: 0001
Revises: 
Create Date: 2026-11-23 18:19:41.808696
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.models.base


revision: str = '0001'
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('shops',
    sa.Column('shop_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('domain', sa.String(length=255), nullable=False),
    sa.Column('shopify_shop_id', sa.BigInteger(), nullable=True),
    sa.Column('currency_code', sa.String(length=3), nullable=True),
    sa.Column('iana_timezone', sa.String(length=64), nullable=True),
    sa.Column('scope', sa.Text(), nullable=True),
    sa.Column('access_token_encrypted', sa.Text(), nullable=True),
    sa.Column('access_token_expires_at', app.models.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('refresh_token_encrypted', sa.Text(), nullable=True),
    sa.Column('refresh_token_expires_at', app.models.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('installed_at', app.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('uninstalled_at', app.models.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_webhook_at', app.models.base.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('shop_id', name=op.f('pk_shops')),
    sa.UniqueConstraint('domain', name=op.f('uq_shops_domain'))
    )
    op.create_table('customers',
    sa.Column('shop_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('customer_id', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('first_order_at', app.models.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_order_at', app.models.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('orders_count', sa.Integer(), nullable=False),
    sa.Column('total_spent', app.models.base.Money(precision=20, scale=4), nullable=False),
    sa.Column('average_order_value', app.models.base.Money(precision=20, scale=4), nullable=True),
    sa.Column('discounted_orders_count', sa.Integer(), nullable=False),
    sa.Column('average_days_between_orders', sa.Float(), nullable=True),
    sa.Column('score_pending', sa.Boolean(), server_default=sa.text('true'), nullable=False),
    sa.Column('aggregates_updated_at', app.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['shop_id'], ['shops.shop_id'], name=op.f('fk_customers_shop_id_shops')),
    sa.PrimaryKeyConstraint('shop_id', 'customer_id', name=op.f('pk_customers'))
    )
    with op.batch_alter_table('customers', schema=None) as batch_op:
        batch_op.create_index('ix_customers_shop_id_score_pending', ['shop_id'], unique=False, postgresql_where=sa.text('score_pending'), sqlite_where=sa.text('score_pending'))

    op.create_table('data_requests',
    sa.Column('shop_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('data_request_id', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('customer_id', sa.BigInteger(), nullable=False),
    sa.Column('orders_requested', sa.Text(), nullable=True),
    sa.Column('received_at', app.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('answered_at', app.models.base.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['shop_id'], ['shops.shop_id'], name=op.f('fk_data_requests_shop_id_shops')),
    sa.PrimaryKeyConstraint('shop_id', 'data_request_id', name=op.f('pk_data_requests'))
    )
    op.create_table('deleted_orders',
    sa.Column('shop_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('order_id', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('deleted_at', app.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['shop_id'], ['shops.shop_id'], name=op.f('fk_deleted_orders_shop_id_shops')),
    sa.PrimaryKeyConstraint('shop_id', 'order_id', name=op.f('pk_deleted_orders'))
    )
    op.create_table('order_refunds',
    sa.Column('shop_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('refund_id', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('order_id', sa.BigInteger(), nullable=False),
    sa.Column('amount', app.models.base.Money(precision=20, scale=4), nullable=False),
    sa.Column('refunded_at', app.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['shop_id'], ['shops.shop_id'], name=op.f('fk_order_refunds_shop_id_shops')),
    sa.PrimaryKeyConstraint('shop_id', 'refund_id', name=op.f('pk_order_refunds'))
    )
    with op.batch_alter_table('order_refunds', schema=None) as batch_op:
        batch_op.create_index('ix_order_refunds_shop_id_order_id', ['shop_id', 'order_id'], unique=False)

    op.create_table('orders',
    sa.Column('shop_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('order_id', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('customer_id', sa.BigInteger(), nullable=True),
    sa.Column('ordered_at', app.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('source_updated_at', app.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('cancelled_at', app.models.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('test', sa.Boolean(), nullable=False),
    sa.Column('financial_status', sa.String(length=32), nullable=True),
    sa.Column('current_total', app.models.base.Money(precision=20, scale=4), nullable=False),
    sa.Column('presentment_total', app.models.base.Money(precision=20, scale=4), nullable=True),
    sa.Column('pending_refunds', app.models.base.Money(precision=20, scale=4), server_default=sa.text('0'), nullable=False),
    sa.Column('value', app.models.base.Money(precision=20, scale=4), nullable=False),
    sa.Column('total_discounts', app.models.base.Money(precision=20, scale=4), nullable=False),
    sa.Column('discount_codes', sa.Text(), nullable=True),
    sa.Column('discounted', sa.Boolean(), nullable=False),
    sa.Column('source_name', sa.String(length=255), nullable=True),
    sa.Column('qualifies', sa.Boolean(), nullable=False),
    sa.Column('stale_since', app.models.base.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['shop_id'], ['shops.shop_id'], name=op.f('fk_orders_shop_id_shops')),
    sa.PrimaryKeyConstraint('shop_id', 'order_id', name=op.f('pk_orders'))
    )
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.create_index('ix_orders_shop_id_customer_id', ['shop_id', 'customer_id'], unique=False)
        batch_op.create_index('ix_orders_shop_id_source_updated_at', ['shop_id', 'source_updated_at'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.drop_index('ix_orders_shop_id_source_updated_at')
        batch_op.drop_index('ix_orders_shop_id_customer_id')

    op.drop_table('orders')
    with op.batch_alter_table('order_refunds', schema=None) as batch_op:
        batch_op.drop_index('ix_order_refunds_shop_id_order_id')

    op.drop_table('order_refunds')
    op.drop_table('deleted_orders')
    op.drop_table('data_requests')
    with op.batch_alter_table('customers', schema=None) as batch_op:
        batch_op.drop_index('ix_customers_shop_id_score_pending', postgresql_where=sa.text('score_pending'), sqlite_where=sa.text('score_pending'))

    op.drop_table('customers')
    op.drop_table('shops')
