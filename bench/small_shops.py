"""Study: predictions for small shops. The MAP fit (built-in prior) against maximum likelihood, the
segment-rate fallback and the naive "same rate as before" forecast, on simulated shops and on
CDNOW subsamples.

Run: .venv/bin/python bench/small_shops.py [--shops-per-size 250] [--cdnow-draws 200] [--seed 1]

Simulated shops (seeded): each shop's true parameters are drawn around the published CDNOW values
(FHL 2005; Fader & Hardie 2013, the prior's centre, app/clv/prior.py) with a spread narrower than
the prior's (standard deviations of the logs below); sizes 20, 50, 100, 200, 500 customers; a history
of 12-24 months, customers acquired evenly over the months before the cut-off, the last 3-6 months
held out. Orders are simulated by the BG/NBD's story (Poisson purchases until a geometric dropout,
FHL 2005 section 3) in continuous time and floored to days, values by the Gamma-Gamma's (note 025).
CDNOW: random 50/100/200-customer subsets of tests/data/cdnow/CDNOW_sample.txt, calibration to
1997-09-30, held out to 1998-06-30, as FHL 2005.

For every shop and method: the mean absolute error per customer (customers known at the cut-off) of
predicted purchase days and of revenue in the held-out period, as the Accuracy page measures it
(app/clv/backtest.py). Methods:
  map       app.clv.clv.fit_shop_models with the built-in prior, no repeat-buyer minimum
  mle       the same without the prior (maximum likelihood); counted only where it converged
  fallback  the segment formula as of the cut-off (app.scoring.fit.fallback_forecast)
  naive     x / T repeat orders per day kept up, each worth the customer's average order
References, not methods: "zero" predicts nothing for everyone; "MAP median" is the median of the
MAP fit's predictive distribution (``predictive_median``), what the absolute error rewards, where the
app's forecasts are expectations.
Printed per size: the median over shops of each method's MAE, how often each is the best (ties
shared), the MAP's gain over the best other median; then the MAP against the fallback by the number
of repeat buyers before the cut-off, from which the model-use threshold is read
(app/clv/clv.py DEFAULT_MIN_REPEAT_BUYERS). Reference for time: the study's wall time per shop.
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

# L-BFGS-B calls BLAS on tiny arrays; with BLAS threads on a shared machine each call busy-waits
# (8x the study's CPU time measured here)
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.clv import backtest as clv_backtest  # noqa: E402
from app.clv import bgnbd  # noqa: E402
from app.clv.bgnbd import BetaGeoParams  # noqa: E402
from app.clv.clv import ShopModels, expected_order_value  # noqa: E402
from app.clv.gamma_gamma import GammaGammaParams  # noqa: E402
from app.scoring.fit import fallback_forecast  # noqa: E402
from app.settings.schemas import DEFAULTS  # noqa: E402

SIZES = (20, 50, 100, 200, 500)
METHODS = ("map", "mle", "fallback", "naive")
REFERENCES = ("zero", "map median")  # shown, never counted as a method (see the module docstring)
METRICS = {
    "orders_mae": "purchase days, MAE",
    "revenue_mae": "revenue, MAE",
    "orders_rmse": "purchase days, RMSE",
    "revenue_rmse": "revenue, RMSE",
}
DAYS_PER_MONTH = 365.25 / 12
CDNOW = Path(__file__).resolve().parents[1] / "tests" / "data" / "cdnow" / "CDNOW_sample.txt"
# the truth's spread around CDNOW (logs): narrower than the prior's 1.0 / 2.0 / 1.0 / 1.0
TRUTH_SPREAD_BG = (0.5, 0.75, 0.5, 0.5)
TRUTH_SPREAD_GG = (0.4, 0.25, 0.5)  # p, q, the mean order value
REPEAT_BINS = (0, 3, 6, 10, 20, 50)


@dataclass(frozen=True)
class ShopResult:
    size: int
    repeat_buyers: int
    errors: dict[str, dict[str, float]]  # metric -> method -> error; NaN: the method gave no forecast
    map_share: float


def draw_truth(rng: np.random.Generator, shift: float) -> tuple[BetaGeoParams, GammaGammaParams]:
    """True parameters around CDNOW's (alpha in days), shifted by ``shift`` in the logs of r, a, b."""
    centre = (math.log(0.243) + shift, math.log(4.414 * 7), math.log(0.793) + shift, math.log(2.426) - shift)
    r, alpha, a, b = np.exp(rng.normal(centre, TRUTH_SPREAD_BG))
    p = math.exp(rng.normal(math.log(6.25), TRUTH_SPREAD_GG[0]))
    q = max(1.5, math.exp(rng.normal(math.log(3.74), TRUTH_SPREAD_GG[1])))
    mean_value = math.exp(rng.normal(math.log(50.0), TRUTH_SPREAD_GG[2]))
    return BetaGeoParams(r, alpha, a, b), GammaGammaParams(p, q, mean_value * (q - 1) / p)


