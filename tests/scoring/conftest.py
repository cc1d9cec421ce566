from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from app.clv import clv
from tests.fixtures.factories import create_shop
from tests.scoring.ledger import add_order

# Five buyers, hand-scored at 2026-06-01 12:00 UTC (see test_rescore.py for the arithmetic).
FIVE = [
    (1, "2026-05-30", "100.00"),
    (2, "2026-01-10", "50.00"),
    (2, "2026-05-20", "50.00"),
    (3, "2025-06-01", "500.00"),
    (4, "2026-03-01", "30.00"),
    (4, "2026-04-01", "30.00"),
    (4, "2026-05-01", "40.00"),
    (5, "2025-12-01", "20.00"),
]


@pytest.fixture
def twenty_repeat_buyers_needed(monkeypatch: pytest.MonkeyPatch) -> None:
    """The model threshold raised to maximum likelihood's 20 repeat buyers: the real fail-soft paths
    (the segment formula, a fit that fails soft) that a shop below the threshold takes. With the
    prior the threshold is 0 (docs/predictions.md), so a small shop no longer takes them."""
    monkeypatch.setattr(clv, "MAP_MIN_REPEAT_BUYERS", clv.MLE_MIN_REPEAT_BUYERS)


@pytest.fixture
def five_customer_shop(session: Session) -> int:
    shop = create_shop(session)
    for customer_id, when, total in FIVE:
        add_order(session, shop.shop_id, customer_id, when, total, discount=customer_id == 4)
    return shop.shop_id
