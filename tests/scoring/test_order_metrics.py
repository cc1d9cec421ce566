"""The shop's order metrics with customers numbered by the buyers' ids (no sort of the orders) are
the ones numbered by sorting the orders' customer ids, and a buyer list that does not match the
orders is not used."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from app.scoring import compute


def _orders(seed: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    buyers = np.unique(rng.integers(1, 10**13, 3_000))
    customer = np.concatenate([buyers, rng.choice(buyers, 12_000)])
    rng.shuffle(customer)
    days = rng.integers(18_000, 19_000, customer.size).astype(np.int32)
    return buyers, {
        "customer_id": customer,
        "day": days,
        "value": np.round(rng.lognormal(3, 1, customer.size), 2),
    }


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_order_metrics_numbered_by_the_buyers_equal_those_numbered_by_sorting_the_orders(seed: int) -> None:
    buyers, orders = _orders(seed)

    by_buyers = compute.order_metrics(orders, 19_000, buyers)

    assert dataclasses.asdict(by_buyers) == dataclasses.asdict(compute.order_metrics(orders, 19_000))


def test_a_buyer_list_missing_a_customer_of_the_orders_is_not_used() -> None:
    buyers, orders = _orders(4)

    with_gap = compute.order_metrics(orders, 19_000, buyers[1:])

    assert dataclasses.asdict(with_gap) == dataclasses.asdict(compute.order_metrics(orders, 19_000))
    assert with_gap.customers == buyers.size
