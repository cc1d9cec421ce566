"""Per-shop model fitting that fails soft, and per-customer CLV predictions from the fitted models.

Predicted CLV = expected purchases in the horizon (BG/NBD, FHL 2005 eq. 10) x expected value of
each of those purchases (Gamma-Gamma, Fader & Hardie 2013 eq. 5), optionally discounted. This is
the product used by ``lifetimes.GammaGammaFitter.customer_lifetime_value``; it treats the number and
the value of future orders as independent, which is the Gamma-Gamma model's own assumption.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from app.clv import bgnbd, gamma_gamma
from app.clv._numeric import FloatArray, as_float_array, finite_or
from app.clv.bgnbd import BetaGeoParams
from app.clv.gamma_gamma import GammaGammaParams
from app.clv.prior import (
    BUILT_IN_PRIORS,
    NEGLIGIBLE_SHARE,
    ShopPriors,
    mean_repeat_value,
    purchase_prior,
    spend_prior,
)

# Repeat buyers a shop needs before its predictions come from a model. With the prior (MAP) none:
# in the small-shop study (bench/small_shops.py, docs/benchmarks.md "Small shops") the MAP forecast
# was at least as good as the segment formula's (median RMSE of purchase days and of revenue, the
# consistent measure for an expectation) at every number of repeat buyers from 0 up
# (docs/predictions.md "When a model is used at all"). Plain maximum likelihood keeps
# the 20 it always had: below that it often fails to converge or lands on an extreme.
DEFAULT_MIN_REPEAT_BUYERS: int | None = None  # None: the default of the method
MAP_MIN_REPEAT_BUYERS = 0
MLE_MIN_REPEAT_BUYERS = 20
MAX_ORDERS = 1e6
MAX_MONEY = 1e12


@dataclass(frozen=True, slots=True)
class ShopModels:
    """What ``fit_shop_models`` found: fitted parameters, or plain-words reasons why not.

    ``purchases`` (BG/NBD) is None when the shop's data cannot support the model; ``spend``
    (Gamma-Gamma) may be None on its own, in which case predictions use observed order values.
    """

    purchases: BetaGeoParams | None
    spend: GammaGammaParams | None
    reasons: tuple[str, ...]
    n_customers: int
    n_repeat_buyers: int
    n_excluded: int
    fallback_order_value: float

    @property
    def usable(self) -> bool:
        return self.purchases is not None

    @property
    def prior_share(self) -> float | None:
        """How much the priors contributed to the fitted models, in [0, 1] (``prior.prior_share``
        averaged over the parameters of both models); None for plain maximum likelihood."""
        return combined_prior_share(
            self.purchases.prior_share if self.purchases is not None else None,
            self.spend.prior_share if self.spend is not None else None,
        )

    @property
    def method(self) -> str:
        """ "model_with_prior", "model" (no prior, or one that contributed under 1%) or "none"."""
        return method_of(self.usable, self.prior_share)


def combined_prior_share(purchases: float | None, spend: float | None) -> float | None:
    """The two models' prior shares averaged over their parameters (4 of BG/NBD, 3 of Gamma-Gamma)."""
    if purchases is None:
        return None
    if spend is None:
        return purchases
    return (4.0 * purchases + 3.0 * spend) / 7.0


def method_of(usable: bool, prior_share: float | None) -> str:
    if not usable:
        return "none"
    if prior_share is None or prior_share < NEGLIGIBLE_SHARE:
        return "model"
    return "model_with_prior"


@dataclass(frozen=True, slots=True)
class CustomerPredictions:
    """Per-customer predictions, all finite and inside documented ranges."""

    predicted_orders: FloatArray  # expected orders in the horizon, >= 0
    probability_alive: FloatArray  # in [0, 1]
    churn_risk: FloatArray  # 1 - probability_alive
    expected_order_value: FloatArray  # >= 0, money
    predicted_clv: FloatArray  # >= 0, money, expected spend in the horizon
    time_to_next_order: FloatArray  # median time from T to the next order if alive, >= 0


