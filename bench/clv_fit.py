"""Benchmark: per-shop CLV fit (BG/NBD + Gamma-Gamma) and predicted CLV, against lifetimes 0.11.3.

Run: .venv/bin/uv sync --inexact --extra bench && .venv/bin/python bench/clv_fit.py [--sizes 200000 1000000]

Customers are simulated (seeded) from realistic daily parameters, with times in whole days as a
shop's order history gives them (day-granular x, t_x, T; order values in cents). For each size,
in the same run and on the same arrays:
  - ours: ``clv.fit_shop_models`` + ``clv.predicted_clv`` (both fits and the same CLV), and, as a
    second figure, ``clv.fit_shop_models`` + ``clv.score_customers`` (every prediction a rescore
    stores: expected orders, P(alive), expected order value, CLV, time to next order);
  - reference: lifetimes 0.11.3 ``BetaGeoFitter.fit`` + ``GammaGammaFitter.fit`` (repeat buyers)
    + the predicted CLV, ``conditional_expected_number_of_purchases_up_to_time`` x
    ``conditional_expected_average_profit`` (the same undiscounted horizon).
They are timed alternately (``--repeats`` rounds, median of each); the parameters of both
fits must agree to 1e-6 relative and the CLVs to 1e-5. Target: lifetimes / ours >= 20.
Also printed: peak traced memory of ours (tracemalloc) vs the size of the four input arrays.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import time
import tracemalloc
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.clv import clv, simulate  # noqa: E402
from app.clv.bgnbd import BetaGeoParams  # noqa: E402
from app.clv.gamma_gamma import GammaGammaParams  # noqa: E402

TRUE_BG = BetaGeoParams(r=0.25, alpha=30.0, a=0.8, b=2.5)  # CDNOW-like, in days
TRUE_GG = GammaGammaParams(p=6.0, q=3.7, v=15.0)
HISTORY_DAYS = 730
HORIZON_DAYS = 365.0
PARAMETER_TOLERANCE = 1e-6


def simulate_shop(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    T = rng.integers(0, HISTORY_DAYS + 1, n).astype(np.float64)
    x, t_x = simulate.simulate_bgnbd(TRUE_BG, T, rng)
    t_x = np.where(x > 0, np.maximum(np.floor(t_x), 1.0), 0.0)
    t_x = np.minimum(t_x, T)
    m = np.round(simulate.simulate_order_values(TRUE_GG, x, rng), 2)
    return x, t_x, T, m


def ours(x, t_x, T, m) -> tuple[np.ndarray, np.ndarray]:
    """What lifetimes is timed doing: both fits and the predicted CLV."""
    models = clv.fit_shop_models(x, t_x, T, m)
    bg, gg = models.purchases, models.spend
    assert bg is not None and gg is not None, models.reasons
    params = np.array([bg.r, bg.alpha, bg.a, bg.b, gg.p, gg.q, gg.v])
    return params, clv.predicted_clv(bg, gg, x, t_x, T, m, horizon=HORIZON_DAYS)


def ours_for_the_app(x, t_x, T, m) -> tuple[np.ndarray, np.ndarray]:
    """What a rescore does: both fits and every stored prediction (``clv.score_customers``)."""
    models = clv.fit_shop_models(x, t_x, T, m)
    bg, gg = models.purchases, models.spend
    assert bg is not None and gg is not None, models.reasons
    predictions = clv.score_customers(models, x, t_x, T, m, horizon=HORIZON_DAYS)
    params = np.array([bg.r, bg.alpha, bg.a, bg.b, gg.p, gg.q, gg.v])
    return params, predictions.predicted_clv


def lifetimes_reference(x, t_x, T, m) -> tuple[np.ndarray, np.ndarray]:
    from lifetimes import BetaGeoFitter, GammaGammaFitter

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bgf = BetaGeoFitter().fit(x, t_x, T)
        repeat = x > 0
        ggf = GammaGammaFitter().fit(x[repeat], m[repeat])
        orders = bgf.conditional_expected_number_of_purchases_up_to_time(HORIZON_DAYS, x, t_x, T)
        value = ggf.conditional_expected_average_profit(x, m)
    params = np.concatenate([bgf.params_[["r", "alpha", "a", "b"]], ggf.params_[["p", "q", "v"]]])
    return params, np.asarray(orders * value, dtype=np.float64)


def timed(fn, *args):
    start = time.perf_counter()
    result = fn(*args)
    return time.perf_counter() - start, result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[200_000, 1_000_000])
    parser.add_argument("--repeats", type=int, default=3, help="alternating (ours, lifetimes) pairs per size")
    args = parser.parse_args()
    try:
        import lifetimes  # noqa: F401
    except ImportError:
        sys.exit("lifetimes is not installed: .venv/bin/uv sync --inexact --extra bench")

    print("figure, ours, lifetimes 0.11.3 (same run), ratio lifetimes / ours")
    for n in args.sizes:
        x, t_x, T, m = simulate_shop(n, seed=n)
        ours(x[:2000], t_x[:2000], T[:2000], m[:2000])  # warm imports and caches
        lifetimes_reference(x[:2000], t_x[:2000], T[:2000], m[:2000])
        mine, theirs, ratios, app, app_ratios = [], [], [], [], []
        for _ in range(args.repeats):
            elapsed, (params, predicted) = timed(ours, x, t_x, T, m)
            reference, (ref_params, ref_predicted) = timed(lifetimes_reference, x, t_x, T, m)
            full, (app_params, app_predicted) = timed(ours_for_the_app, x, t_x, T, m)
            mine.append(elapsed)
            theirs.append(reference)
            ratios.append(reference / elapsed)
            app.append(full)
            app_ratios.append(reference / full)
        assert np.array_equal(app_params, params) and np.allclose(app_predicted, predicted, rtol=1e-12)
        parameter_gap = float(np.max(np.abs(params - ref_params) / np.abs(ref_params)))
        clv_gap = float(np.max(np.abs(predicted - ref_predicted) / np.maximum(np.abs(ref_predicted), 1e-9)))
        ours_s, theirs_s = statistics.median(mine), statistics.median(theirs)
        print(
            f"# {n:,} customers ({int(np.count_nonzero(x > 0)):,} repeat buyers): parameters "
            f"r, alpha, a, b, p, q, v = {', '.join(f'{v:.6g}' for v in params)}; largest relative gap to "
            f"lifetimes {parameter_gap:.1e} (parameters), {clv_gap:.1e} (CLV)"
        )
        print(
            f"fit + predicted CLV {n:,}, {ours_s:.3f} s, {theirs_s:.3f} s, ratio {theirs_s / ours_s:.1f} "
            f"(pairs: {', '.join(f'{r:.1f}' for r in ratios)}; target >= 20)"
        )
        app_s = statistics.median(app)
        print(
            f"fit + every stored prediction {n:,}, {app_s:.3f} s, {theirs_s:.3f} s, "
            f"ratio {theirs_s / app_s:.1f} "
            f"(pairs: {', '.join(f'{r:.1f}' for r in app_ratios)}; lifetimes computes only the CLV)"
        )
        assert parameter_gap < PARAMETER_TOLERANCE, parameter_gap
        assert clv_gap < 1e-5, clv_gap

        tracemalloc.start()
        ours(x, t_x, T, m)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        inputs = sum(a.nbytes for a in (x, t_x, T, m))
        print(f"# peak traced memory of ours {peak / 2**20:.0f} MiB; input arrays {inputs / 2**20:.1f} MiB")
    print(f"# process max RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
