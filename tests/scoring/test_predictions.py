"""Per-customer predictions agree with each other, the fallback follows every order, and the
choice between the model and the fallback is stable."""

from __future__ import annotations

import math
from datetime import datetime, timedelta

import numpy as np
import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from app.admin import repository as admin_repo
from app.customers import repository as customers_repo
from app.models import Customer, CustomerScore, Order
from app.scoring import service
from tests.fixtures.factories import create_shop
from tests.scoring.ledger import add_order, bulk_orders
from tests.scoring.test_clv import NOW, simulated_shop

HORIZON = 365


def scores_of(session: Session, shop_id: int) -> list[CustomerScore]:
    session.expire_all()
    return list(session.scalars(select(CustomerScore).where(CustomerScore.shop_id == shop_id)))


def days_from(now: datetime, moment: datetime | None) -> int | None:
    return None if moment is None else (moment.date() - now.date()).days


def assert_coherent(session: Session, shop_id: int, now: datetime) -> None:
    """Every customer: a next-order date exactly when they are likely still buying and an order is
    expected within ten years; never today; within the horizon exactly when one order or more is
    predicted in it; a certain churn predicts nothing."""
    metrics = admin_repo.metrics(session, shop_id)
    assert metrics is not None
    interval = metrics["typical_interval_days"]
    model = metrics["clv"]["source"] == "model"
    buyers = {c.customer_id: c for c in session.scalars(select(Customer).where(Customer.shop_id == shop_id))}
    for s in scores_of(session, shop_id):
        buyer = buyers[s.customer_id]
        assert buyer.last_order_at is not None
        days_since = (now.date() - buyer.last_order_at.date()).days
        one_order = buyer.orders_count == 1
        # the stages' judgement: P(alive) >= 50 %, or for one order / no model two typical intervals
        likely = s.churn_risk <= 0.5 if model and not one_order else days_since <= 2 * interval
        orders = float(s.predicted_orders)
        wait = days_from(now, s.expected_next_order_at)
        expected_somewhen = orders > 0 and math.ceil(HORIZON / orders) <= 3650
        assert (wait is not None) == (likely and expected_somewhen), (
            s.customer_id,
            s.churn_risk,
            orders,
            wait,
        )
        if wait is not None:
            assert s.churn_risk <= 0.5 or one_order
            assert wait >= 1
            assert (wait <= HORIZON) == (orders >= 1), (s.customer_id, orders, wait)
        if s.churn_risk >= 1:  # almost surely gone: less than a tenth of an order, and no date
            assert orders < 0.1 and wait is None
        if orders >= 1:
            assert s.churn_risk < 1


def test_predictions_agree_per_customer_on_a_fitted_shop(session: Session) -> None:
    shop_id = simulated_shop(session)
    service.fit_shop(session, shop_id, NOW)
    result = service.rescore_shop(session, shop_id, NOW)
    session.commit()
    assert result.clv_source == "model"
    assert_coherent(session, shop_id, NOW)
    later = NOW + timedelta(days=200)  # time passes: many customers are now probably gone
    service.rescore_shop(session, shop_id, later, full=True)
    session.commit()
    scores = scores_of(session, shop_id)
    assert any(s.expected_next_order_at is None for s in scores)
    assert_coherent(session, shop_id, later)


def test_predictions_agree_per_customer_on_the_fallback(session: Session) -> None:
    shop_id = simulated_shop(session, customers=60, seed=5)
    bulk_orders(session, shop_id, [], NOW)
    result = service.rescore_shop(session, shop_id, NOW)
    session.commit()
    assert result.clv_source == "segment_formula"
    assert_coherent(session, shop_id, NOW)
    scores = scores_of(session, shop_id)
    assert any(s.churn_risk >= 1 for s in scores) and any(s.expected_next_order_at for s in scores)


def clv_columns(session: Session, shop_id: int) -> dict[int, tuple[object, ...]]:
    return {
        s.customer_id: (s.predicted_clv, s.predicted_orders, s.churn_risk, s.expected_next_order_at)
        for s in scores_of(session, shop_id)
    }


