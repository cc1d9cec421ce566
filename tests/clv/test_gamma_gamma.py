"""Gamma-Gamma spend model (Fader & Hardie 2013): published CDNOW numbers and invariants."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.clv import gamma_gamma
from app.clv.gamma_gamma import GammaGammaParams

params_strategy = st.builds(
    GammaGammaParams,
    p=st.floats(min_value=0.1, max_value=50.0),
    q=st.floats(min_value=0.5, max_value=50.0),
    v=st.floats(min_value=0.1, max_value=1000.0),
)
buyers = st.lists(
    st.tuples(st.integers(min_value=1, max_value=500), st.floats(min_value=0.01, max_value=1e5)),
    min_size=1,
    max_size=15,
)


@pytest.fixture(scope="module")
def fitted(cdnow_summary_with_spend):
    return gamma_gamma.fit(cdnow_summary_with_spend.x, cdnow_summary_with_spend.m)


def test_fit_reproduces_the_published_cdnow_parameters(fitted):
    """Fader & Hardie (2013) note 025: p = 6.25, q = 3.74, gamma = 15.44 on the 946 repeat buyers
    (lifetimes' documentation prints p 6.25, q 3.74, v 15.45 for the same data)."""
    assert fitted.converged and fitted.usable
    assert fitted.n_customers == 946
    assert fitted.p == pytest.approx(6.25, abs=0.005)
    assert fitted.q == pytest.approx(3.74, abs=0.005)
    assert fitted.v == pytest.approx(15.44, abs=0.01)


def test_conditional_expected_average_profit_matches_lifetimes_documentation(
    fitted, cdnow_summary_with_spend
):
    """lifetimes documentation, "Estimating customer lifetime value using the Gamma-Gamma model",
    customers 1, 2, 3, 6 and 9 of this data set: 24.658619, 18.911489, 35.171002, 71.462850,
    27.282408; mean over all customers 35.2529588256."""
    data = cdnow_summary_with_spend
    values = gamma_gamma.conditional_expected_average_profit(fitted, data.x, data.m)
    np.testing.assert_allclose(
        values[[0, 1, 2, 5, 8]], [24.658619, 18.911489, 35.171002, 71.462850, 27.282408], atol=2e-4
    )
    assert float(np.mean(values)) == pytest.approx(35.2529588256, abs=2e-4)


def test_customers_without_repeat_purchases_get_the_population_mean():
    """Fader & Hardie 2013, eq. 5 at x = 0: p v / (q - 1)."""
    params = GammaGammaParams(6.25, 3.74, 15.44)
    value = gamma_gamma.conditional_expected_average_profit(params, 0, 0.0)
    assert float(value) == pytest.approx(6.25 * 15.44 / 2.74, rel=1e-12)


def test_q_at_most_one_is_not_usable():
    params = GammaGammaParams(2.0, 0.9, 10.0)
    assert not params.usable
    with pytest.raises(ValueError):
        gamma_gamma.conditional_expected_average_profit(params, 2, 10.0)


@settings(max_examples=40, deadline=None)
@given(params=params_strategy, rows=buyers)
def test_analytic_gradient_matches_finite_differences(params, rows):
    x, m = (np.array(column, dtype=float) for column in zip(*rows, strict=True))
    theta = params.log_params
    total, gradient = gamma_gamma.log_likelihood_and_gradient(theta, x, m)
    step = 1e-6
    numeric = np.array(
        [
            (
                gamma_gamma.log_likelihood_and_gradient(theta + step * e, x, m)[0]
                - gamma_gamma.log_likelihood_and_gradient(theta - step * e, x, m)[0]
            )
            / (2 * step)
            for e in np.eye(3)
        ]
    )
    scale = max(1.0, float(np.max(np.abs(numeric))))
    # the log-likelihood is a sum of terms of about this size, which cancel; both gradients lose
    # about 1e-16 of it to rounding, the central difference another factor 1 / step
    magnitude = abs(total) + float(np.sum((params.p * x + params.q) * (1 + np.abs(np.log(params.v + m * x)))))
    np.testing.assert_allclose(gradient, numeric, atol=1e-5 * scale + 1e-9 * magnitude)


@settings(max_examples=30, deadline=None)
@given(params=params_strategy, rows=buyers, repeats=st.lists(st.integers(1, 5), min_size=15, max_size=15))
def test_total_log_likelihood_is_the_sum_and_weights_count_as_rows(params, rows, repeats):
    x, m = (np.array(column, dtype=float) for column in zip(*rows, strict=True))
    w = np.array(repeats[: len(rows)])
    total = gamma_gamma.log_likelihood(params, x, m)
    assert total == pytest.approx(
        float(np.sum(gamma_gamma.log_likelihood_per_customer(params, x, m))), rel=1e-12
    )
    weighted = gamma_gamma.log_likelihood(params, x, m, w)
    assert weighted == pytest.approx(
        gamma_gamma.log_likelihood(params, np.repeat(x, w), np.repeat(m, w)), rel=1e-10
    )


def test_fit_ignores_customers_without_repeat_purchases_or_value(cdnow_summary_with_spend):
    data = cdnow_summary_with_spend
    with_noise = gamma_gamma.fit(np.r_[data.x, 0, 3], np.r_[data.m, 50.0, 0.0])
    assert with_noise.n_customers == 946
    assert with_noise.p == pytest.approx(gamma_gamma.fit(data.x, data.m).p, rel=1e-9)


def test_rescaling_money_scales_v_only(cdnow_summary_with_spend):
    data = cdnow_summary_with_spend
    base = gamma_gamma.fit(data.x, data.m)
    in_cents = gamma_gamma.fit(data.x, data.m * 100)
    assert (in_cents.p, in_cents.q) == pytest.approx((base.p, base.q), rel=1e-5)
    assert in_cents.v == pytest.approx(100 * base.v, rel=1e-5)
