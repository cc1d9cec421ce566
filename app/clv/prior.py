"""Weakly-informative priors for the BG/NBD and Gamma-Gamma fits (maximum a posteriori), and how
much a prior contributed to a fit. The reasoning is in docs/predictions.md.

Each prior is independent normal on the log of each parameter. Its log-density and gradient are
added as one term to a fit's objective (``bgnbd.fit(..., prior=)``, ``gamma_gamma.fit(..., prior=)``).
A fixed prior is worth a fixed number of pseudo-observations while the likelihood grows with every
customer, so the prior's weight falls away as a shop's data grow (a shop of millions of customers
gets its maximum-likelihood fit to within 1e-3 relative; tests/clv/test_prior.py).

Centres: the published CDNOW fits, the one retail sample whose data the project ships and whose
fits its tests reproduce (tests/data/cdnow/SOURCES.md):
- BG/NBD, Fader, Hardie & Lee (2005), "'Counting Your Customers' the Easy Way", Marketing Science
  24(2):275-284, Table 1: r = 0.243, alpha = 4.414 weeks = 30.90 days, a = 0.793, b = 2.426.
- Gamma-Gamma, Fader & Hardie (2013), "The Gamma-Gamma Model of Monetary Value" (note 025):
  p = 6.25, q = 3.74, gamma = 15.44 dollars; the population mean order value p gamma / (q - 1)
  = 35.2 dollars, close to the mean of the 946 CDNOW repeat buyers' average repeat order values
  (35.08 dollars, which the model's E[Z] estimates). v is money, so its prior is stated relative to
  the shop's own such mean: v / mean value = 15.44 / 35.08, i.e. ln = -0.82.
Spreads (standard deviations of the logs) are wide on purpose rather than estimated from the one
published fit the project can check: e^1 = a factor of 2.7 either way at one standard deviation for
the shape parameters, so two cover buyers far more uniform (r = 2) or more varied (r = 0.03) than
CDNOW's; the time scale alpha, which varies most between shops (a coffee subscription vs a
furniture store), gets 2 (a factor of 7.4).
An operator may replace these by a prior estimated from the deployment's own larger shops
(``estimate_prior``; docs/privacy.md).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from app.clv._numeric import FloatArray, as_float_array

BUILT_IN = "built-in"
DEPLOYMENT = "deployment"

# a prior whose share of the fit's precision is below this is reported as no prior at all
NEGLIGIBLE_SHARE = 0.01
# the deployment prior: at least this many shops, each with this many repeat buyers and fitted with
# the prior's share below the maximum (their parameters are their own data's, not the prior's)
MIN_SHOPS_FOR_DEPLOYMENT_PRIOR = 10
MIN_REPEAT_BUYERS_OF_A_PRIOR_SHOP = 500
MAX_SHARE_OF_A_PRIOR_SHOP = 0.05
# a deployment prior is never narrower than this (logs), so one deployment's shops cannot pin a
# new shop to their average
MIN_DEPLOYMENT_SPREAD = 0.5


@dataclass(frozen=True, slots=True)
class LogNormalPrior:
    """ln(theta_i) ~ Normal(centre_i, spread_i), independently; ``names`` as the model's parameters."""

    names: tuple[str, ...]
    centre: tuple[float, ...]
    spread: tuple[float, ...]
    source: str = BUILT_IN

    @property
    def precision(self) -> FloatArray:
        return 1.0 / np.square(np.asarray(self.spread, dtype=np.float64))

    def log_density_and_gradient(self, log_params: ArrayLike) -> tuple[float, FloatArray]:
        """ln p(theta) up to its constant, and its gradient w.r.t. the log-parameters."""
        deviation = as_float_array(log_params) - np.asarray(self.centre)
        z = deviation * self.precision
        return float(-0.5 * np.sum(deviation * z)), -z

    def shifted(self, shift: Sequence[float]) -> LogNormalPrior:
        """The same prior with ln-centres moved by ``shift`` (a change of unit of some parameters)."""
        centre = tuple(float(c + s) for c, s in zip(self.centre, shift, strict=True))
        return LogNormalPrior(self.names, centre, self.spread, self.source)


PURCHASES = LogNormalPrior(
    names=("r", "alpha", "a", "b"),
    centre=(math.log(0.243), math.log(4.414 * 7.0), math.log(0.793), math.log(2.426)),
    spread=(1.0, 2.0, 1.0, 1.0),
)
"""BG/NBD prior, alpha in days."""

SPEND = LogNormalPrior(
    names=("p", "q", "v"),
    centre=(math.log(6.25), math.log(3.74), math.log(15.44 / 35.08)),
    spread=(1.0, 0.75, 1.0),
)
"""Gamma-Gamma prior, v per unit of the shop's mean repeat order value (``spend_prior``). q's
spread is narrower: q <= 1 has no mean order value, and CDNOW's 3.74 is 2.3 spreads above it."""


