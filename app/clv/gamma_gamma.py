"""Gamma-Gamma model of the average value of a customer's repeat purchases.

References: P. S. Fader and B. G. S. Hardie (2013), "The Gamma-Gamma Model of Monetary Value"
(note 025, brucehardie.com), building on Colombo & Jiang (1999), "A stochastic RFM model", Journal of
Interactive Marketing 13(3):2-12.

Each transaction value z ~ Gamma(shape p, rate nu); across customers nu ~ Gamma(shape q, rate v)
(the note calls v gamma). A customer is summarised by x, the number of repeat purchases (x >= 1), and
m, the mean value of those x purchases; m must be positive.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import digamma, gammaln, polygamma

from app.clv._numeric import FloatArray, as_float_array, minimise_in_box, newton_minimise, weighted_sum
from app.clv.prior import LogNormalPrior, prior_share

LOG_PARAM_BOUND = 15.0
GRADIENT_TOLERANCE = 1e-5


@dataclass(frozen=True, slots=True)
class GammaGammaParams:
    """Gamma-Gamma parameters (Fader & Hardie 2013, section 2): z ~ Gamma(p, nu), nu ~ Gamma(q, v).

    ``v`` is in money units. ``usable`` is false when q <= 1, where the population mean spend
    p v / (q - 1) does not exist, or when the fit did not converge.
    """

    p: float
    q: float
    v: float
    log_likelihood: float | None = None
    converged: bool = True
    n_customers: int = 0
    n_distinct: int = 0
    iterations: int = 0
    message: str = ""
    prior_share: float | None = None  # how much a prior contributed (``prior.prior_share``); None: MLE

    @property
    def usable(self) -> bool:
        return (
            self.converged
            and self.q > 1.0
            and all(math.isfinite(value) and value > 0 for value in (self.p, self.q, self.v))
        )

    @property
    def population_mean_value(self) -> float:
        """E[Z] = p v / (q - 1) (note, eq. 4 at x = 0); requires q > 1."""
        if self.q <= 1.0:
            raise ValueError("the mean order value does not exist when q <= 1")
        return self.p * self.v / (self.q - 1.0)

    @property
    def log_params(self) -> FloatArray:
        return np.log(np.array([self.p, self.q, self.v], dtype=np.float64))


def _repeat_buyers(x: FloatArray, m: FloatArray) -> np.ndarray:
    return (x >= 1) & (m > 0) & np.isfinite(m)


def log_likelihood_per_customer(params: GammaGammaParams, x: ArrayLike, m: ArrayLike) -> FloatArray:
    """Log density of the mean repeat-purchase value m given x (Fader & Hardie 2013, eq. 3).

    f(m | p, q, v, x) = Gamma(px+q) / (Gamma(px) Gamma(q)) v^q m^(px-1) x^(px) / (v + m x)^(px+q),
    i.e. m x ~ Gamma(px, nu) mixed over nu ~ Gamma(q, v). Defined for x >= 1 and m > 0.
    """
    p, q, v = params.p, params.q, params.v
    x_arr, m_arr = np.broadcast_arrays(as_float_array(x), as_float_array(m))
    px = p * x_arr
    with np.errstate(divide="ignore", invalid="ignore"):
        value = (
            gammaln(px + q)
            - gammaln(px)
            - gammaln(q)
            + q * math.log(v)
            + (px - 1.0) * np.log(m_arr)
            + px * np.log(x_arr)
            - (px + q) * np.log(v + m_arr * x_arr)
        )
    return np.asarray(value, dtype=np.float64)


def log_likelihood(
    params: GammaGammaParams, x: ArrayLike, m: ArrayLike, weights: ArrayLike | None = None
) -> float:
    """Total (weighted) log-likelihood over repeat buyers (Fader & Hardie 2013, eq. 3 summed)."""
    per_customer = log_likelihood_per_customer(params, x, m)
    if weights is None:
        return float(np.sum(per_customer))
    return float(np.sum(as_float_array(weights) * per_customer))


def log_likelihood_and_gradient(
    log_params: ArrayLike, x: ArrayLike, m: ArrayLike, weights: ArrayLike | None = None
) -> tuple[float, FloatArray]:
    """Weighted total of eq. (3) and its analytic gradient w.r.t. (ln p, ln q, ln v).

    d/dp = sum x (psi(px+q) - psi(px) + ln m + ln x - ln(v + m x))
    d/dq = sum psi(px+q) - psi(q) + ln v - ln(v + m x)
    d/dv = sum q/v - (px+q)/(v + m x)
    """
    p, q, v = (float(value) for value in np.exp(as_float_array(log_params)))
    x_arr, m_arr = (as_float_array(value).ravel() for value in (x, m))
    w = np.ones_like(x_arr) if weights is None else as_float_array(weights).ravel()
    total, grad, _ = _ll_grad_hess(p, q, v, _SpendData.build(x_arr, m_arr, w), hessian=False)
    return total, _to_log_space(np.array([p, q, v]), grad, None)[0]


@dataclass(frozen=True, slots=True)
class _SpendData:
    """The sums eq. (3) needs that do not change with the parameters, and the per-row m x.

    Gamma and digamma functions depend on x alone: they are evaluated once per distinct x
    (``x_values``, with total weight ``weight_per_x``); per row only ln(v + m x) and 1/(v + m x)
    change with the parameters."""

    mx: FloatArray
    weight: FloatArray
    weight_x: FloatArray
    x_values: FloatArray
    weight_per_x: FloatArray
    total: float
    sum_log_m: float
    sum_x_log_mx: float

    @classmethod
    def build(cls, x: FloatArray, m: FloatArray, weight: FloatArray) -> _SpendData:
        x_values, weight_per_x = _weight_per_value(x, weight)
        weight_x = weight * x
        with np.errstate(divide="ignore", invalid="ignore"):
            log_m = np.log(m)
            log_x = np.log(x)
        return cls(
            mx=m * x,
            weight=weight,
            weight_x=weight_x,
            x_values=x_values,
            weight_per_x=weight_per_x,
            total=float(np.sum(weight)),
            sum_log_m=weighted_sum(weight, log_m),
            sum_x_log_mx=weighted_sum(weight_x, log_m + log_x),
        )


def _weight_per_value(x: FloatArray, weight: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Distinct x and the total weight of each; a bincount when x are small whole numbers."""
    if x.size and float(np.min(x)) >= 0 and float(np.max(x)) < 1e6 and np.array_equal(np.floor(x), x):
        totals = np.bincount(x.astype(np.intp), weights=weight)
        present = np.flatnonzero(np.bincount(x.astype(np.intp)))
        return present.astype(np.float64), totals[present].astype(np.float64)
    values, index = np.unique(x, return_inverse=True)
    return values, np.bincount(index, weights=weight, minlength=values.size).astype(np.float64)


