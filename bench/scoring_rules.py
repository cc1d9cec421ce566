"""Time the pure scoring rules and shop metrics on synthetic shops of 200k and 1M customers.

    .venv/bin/python bench/scoring_rules.py

Prints one line per step and size. The figure to watch is "score shop" (everything the worker does
per shop: quintile and thirds RFM, segments, stages, behaviour segments): it must stay at a couple of
seconds or less for a million customers.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial

import numpy as np

from app.scoring import metrics, rules


def _timed(label: str, size: int, step: Callable[[], object], unit: str = "customers") -> float:
    start = time.perf_counter()
    step()
    elapsed = time.perf_counter() - start
    print(f"{label:<30} {size:>9,} {unit:<9}  {elapsed * 1000:8.1f} ms")
    return elapsed


def _shop(customers: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    orders = rng.geometric(0.55, customers)
    spent = np.round(orders * rng.gamma(2.0, 35.0, customers), 2)
    return {
        "days": rng.integers(0, 900, customers).astype(np.float64),
        "orders": orders,
        "spent": spent,
        "discounted": rng.binomial(orders, 0.3),
        "p_alive": rng.random(customers),
        "clv": rng.gamma(1.5, 80.0, customers),
        "previous": rng.integers(-1, 5, customers),
        "since_change": rng.integers(0, 400, customers).astype(np.float64),
    }


def _score_shop(shop: dict[str, np.ndarray]) -> None:
    quintile = rules.score_quintile(shop["days"], shop["orders"], shop["spent"])
    rules.score_thirds(shop["days"], shop["orders"], shop["spent"])
    rules.lifecycle_stages(
        shop["orders"], shop["days"], shop["p_alive"], 45.0, shop["previous"], shop["since_change"]
    )
    rules.behaviour_segments(shop["orders"], shop["spent"], shop["discounted"], quintile.segment, shop["clv"])


def main() -> None:
    rng = np.random.default_rng(20240601)
    for size in (200_000, 1_000_000):
        shop = _shop(size, rng)
        _timed("quintile_scores (one dim)", size, partial(rules.quintile_scores, shop["spent"]))
        _timed(
            "score_quintile (R, F, M, seg)",
            size,
            partial(rules.score_quintile, shop["days"], shop["orders"], shop["spent"]),
        )
        _timed("score shop (all rules)", size, partial(_score_shop, shop))
    for orders in (200_000, 1_000_000):
        customer = rng.integers(0, orders // 3, orders)
        day = rng.integers(19_000, 19_000 + 3 * 365, orders)
        value = rng.gamma(2.0, 35.0, orders)
        _timed(
            "shop_metrics",
            orders,
            partial(metrics.shop_metrics, customer, day, value),
            unit="orders",
        )


if __name__ == "__main__":
    main()