@dataclass(frozen=True, slots=True)
class ShopPriors:
    """The two priors a shop's fit uses: BG/NBD in days, Gamma-Gamma relative to the mean value."""

    purchases: LogNormalPrior = PURCHASES
    spend: LogNormalPrior = SPEND

    @property
    def source(self) -> str:
        return self.purchases.source


BUILT_IN_PRIORS = ShopPriors()


def purchase_prior(priors: ShopPriors, days_per_unit: float = 1.0) -> LogNormalPrior:
    """The BG/NBD prior for data whose time unit is ``days_per_unit`` days (alpha is a time)."""
    return priors.purchases.shifted((0.0, -math.log(days_per_unit), 0.0, 0.0))


def spend_prior(priors: ShopPriors, mean_value: float) -> LogNormalPrior:
    """The Gamma-Gamma prior in money, for a shop whose mean repeat order value is ``mean_value``."""
    return priors.spend.shifted((0.0, 0.0, math.log(mean_value)))


def mean_repeat_value(x: ArrayLike, m: ArrayLike) -> float:
    """The mean over repeat buyers of their average repeat order value m (what the Gamma-Gamma
    population mean p v / (q - 1) estimates), 0 without any."""
    x_arr, m_arr = as_float_array(x).ravel(), as_float_array(m).ravel()
    keep = (x_arr >= 1) & np.isfinite(m_arr) & (m_arr > 0)
    return float(np.mean(m_arr[keep])) if np.any(keep) else 0.0


def prior_share(information: ArrayLike, prior: LogNormalPrior) -> float:
    """How much the prior contributed to a MAP fit, in [0, 1]: the prior's share of the posterior
    precision, tr(P (I + P)^-1) / k with P the prior's precision and I the data's observed
    information. For one parameter this is the weight the normal approximation puts on the prior's
    centre (the posterior mean is a precision-weighted average of prior centre and data), so 0.5
    means the fit leans on the prior as much as on the shop's own data."""
    info = as_float_array(information)
    # where the likelihood curves the wrong way at the MAP (a direction the data do not identify),
    # the data contribute nothing there rather than negative information
    eigenvalues, vectors = np.linalg.eigh(0.5 * (info + info.T))
    info = (vectors * np.maximum(eigenvalues, 0.0)) @ vectors.T
    precision = np.diag(prior.precision)
    posterior = info + precision
    try:
        share = float(np.trace(np.linalg.solve(posterior, precision))) / precision.shape[0]
    except np.linalg.LinAlgError:
        return 1.0
    return float(min(1.0, max(0.0, share))) if math.isfinite(share) else 1.0


def estimate_prior(
    log_params: ArrayLike, base: LogNormalPrior, min_spread: float = MIN_DEPLOYMENT_SPREAD
) -> LogNormalPrior:
    """A prior from the log-parameters of other shops' fits (one row per shop): centre = their mean,
    spread = their standard deviation, never below ``min_spread``. Rows with a non-finite value are
    left out. Uses parameters only; fewer than ``MIN_SHOPS_FOR_DEPLOYMENT_PRIOR`` rows give ``base``."""
    rows = as_float_array(log_params).reshape(-1, len(base.names))
    rows = rows[np.all(np.isfinite(rows), axis=1)]
    if rows.shape[0] < MIN_SHOPS_FOR_DEPLOYMENT_PRIOR:
        return base
    centre = tuple(float(c) for c in rows.mean(axis=0))
    spread = tuple(float(max(s, min_spread)) for s in rows.std(axis=0, ddof=1))
    return LogNormalPrior(base.names, centre, spread, DEPLOYMENT)


def deployment_priors(fits: Iterable[Mapping[str, float | None]]) -> ShopPriors:
    """Priors estimated from other shops' fitted parameters (keys r, alpha, a, b, p, q, v and
    purchases_prior_share, one mapping per shop; alpha per day), each model on its own: fits where
    the prior contributed ``MAX_SHARE_OF_A_PRIOR_SHOP`` or more are left out, and a model with fewer
    than ``MIN_SHOPS_FOR_DEPLOYMENT_PRIOR`` shops keeps the built-in prior. Gamma-Gamma's v enters
    relative to the shop's mean order value as the model estimates it, v / (p v / (q - 1)) =
    (q - 1) / p, so no shop's money figures are used."""
    purchases: list[list[float]] = []
    spend: list[list[float]] = []
    for fit in fits:
        share = fit.get("purchases_prior_share")
        if share is not None and share >= MAX_SHARE_OF_A_PRIOR_SHOP:
            continue
        bg = [fit.get(k) for k in PURCHASES.names]
        if all(v is not None and v > 0 for v in bg):
            purchases.append([math.log(float(v)) for v in bg if v is not None])
        p, q = fit.get("p"), fit.get("q")
        if p is not None and q is not None and p > 0 and q > 1:
            spend.append([math.log(p), math.log(q), math.log((q - 1) / p)])
    return ShopPriors(estimate_prior(purchases, PURCHASES), estimate_prior(spend, SPEND))
