from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
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


class ClvFit(Base):
    """One fit of the shop's CLV models (BG/NBD + Gamma-Gamma), kept as history; the newest usable
    one is used, so a fit that fails soft does not replace it.

    `usable` false means no purchase model: `reasons` says why in plain words; without any usable
    fit the predictions use the segment formula. Parameters are per day (BG/NBD) and in shop
    currency (Gamma-Gamma)."""

    __tablename__ = "clv_fits"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    )
    shop_id: Mapped[int] = mapped_column(ShopId, ForeignKey("shops.shop_id"), primary_key=True)
    fitted_at: Mapped[datetime] = mapped_column(UTCDateTime)
    customers: Mapped[int] = mapped_column(Integer)
    repeat_buyers: Mapped[int] = mapped_column(Integer)
    orders: Mapped[int] = mapped_column(Integer)  # qualifying ledger orders at fit time
    usable: Mapped[bool] = mapped_column(Boolean)
    reasons: Mapped[str | None] = mapped_column(Text)  # plain words, one per line
    r: Mapped[float | None] = mapped_column(Float)
    alpha: Mapped[float | None] = mapped_column(Float)
    a: Mapped[float | None] = mapped_column(Float)
    b: Mapped[float | None] = mapped_column(Float)
    purchases_log_likelihood: Mapped[float | None] = mapped_column(Float)
    purchases_converged: Mapped[bool | None] = mapped_column(Boolean)
    p: Mapped[float | None] = mapped_column(Float)
    q: Mapped[float | None] = mapped_column(Float)
    v: Mapped[float | None] = mapped_column(Float)
    spend_log_likelihood: Mapped[float | None] = mapped_column(Float)
    spend_converged: Mapped[bool | None] = mapped_column(Boolean)
    fallback_order_value: Mapped[float] = mapped_column(Float)
    seconds: Mapped[float] = mapped_column(Float)
    # how much the prior contributed to each model (app/clv/prior.py prior_share); NULL: plain MLE
    purchases_prior_share: Mapped[float | None] = mapped_column(Float)
    spend_prior_share: Mapped[float | None] = mapped_column(Float)
    prior_source: Mapped[str | None] = mapped_column(String(16))  # "built-in", "deployment" or NULL

    __table_args__ = (
        PrimaryKeyConstraint("shop_id", "id"),
        Index("ix_clv_fits_shop_id_fitted_at", "shop_id", "fitted_at"),
    )
