"""Fitting a shop's CLV models (BG/NBD and Gamma-Gamma, ``app.clv``) on its whole ledger, and the
backtest shown as "accuracy"; the models of a stored fit for the rescore."""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from typing import Any, Final

import numpy as np
import numpy.typing as npt
from sqlalchemy.orm import Session

from app.clv import backtest as clv_backtest
from app.clv import clv, prior
from app.clv.bgnbd import BetaGeoParams
from app.clv.gamma_gamma import GammaGammaParams
from app.config import get_settings as get_app_settings
from app.models import Backtest, ClvFit
from app.scoring import compute, load, rules
from app.scoring import metrics as shop_metrics
from app.scoring import repository as repo
from app.scoring.compute import date_of, to_jsonable
from app.settings.schemas import ScoringSettings
from app.settings.service import get_settings

log = logging.getLogger(__name__)

Array = npt.NDArray[Any]
BACKTEST_MIN_HISTORY_DAYS: Final = 90


def fit_method(fit: ClvFit | None) -> tuple[str, float | None]:
    """Which method a stored fit gives the predictions, and how much the prior contributed:
    ("model_with_prior", share), ("model", share or None: a prior under 1%, or plain maximum
    likelihood) or ("segment_formula", None) without a usable fit."""
    if fit is None or not fit.usable:
        return "segment_formula", None
    share = clv.combined_prior_share(fit.purchases_prior_share, fit.spend_prior_share)
    return clv.method_of(True, share), share


def models_from_fit(fit: ClvFit | None) -> clv.ShopModels | None:
    """The usable models of a stored fit, or None (no fit, or it failed soft)."""
    if fit is None or not fit.usable or fit.r is None or fit.alpha is None or fit.a is None or fit.b is None:
        return None
    spend = None
    if fit.p is not None and fit.q is not None and fit.v is not None:
        spend = GammaGammaParams(fit.p, fit.q, fit.v, converged=bool(fit.spend_converged))
        if not spend.usable:
            spend = None
    return clv.ShopModels(
        purchases=BetaGeoParams(fit.r, fit.alpha, fit.a, fit.b),
        spend=spend,
        reasons=tuple((fit.reasons or "").splitlines()),
        n_customers=fit.customers,
        n_repeat_buyers=fit.repeat_buyers,
        n_excluded=0,
        fallback_order_value=fit.fallback_order_value,
    )


def shop_priors(session: Session, shop_id: int) -> prior.ShopPriors:
    """The priors of the shop's fits: the built-in ones (``app.clv.prior``), or, when the operator
    sets ``CLV_PRIOR_FROM_SHOPS``, ones estimated from the newest fits of the deployment's larger
    shops (their parameters only, never their customers; docs/privacy.md). Too few such shops: the
    built-in ones."""
    if not get_app_settings().clv_prior_from_shops:
        return prior.BUILT_IN_PRIORS
    rows = repo.larger_shop_fits(session, shop_id, prior.MIN_REPEAT_BUYERS_OF_A_PRIOR_SHOP)
    return prior.deployment_priors(rows)


def fit_and_backtest(session: Session, shop_id: int, now: dt.datetime) -> ClvFit:
    """Fit the shop's CLV models on its whole ledger (days as the time unit), store the fit and a
    backtest. Fails soft: a shop the models cannot describe gets a fit row with ``usable`` false
    and the reasons."""
    started = time.perf_counter()
    tz = load.shop_timezone(session, shop_id)
    today = load.day_number(now, tz)
    last = repo.metrics_row(session, shop_id)
    ords = load.load_orders(
        session, shop_id, tz, expected_orders=None if last is None else last.orders_scored
    )
    customer = ords["customer_id"]
    day = ords["day"].astype(np.float64)
    value = ords["value"]
    summary = clv_backtest.summarise_transactions(customer, day, value, float(today))
    priors = shop_priors(session, shop_id)
    models = clv.fit_shop_models(summary.x, summary.t_x, summary.T, summary.m, priors=priors)
    purchases, spend = models.purchases, models.spend
    row: dict[str, Any] = {
        "shop_id": shop_id,
        "fitted_at": now,
        "customers": models.n_customers,
        "repeat_buyers": models.n_repeat_buyers,
        "orders": int(customer.size),
        "usable": models.usable,
        "reasons": "\n".join(models.reasons) or None,
        "fallback_order_value": float(models.fallback_order_value),
        "seconds": 0.0,
    }
    if purchases is not None:
        row |= {
            "r": purchases.r,
            "alpha": purchases.alpha,
            "a": purchases.a,
            "b": purchases.b,
            "purchases_log_likelihood": purchases.log_likelihood,
            "purchases_converged": purchases.converged,
            "purchases_prior_share": purchases.prior_share,
            "prior_source": priors.source,
        }
    if spend is not None:
        row |= {
            "p": spend.p,
            "q": spend.q,
            "v": spend.v,
            "spend_log_likelihood": spend.log_likelihood,
            "spend_converged": spend.converged,
            "spend_prior_share": spend.prior_share,
        }
    row["seconds"] = time.perf_counter() - started
    fit = repo.add_fit(session, row)
    run_backtest(session, shop_id, now, customer, day, value, today, priors)
    return fit


