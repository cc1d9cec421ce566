"""BG/NBD (Fader, Hardie & Lee 2005): published CDNOW numbers, closed forms and invariants."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.integrate import quad
from scipy.special import betaln, hyp2f1, log_expit

from app.clv import bgnbd, simulate
from app.clv.bgnbd import BetaGeoParams

PUBLISHED = BetaGeoParams(r=0.243, alpha=4.414, a=0.793, b=2.426)

positive = st.floats(min_value=0.05, max_value=20.0)
params_strategy = st.builds(
    BetaGeoParams,
    r=positive,
    alpha=st.floats(min_value=0.1, max_value=200.0),
    a=positive,
    b=positive,
)


@st.composite
def customers(draw: st.DrawFn, max_x: int = 500, max_T: float = 5000.0) -> tuple[float, float, float]:
    T = draw(st.floats(min_value=0.0, max_value=max_T))
    x = draw(st.integers(min_value=0, max_value=max_x))
    t_x = 0.0 if x == 0 else draw(st.floats(min_value=0.0, max_value=1.0)) * T
    return float(x), t_x, T


def test_fit_reproduces_the_published_cdnow_parameters(cdnow_summary):
    """FHL 2005 section 5: r = 0.243, alpha = 4.414, a = 0.793, b = 2.426, LL = -9582.4."""
    fitted = bgnbd.fit(cdnow_summary.x, cdnow_summary.t_x, cdnow_summary.T)
    assert fitted.converged
    assert (round(fitted.r, 3), round(fitted.alpha, 3), round(fitted.a, 3), round(fitted.b, 3)) == (
        0.243,
        4.414,
        0.793,
        2.426,
    )
    assert fitted.log_likelihood == pytest.approx(-9582.4, abs=0.05)
    assert fitted.n_customers == 2357


def test_fit_works_on_distinct_histories_only(cdnow_summary):
    fitted = bgnbd.fit(cdnow_summary.x, cdnow_summary.t_x, cdnow_summary.T)
    distinct = {tuple(row) for row in np.c_[cdnow_summary.x, cdnow_summary.t_x, cdnow_summary.T]}
    assert fitted.n_distinct == len(distinct) < fitted.n_customers


def test_published_parameters_give_the_published_log_likelihood(cdnow_summary):
    """FHL 2005 section 5: LL = -9582.4 at the (rounded) published estimates."""
    ll = bgnbd.log_likelihood(PUBLISHED, cdnow_summary.x, cdnow_summary.t_x, cdnow_summary.T)
    assert ll == pytest.approx(-9582.4, abs=0.05)


def test_conditional_expectation_matches_the_published_example():
    """FHL 2005 section 5 (eq. 10): a customer with x = 2, t_x = 30.43, T = 38.86 (weeks) is expected
    to make 1.226 purchases in the next 39 weeks."""
    expected = bgnbd.expected_purchases(PUBLISHED, 39.0, 2, 30.43, 38.86)
    assert float(expected) == pytest.approx(1.226, abs=5e-4)


def _eq10_with_hyp2f1(p: BetaGeoParams, t: float, x: float, t_x: float, T: float) -> float:
    z = t / (p.alpha + T + t)
    bracket = 1 - ((p.alpha + T) / (p.alpha + T + t)) ** (p.r + x) * hyp2f1(
        p.r + x, p.b + x, p.a + p.b + x - 1, z
    )
    denominator = 1 + (x > 0) * p.a / (p.b + x - 1) * ((p.alpha + T) / (p.alpha + t_x)) ** (p.r + x)
    return (p.a + p.b + x - 1) / (p.a - 1) * bracket / denominator


@pytest.mark.parametrize(
    ("x", "t_x", "T"), [(0, 0.0, 38.86), (1, 1.71, 38.86), (2, 30.43, 38.86), (7, 29.0, 32.0)]
)
def test_conditional_expectation_equals_the_hypergeometric_form_where_scipy_is_accurate(x, t_x, T):
    """FHL 2005 eq. 10 evaluated literally with scipy's 2F1 (accurate for these small arguments)."""
    ours = float(bgnbd.expected_purchases(PUBLISHED, 39.0, x, t_x, T))
    assert ours == pytest.approx(_eq10_with_hyp2f1(PUBLISHED, 39.0, x, t_x, T), rel=1e-9)


