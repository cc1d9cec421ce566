"""Draw customers from the BG/NBD and Gamma-Gamma models, for tests and benchmarks."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from app.clv._numeric import FloatArray, as_float_array
from app.clv.bgnbd import BetaGeoParams
from app.clv.gamma_gamma import GammaGammaParams


def simulate_bgnbd(
    params: BetaGeoParams, T: ArrayLike, rng: np.random.Generator
) -> tuple[FloatArray, FloatArray]:
    """(x, t_x) for customers observed for T each, following FHL 2005 section 3 assumptions (i)-(v).

    A customer drops out after the J-th repeat purchase, J ~ Geometric(p) on {1, 2, ...}; repeat
    purchases before that arrive as a Poisson process of rate lambda. Given N ~ Poisson(lambda T)
    arrivals in (0, T], x = min(N, J) and the x-th arrival time is T times the x-th order statistic of
    N uniforms, which is Beta(x, N - x + 1).
    """
    T_arr = as_float_array(T).ravel()
    n = T_arr.size
    rate = rng.gamma(params.r, 1.0 / params.alpha, n)
    dropout = rng.beta(params.a, params.b, n)
    purchases_to_dropout = rng.geometric(np.clip(dropout, 1e-12, 1.0))
    arrivals = rng.poisson(rate * T_arr)
    x = np.minimum(arrivals, purchases_to_dropout)
    repeat = x > 0
    t_x = np.zeros(n)
    t_x[repeat] = T_arr[repeat] * rng.beta(x[repeat], arrivals[repeat] - x[repeat] + 1)
    return x.astype(np.float64), t_x


def simulate_order_values(params: GammaGammaParams, x: ArrayLike, rng: np.random.Generator) -> FloatArray:
    """Mean value of x orders per customer under the Gamma-Gamma model (Fader & Hardie 2013, section 2).

    nu ~ Gamma(q, rate v); the sum of x values is Gamma(p x, rate nu). 0 where x = 0.
    """
    x_arr = as_float_array(x).ravel()
    nu = rng.gamma(params.q, 1.0 / params.v, x_arr.size)
    repeat = x_arr > 0
    m = np.zeros(x_arr.size)
    m[repeat] = rng.gamma(params.p * x_arr[repeat], 1.0 / nu[repeat]) / x_arr[repeat]
    return m
