"""Per-shop fitting that fails soft, and the CLV predictions built on it."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.clv import bgnbd, clv, gamma_gamma, simulate
from app.clv.bgnbd import BetaGeoParams
from app.clv.gamma_gamma import GammaGammaParams

BG = BetaGeoParams(r=0.243, alpha=4.414, a=0.793, b=2.426)
GG = GammaGammaParams(p=6.25, q=3.74, v=15.44)


def _all_finite(predictions: clv.CustomerPredictions) -> bool:
    return all(
        bool(np.all(np.isfinite(getattr(predictions, name))))
        for name in (
            "predicted_orders",
            "probability_alive",
            "churn_risk",
            "expected_order_value",
            "predicted_clv",
            "time_to_next_order",
        )
    )


def test_predicted_clv_is_expected_orders_times_expected_order_value():
    x, t_x, T, m = (
        np.array([0, 2, 5]),
        np.array([0, 30.43, 20]),
        np.array([38.86, 38.86, 30]),
        np.array([0, 22.35, 40]),
    )
    expected = bgnbd.expected_purchases(BG, 52, x, t_x, T) * gamma_gamma.conditional_expected_average_profit(
        GG, x, m
    )
    np.testing.assert_allclose(clv.predicted_clv(BG, GG, x, t_x, T, m, horizon=52), expected, rtol=1e-12)


def test_discounting_lowers_clv_and_zero_rate_changes_nothing():
    x, t_x, T, m = np.array([1, 4]), np.array([10.0, 30.0]), np.array([38.0, 38.0]), np.array([20.0, 30.0])
    plain = clv.predicted_clv(BG, GG, x, t_x, T, m, horizon=52)
    sliced = clv.discounted_expected_purchases(BG, 52, x, t_x, T, discount_rate=1e-15)
    np.testing.assert_allclose(sliced, bgnbd.expected_purchases(BG, 52, x, t_x, T), rtol=1e-9)
    assert np.all(clv.predicted_clv(BG, GG, x, t_x, T, m, horizon=52, discount_rate=0.01) < plain)


def test_too_few_repeat_buyers_for_maximum_likelihood_gives_a_reason_and_no_model():
    x = np.r_[np.ones(7), np.zeros(100)]
    t_x = np.r_[np.full(7, 5.0), np.zeros(100)]
    models = clv.fit_shop_models(
        x, t_x, np.full(107, 30.0), np.r_[np.full(7, 20.0), np.zeros(100)], priors=None
    )
    assert models.purchases is None and models.spend is None and not models.usable
    assert models.reasons == ("only 7 customers ordered twice or more; at least 20 are needed",)


def test_no_customers_at_all_gives_a_reason():
    models = clv.fit_shop_models([], [], [], [])
    assert not models.usable and models.reasons


def test_cdnow_fits_both_models(cdnow_summary_with_spend):
    data = cdnow_summary_with_spend
    models = clv.fit_shop_models(data.x, data.t_x, data.T, data.m)
    assert models.usable and models.spend is not None and models.reasons == ()
    assert models.purchases is not None and round(models.purchases.r, 3) == 0.243
    predictions = clv.score_customers(models, data.x, data.t_x, data.T, data.m, horizon=52)
    assert _all_finite(predictions)
    np.testing.assert_allclose(predictions.churn_risk, 1 - predictions.probability_alive)


def test_repeat_buyers_without_order_values_fall_back_to_observed_averages():
    rng = np.random.default_rng(3)
    T = rng.uniform(10, 50, 2000)
    x, t_x = simulate.simulate_bgnbd(BetaGeoParams(0.5, 8.0, 0.8, 2.5), T, rng)
    models = clv.fit_shop_models(x, t_x, T, np.zeros_like(x))
    assert models.purchases is not None and models.spend is None
    assert "positive order value" in models.reasons[0]
    assert _all_finite(clv.score_customers(models, x, t_x, T, np.zeros_like(x), horizon=52))


@pytest.mark.parametrize(
    "history",
    [
        # everyone bought again on the same days: no spread to learn from
        (np.full(50, 3.0), np.full(50, 10.0), np.full(50, 10.0)),
        # every customer bought on every day of their history, no one ever lapsed
        (np.arange(1, 51, dtype=float), np.arange(1, 51, dtype=float), np.arange(1, 51, dtype=float)),
        # repeat purchases only at time zero of long histories
        (np.r_[np.full(30, 1.0), np.zeros(30)], np.r_[np.full(30, 1e-9), np.zeros(30)], np.full(60, 5000.0)),
    ],
)
def test_degenerate_histories_never_give_nan(history):
    x, t_x, T = history
    m = np.where(x > 0, 25.0, 0.0)
    models = clv.fit_shop_models(x, t_x, T, m)
    if models.usable:
        assert _all_finite(clv.score_customers(models, x, t_x, T, m, horizon=365))
    else:
        assert models.reasons


def test_inconsistent_rows_are_excluded_and_scored_as_zero(cdnow_summary_with_spend):
    data = cdnow_summary_with_spend
    x, t_x, T, m = (
        np.r_[v, bad] for v, bad in zip((data.x, data.t_x, data.T, data.m), (np.nan, 5, -1, 3), strict=True)
    )
    models = clv.fit_shop_models(x, t_x, T, m)
    assert models.n_excluded == 1 and models.usable
    predictions = clv.score_customers(models, x, t_x, T, m, horizon=52)
    assert _all_finite(predictions) and predictions.predicted_clv[-1] == 0.0


@settings(max_examples=40, deadline=None)
@given(
    x=st.integers(0, 500),
    share=st.floats(0.0, 1.0),
    T=st.floats(0.0, 5000.0),
    m=st.floats(0.0, 1e6),
    horizon=st.floats(0.0, 5000.0),
)
def test_scores_are_finite_and_in_range_for_extreme_customers(x, share, T, m, horizon):
    models = clv.ShopModels(BG, GG, (), 1, 1, 0, 30.0)
    t_x = 0.0 if x == 0 else share * T
    p = clv.score_customers(models, [x], [t_x], [T], [m], horizon=horizon)
    assert _all_finite(p)
    assert 0 <= p.probability_alive[0] <= 1 and p.predicted_orders[0] >= 0 and p.predicted_clv[0] >= 0


def _buyers_who_never_stop(seed: int, customers: int = 40) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Customers buying as Poisson processes (rates ~ Gamma) who never drop out: BG/NBD's a, b run
    to the edge where the dropout probability is ~0."""
    rng = np.random.default_rng(seed)
    x, t_x, T = np.zeros(customers), np.zeros(customers), np.zeros(customers)
    for i in range(customers):
        T[i] = np.floor(rng.uniform(100, 400))
        rate, t, last, n = rng.gamma(4, 1 / 200), 0.0, 0.0, 0
        while (t := t + rng.exponential(1 / rate)) <= T[i]:
            n, last = n + 1, t
        x[i], t_x[i] = n, np.floor(last) if n else 0.0
    return x, t_x, T


