"""Buyers at the value limits (app/kit/money.py) are stored and scored, and never stop the rescore of
the rest of their shop: segments, metrics and the other buyers' scores come out as without them."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.admin import repository as admin_repo
from app.models import Customer, ShopSegment
from app.scoring import repository as scoring_repo
from app.scoring import service
from tests.fixtures.factories import create_shop
from tests.scoring.conftest import FIVE
from tests.scoring.ledger import add_order, at, bulk_orders

pytestmark = pytest.mark.both_dbs

NOW = at("2026-06-01")
LARGEST = Decimal("999999999999.9999")
BIG = 99
ORDERS = 10_001  # at the limit, past what numeric(20, 4) held: 10^16


def _rescore(session: Session, shop_id: int) -> None:
    service.rescore_shop(session, shop_id, NOW, full=True)
    session.commit()
    session.expire_all()


def _five_as_scored(session: Session, shop_id: int) -> dict[int, tuple[str, str, str, Decimal]]:
    scores = scoring_repo.customer_scores(session, shop_id, range(1, 6))
    return {s.customer_id: (s.segment, s.stage, s.rfm_code, s.historic_clv) for s in scores}


def _revenue(session: Session, shop_id: int) -> Decimal:
    return session.scalars(
        select(ShopSegment.revenue).where(ShopSegment.shop_id == shop_id, ShopSegment.position == 0)
    ).one()


def test_twelve_orders_at_the_limit_are_stored_and_scored(session: Session, five_customer_shop: int) -> None:
    for day in range(1, 13):
        add_order(session, five_customer_shop, BIG, f"2026-05-{day:02d}", str(LARGEST))
    _rescore(session, five_customer_shop)
    total = session.scalars(select(Customer.total_spent).where(Customer.customer_id == BIG)).one()
    (big,) = scoring_repo.customer_scores(session, five_customer_shop, [BIG])
    assert total == 12 * LARGEST
    assert float(big.historic_clv) == pytest.approx(float(12 * LARGEST), rel=1e-12)
    others = sum(Decimal(total) for _, _, total in FIVE)
    assert float(_revenue(session, five_customer_shop)) == pytest.approx(
        float(12 * LARGEST + others), rel=1e-12
    )
    assert admin_repo.metrics(session, five_customer_shop) is not None


def test_ten_thousand_orders_at_the_limit_for_one_buyer_leave_the_others_scored_as_with_small_ones(
    session: Session,
) -> None:
    """The same shop twice: the big buyer's orders at the limit, then at 10.00 (the best
    buyer on every axis either way)."""
    scored = []
    for value in (999999999999.99, 10.0):
        shop_id = create_shop(session).shop_id
        for customer_id, when, total in FIVE:
            add_order(session, shop_id, customer_id, when, total, discount=customer_id == 4)
        start = at("2026-05-31")
        rows = ((BIG, start + timedelta(seconds=i), value) for i in range(ORDERS))
        bulk_orders(session, shop_id, rows, NOW)
        _rescore(session, shop_id)
        total = session.scalars(
            select(Customer.total_spent).where(Customer.shop_id == shop_id, Customer.customer_id == BIG)
        ).one()
        (big,) = scoring_repo.customer_scores(session, shop_id, [BIG])
        assert float(total) == pytest.approx(ORDERS * value, rel=1e-12)
        assert float(big.historic_clv) == pytest.approx(ORDERS * value, rel=1e-12)
        assert float(_revenue(session, shop_id)) == pytest.approx(ORDERS * value + 820, rel=1e-12)
        scored.append((_five_as_scored(session, shop_id), big.segment))
    assert scored[0] == scored[1]


def test_a_buyer_past_what_a_score_column_holds_is_capped_and_the_shop_still_rescores(
    session: Session, five_customer_shop: int
) -> None:
    """Not reachable through the parser (app/kit/money.py); a stored total of the widest column's
    largest value reads back as a float that rounds up past it."""
    add_order(session, five_customer_shop, BIG, "2026-05-30", "10.00")
    widest = Decimal("999999999999999999999999.9999")
    session.execute(
        update(Customer)
        .where(Customer.shop_id == five_customer_shop, Customer.customer_id == BIG)
        .values(total_spent=widest)
    )
    session.commit()
    _rescore(session, five_customer_shop)
    (big,) = scoring_repo.customer_scores(session, five_customer_shop, [BIG])
    assert big.historic_clv < widest
    assert float(big.historic_clv) == pytest.approx(service.MONEY_CAP, rel=1e-12)
    assert {c: v[3] for c, v in _five_as_scored(session, five_customer_shop).items()} == {
        1: Decimal(100),
        2: Decimal(100),
        3: Decimal(500),
        4: Decimal(100),
        5: Decimal(20),
    }
