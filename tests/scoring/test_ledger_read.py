"""A shop's ledger read in one piece (a small shop, ``load.SPLIT_LEDGER_ORDERS``) and as the two
halves of the orders table in one snapshot (a large one) gives the same orders and buyers."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy.orm import Session

from app.scoring import load
from tests.scoring.ledger import add_order

TZ = "America/New_York"


def _sorted(orders: dict[str, np.ndarray]) -> list[tuple[int, int, float]]:
    return sorted(
        zip(orders["customer_id"].tolist(), orders["day"].tolist(), orders["value"].tolist(), strict=True)
    )


@pytest.fixture
def shop(session: Session, five_customer_shop: int) -> int:
    if not load.is_postgres(session):
        pytest.skip("the split read is PostgreSQL's")
    add_order(session, five_customer_shop, 2, "2026-05-30T03:30", "12.50")  # the day before, in New York
    return five_customer_shop


def test_one_piece_and_two_halves_read_the_same_orders(session: Session, shop: int) -> None:
    halves = load.load_orders(session, shop, TZ)
    one_piece = load.load_orders(session, shop, TZ, expected_orders=9)
    assert len(_sorted(halves)) == 9
    assert _sorted(one_piece) == _sorted(halves)
    known_large = load.load_orders(session, shop, TZ, expected_orders=load.SPLIT_LEDGER_ORDERS)
    assert _sorted(known_large) == _sorted(halves)


def test_one_piece_and_two_halves_read_the_same_orders_and_buyers(session: Session, shop: int) -> None:
    halves, buyers = load.load_orders_and_customers(session, shop, TZ, with_predictions=False)
    one_piece, same_buyers = load.load_orders_and_customers(
        session, shop, TZ, with_predictions=False, expected_orders=9
    )
    assert _sorted(one_piece) == _sorted(halves)
    assert buyers.columns.keys() == same_buyers.columns.keys()
    for name, column in buyers.columns.items():
        np.testing.assert_array_equal(same_buyers.columns[name], column)