@pytest.mark.parametrize("seed", range(6))
def test_the_no_dropout_limit_of_large_a_b_is_a_usable_model(seed: int) -> None:
    """Maximum likelihood (no prior: a prior holds a and b away from the edge)."""
    x, t_x, T = _buyers_who_never_stop(seed)
    models = clv.fit_shop_models(x, t_x, T, np.where(x > 0, 40.0 + x, 0.0), priors=None)
    assert models.usable, models.reasons
    bg = models.purchases
    assert bg is not None and bg.converged
    assert bg.a / (bg.a + bg.b) < 1e-2  # dropout ~ 0: a, b grew very large (or a vanished)
    predictions = clv.score_customers(models, x, t_x, T, np.where(x > 0, 40.0 + x, 0.0), 365.0)
    assert _all_finite(predictions)
    assert float(np.median(predictions.probability_alive)) > 0.9


@pytest.mark.parametrize(
    ("a", "b"),
    [(1.5e-6, 8.3e4), (3e-7, 1.6e5), (1e4, 1e9), (1e4, 3e6)],
    ids=["a-tiny", "a-tinier", "b-huge", "both-large"],
)
def test_expected_purchases_at_the_no_dropout_limit_are_the_gamma_poisson_expectation(
    a: float, b: float
) -> None:
    """As a, b reach the no-dropout edge the dropout probability is a point mass at p = a / (a + b + x)
    (0 for a tiny a), and an alive customer with rate ~ Gamma(r + x, alpha + T) makes
    (1 - (1 + p u)^-(r + x)) / p purchases in t, u = t / (alpha + T): (r + x) u when p = 0
    (FHL eq. 10 at that edge)."""
    params = BetaGeoParams(r=3.0, alpha=180.0, a=a, b=b)
    x, t_x, T = np.array([0.0, 3.0, 10.0]), np.array([0.0, 50.0, 300.0]), np.array([100.0, 200.0, 320.0])
    u, big_r = 365.0 / (params.alpha + T), params.r + x
    p = a / (a + b + x) if a > 1 else np.zeros(3)
    if_alive = np.where(p > 0, -np.expm1(-big_r * np.log1p(p * u)) / np.where(p > 0, p, 1.0), big_r * u)
    expected = bgnbd.probability_alive(params, x, t_x, T) * if_alive
    got = bgnbd.expected_purchases(params, 365.0, x, t_x, T)
    assert got == pytest.approx(expected, rel=2e-3)