def _ll_grad_hess(
    p: float, q: float, v: float, data: _SpendData, hessian: bool
) -> tuple[float, FloatArray, FloatArray | None]:
    """Weighted eq. (3), its gradient and (optionally) Hessian in (p, q, v). With L = ln(v + m x):

    ln L = sum_x W_x (lnG(px+q) - lnG(px)) - N lnG(q) + N q ln v + p sum w x ln(m x)
           - sum w ln m - p sum w x L - q sum w L
    """
    xv, wv, n = data.x_values, data.weight_per_x, data.total
    px = p * xv
    with np.errstate(divide="ignore"):
        log_total = np.log(v + data.mx)
    inv_total = 1.0 / (v + data.mx)
    s_xl = weighted_sum(data.weight_x, log_total)
    s_l = weighted_sum(data.weight, log_total)
    s_xr = weighted_sum(data.weight_x, inv_total)
    s_r = weighted_sum(data.weight, inv_total)
    log_v = math.log(v)
    value = (
        weighted_sum(wv, gammaln(px + q) - gammaln(px))
        - n * float(gammaln(q))
        + n * q * log_v
        + p * data.sum_x_log_mx
        - data.sum_log_m
        - p * s_xl
        - q * s_l
    )
    dig_pxq = digamma(px + q)
    grad = np.array(
        [
            weighted_sum(wv * xv, dig_pxq - digamma(px)) + data.sum_x_log_mx - s_xl,
            weighted_sum(wv, dig_pxq) - n * float(digamma(q)) + n * log_v - s_l,
            n * q / v - p * s_xr - q * s_r,
        ]
    )
    if not hessian:
        return value, grad, None
    tri_pxq = polygamma(1, px + q)
    inv_sq = inv_total * inv_total
    pq = weighted_sum(wv * xv, tri_pxq)
    pv = -s_xr
    qv = n / v - s_r
    vv = -n * q / (v * v) + p * weighted_sum(data.weight_x, inv_sq) + q * weighted_sum(data.weight, inv_sq)
    hess = np.array(
        [
            [weighted_sum(wv * xv * xv, tri_pxq - polygamma(1, px)), pq, pv],
            [pq, weighted_sum(wv, tri_pxq) - n * float(polygamma(1, q)), qv],
            [pv, qv, vv],
        ]
    )
    return value, grad, hess