def backtest_window(first_day: int, today: int, horizon_days: int = 365) -> tuple[int, int] | None:
    """(cut-off, end) for a shop's backtest: hold out the last third of the history, at most one
    horizon and at least four weeks; None with less than ``BACKTEST_MIN_HISTORY_DAYS`` of orders."""
    span = today - first_day
    if span < BACKTEST_MIN_HISTORY_DAYS:
        return None
    holdout = int(min(max(span // 3, 28), horizon_days))
    return today - holdout, today


def run_backtest(
    session: Session,
    shop_id: int,
    now: dt.datetime,
    customer: Array,
    day: Array,
    value: Array,
    today: int,
    priors: prior.ShopPriors = prior.BUILT_IN_PRIORS,
) -> Backtest:
    """Backtest the method the shop's CLV comes from (the model when a usable fit is in use, fitted
    with ``priors`` as the live fit, else the segment formula) on the shop's own orders, next to the
    naive forecast; ``method`` says "model_with_prior" when the prior contributed (``ShopModels.
    method``). With too little
    history, or when the model cannot be fitted on the orders up to the cut-off, store why instead
    of numbers (``method`` NULL)."""
    settings = get_settings(session, shop_id)
    on_model = repo.fit_in_use(session, shop_id) is not None
    window = backtest_window(int(day.min()) if day.size else today, today, settings.clv_horizon_days)
    zero = clv_backtest.ForecastAccuracy(0.0, 0.0, 0.0, 0.0)
    result: clv_backtest.BacktestResult | None = None
    method: str | None = None
    reasons: str | None = None
    predicted_days = predicted_revenue = np.zeros(0)
    if window is None:
        cut, end = today, today
        reasons = (
            f"the backtest needs {BACKTEST_MIN_HISTORY_DAYS} days of orders to hold some out; "
            f"the first order counted is {today - int(day.min())} days old"
            if day.size
            else "no orders counted yet"
        )
    else:
        cut, end = window
        result = clv_backtest.backtest(customer, day, value, float(cut), float(end), priors=priors)
        if result.customer.size == 0:
            reasons = f"no customer had ordered by {date_of(cut):%b %-d, %Y}, the cut-off"
        elif not result.actual_orders.any():
            reasons = (
                f"no customer known on {date_of(cut):%b %-d, %Y} ordered after it; nothing to compare with"
            )
        elif on_model and not result.model_used:
            reasons = (
                f"the model could not be fitted on the orders up to {date_of(cut):%b %-d, %Y}: "
                + "; ".join(result.reasons)
            )
        elif on_model:
            method = result.models.method
            predicted_days, predicted_revenue = result.predicted_orders, result.predicted_revenue
        else:
            method = "segment_formula"
            predicted_days, predicted_revenue = fallback_forecast(
                customer, day, value, cut, end - cut, settings
            )
    measured = result if method is not None else None
    by_frequency: list[dict[str, Any]] = []
    if measured is not None:
        calibration = clv_backtest.summarise_transactions(customer, day, value, float(cut))
        bucket = np.minimum(calibration.x, 7).astype(np.intp)
        for k in range(8):
            member = bucket == k
            if np.any(member):
                by_frequency.append(
                    {
                        "repeat_orders": f"{k}+" if k == 7 else str(k),
                        "customers": int(np.count_nonzero(member)),
                        "actual": float(measured.actual_orders[member].mean()),
                        "predicted": float(predicted_days[member].mean()),
                        "naive": float(measured.naive_orders[member].mean()),
                    }
                )
    compare = clv_backtest.ForecastAccuracy.compare
    orders_acc = compare(predicted_days, measured.actual_orders) if measured else zero
    revenue_acc = compare(predicted_revenue, measured.actual_revenue) if measured else zero
    naive_orders = measured.naive_orders_accuracy if measured else zero
    naive_revenue = measured.naive_revenue_accuracy if measured else zero
    row = {
        "shop_id": shop_id,
        "computed_at": now,
        "calibration_end": date_of(cut),
        "holdout_end": date_of(end),
        "customers": int(measured.customer.size) if measured else 0,
        "model_used": method in ("model", "model_with_prior"),
        "method": method,
        "reasons": reasons,
        "predicted_orders": orders_acc.predicted_total,
        "actual_orders": orders_acc.actual_total,
        "naive_orders": naive_orders.predicted_total,
        "orders_mae": orders_acc.mean_absolute_error,
        "orders_bias": orders_acc.bias,
        "naive_orders_mae": naive_orders.mean_absolute_error,
        "naive_orders_bias": naive_orders.bias,
        "predicted_revenue": revenue_acc.predicted_total,
        "actual_revenue": revenue_acc.actual_total,
        "naive_revenue": naive_revenue.predicted_total,
        "revenue_mae": revenue_acc.mean_absolute_error,
        "revenue_bias": revenue_acc.bias,
        "naive_revenue_mae": naive_revenue.mean_absolute_error,
        "naive_revenue_bias": naive_revenue.bias,
        "by_frequency": _json(by_frequency),
    }
    return repo.add_backtest(session, row)


def fallback_forecast(
    customer: Array, day: Array, value: Array, cut: int, holdout_days: int, settings: ScoringSettings
) -> tuple[Array, Array]:
    """The segment formula as it stood on day ``cut`` (``compute.fallback_predictions`` on the
    orders up to it): per customer known by then, sorted by id, the purchase days and the revenue
    it predicts for the ``holdout_days`` after. Purchase days (days with an order) stand for orders,
    as the backtest counts them."""
    keep = day <= cut
    ids, index = np.unique(customer[keep], return_inverse=True)
    d, v = day[keep].astype(np.int64), value[keep].astype(np.float64)
    n = ids.size
    orders = np.bincount(index, minlength=n).astype(np.float64)
    spent = np.bincount(index, weights=v, minlength=n)
    first = np.full(n, np.iinfo(np.int64).max)
    last = np.full(n, np.iinfo(np.int64).min)
    np.minimum.at(first, index, d)
    np.maximum.at(last, index, d)
    year = d > cut - 365
    spent_year = np.bincount(index[year], weights=v[year], minlength=n)
    days_year = np.unique(index[year] * (cut + 1) + d[year]) // (cut + 1)
    purchase_days_year = np.bincount(days_year, minlength=n).astype(np.float64)
    if settings.window_days is None:
        frequency, monetary = orders, spent
    else:
        inside = d > cut - settings.window_days
        frequency = np.bincount(index[inside], minlength=n).astype(np.float64)
        monetary = np.bincount(index[inside], weights=v[inside], minlength=n)
    days_since = (cut - last).astype(np.float64)
    segment = rules.score_quintile(days_since, frequency, monetary, settings.segment_grid).segment
    with np.errstate(invalid="ignore", divide="ignore"):
        gaps = np.where(orders >= 2, (last - first) / np.maximum(orders - 1, 1), np.nan)
    thresholds = rules.StageThresholds()
    interval = rules.typical_interval(shop_metrics.median_days_between_orders(gaps), thresholds)
    revenue, purchase_days, _ = compute.fallback_predictions(
        segment, spent_year, purchase_days_year, days_since, interval, float(holdout_days), thresholds
    )
    return purchase_days, revenue


def _json(value: Any) -> str:
    return json.dumps(to_jsonable(value), separators=(",", ":"))
