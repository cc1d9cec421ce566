"""Shopify Flow triggers: the outbox of trigger events (one row per real change of a customer, unique
per shop and change) and, per shop and trigger, whether Flow reported an enabled workflow using it.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-04 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.models.base

revision: str = "0021"
down_revision: str | Sequence[str] | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "flow_trigger_events",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("shop_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("event_key", sa.String(length=128), nullable=False),
        sa.Column("handle", sa.String(length=64), nullable=False),
        sa.Column("customer_id", sa.BigInteger(), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("created_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.SmallInteger(), nullable=False),
        sa.Column("sent_at", app.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["shop_id"], ["shops.shop_id"], name=op.f("fk_flow_trigger_events_shop_id_shops")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_flow_trigger_events")),
    )
    op.create_index(
        "uq_flow_trigger_events_shop_id_event_key",
        "flow_trigger_events",
        ["shop_id", "event_key"],
        unique=True,
    )
    op.create_index(
        "ix_flow_trigger_events_shop_id_status_id", "flow_trigger_events", ["shop_id", "status", "id"]
    )
    op.create_table(
        "flow_trigger_usage",
        sa.Column("shop_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("handle", sa.String(length=64), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("reported_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["shop_id"], ["shops.shop_id"], name=op.f("fk_flow_trigger_usage_shop_id_shops")
        ),
        sa.PrimaryKeyConstraint("shop_id", "handle", name=op.f("pk_flow_trigger_usage")),
    )


def downgrade() -> None:
    op.drop_table("flow_trigger_usage")
    op.drop_index("ix_flow_trigger_events_shop_id_status_id", table_name="flow_trigger_events")
    op.drop_index("uq_flow_trigger_events_shop_id_event_key", table_name="flow_trigger_events")
    op.drop_table("flow_trigger_events")