def _to_log_space(
    params: FloatArray, grad: FloatArray, hess: FloatArray | None
) -> tuple[FloatArray, FloatArray | None]:
    """Gradient and Hessian w.r.t. the log-parameters from those w.r.t. the parameters."""
    log_grad = grad * params
    if hess is None:
        return log_grad, None
    return log_grad, hess * np.outer(params, params) + np.diag(log_grad)


def fit(
    x: ArrayLike,
    m: ArrayLike,
    weights: ArrayLike | None = None,
    penalizer: float = 0.0,
    prior: LogNormalPrior | None = None,
) -> GammaGammaParams:
    """Maximum-likelihood Gamma-Gamma fit (Fader & Hardie 2013, eq. 3) on the repeat buyers, or with
    ``prior`` (log-normal, v in the data's money) the maximum a posteriori fit.

    Customers with x = 0 or m <= 0 carry no information about spend and are left out. The fit works
    over log-parameters with money rescaled so that the mean m is 1 (v is scaled back): Newton steps
    with the analytic Hessian, handing over to L-BFGS-B if a step would leave the search box.
    ``penalizer`` adds ``penalizer * sum(log-params**2)`` (rescaled units) to the mean negative
    log-likelihood; default 0. ``n_distinct`` counts the distinct x, on which the gamma functions
    are evaluated. A prior's log-density is one more term of the objective, ``prior_share`` says
    how much it contributed; without repeat buyers the fit is the prior's centre.
    """
    x_arr, m_arr = (as_float_array(value).ravel() for value in (x, m))
    w_arr = np.ones_like(x_arr) if weights is None else as_float_array(weights).ravel()
    keep = _repeat_buyers(x_arr, m_arr) & (w_arr > 0)
    if not np.any(keep):
        if prior is not None:
            p, q, v = (float(value) for value in np.exp(prior.centre))
            return GammaGammaParams(p, q, v, None, True, 0, 0, 0, "no repeat buyers: the prior's centre", 1.0)
        return GammaGammaParams(1.0, 1.0, 1.0, None, False, 0, 0, 0, "no repeat buyers with a positive value")
    x_k, m_k, w_k = x_arr[keep], m_arr[keep], w_arr[keep]
    total_weight = float(np.sum(w_k))
    scale = float(np.sum(w_k * m_k)) / total_weight
    data = _SpendData.build(x_k, m_k / scale, w_k)
    # the prior is in the data's money; theta is in the rescaled one
    to_data_units = np.array([0.0, 0.0, math.log(scale)])

    def objective(theta: FloatArray, hessian: bool) -> tuple[float, FloatArray, FloatArray | None]:
        params = np.exp(theta)
        ll, grad, hess = _ll_grad_hess(float(params[0]), float(params[1]), float(params[2]), data, hessian)
        log_grad, log_hess = _to_log_space(params, grad, hess)
        if prior is not None:
            log_prior, prior_grad = prior.log_density_and_gradient(theta + to_data_units)
            ll, log_grad = ll + log_prior, log_grad + prior_grad
            if log_hess is not None:
                log_hess = log_hess - np.diag(prior.precision)
        value = -ll / total_weight + penalizer * float(np.sum(theta * theta))
        gradient = -log_grad / total_weight + 2.0 * penalizer * theta
        if log_hess is not None:
            log_hess = -log_hess / total_weight + 2.0 * penalizer * np.eye(3)
        if not np.isfinite(value) or not np.all(np.isfinite(gradient)):
            return 1e10, np.zeros(3), None
        return value, gradient, log_hess

    theta0 = _pilot_start(x_k, m_k / scale, w_k)
    if prior is not None:
        # a few repeat buyers may leave the pilot far off: start from the prior's centre when the
        # posterior is higher there
        centre = np.clip(np.asarray(prior.centre) - to_data_units, -10, 10)
        if objective(centre, False)[0] < objective(theta0, False)[0]:
            theta0 = centre
    fitted = minimise_in_box(objective, theta0, LOG_PARAM_BOUND)
    theta, iterations, message, final_grad = fitted.theta, fitted.iterations, fitted.message, fitted.gradient
    p, q, v_scaled = (float(value) for value in np.exp(theta))
    # the density of m is that of m / scale divided by scale
    ll = _ll_grad_hess(p, q, v_scaled, data, hessian=False)[0] - total_weight * math.log(scale)
    inside = bool(np.all(np.abs(theta) < LOG_PARAM_BOUND - 1e-6))
    converged = bool(inside and np.isfinite(ll) and float(np.max(np.abs(final_grad))) < GRADIENT_TOLERANCE)
    share = None
    if prior is not None:
        # the data's observed information: minus the likelihood's Hessian in the log-parameters
        params = np.exp(theta)
        _, grad, hess = _ll_grad_hess(p, q, v_scaled, data, hessian=True)
        log_hess = _to_log_space(params, grad, hess)[1]
        assert log_hess is not None
        information = -log_hess
        share = prior_share(information, prior)
    return GammaGammaParams(
        p=p,
        q=q,
        v=v_scaled * scale,
        log_likelihood=ll if np.isfinite(ll) else None,
        converged=converged,
        n_customers=int(round(total_weight)),
        n_distinct=int(data.x_values.size),
        iterations=iterations,
        message=message,
        prior_share=share,
    )