@pytest.mark.parametrize("t", [1.0, 39.0, 78.0, 520.0])
def test_new_customer_expectation_equals_eq_7(t):
    """FHL 2005 eq. 7: E[X(t)] = (a+b-1)/(a-1) [1 - (alpha/(alpha+t))^r 2F1(r, b; a+b-1; t/(alpha+t))]."""
    p = PUBLISHED
    closed = (
        (p.a + p.b - 1)
        / (p.a - 1)
        * (1 - (p.alpha / (p.alpha + t)) ** p.r * hyp2f1(p.r, p.b, p.a + p.b - 1, t / (p.alpha + t)))
    )
    assert float(bgnbd.expected_purchases_new_customer(p, t)) == pytest.approx(closed, rel=1e-9)


def _integral_reference(p: BetaGeoParams, t: float, x: float, T: float) -> float:
    """E_p[(1 - (1 + p u)^-(r+x)) / p], p ~ Beta(a, b+x), by adaptive quadrature in logit(p)."""
    beta, big_r, u = p.b + x, p.r + x, t / (p.alpha + T)

    def integrand(s: float) -> float:
        log_p = float(log_expit(s))
        growth = big_r * math.log1p(math.exp(log_p) * u)
        if growth <= 0:
            return 0.0
        log_value = (
            (p.a - 1) * log_p + beta * (log_p - s) - betaln(p.a, beta) + math.log(-math.expm1(-growth))
        )
        return math.exp(log_value)

    centre, transition = math.log(p.a / beta), -math.log(u * big_r)
    edges = [
        -math.inf,
        *sorted({centre, transition, min(centre, transition) - 30, max(centre, 0) + 30}),
        math.inf,
    ]
    return sum(
        quad(integrand, lo, hi, limit=2000, epsabs=0, epsrel=1e-12)[0]
        for lo, hi in zip(edges[:-1], edges[1:], strict=True)
    )


@pytest.mark.parametrize(
    ("params", "t", "x", "T"),
    [
        (PUBLISHED, 39.0, 500, 5000.0),
        (PUBLISHED, 5000.0, 0, 0.0),
        (PUBLISHED, 365.0, 300, 40.0),
        (BetaGeoParams(0.3, 20.0, 1.0, 3.0), 365.0, 3, 10.0),  # a = 1: eq. 10's 1/(a-1) is 0/0
        (BetaGeoParams(2.0, 5.0, 5.0, 0.5), 1000.0, 100, 500.0),  # scipy's hyp2f1 returns inf here
        (BetaGeoParams(0.1, 300.0, 0.2, 50.0), 10.0, 1, 2000.0),
    ],
)
def test_expected_purchases_if_alive_match_numerical_integration_for_hard_arguments(params, t, x, T):
    ours = float(bgnbd.expected_purchases(params, t, x, 0.0 if x == 0 else T, T))
    alive = float(bgnbd.probability_alive(params, x, 0.0 if x == 0 else T, T))
    assert ours / alive == pytest.approx(_integral_reference(params, t, x, T), rel=1e-8)


@settings(max_examples=60, deadline=None)
@given(params=params_strategy, customer=customers())
def test_probability_alive_is_a_probability_and_one_without_repeat_purchases(params, customer):
    x, t_x, T = customer
    alive = float(bgnbd.probability_alive(params, x, t_x, T))
    assert 0.0 <= alive <= 1.0
    if x == 0:
        assert alive == 1.0


@settings(max_examples=40, deadline=None)
@given(params=params_strategy, customer=customers(), horizon=st.floats(min_value=0.1, max_value=1000.0))
def test_expected_purchases_increase_with_the_horizon(params, customer, horizon):
    x, t_x, T = customer
    shorter, longer = bgnbd.expected_purchases(params, np.array([horizon, 2 * horizon]), x, t_x, T)
    assert 0.0 <= shorter <= longer


@settings(max_examples=40, deadline=None)
@given(
    params=params_strategy,
    customer=customers(max_x=50, max_T=200.0),
    horizon=st.floats(min_value=0.5, max_value=100.0),
    c=st.sampled_from([1 / 7, 7.0, 365.0]),
)
def test_changing_the_time_unit_changes_no_prediction(params, customer, horizon, c):
    x, t_x, T = customer
    rescaled = BetaGeoParams(params.r, params.alpha * c, params.a, params.b)
    assert float(bgnbd.expected_purchases(rescaled, horizon * c, x, t_x * c, T * c)) == pytest.approx(
        float(bgnbd.expected_purchases(params, horizon, x, t_x, T)), rel=1e-7, abs=1e-12
    )
    assert float(bgnbd.probability_alive(rescaled, x, t_x * c, T * c)) == pytest.approx(
        float(bgnbd.probability_alive(params, x, t_x, T)), rel=1e-9, abs=1e-15
    )
    assert float(bgnbd.expected_time_to_next_purchase(rescaled, x, T * c)) == pytest.approx(
        c * float(bgnbd.expected_time_to_next_purchase(params, x, T)), rel=1e-9
    )


