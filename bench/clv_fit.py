"""Benchmark: per-shop CLV fit (BG/NBD + Gamma-Gamma) and prediction for 100k and 1M customers.

Run: .venv/bin/python bench/clv_fit.py

Customers are simulated (seeded) from realistic daily parameters, with times in whole days as a
shop's order history gives them. Each figure is printed next to a reference measured in the same run:
  - fit + predict wall time vs one evaluation of the BG/NBD log-likelihood over all customers
    without deduplication (and, for 100k, vs scipy's L-BFGS-B with numerical gradients on the raw,
    un-deduplicated data, the "plain" way);
  - peak traced memory (tracemalloc) vs the size of the four input arrays.
Targets: 100k fit + predict under 1 s, 1M under 10 s (2-core machine).
"""

from __future__ import annotations

import resource
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
from scipy.optimize import minimize

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.clv import bgnbd, clv, simulate  # noqa: E402
from app.clv.bgnbd import BetaGeoParams  # noqa: E402
from app.clv.gamma_gamma import GammaGammaParams  # noqa: E402

TRUE_BG = BetaGeoParams(r=0.25, alpha=30.0, a=0.8, b=2.5)  # CDNOW-like, in days
TRUE_GG = GammaGammaParams(p=6.0, q=3.7, v=15.0)
HISTORY_DAYS = 730
HORIZON_DAYS = 365.0


def simulate_shop(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    T = rng.integers(0, HISTORY_DAYS + 1, n).astype(np.float64)
    x, t_x = simulate.simulate_bgnbd(TRUE_BG, T, rng)
    t_x = np.where(x > 0, np.maximum(np.floor(t_x), 1.0), 0.0)
    t_x = np.minimum(t_x, T)
    m = np.round(simulate.simulate_order_values(TRUE_GG, x, rng), 2)
    return x, t_x, T, m


def fit_and_predict(x, t_x, T, m) -> clv.CustomerPredictions:
    models = clv.fit_shop_models(x, t_x, T, m)
    assert models.usable and models.spend is not None, models.reasons
    return clv.score_customers(models, x, t_x, T, m, horizon=HORIZON_DAYS)


def line(figure: str, value: float, unit: str, reference: str, ref_value: float) -> None:
    ratio = value / ref_value if ref_value > 0 else float("inf")
    print(f"{figure}, {value:.3f} {unit}, {reference}, {ref_value:.3f} {unit}, ratio {ratio:.1f}")


def plain_numerical_fit_seconds(x, t_x, T) -> float:
    """L-BFGS-B on the raw rows, finite-difference gradient, same start and rescaling as ours."""
    scale = float(np.max(T)) / 10.0
    xs, ts, Ts = x, t_x / scale, T / scale

    def objective(theta: np.ndarray) -> float:
        r, alpha, a, b = np.exp(theta)
        return -float(np.mean(bgnbd.log_likelihood_per_customer(BetaGeoParams(r, alpha, a, b), xs, ts, Ts)))

    start = time.perf_counter()
    minimize(objective, np.zeros(4), method="L-BFGS-B", bounds=[(-15, 15)] * 4)
    return time.perf_counter() - start


def main() -> None:
    print("figure, value, reference, reference value, ratio")
    for n, seed in ((100_000, 1), (1_000_000, 2)):
        x, t_x, T, m = simulate_shop(n, seed)
        fit_and_predict(x[:1000], t_x[:1000], T[:1000], m[:1000])  # warm imports and caches

        start = time.perf_counter()
        predictions = fit_and_predict(x, t_x, T, m)
        elapsed = time.perf_counter() - start
        assert np.all(np.isfinite(predictions.predicted_clv))

        start = time.perf_counter()
        bgnbd.log_likelihood_per_customer(TRUE_BG, x, t_x, T)
        one_evaluation = time.perf_counter() - start

        distinct = bgnbd.collapse(x, t_x, T)[0].size
        print(f"# {n:,} customers, {distinct:,} distinct (x, t_x, T); target {'1' if n < 1e6 else '10'} s")
        line(f"fit+predict {n:,}", elapsed, "s", "one log-likelihood evaluation, no dedup", one_evaluation)
        if n == 100_000:
            line(
                f"fit+predict {n:,}",
                elapsed,
                "s",
                "plain L-BFGS-B fit, numerical gradient, no dedup (fit only)",
                plain_numerical_fit_seconds(x, t_x, T),
            )

        tracemalloc.start()
        fit_and_predict(x, t_x, T, m)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        inputs = sum(a.nbytes for a in (x, t_x, T, m))
        line(f"peak traced memory {n:,}", peak / 2**20, "MiB", "input arrays (x, t_x, T, m)", inputs / 2**20)
    print(f"# process max RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
