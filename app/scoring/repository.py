"""Scoring's other SQL: the last rescore's record, the CLV fits and backtests, what the schedules
look for, and the stored scores as the sync and the tests read them. A rescore's own reads and
writes are ``load`` and ``store``."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Integer, exists, func, select
from sqlalchemy.orm import Session

from app.models import (
    Backtest,
    ClvFit,
    Customer,
    CustomerScore,
    Shop,
    ShopMetricsSnapshot,
    StageChange,
)
from app.models.base import table_of
from app.vocabulary import STAGE_CHANGE_CAUSES

customers = table_of(Customer)
BEHAVIOUR, REFIT = STAGE_CHANGE_CAUSES


def metrics_row(session: Session, shop_id: int) -> ShopMetricsSnapshot | None:
    return session.get(ShopMetricsSnapshot, shop_id)


# --------------------------------------------------------------------------------------------
# CLV fits and backtests


def latest_fit(session: Session, shop_id: int) -> ClvFit | None:
    return session.scalar(
        select(ClvFit)
        .where(ClvFit.shop_id == shop_id)
        .order_by(ClvFit.fitted_at.desc(), ClvFit.id.desc())
        .limit(1)
    )


def fit_by_id(session: Session, shop_id: int, fit_id: int) -> ClvFit | None:
    return session.scalar(select(ClvFit).where(ClvFit.shop_id == shop_id, ClvFit.id == fit_id))


def fit_in_use(session: Session, shop_id: int) -> ClvFit | None:
    """The newest usable fit: the one predictions come from. A newer fit that failed soft does not
    replace it, so a shop does not flip between the model and the segment formula."""
    return session.scalar(
        select(ClvFit)
        .where(ClvFit.shop_id == shop_id, ClvFit.usable)
        .order_by(ClvFit.fitted_at.desc(), ClvFit.id.desc())
        .limit(1)
    )


def larger_shop_fits(session: Session, shop_id: int, min_repeat_buyers: int) -> list[dict[str, Any]]:
    """The parameters (nothing else) of the newest usable fit of every other shop with at least
    ``min_repeat_buyers`` repeat buyers: what a prior estimated from the deployment's larger shops
    is made of (``fit.shop_priors``; docs/privacy.md). The one read across shops, on purpose: it
    filters on shop_id only to leave the shop being fitted out."""
    newest = (
        select(
            ClvFit.r,
            ClvFit.alpha,
            ClvFit.a,
            ClvFit.b,
            ClvFit.p,
            ClvFit.q,
            ClvFit.v,
            ClvFit.purchases_prior_share,
            func.row_number()
            .over(partition_by=ClvFit.shop_id, order_by=(ClvFit.fitted_at.desc(), ClvFit.id.desc()))
            .label("newest"),
        )
        .where(ClvFit.shop_id != shop_id, ClvFit.usable, ClvFit.repeat_buyers >= min_repeat_buyers)
        .subquery()
    )
    rows = session.execute(select(newest).where(newest.c.newest == 1)).mappings()
    return [dict(row) for row in rows]


def add_fit(session: Session, row: dict[str, Any]) -> ClvFit:
    fit = ClvFit(**row)
    session.add(fit)
    session.flush()
    return fit


def add_backtest(session: Session, row: dict[str, Any]) -> Backtest:
    backtest = Backtest(**row)
    session.add(backtest)
    session.flush()
    return backtest


def latest_backtest(session: Session, shop_id: int) -> Backtest | None:
    return session.scalar(
        select(Backtest)
        .where(Backtest.shop_id == shop_id)
        .order_by(Backtest.computed_at.desc(), Backtest.id.desc())
        .limit(1)
    )


# --------------------------------------------------------------------------------------------
# What the schedules look for


def shops_with_pending_customers(session: Session) -> list[int]:
    # One index probe per shop (ix_customers_shop_id_score_pending is partial on score_pending).
    shop_ids = select(Shop.shop_id).where(Shop.uninstalled_at.is_(None))
    return [
        int(s)
        for s in session.scalars(
            shop_ids.where(
                exists().where(customers.c.shop_id == Shop.shop_id, customers.c.score_pending)
            ).order_by(Shop.shop_id)
        )
    ]


def shops_due_full_rescore(session: Session, scored_before: dt.datetime) -> list[int]:
    """Installed shops with buyers whose last full rescore is older than ``scored_before``."""
    snapshot = table_of(ShopMetricsSnapshot)
    last_full = select(snapshot.c.computed_at).where(snapshot.c.shop_id == Shop.shop_id).scalar_subquery()
    stmt = select(Shop.shop_id).where(
        Shop.uninstalled_at.is_(None),
        exists().where(customers.c.shop_id == Shop.shop_id),
        (last_full.is_(None)) | (last_full < scored_before),
    )
    return [int(s) for s in session.scalars(stmt.order_by(Shop.shop_id))]


def shops_due_fit(session: Session, fitted_before: dt.datetime, growth: float) -> list[int]:
    """Installed shops with scores whose last fit is older than ``fitted_before``, or whose ledger
    grew by more than ``growth`` (a share) since that fit."""
    snapshot = table_of(ShopMetricsSnapshot)
    fits = table_of(ClvFit)
    newest = (
        select(fits.c.fitted_at, fits.c.orders)
        .where(fits.c.shop_id == Shop.shop_id)
        .order_by(fits.c.fitted_at.desc(), fits.c.id.desc())
        .limit(1)
        .correlate(Shop)
    )
    fitted_at = newest.with_only_columns(fits.c.fitted_at).scalar_subquery()
    fitted_orders = newest.with_only_columns(fits.c.orders).scalar_subquery()
    stmt = (
        select(Shop.shop_id)
        .join(snapshot, snapshot.c.shop_id == Shop.shop_id)
        .where(
            Shop.uninstalled_at.is_(None),
            fitted_at.is_(None)
            | (fitted_at < fitted_before)
            | (snapshot.c.orders_scored > (fitted_orders * (1 + growth)).cast(Integer)),
        )
    )
    return [int(s) for s in session.scalars(stmt.order_by(Shop.shop_id))]


# --------------------------------------------------------------------------------------------
# Stored scores


def customer_scores(session: Session, shop_id: int, customer_ids: Sequence[int]) -> list[CustomerScore]:
    return list(
        session.scalars(
            select(CustomerScore)
            .where(CustomerScore.shop_id == shop_id, CustomerScore.customer_id.in_(list(customer_ids)))
            .order_by(CustomerScore.customer_id)
        )
    )


def scores_changed_since(
    session: Session, shop_id: int, since: dt.datetime, limit: int = 1000
) -> list[CustomerScore]:
    """Customers whose synced values changed after ``since`` (oldest change first)."""
    return list(
        session.scalars(
            select(CustomerScore)
            .where(CustomerScore.shop_id == shop_id, CustomerScore.values_changed_at > since)
            .order_by(CustomerScore.values_changed_at, CustomerScore.customer_id)
            .limit(limit)
        )
    )


def stage_changes_since(
    session: Session, shop_id: int, since: dt.datetime, cause: str = BEHAVIOUR
) -> list[StageChange]:
    """The stage changes since ``since`` of one cause: by default the customers' behaviour ("entered
    at-risk this week"), not a model refit's reclassifications."""
    return list(
        session.scalars(
            select(StageChange)
            .where(
                StageChange.shop_id == shop_id, StageChange.changed_at >= since, StageChange.cause == cause
            )
            .order_by(StageChange.changed_at, StageChange.customer_id)
        )
    )
