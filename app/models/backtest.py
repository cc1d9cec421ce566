from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, UTCDateTime
from app.models.shop import ShopId


class Backtest(Base):
    """The accuracy screen: the method the shop's CLV comes from (`method`: the models fitted up to
    `calibration_end`, or the segment formula as of that day), its forecast of the days up to
    `holdout_end` against what happened, next to the naive "same rate as before". `method` NULL:
    nothing measured, `reasons` says why. Orders are counted as purchase days (days with an order)."""

    __tablename__ = "backtests"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    )
    shop_id: Mapped[int] = mapped_column(ShopId, ForeignKey("shops.shop_id"), primary_key=True)
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    calibration_end: Mapped[date] = mapped_column(Date)
    holdout_end: Mapped[date] = mapped_column(Date)
    customers: Mapped[int] = mapped_column(Integer)
    model_used: Mapped[bool] = mapped_column(Boolean)
    # "model_with_prior", "model", "segment_formula" or NULL
    method: Mapped[str | None] = mapped_column(String(16))
    reasons: Mapped[str | None] = mapped_column(Text)
    predicted_orders: Mapped[float] = mapped_column(Float)
    actual_orders: Mapped[float] = mapped_column(Float)
    naive_orders: Mapped[float] = mapped_column(Float)
    orders_mae: Mapped[float] = mapped_column(Float)
    orders_bias: Mapped[float] = mapped_column(Float)
    naive_orders_mae: Mapped[float] = mapped_column(Float)
    naive_orders_bias: Mapped[float] = mapped_column(Float)
    predicted_revenue: Mapped[float] = mapped_column(Float)
    actual_revenue: Mapped[float] = mapped_column(Float)
    naive_revenue: Mapped[float] = mapped_column(Float)
    revenue_mae: Mapped[float] = mapped_column(Float)
    revenue_bias: Mapped[float] = mapped_column(Float)
    naive_revenue_mae: Mapped[float] = mapped_column(Float)
    naive_revenue_bias: Mapped[float] = mapped_column(Float)
    by_frequency: Mapped[str] = mapped_column(Text)  # JSON rows for the chart, by calibration repeats

    __table_args__ = (
        PrimaryKeyConstraint("shop_id", "id"),
        Index("ix_backtests_shop_id_computed_at", "shop_id", "computed_at"),
    )