def _plural(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def _valid_rows(x: FloatArray, t_x: FloatArray, T: FloatArray) -> np.ndarray:
    finite = np.isfinite(x) & np.isfinite(t_x) & np.isfinite(T)
    with np.errstate(invalid="ignore"):
        return finite & (x >= 0) & (np.floor(x) == x) & (t_x >= 0) & (t_x <= T) & ((x > 0) | (t_x == 0))


def _fallback_order_value(x: FloatArray, m: FloatArray) -> float:
    informative = (x >= 1) & np.isfinite(m) & (m > 0)
    if not np.any(informative):
        return 0.0
    return float(np.average(m[informative], weights=x[informative]))


def _purchase_model_problem(params: BetaGeoParams) -> str | None:
    if not params.converged:
        return "the purchase-frequency model (BG/NBD) did not converge"
    values = (params.r, params.alpha, params.a, params.b)
    if not all(math.isfinite(v) and v > 0 for v in values):
        return "the purchase-frequency model (BG/NBD) gave unusable parameters"
    if not 1e-5 <= params.r <= 1e5:
        return "the purchase-frequency model (BG/NBD) reached an extreme; the order history is too uniform"
    # Very large a and b (or a tiny a) are the limit where customers hardly ever stop buying:
    # a valid model whose predictions stay exact (``bgnbd.expected_purchases``), kept.
    return None


def fit_shop_models(
    x: ArrayLike,
    t_x: ArrayLike,
    T: ArrayLike,
    m: ArrayLike,
    min_repeat_buyers: int | None = DEFAULT_MIN_REPEAT_BUYERS,
    penalizer: float = 0.0,
    priors: ShopPriors | None = BUILT_IN_PRIORS,
    days_per_unit: float = 1.0,
) -> ShopModels:
    """Fit BG/NBD (FHL 2005) and Gamma-Gamma (Fader & Hardie 2013) for one shop, failing soft;
    by maximum a posteriori with ``priors`` (``app.clv.prior``; the data's time unit is
    ``days_per_unit`` days), by maximum likelihood with ``priors=None``.

    Rows with non-finite or inconsistent values (negative or fractional x, t_x outside [0, T], x = 0
    with t_x > 0) are left out and counted in ``n_excluded``. With fewer than ``min_repeat_buyers``
    (None: ``MAP_MIN_REPEAT_BUYERS`` with a prior, ``MLE_MIN_REPEAT_BUYERS`` without)
    customers who ordered at least twice no model is fitted, and ``reasons`` says so in plain words;
    the same for a fit that does not converge or lands on a degenerate extreme. The spend model also
    needs ``min_repeat_buyers`` repeat buyers with a positive average order value and q > 1 (with
    a prior, at least one, and equal values are no obstacle).
    """
    if min_repeat_buyers is None:
        min_repeat_buyers = MLE_MIN_REPEAT_BUYERS if priors is None else MAP_MIN_REPEAT_BUYERS
    x_arr, t_x_arr, T_arr, m_arr = (as_float_array(v).ravel() for v in (x, t_x, T, m))
    valid = _valid_rows(x_arr, t_x_arr, T_arr)
    n_excluded = int(valid.size - np.count_nonzero(valid))
    if n_excluded:
        x_arr, t_x_arr, T_arr, m_arr = x_arr[valid], t_x_arr[valid], T_arr[valid], m_arr[valid]
    n_customers = int(x_arr.size)
    n_repeat = int(np.count_nonzero(x_arr >= 1))
    fallback_value = _fallback_order_value(x_arr, m_arr)
    reasons: list[str] = []

    def result(purchases: BetaGeoParams | None, spend: GammaGammaParams | None) -> ShopModels:
        return ShopModels(purchases, spend, tuple(reasons), n_customers, n_repeat, n_excluded, fallback_value)

    if n_repeat < min_repeat_buyers:
        reasons.append(
            f"only {_plural(n_repeat, 'customer', 'customers')} ordered twice or more; "
            f"at least {min_repeat_buyers} are needed"
        )
        return result(None, None)
    if T_arr.size == 0:
        reasons.append("no customers with orders yet")
        return result(None, None)
    if float(np.max(T_arr)) <= 0:
        reasons.append("all customers ordered for the first time today; there is no history to learn from")
        return result(None, None)

    bg_prior = purchase_prior(priors, days_per_unit) if priors is not None else None
    purchases: BetaGeoParams | None = bgnbd.fit(x_arr, t_x_arr, T_arr, penalizer=penalizer, prior=bg_prior)
    assert purchases is not None
    problem = _purchase_model_problem(purchases)
    if problem is not None:
        reasons.append(problem)
        return result(None, None)

    spend: GammaGammaParams | None = None
    spenders = (x_arr >= 1) & np.isfinite(m_arr) & (m_arr > 0)
    n_spenders = int(np.count_nonzero(spenders))
    if n_spenders < max(min_repeat_buyers, 1):
        reasons.append(
            f"only {_plural(n_spenders, 'repeat buyer has', 'repeat buyers have')} a positive order value; "
            f"at least {max(min_repeat_buyers, 1)} are needed for the order-value model; "
            "observed averages are used"
        )
    elif priors is None and np.ptp(m_arr[spenders]) == 0:
        reasons.append("every repeat buyer spends the same average amount; observed averages are used")
    else:
        gg_prior = spend_prior(priors, mean_repeat_value(x_arr, m_arr)) if priors is not None else None
        spend = gamma_gamma.fit(x_arr[spenders], m_arr[spenders], penalizer=penalizer, prior=gg_prior)
        if not spend.converged:
            reasons.append("the order-value model (Gamma-Gamma) did not converge; observed averages are used")
            spend = None
        elif not spend.usable:
            reasons.append(
                "order values vary too much between customers to estimate an average "
                "(Gamma-Gamma q <= 1); observed averages are used"
            )
            spend = None
    return result(purchases, spend)


def expected_order_value(models: ShopModels, x: ArrayLike, m: ArrayLike) -> FloatArray:
    """Gamma-Gamma conditional expected order value (note eq. 5), or, without a spend model, the
    customer's own average for repeat buyers and the shop's average otherwise."""
    x_arr, m_arr = np.broadcast_arrays(as_float_array(x), as_float_array(m))
    if models.spend is not None:
        value = gamma_gamma.conditional_expected_average_profit(models.spend, x_arr, m_arr)
    else:
        informative = (x_arr >= 1) & np.isfinite(m_arr) & (m_arr > 0)
        value = np.where(informative, m_arr, models.fallback_order_value)
    return finite_or(np.asarray(value, dtype=np.float64), models.fallback_order_value, 0.0, MAX_MONEY)


def discounted_expected_purchases(
    bg_params: BetaGeoParams,
    horizon: float,
    x: ArrayLike,
    t_x: ArrayLike,
    T: ArrayLike,
    discount_rate: float = 0.0,
    n_periods: int = 12,
) -> FloatArray:
    """E[Y(horizon) | x, t_x, T] (FHL eq. 10), each future purchase discounted to today.

    With ``discount_rate`` d > 0 (per unit of time of the inputs, e.g. a daily rate for days) the
    horizon is cut into ``n_periods`` equal slices and the purchases expected in slice k, ending at
    s_k, are discounted by (1 + d)^-s_k, as lifetimes does per month. d = 0 gives eq. 10 itself.
    """
    if discount_rate == 0.0:
        return bgnbd.expected_purchases(bg_params, horizon, x, t_x, T)
    x_arr, t_x_arr, T_arr = np.broadcast_arrays(as_float_array(x), as_float_array(t_x), as_float_array(T))
    ends = horizon * np.arange(1, n_periods + 1) / n_periods
    cumulative = bgnbd.expected_purchases(
        bg_params, ends[:, None], x_arr.ravel(), t_x_arr.ravel(), T_arr.ravel()
    )
    in_slice = np.diff(cumulative, axis=0, prepend=0.0)
    total = np.sum(in_slice / (1.0 + discount_rate) ** ends[:, None], axis=0)
    return np.asarray(total.reshape(x_arr.shape), dtype=np.float64)


def predicted_clv(
    bg_params: BetaGeoParams,
    gg_params: GammaGammaParams,
    x: ArrayLike,
    t_x: ArrayLike,
    T: ArrayLike,
    m: ArrayLike,
    horizon: float,
    discount_rate: float = 0.0,
    n_periods: int = 12,
) -> FloatArray:
    """Expected spend in (T, T + horizon]: E[Y(horizon) | x, t_x, T] (FHL eq. 10) x E[Z | x, m] (note eq. 5).

    ``discount_rate`` and ``n_periods`` as in ``discounted_expected_purchases``.
    """
    value = gamma_gamma.conditional_expected_average_profit(gg_params, x, m)
    orders = discounted_expected_purchases(bg_params, horizon, x, t_x, T, discount_rate, n_periods)
    return np.asarray(orders * value, dtype=np.float64)


def score_customers(
    models: ShopModels,
    x: ArrayLike,
    t_x: ArrayLike,
    T: ArrayLike,
    m: ArrayLike,
    horizon: float,
    discount_rate: float = 0.0,
) -> CustomerPredictions:
    """All per-customer predictions for one shop; every value finite and clipped to a sane range.

    Requires ``models.usable``. Rows that ``fit_shop_models`` would exclude get zero orders, churn
    risk 1 and zero CLV rather than NaN.
    """
    if models.purchases is None:
        raise ValueError("no purchase model: " + "; ".join(models.reasons))
    bg = models.purchases
    x_arr, t_x_arr, T_arr, m_arr = (as_float_array(v).ravel() for v in (x, t_x, T, m))
    valid = _valid_rows(x_arr, t_x_arr, T_arr)
    if np.all(valid):
        xs, t_xs, Ts = x_arr, t_x_arr, T_arr
    else:
        xs = np.where(valid, x_arr, 0.0)
        t_xs = np.where(valid, t_x_arr, 0.0)
        Ts = np.where(valid, T_arr, 0.0)
    with np.errstate(all="ignore"):
        exact_alive = bgnbd.probability_alive(bg, xs, t_xs, Ts)
        alive = np.where(valid, finite_or(exact_alive, 0.0, 0.0, 1.0), 0.0)
        value = expected_order_value(models, xs, m_arr)
        # bgnbd.expected_purchases, with P(alive) computed once for both
        orders = exact_alive * bgnbd.expected_purchases_if_alive(bg, horizon, xs, Ts)
        if discount_rate == 0.0:
            clv = orders * value
        else:
            clv = discounted_expected_purchases(bg, horizon, xs, t_xs, Ts, discount_rate) * value
        orders = np.where(valid, finite_or(orders, 0.0, 0.0, MAX_ORDERS), 0.0)
        clv = np.where(valid, finite_or(clv, 0.0, 0.0, MAX_MONEY), 0.0)
        next_order = finite_or(bgnbd.expected_time_to_next_purchase(bg, xs, Ts), 0.0, 0.0, 1e9)
    return CustomerPredictions(
        predicted_orders=orders,
        probability_alive=alive,
        churn_risk=1.0 - alive,
        expected_order_value=value,
        predicted_clv=clv,
        time_to_next_order=next_order,
    )
