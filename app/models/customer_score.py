from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import BigInteger, Boolean, Float, Index, Integer, SmallInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, Money, SumOfMoney, UTCDateTime
from app.models.shop import ShopId


class CustomerScore(Base):
    """What the worker computed for one buyer: RFM, segment, stage, behaviour flags and CLV.

    `values_changed_at` moves only when a value a merchant sees (or Shopify holds) changed, so the
    sync can pick the customers to write by it."""

    __tablename__ = "customer_scores"

    # No foreign key to shops (migration 0008): checked once per rescore, not once per row.
    shop_id: Mapped[int] = mapped_column(ShopId, primary_key=True)
    customer_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    frequency: Mapped[int] = mapped_column(Integer)  # qualifying orders in the window
    monetary: Mapped[Decimal] = mapped_column(SumOfMoney)  # spent in the window
    orders_last_year: Mapped[int] = mapped_column(Integer)
    spent_last_year: Mapped[Decimal] = mapped_column(SumOfMoney)
    recency_score: Mapped[int] = mapped_column(SmallInteger)
    frequency_score: Mapped[int] = mapped_column(SmallInteger)
    monetary_score: Mapped[int] = mapped_column(SmallInteger)
    rfm_code: Mapped[str] = mapped_column(String(3))
    fm_score: Mapped[int] = mapped_column(SmallInteger)  # of the quintile scores
    # Bytewise on PostgreSQL (migration 0011): fixed ASCII names, and a cheaper index per row written.
    segment: Mapped[str] = mapped_column(String(32).with_variant(String(32, collation="C"), "postgresql"))
    thirds_group: Mapped[str] = mapped_column(String(8))
    stage: Mapped[str] = mapped_column(String(16))
    stage_since: Mapped[datetime] = mapped_column(UTCDateTime)
    first_time_buyer: Mapped[bool] = mapped_column(Boolean)
    repeat_buyer: Mapped[bool] = mapped_column(Boolean)
    big_spender: Mapped[bool] = mapped_column(Boolean)
    high_aov: Mapped[bool] = mapped_column(Boolean)
    discount_shopper: Mapped[bool] = mapped_column(Boolean)
    full_price_buyer: Mapped[bool] = mapped_column(Boolean)
    vip: Mapped[bool] = mapped_column(Boolean)
    historic_clv: Mapped[Decimal] = mapped_column(SumOfMoney)
    predicted_clv: Mapped[Decimal] = mapped_column(Money)
    predicted_orders: Mapped[float] = mapped_column(Float)
    churn_risk: Mapped[float] = mapped_column(Float)
    expected_next_order_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    average_days_between_orders: Mapped[float | None] = mapped_column(Float)
    clv_tier: Mapped[str | None] = mapped_column(String(8))  # "top-10", "top-25"
    clv_source: Mapped[str] = mapped_column(String(16))  # "model" or "segment_formula"
    row_hash: Mapped[int] = mapped_column(BigInteger)  # of every stored value: rewrite only on change
    synced_hash: Mapped[int] = mapped_column(BigInteger)  # of the values Shopify holds
    values_changed_at: Mapped[datetime] = mapped_column(UTCDateTime)  # when synced_hash last changed

    # Most rows are rewritten daily (predictions move with time): free room on each page (more than
    # half: every row's new version must fit next to the old one) lets PostgreSQL update in place
    # (HOT), which needs that no indexed column changes, hence the one index beyond the key is on
    # the segment, which rarely moves.
    __table_args__ = (
        Index("ix_customer_scores_shop_id_segment", "shop_id", "segment"),
        {"postgresql_with": {"fillfactor": 45}},
    )