@settings(max_examples=30, deadline=None)
@given(params=params_strategy, rows=st.lists(customers(), min_size=1, max_size=20))
def test_total_log_likelihood_is_the_sum_over_customers(params, rows):
    x, t_x, T = (np.array(column) for column in zip(*rows, strict=True))
    total = bgnbd.log_likelihood(params, x, t_x, T)
    assert total == pytest.approx(
        float(np.sum(bgnbd.log_likelihood_per_customer(params, x, t_x, T))), rel=1e-12
    )
    gradient_total, _ = bgnbd.log_likelihood_and_gradient(params.log_params, x, t_x, T)
    assert gradient_total == pytest.approx(total, rel=1e-10)


@settings(max_examples=30, deadline=None)
@given(
    params=params_strategy,
    rows=st.lists(customers(), min_size=1, max_size=10),
    repeats=st.lists(st.integers(min_value=1, max_value=5), min_size=10, max_size=10),
)
def test_weights_count_as_repeated_rows(params, rows, repeats):
    x, t_x, T = (np.array(column) for column in zip(*rows, strict=True))
    w = np.array(repeats[: len(rows)], dtype=float)
    weighted = bgnbd.log_likelihood_and_gradient(params.log_params, x, t_x, T, w)
    repeated = bgnbd.log_likelihood_and_gradient(
        params.log_params,
        np.repeat(x, repeats[: len(rows)]),
        np.repeat(t_x, repeats[: len(rows)]),
        np.repeat(T, repeats[: len(rows)]),
    )
    assert weighted[0] == pytest.approx(repeated[0], rel=1e-10)
    np.testing.assert_allclose(weighted[1], repeated[1], rtol=1e-8, atol=1e-8)


@settings(max_examples=40, deadline=None)
@given(params=params_strategy, rows=st.lists(customers(max_x=200, max_T=1000.0), min_size=1, max_size=15))
def test_analytic_gradient_matches_finite_differences(params, rows):
    x, t_x, T = (np.array(column) for column in zip(*rows, strict=True))
    theta = params.log_params
    total, gradient = bgnbd.log_likelihood_and_gradient(theta, x, t_x, T)
    step = 1e-6
    numeric = np.array(
        [
            (
                bgnbd.log_likelihood_and_gradient(theta + step * e, x, t_x, T)[0]
                - bgnbd.log_likelihood_and_gradient(theta - step * e, x, t_x, T)[0]
            )
            / (2 * step)
            for e in np.eye(4)
        ]
    )
    scale = max(1.0, float(np.max(np.abs(numeric))))
    # the log-likelihood is a sum of terms of about this size, which cancel; both gradients lose
    # about 1e-16 of it to rounding, the central difference another factor 1 / step
    magnitude = abs(total) + float(np.sum((params.r + x) * (1 + np.abs(np.log(params.alpha + T)))))
    np.testing.assert_allclose(gradient, numeric, atol=1e-5 * scale + 1e-9 * magnitude)


def test_fit_recovers_the_parameters_of_simulated_customers():
    true = BetaGeoParams(r=0.5, alpha=10.0, a=0.8, b=2.5)
    rng = np.random.default_rng(20240601)
    T = rng.uniform(20.0, 60.0, 20_000)
    x, t_x = simulate.simulate_bgnbd(true, T, rng)
    fitted = bgnbd.fit(x, t_x, T)
    assert fitted.converged
    assert fitted.r == pytest.approx(true.r, rel=0.1)
    assert fitted.alpha == pytest.approx(true.alpha, rel=0.1)
    assert fitted.a == pytest.approx(true.a, rel=0.3)
    assert fitted.b == pytest.approx(true.b, rel=0.3)
    assert float(bgnbd.expected_purchases_new_customer(fitted, 52.0)) == pytest.approx(
        float(bgnbd.expected_purchases_new_customer(true, 52.0)), rel=0.05
    )