_PILOT_ROWS = 5_000


def _pilot_start(x: FloatArray, m: FloatArray, weight: FloatArray) -> FloatArray:
    """Starting log-parameters: zeros, or for many customers the fit to an evenly spaced sample of
    a few thousand of them, close to the full optimum, so the full data need only the last,
    quadratically converging Newton steps."""
    if x.size < 4 * _PILOT_ROWS:
        return np.zeros(3)
    pick = slice(None, None, x.size // _PILOT_ROWS)
    data = _SpendData.build(x[pick], m[pick], weight[pick])

    def objective(theta: FloatArray, hessian: bool) -> tuple[float, FloatArray, FloatArray | None]:
        params = np.exp(theta)
        ll, grad, hess = _ll_grad_hess(float(params[0]), float(params[1]), float(params[2]), data, hessian)
        log_grad, log_hess = _to_log_space(params, grad, hess)
        return -ll / data.total, -log_grad / data.total, None if log_hess is None else -log_hess / data.total

    pilot = newton_minimise(objective, np.zeros(3), LOG_PARAM_BOUND, gtol=1e-6)
    return pilot.theta if pilot.success else np.zeros(3)


def conditional_expected_average_profit(params: GammaGammaParams, x: ArrayLike, m: ArrayLike) -> FloatArray:
    """E[Z | p, q, v, m, x]: expected value of the customer's future orders (Fader & Hardie 2013, eq. 5).

    E = p (v + x m) / (p x + q - 1)
      = (q - 1)/(p x + q - 1) * p v/(q - 1) + p x/(p x + q - 1) * m,
    a weighted mean of the population mean p v/(q - 1) and the customer's own mean m. For x = 0 (or
    a customer whose m is not positive) it is the population mean. Requires q > 1.
    """
    if params.q <= 1.0:
        raise ValueError("conditional expected average profit needs q > 1")
    x_arr, m_arr = np.broadcast_arrays(as_float_array(x), as_float_array(m))
    informative = _repeat_buyers(x_arr, m_arr)
    x_used = np.where(informative, x_arr, 0.0)
    m_used = np.where(informative, m_arr, 0.0)
    value = params.p * (params.v + x_used * m_used) / (params.p * x_used + params.q - 1.0)
    return np.asarray(value, dtype=np.float64)
