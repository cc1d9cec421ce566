"""The MAP fits (app/clv/prior.py): the posterior's gradient, its limits (a large shop gets the
maximum-likelihood fit, a shop without data the prior's centre), the prior's share, the unit of time
changing nothing, and the prior estimated from other shops' parameters."""

from __future__ import annotations

import math

import numpy as np
import pytest

from app.clv import bgnbd, clv, gamma_gamma, prior
from app.clv.prior import BUILT_IN_PRIORS, purchase_prior, spend_prior

WEEK = 7.0


def _fd_gradient(f, theta: np.ndarray, step: float = 1e-6) -> np.ndarray:
    out = np.empty(theta.size)
    for i in range(theta.size):
        e = np.zeros(theta.size)
        e[i] = step
        out[i] = (f(theta + e) - f(theta - e)) / (2 * step)
    return out


def _subsample(data, n: int, seed: int = 5):
    idx = np.random.default_rng(seed).choice(data.x.size, n, replace=False)
    return data.x[idx], data.t_x[idx], data.T[idx], data.m[idx]


def test_the_bgnbd_posterior_gradient_matches_finite_differences(cdnow_summary):
    data = cdnow_summary
    bg_prior = purchase_prior(BUILT_IN_PRIORS, WEEK)
    theta = np.log([0.4, 6.0, 1.1, 3.0])

    def posterior(t: np.ndarray) -> float:
        r, alpha, a, b = np.exp(t)
        params = bgnbd.BetaGeoParams(r, alpha, a, b)
        return (
            bgnbd.log_likelihood(params, data.x, data.t_x, data.T) + bg_prior.log_density_and_gradient(t)[0]
        )

    ll, grad = bgnbd.log_likelihood_and_gradient(theta, data.x, data.t_x, data.T)
    value, prior_grad = bg_prior.log_density_and_gradient(theta)
    assert ll + value == pytest.approx(posterior(theta), rel=1e-12)
    np.testing.assert_allclose(grad + prior_grad, _fd_gradient(posterior, theta), rtol=1e-5)


def test_the_gamma_gamma_posterior_gradient_matches_finite_differences(cdnow_summary_with_spend):
    data = cdnow_summary_with_spend
    buyers = data.x > 0
    x, m = data.x[buyers], data.m[buyers]
    gg_prior = spend_prior(BUILT_IN_PRIORS, prior.mean_repeat_value(x, m))
    theta = np.log([5.0, 3.0, 20.0])

    def posterior(t: np.ndarray) -> float:
        p, q, v = np.exp(t)
        params = gamma_gamma.GammaGammaParams(p, q, v)
        return gamma_gamma.log_likelihood(params, x, m) + gg_prior.log_density_and_gradient(t)[0]

    ll, grad = gamma_gamma.log_likelihood_and_gradient(theta, x, m)
    value, prior_grad = gg_prior.log_density_and_gradient(theta)
    assert ll + value == pytest.approx(posterior(theta), rel=1e-12)
    np.testing.assert_allclose(grad + prior_grad, _fd_gradient(posterior, theta), rtol=1e-5)


def _relative(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a / b - 1)))


def test_a_large_shop_gets_its_maximum_likelihood_fit(cdnow_summary_with_spend):
    """CDNOW's 2,357 customers, each counted 1,000 times: 2.4 million customers with the same MLE;
    the priors moved one to two spreads off CDNOW's fit, so the MAP does not start at the MLE."""
    data = cdnow_summary_with_spend
    weights = np.full(data.x.size, 1000.0)
    bg_prior = purchase_prior(BUILT_IN_PRIORS, WEEK).shifted((1.5, -2.0, 1.0, -1.0))
    mle = bgnbd.fit(data.x, data.t_x, data.T, weights)
    map_fit = bgnbd.fit(data.x, data.t_x, data.T, weights, prior=bg_prior)
    assert map_fit.converged and mle.converged
    assert _relative(map_fit.log_params, mle.log_params) < 1e-3
    assert _relative(np.exp(map_fit.log_params), np.exp(mle.log_params)) < 1e-3
    assert map_fit.prior_share is not None and map_fit.prior_share < 1e-3

    buyers = data.x > 0
    x, m, w = data.x[buyers], data.m[buyers], weights[buyers]
    gg_prior = spend_prior(BUILT_IN_PRIORS, prior.mean_repeat_value(x, m)).shifted((-1.0, 0.75, 1.0))
    gg_mle = gamma_gamma.fit(x, m, w)
    gg_map = gamma_gamma.fit(x, m, w, prior=gg_prior)
    assert _relative(np.exp(gg_map.log_params), np.exp(gg_mle.log_params)) < 1e-3
    assert gg_map.prior_share is not None and gg_map.prior_share < 1e-3