@settings(max_examples=60, deadline=None)
@given(params=params_strategy, customer=customers(), horizon=st.floats(min_value=0.0, max_value=5000.0))
def test_extreme_customers_give_finite_predictions(params, customer, horizon):
    x, t_x, T = customer
    values = [
        bgnbd.expected_purchases(params, horizon, x, t_x, T),
        bgnbd.probability_alive(params, x, t_x, T),
        bgnbd.expected_time_to_next_purchase(params, x, T),
        bgnbd.log_likelihood_per_customer(params, x, t_x, T),
    ]
    assert all(np.all(np.isfinite(v)) for v in values)
    assert float(values[0]) >= 0.0


def test_median_time_to_next_purchase_splits_the_waiting_time_in_half():
    """P(W > w) = ((alpha+T)/(alpha+T+w))^(r+x) for an alive customer (see the docstring)."""
    x, T = np.array([0.0, 3.0, 50.0]), np.array([10.0, 30.0, 38.0])
    median = bgnbd.expected_time_to_next_purchase(PUBLISHED, x, T)
    survival = ((PUBLISHED.alpha + T) / (PUBLISHED.alpha + T + median)) ** (PUBLISHED.r + x)
    np.testing.assert_allclose(survival, 0.5, rtol=1e-12)


def test_collapse_counts_identical_histories():
    x_u, t_x_u, T_u, counts = bgnbd.collapse([0, 0, 2, 2, 2], [0, 0, 5, 5, 6], [9, 9, 9, 9, 9])
    assert x_u.tolist() == [0, 2, 2] and t_x_u.tolist() == [0, 5, 6] and counts.tolist() == [2, 2, 1]


def _fhl_eq_8(params: BetaGeoParams, t: float, n: int) -> float:
    """P(X(t) = n) of a new customer, FHL eq. (8) as printed."""
    r, alpha, a, b = params.r, params.alpha, params.a, params.b

    def nb(j: int) -> float:
        return math.exp(
            math.lgamma(r + j)
            - math.lgamma(r)
            - math.lgamma(j + 1)
            + r * math.log(alpha / (alpha + t))
            + j * math.log(t / (alpha + t))
        )

    value = math.exp(betaln(a, b + n) - betaln(a, b)) * nb(n)
    if n > 0:
        value += math.exp(betaln(a + 1, b + n - 1) - betaln(a, b)) * (1 - sum(nb(j) for j in range(n)))
    return value


@pytest.mark.parametrize("t", [1.0, 13.0, 39.0, 78.0])
def test_purchase_count_probabilities_of_a_new_customer_equal_eq_8(t):
    probabilities = bgnbd.purchase_count_probabilities(PUBLISHED, t, 0.0, 0.0, 0.0, 6)[0]
    np.testing.assert_allclose(probabilities, [_fhl_eq_8(PUBLISHED, t, n) for n in range(7)], rtol=1e-10)


CUSTOMERS = (  # (x, t_x, T) in weeks: one-time buyers, lapsed and active repeat buyers, a heavy one
    np.array([0.0, 0.0, 1.0, 2.0, 5.0, 7.0, 30.0]),
    np.array([0.0, 0.0, 2.0, 30.0, 10.0, 35.0, 38.0]),
    np.array([1.0, 38.0, 20.0, 38.0, 38.0, 38.0, 39.0]),
)


@pytest.mark.parametrize("t", [4.0, 39.0, 150.0])
def test_purchase_count_probabilities_sum_to_one_and_have_the_conditional_expectation_as_mean(t):
    probabilities = bgnbd.purchase_count_probabilities(PUBLISHED, t, *CUSTOMERS, 2000)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-9)
    assert np.all(probabilities >= 0)
    mean = probabilities @ np.arange(2001)
    np.testing.assert_allclose(mean, bgnbd.expected_purchases(PUBLISHED, t, *CUSTOMERS), rtol=1e-6)


@pytest.mark.parametrize("t", [4.0, 39.0, 150.0])
def test_median_purchases_minimises_the_expected_absolute_error(t):
    probabilities = bgnbd.purchase_count_probabilities(PUBLISHED, t, *CUSTOMERS, 2000)
    counts = np.arange(2001)
    expected_absolute_error = np.array([probabilities @ np.abs(counts - k) for k in range(200)]).T
    median = bgnbd.median_purchases(PUBLISHED, t, *CUSTOMERS)
    # at t = 150 the heavy buyer's median (41) lies past the first block of counts searched
    np.testing.assert_array_equal(median, np.argmin(expected_absolute_error, axis=1))
