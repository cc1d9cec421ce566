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
from scipy.optimize import minimize
from scipy.special import digamma, gammaln

from app.clv._numeric import FloatArray, as_float_array, collapse_rows, weighted_sum
from app.clv.prior import LogNormalPrior, observed_information, prior_share

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
    px = p * x_arr
    log_m = np.log(m_arr)
    log_x = np.log(x_arr)
    log_total = np.log(v + m_arr * x_arr)
    dig_pxq = digamma(px + q)
    total = float(
        weighted_sum(
            w,
            gammaln(px + q)
            - gammaln(px)
            - gammaln(q)
            + q * math.log(v)
            + (px - 1.0) * log_m
            + px * log_x
            - (px + q) * log_total,
        )
    )
    grad_p = float(weighted_sum(w, x_arr * (dig_pxq - digamma(px) + log_m + log_x - log_total)))
    grad_q = float(weighted_sum(w, dig_pxq - digamma(q) + math.log(v) - log_total))
    grad_v = float(weighted_sum(w, q / v - (px + q) / (v + m_arr * x_arr)))
    return total, np.array([grad_p * p, grad_q * q, grad_v * v], dtype=np.float64)


def fit(
    x: ArrayLike,
    m: ArrayLike,
    weights: ArrayLike | None = None,
    penalizer: float = 0.0,
    prior: LogNormalPrior | None = None,
) -> GammaGammaParams:
    """Maximum-likelihood Gamma-Gamma fit (Fader & Hardie 2013, eq. 3) on the repeat buyers, or with
    ``prior`` (log-normal, v in the data's money) the maximum a posteriori fit.

    Customers with x = 0 or m <= 0 carry no information about spend and are left out. The distinct
    (x, m) pairs are fitted with their counts as weights, over log-parameters, with money rescaled so
    that the mean m is 1 (v is scaled back). ``penalizer`` adds ``penalizer * sum(log-params**2)``
    (rescaled units) to the mean negative log-likelihood; default 0. A prior's log-density is one
    more term of the objective, ``prior_share`` says how much it contributed; without repeat buyers
    the fit is the prior's centre.
    """
    x_arr, m_arr = (as_float_array(value).ravel() for value in (x, m))
    w_arr = np.ones_like(x_arr) if weights is None else as_float_array(weights).ravel()
    keep = _repeat_buyers(x_arr, m_arr) & (w_arr > 0)
    if not np.any(keep):
        if prior is not None:
            p, q, v = (float(value) for value in np.exp(prior.centre))
            return GammaGammaParams(p, q, v, None, True, 0, 0, 0, "no repeat buyers: the prior's centre", 1.0)
        return GammaGammaParams(1.0, 1.0, 1.0, None, False, 0, 0, 0, "no repeat buyers with a positive value")
    (x_u, m_u), _, inverse = collapse_rows(x_arr[keep], m_arr[keep])
    counts = np.bincount(inverse, weights=w_arr[keep], minlength=x_u.size)
    total_weight = float(np.sum(counts))
    scale = float(np.average(m_u, weights=counts))
    m_scaled = m_u / scale
    # the prior is in the data's money; theta is in the rescaled one
    to_data_units = np.array([0.0, 0.0, math.log(scale)])

    def objective(theta: FloatArray) -> tuple[float, FloatArray]:
        ll, grad = log_likelihood_and_gradient(theta, x_u, m_scaled, counts)
        if prior is not None:
            log_prior, prior_grad = prior.log_density_and_gradient(theta + to_data_units)
            ll, grad = ll + log_prior, grad + prior_grad
        value = -ll / total_weight + penalizer * float(weighted_sum(theta, theta))
        gradient = -grad / total_weight + 2.0 * penalizer * theta
        if not np.isfinite(value) or not np.all(np.isfinite(gradient)):
            return 1e10, np.zeros(3)
        return value, gradient

    theta0 = np.zeros(3) if prior is None else np.clip(np.asarray(prior.centre) - to_data_units, -10, 10)
    result = minimize(
        objective,
        theta0,
        jac=True,
        method="L-BFGS-B",
        bounds=[(-LOG_PARAM_BOUND, LOG_PARAM_BOUND)] * 3,
        options={"maxiter": 2000, "ftol": 1e-15, "gtol": 1e-10, "maxcor": 20},
    )
    theta = np.asarray(result.x, dtype=np.float64)
    _, final_grad = objective(theta)
    p, q, v_scaled = (float(value) for value in np.exp(theta))
    params = GammaGammaParams(p, q, v_scaled * scale)
    ll = log_likelihood(params, x_u, m_u, counts)
    inside = bool(np.all(np.abs(theta) < LOG_PARAM_BOUND - 1e-6))
    converged = bool(inside and np.isfinite(ll) and float(np.max(np.abs(final_grad))) < GRADIENT_TOLERANCE)
    share = None
    if prior is not None:
        information = observed_information(
            lambda t: log_likelihood_and_gradient(t, x_u, m_scaled, counts)[1], theta
        )
        share = prior_share(information, prior)
    return GammaGammaParams(
        p=p,
        q=q,
        v=v_scaled * scale,
        log_likelihood=ll if np.isfinite(ll) else None,
        converged=converged,
        n_customers=int(round(total_weight)),
        n_distinct=int(x_u.size),
        iterations=int(result.nit),
        message=str(result.message),
        prior_share=share,
    )


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