def simulate_orders(
    bg: BetaGeoParams, gg: GammaGammaParams, n: int, cut: float, end: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(customer, day, value) of n customers whose first orders fall evenly in [0, cut)."""
    first = rng.uniform(0.0, cut, n)
    rate = rng.gamma(bg.r, 1.0 / bg.alpha, n)
    dropout = rng.beta(bg.a, bg.b, n)
    repeats_until_dropout = rng.geometric(np.clip(dropout, 1e-12, 1.0))
    arrivals = rng.poisson(rate * (end - first))
    kept = np.minimum(arrivals, repeats_until_dropout)
    owner = np.repeat(np.arange(n), arrivals)
    times = first[owner] + rng.uniform(0.0, 1.0, owner.size) * (end - first)[owner]
    order = np.lexsort((times, owner))
    owner, times = owner[order], times[order]
    rank = np.arange(owner.size) - np.repeat(np.cumsum(arrivals) - arrivals, arrivals)
    keep = rank < kept[owner]
    customer = np.r_[np.arange(n), owner[keep]]
    when = np.r_[first, times[keep]]
    nu = rng.gamma(gg.q, 1.0 / gg.v, n)
    value = rng.gamma(gg.p, 1.0 / nu[customer])
    return customer.astype(np.int64), np.floor(when), value


def predictive_median(
    models: ShopModels, customer: np.ndarray, day: np.ndarray, value: np.ndarray, cut: int, horizon: float
) -> tuple[np.ndarray, np.ndarray]:
    """Diagnostic, not a method of the app: the median of each customer's predictive distribution
    of held-out purchases under the fitted BG/NBD (1,000 draws: alive with P(alive), rate ~
    Gamma(r+x, alpha+T), dropout ~ Beta(a, b+x), purchases = min(Poisson(rate h), Geometric)),
    times the expected order value. The median is what minimises the expected absolute error."""
    bg = models.purchases
    assert bg is not None
    summary = clv_backtest.summarise_transactions(customer, day, value, float(cut))
    x, T = summary.x, summary.T
    rng = np.random.default_rng(0)
    draws = (1000, x.size)
    alive = rng.random(draws) < bgnbd.probability_alive(bg, x, summary.t_x, T)
    rate = rng.gamma(bg.r + x, 1.0 / (bg.alpha + T), draws)
    dropout = rng.beta(bg.a, bg.b + x, draws)
    purchases = np.minimum(rng.poisson(rate * horizon), rng.geometric(np.clip(dropout, 1e-12, 1.0)))
    orders = np.median(np.where(alive, purchases, 0), axis=0)
    return orders, orders * expected_order_value(models, x, summary.m)


def evaluate(
    customer: np.ndarray, day: np.ndarray, value: np.ndarray, cut: int, end: int, size: int
) -> ShopResult:
    with_prior = clv_backtest.backtest(customer, day, value, cut, end, min_repeat_buyers=0)
    plain = clv_backtest.backtest(customer, day, value, cut, end, min_repeat_buyers=1, priors=None)
    fallback = fallback_forecast(customer, day, value, cut, end - cut, DEFAULTS)
    nan = np.full(with_prior.customer.size, np.nan)
    forecasts = {
        "map": (with_prior.predicted_orders, with_prior.predicted_revenue)
        if with_prior.model_used
        else (nan, nan),
        "mle": (plain.predicted_orders, plain.predicted_revenue) if plain.model_used else (nan, nan),
        "fallback": fallback,
        "naive": (with_prior.naive_orders, with_prior.naive_revenue),
        "zero": (np.zeros_like(nan), np.zeros_like(nan)),
        "map median": (
            predictive_median(with_prior.models, customer, day, value, cut, float(end - cut))
            if with_prior.model_used
            else (nan, nan)
        ),
    }
    actual = (with_prior.actual_orders, with_prior.actual_revenue)
    errors: dict[str, dict[str, float]] = {metric: {} for metric in METRICS}
    for method, predicted in forecasts.items():
        for i, what in enumerate(("orders", "revenue")):
            error = predicted[i] - actual[i]
            errors[f"{what}_mae"][method] = float(np.mean(np.abs(error)))
            errors[f"{what}_rmse"][method] = float(np.sqrt(np.mean(np.square(error))))
    share = with_prior.models.prior_share
    return ShopResult(
        size, with_prior.models.n_repeat_buyers, errors, math.nan if share is None else float(share)
    )


def simulated_shops(per_size: int, seed: int, shift: float) -> list[ShopResult]:
    results = []
    for size in SIZES:
        for i in range(per_size):
            rng = np.random.default_rng([seed, size, i])
            bg, gg = draw_truth(rng, shift)
            months = rng.integers(12, 25)
            holdout_months = rng.integers(3, 7)
            end = int(round(months * DAYS_PER_MONTH))
            cut = end - int(round(holdout_months * DAYS_PER_MONTH))
            customer, day, value = simulate_orders(bg, gg, size, cut, end, rng)
            results.append(evaluate(customer, day, value, cut, end, size))
    return results


def cdnow_shops(draws: int, seed: int) -> list[ShopResult]:
    raw = np.loadtxt(CDNOW)
    dates = raw[:, 2].astype(int)
    origin = dt.date(1997, 1, 1).toordinal()
    day = np.array([dt.date(d // 10000, d // 100 % 100, d % 100).toordinal() - origin for d in dates], float)
    customer, value = raw[:, 1].astype(np.int64), raw[:, 4]
    cut = dt.date(1997, 9, 30).toordinal() - origin
    end = dt.date(1998, 6, 30).toordinal() - origin
    ids = np.unique(customer)
    results = []
    for size in (50, 100, 200):
        for i in range(draws):
            rng = np.random.default_rng([seed, 7, size, i])
            chosen = np.isin(customer, rng.choice(ids, size, replace=False))
            results.append(evaluate(customer[chosen], day[chosen], value[chosen], cut, end, size))
    return results


def best_shares(rows: list[ShopResult], metric: str) -> dict[str, float]:
    wins = dict.fromkeys(METHODS, 0.0)
    for row in rows:
        errors = row.errors[metric]
        values = np.array([errors[k] if math.isfinite(errors[k]) else np.inf for k in METHODS])
        best = np.flatnonzero(values <= values.min() * (1 + 1e-12))
        for k in best:
            wins[METHODS[k]] += 1.0 / best.size
    return {k: 100.0 * v / len(rows) for k, v in wins.items()}


def median(rows: list[ShopResult], metric: str, method: str) -> float:
    values = np.array([r.errors[metric][method] for r in rows])
    values = values[np.isfinite(values)]
    return float(np.median(values)) if values.size else float("nan")


def report(title: str, results: list[ShopResult], sizes: tuple[int, ...]) -> None:
    print(f"\n## {title}")
    print(
        "| customers | shops | repeat buyers (median) | metric | MAP | MLE | fallback | naive "
        "| (zero) | (MAP median) "
        "| MAP vs best other | best: MAP / MLE / fallback / naive | MLE failed | MAP failed |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for size in sizes:
        rows = [r for r in results if r.size == size]
        repeat = int(np.median([r.repeat_buyers for r in rows]))
        mle_failed = sum(not math.isfinite(r.errors["orders_mae"]["mle"]) for r in rows)
        map_failed = sum(not math.isfinite(r.errors["orders_mae"]["map"]) for r in rows)
        for metric in METRICS:
            medians = {k: median(rows, metric, k) for k in (*METHODS, *REFERENCES)}
            best_other = min(v for k, v in medians.items() if k in METHODS[1:] and math.isfinite(v))
            gain = 100.0 * (1.0 - medians["map"] / best_other) if best_other > 0 else float("nan")
            shares = best_shares(rows, metric)
            print(
                f"| {size} | {len(rows)} | {repeat} | {METRICS[metric]} | "
                + " | ".join(f"{medians[k]:.4g}" for k in (*METHODS, *REFERENCES))
                + f" | {gain:+.1f}% | "
                + " / ".join(f"{shares[k]:.0f}%" for k in METHODS)
                + f" | {mle_failed} | {map_failed} |"
            )
    prior_shares = np.array([r.map_share for r in results])
    sizes_of = np.array([r.size for r in results])
    by_size = ", ".join(f"{size}: {np.nanmedian(prior_shares[sizes_of == size]):.2f}" for size in sizes)
    print(f"\nprior's share of the MAP fit (median by size): {by_size}")


def threshold(results: list[ShopResult]) -> tuple[int, int]:
    """The MAP against the fallback by repeat buyers before the cut-off. Returns, for RMSE and for MAE,
    the smallest bin edge from which the MAP's median error is at or below the fallback's on both
    purchase days and revenue in every bin (-1: in no run of bins up to the largest)."""
    print("\n## MAP vs the segment-rate fallback by repeat buyers before the cut-off (all simulated shops)")
    print("medians over shops, MAP / fallback")
    print(
        "| repeat buyers | shops | days RMSE | revenue RMSE | days MAE | revenue MAE "
        "| MAP no worse: RMSE, MAE |"
    )
    print("|---|---|---|---|---|---|---|")
    edges = (*REPEAT_BINS, 10**9)
    good: dict[str, list[bool]] = {"rmse": [], "mae": []}
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        rows = [r for r in results if lo <= r.repeat_buyers < hi]
        cells = []
        for kind in ("rmse", "mae"):
            ok = True
            for what in ("orders", "revenue"):
                pair = (median(rows, f"{what}_{kind}", "map"), median(rows, f"{what}_{kind}", "fallback"))
                ok = ok and (not rows or pair[0] <= pair[1])
                cells.append(f"{pair[0]:.4g} / {pair[1]:.4g}" if rows else "-")
            good[kind].append(ok)
        label = f"{lo}-{hi - 1}" if hi < 10**9 else f"{lo}+"
        verdict = ", ".join("yes" if good[k][-1] else "no" for k in ("rmse", "mae"))
        print(f"| {label} | {len(rows)} | " + " | ".join(cells) + f" | {verdict} |")

    def first_edge(flags: list[bool]) -> int:
        return next((REPEAT_BINS[i] for i in range(len(flags)) if all(flags[i:])), -1)

    return first_edge(good["rmse"]), first_edge(good["mae"])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--shops-per-size", type=int, default=250)
    parser.add_argument("--cdnow-draws", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--shift", type=float, default=0.0, help="truth's r, a, b moved by this (logs)")
    args = parser.parse_args()
    started = time.perf_counter()
    simulated = simulated_shops(args.shops_per_size, args.seed, args.shift)
    elapsed = time.perf_counter() - started
    report(
        f"Simulated shops ({len(simulated)}; truth shifted by {args.shift} in ln r, ln a, -ln b)",
        simulated,
        SIZES,
    )
    by_rmse, by_mae = threshold(simulated)
    print(
        "\nmodel-use threshold read from the study (repeat buyers; -1: none): "
        f"{by_rmse} by RMSE, {by_mae} by MAE"
    )
    per_shop = 1000 * elapsed / len(simulated)
    print(f"wall time: {elapsed:.1f} s for {len(simulated)} shops, {per_shop:.0f} ms per shop")
    if args.cdnow_draws:
        started = time.perf_counter()
        real = cdnow_shops(args.cdnow_draws, args.seed)
        report(f"CDNOW subsamples ({len(real)})", real, (50, 100, 200))
        print(f"wall time: {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