def test_without_data_the_fit_is_the_prior_centre(cdnow_summary_with_spend):
    data = cdnow_summary_with_spend
    bg_prior = purchase_prior(BUILT_IN_PRIORS, WEEK)
    empty = bgnbd.fit([], [], [], prior=bg_prior)
    np.testing.assert_allclose(empty.log_params, bg_prior.centre, rtol=1e-12)
    assert empty.converged and empty.prior_share == 1.0
    # and the limit: the same customers weighing almost nothing
    faint = bgnbd.fit(data.x, data.t_x, data.T, np.full(data.x.size, 1e-7), prior=bg_prior)
    np.testing.assert_allclose(faint.log_params, bg_prior.centre, atol=1e-3)
    assert faint.prior_share is not None and faint.prior_share > 0.999

    gg_prior = spend_prior(BUILT_IN_PRIORS, 40.0)
    gg_empty = gamma_gamma.fit([0, 0], [0.0, 0.0], prior=gg_prior)
    np.testing.assert_allclose(gg_empty.log_params, gg_prior.centre, rtol=1e-12)
    assert gg_empty.converged and gg_empty.usable


def test_the_prior_share_falls_as_the_shop_grows(cdnow_summary):
    data = cdnow_summary
    bg_prior = purchase_prior(BUILT_IN_PRIORS, WEEK)
    shares = []
    for n in (50, 400, data.x.size):
        idx = np.random.default_rng(2).choice(data.x.size, n, replace=False)
        fitted = bgnbd.fit(data.x[idx], data.t_x[idx], data.T[idx], prior=bg_prior)
        assert fitted.prior_share is not None
        shares.append(fitted.prior_share)
    assert 1 > shares[0] > shares[1] > shares[2] > 0


def test_the_unit_of_time_changes_nothing(cdnow_summary_with_spend):
    x, t_x, T, m = _subsample(cdnow_summary_with_spend, 150)
    in_weeks = clv.fit_shop_models(x, t_x, T, m, min_repeat_buyers=0, days_per_unit=WEEK)
    in_days = clv.fit_shop_models(x, t_x * WEEK, T * WEEK, m, min_repeat_buyers=0)
    assert in_weeks.purchases is not None and in_days.purchases is not None
    weeks, days = in_weeks.purchases, in_days.purchases
    np.testing.assert_allclose(
        [days.r, days.alpha, days.a, days.b], [weeks.r, weeks.alpha * WEEK, weeks.a, weeks.b], rtol=1e-4
    )
    assert days.prior_share == pytest.approx(weeks.prior_share, rel=1e-3)


def test_a_tiny_shop_still_gets_a_forecast_with_the_prior():
    """Three customers, one of whom came back: no maximum-likelihood fit, but a MAP one."""
    x, t_x, T, m = (
        np.array([1.0, 0, 0]),
        np.array([40.0, 0, 0]),
        np.array([200.0, 90, 30]),
        np.array([25.0, 0, 0]),
    )
    models = clv.fit_shop_models(x, t_x, T, m, min_repeat_buyers=0)
    assert models.usable and models.spend is not None and models.method == "model_with_prior"
    assert models.prior_share is not None and models.prior_share > 0.5
    predictions = clv.score_customers(models, x, t_x, T, m, horizon=365.0)
    assert np.all(np.isfinite(predictions.predicted_clv)) and np.all(predictions.predicted_orders > 0)


def _fit_row(r: float, alpha: float, a: float, b: float, p: float, q: float, share: float | None) -> dict:
    return {"r": r, "alpha": alpha, "a": a, "b": b, "p": p, "q": q, "v": 10.0, "purchases_prior_share": share}


def test_the_deployment_prior_is_estimated_from_other_shops_parameters():
    rng = np.random.default_rng(8)
    rows = [
        _fit_row(*np.exp(rng.normal(np.log([0.8, 10.0, 2.0, 5.0, 4.0, 6.0]), 0.8)), share=0.01)
        for _ in range(40)
    ]
    # a shop whose fit leaned on its prior tells nothing about shops: left out
    rows.append(_fit_row(1e3, 1e3, 1e3, 1e3, 1e3, 1e3, share=0.3))
    priors = prior.deployment_priors(rows)
    assert priors.source == prior.DEPLOYMENT and priors.spend.source == prior.DEPLOYMENT
    logs = np.log([[row[k] for k in ("r", "alpha", "a", "b")] for row in rows[:40]])
    np.testing.assert_allclose(priors.purchases.centre, logs.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(priors.purchases.spread, logs.std(axis=0, ddof=1), rtol=1e-12)
    q, p = np.array([row["q"] for row in rows[:40]]), np.array([row["p"] for row in rows[:40]])
    assert priors.spend.centre[2] == pytest.approx(float(np.mean(np.log((q - 1) / p))))


def test_too_few_larger_shops_keep_the_built_in_prior_and_spreads_have_a_floor():
    rows = [
        _fit_row(0.5, 20.0, 1.0, 3.0, 5.0, 4.0, None) for _ in range(prior.MIN_SHOPS_FOR_DEPLOYMENT_PRIOR)
    ]
    assert prior.deployment_priors(rows[:-1]) == BUILT_IN_PRIORS
    identical = prior.deployment_priors(rows)
    assert identical.purchases.spread == (prior.MIN_DEPLOYMENT_SPREAD,) * 4
    assert identical.purchases.centre == pytest.approx(tuple(math.log(v) for v in (0.5, 20.0, 1.0, 3.0)))