def test_the_fallback_follows_every_order_on_an_incremental_rescore(session: Session) -> None:
    """A 30-customer shop on the segment formula: after two new orders, every customer's predicted
    CLV is what a full rescore gives (the segments' rates and members moved for everyone)."""
    shop_id = create_shop(session).shop_id
    rng = np.random.default_rng(30)
    rows = []
    for customer_id in range(1, 31):
        for _ in range(1 + int(rng.random() < 0.3)):
            rows.append(
                (customer_id, NOW - timedelta(days=float(rng.uniform(1, 500))), float(rng.uniform(20, 200)))
            )
    bulk_orders(session, shop_id, rows, NOW)
    service.rescore_shop(session, shop_id, NOW, full=True)
    session.commit()
    add_order(session, shop_id, 7, NOW + timedelta(hours=1), "900.00")
    add_order(session, shop_id, 19, NOW + timedelta(hours=1), "650.00")
    later = NOW + timedelta(hours=2)
    result = service.rescore_shop(session, shop_id, later)
    session.commit()
    assert not result.full and result.clv_source == "segment_formula"
    incremental = clv_columns(session, shop_id)
    service.rescore_shop(session, shop_id, later, full=True)
    session.commit()
    assert clv_columns(session, shop_id) == incremental


def never_stopping_shop(session: Session, customers: int = 40, seed: int = 0) -> int:
    """Buyers ordering as Poisson processes who never stop: BG/NBD's a, b grow very large."""
    shop_id = create_shop(session).shop_id
    rng = np.random.default_rng(seed)
    rows = []
    for customer_id in range(1, customers + 1):
        start, rate = float(rng.uniform(100, 400)), rng.gamma(4, 1 / 200)
        day = 0.0
        while day <= start:
            rows.append((customer_id, NOW - timedelta(days=start - day), float(rng.uniform(30, 90))))
            day += rng.exponential(1 / rate)
    bulk_orders(session, shop_id, rows, NOW)
    return shop_id


def test_a_shop_whose_buyers_never_stop_keeps_the_model_on_consecutive_fits(session: Session) -> None:
    shop_id = never_stopping_shop(session)
    totals = []
    for day in (0, 1):
        moment = NOW + timedelta(days=day)
        fit = service.fit_shop(session, shop_id, moment)
        result = service.rescore_shop(session, shop_id, moment, full=True)
        session.commit()
        assert fit.usable, fit.reasons
        # the prior holds a and b away from the no-dropout edge maximum likelihood runs to
        assert fit.a is not None and fit.b is not None and fit.a / (fit.a + fit.b) < 0.05
        assert result.clv_source == "model"
        totals.append(sum(float(s.predicted_clv) for s in scores_of(session, shop_id)))
    assert totals[1] == pytest.approx(totals[0], rel=0.02)


@pytest.mark.usefixtures("twenty_repeat_buyers_needed")
def test_a_fit_that_fails_without_new_orders_keeps_the_fit_in_use(session: Session) -> None:
    shop_id = never_stopping_shop(session)
    first = service.fit_shop(session, shop_id, NOW)
    service.rescore_shop(session, shop_id, NOW, full=True)
    session.commit()
    assert first.usable
    before = clv_columns(session, shop_id)
    # refunds (no new order) leave too few repeat buyers for a new fit
    firsts = dict(
        session.execute(
            select(Order.customer_id, func.min(Order.ordered_at))
            .where(Order.shop_id == shop_id)
            .group_by(Order.customer_id)
        ).all()
    )
    for customer_id in range(1, 31):
        session.execute(
            update(Order)
            .where(Order.shop_id == shop_id, Order.customer_id == customer_id)
            .where(Order.ordered_at > firsts[customer_id])
            .values(qualifies=False, financial_status="refunded")
        )
    customers_repo.recompute(session, shop_id, set(range(1, 31)), NOW)
    session.commit()
    second = service.fit_shop(session, shop_id, NOW)
    service.rescore_shop(session, shop_id, NOW, full=True)
    session.commit()
    assert not second.usable
    assert service.fit_in_use(session, shop_id).id == first.id  # type: ignore[union-attr]
    after = clv_columns(session, shop_id)
    assert {s.clv_source for s in scores_of(session, shop_id)} == {"model"}
    unchanged = range(31, 41)  # their orders did not move: same model, same day, same values
    assert [after[c] for c in unchanged] == [before[c] for c in unchanged]
    metrics = admin_repo.metrics(session, shop_id)
    assert metrics is not None and metrics["clv"]["source"] == "model"
    assert any("is kept" in reason for reason in metrics["clv"]["reasons"])
