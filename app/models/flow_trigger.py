from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    PrimaryKeyConstraint,
    SmallInteger,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, UTCDateTime
from app.models.shop import ShopId


class FlowTriggerEvent(Base):
    """The outbox of Shopify Flow triggers: one row per real change of one customer (written by the
    rescore that saw the change, in its transaction), sent by the sync with ``flowTriggerReceive``.
    ``event_key`` is unique per shop: a rescore that runs again cannot queue the same change twice."""

    __tablename__ = "flow_trigger_events"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    )
    shop_id: Mapped[int] = mapped_column(ShopId, ForeignKey("shops.shop_id"), primary_key=True)
    event_key: Mapped[str] = mapped_column(String(128))  # "<handle>:<customer id>:<rescore µs>"
    handle: Mapped[str] = mapped_column(String(64))
    customer_id: Mapped[int] = mapped_column(BigInteger)
    payload: Mapped[str] = mapped_column(Text)  # the JSON payload sent as is
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # FLOW_EVENT_STATES: pending → sent | refused (Shopify's userErrors) | dropped (trigger no longer in use)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(SmallInteger, default=0)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    error: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        PrimaryKeyConstraint("shop_id", "id"),
        Index("uq_flow_trigger_events_shop_id_event_key", "shop_id", "event_key", unique=True),
        Index("ix_flow_trigger_events_shop_id_status_id", "shop_id", "status", "id"),
    )


class FlowTriggerUsage(Base):
    """Whether a shop has an enabled workflow that starts with one of the app's triggers, as Shopify
    Flow's trigger lifecycle callback last said (``reported_at``: the callback's timestamp)."""

    __tablename__ = "flow_trigger_usage"

    shop_id: Mapped[int] = mapped_column(ShopId, ForeignKey("shops.shop_id"), primary_key=True)
    handle: Mapped[str] = mapped_column(String(64), primary_key=True)
    enabled: Mapped[bool] = mapped_column(Boolean)
    reported_at: Mapped[datetime] = mapped_column(UTCDateTime)
