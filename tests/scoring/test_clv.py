"""CLV fits in the worker: stored with their data size, parameters, likelihood and convergence;
predictions from the newest usable fit; fail soft to the segment formula; a backtest per fit."""

from __future__ import annotations

import math
from datetime import timedelta

import numpy as np
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.admin import repository as admin_repo
from app.models import ClvFit, Job, Order
from app.scoring import repository as scoring_repo
from app.scoring import service
from app.scoring.rules import top_share
from tests.fixtures.factories import create_shop
from tests.scoring.ledger import at, bulk_orders

NOW = at("2026-06-01")


def simulated_shop(session: Session, customers: int = 300, seed: int = 3) -> int:
    """Buyers who order as a Poisson process while alive and may drop out after each order."""
    shop_id = create_shop(session).shop_id
    rng = np.random.default_rng(seed)
    rows = []
    for customer_id in range(1, customers + 1):
        day = float(rng.uniform(0, 540))
        rate = rng.gamma(2.0, 1 / 60)
        dropout = rng.beta(1.0, 4.0)
        typical_value = rng.gamma(4.0, 15.0)
        while day < 540:
            rows.append(
                (customer_id, NOW - timedelta(days=540 - day), float(rng.gamma(5.0, typical_value / 5)))
            )
            if rng.random() < dropout:
                break
            day += rng.exponential(1 / rate)
    bulk_orders(session, shop_id, rows, NOW)
    return shop_id


def test_a_fit_on_a_shop_with_history_is_stored_and_drives_the_predictions(session: Session) -> None:
    shop_id = simulated_shop(session)
    fit = service.fit_shop(session, shop_id, NOW)
    session.commit()
    assert fit.usable and fit.purchases_converged and fit.spend_converged
    assert fit.customers == 300 and fit.repeat_buyers > 20 and fit.orders > 300
    assert all(v is not None and v > 0 for v in (fit.r, fit.alpha, fit.a, fit.b, fit.p, fit.q, fit.v))
    assert fit.purchases_log_likelihood is not None and fit.purchases_log_likelihood < 0
    assert session.scalars(select(Job.payload).where(Job.kind == "rescore")).all() == ['{"full": true}']

    result = service.rescore_shop(session, shop_id, NOW)
    session.commit()
    scores = scoring_repo.customer_scores(session, shop_id, range(1, 301))
    assert result.clv_source == "model" and {s.clv_source for s in scores} == {"model"}
    assert all(0 <= s.churn_risk <= 1 and math.isfinite(float(s.predicted_clv)) for s in scores)
    assert all(s.predicted_clv >= 0 and s.predicted_orders >= 0 for s in scores)
    assert all(
        s.expected_next_order_at is None or s.expected_next_order_at >= NOW.replace(hour=0) for s in scores
    )
    assert sum(s.vip for s in scores) <= 30
    clv = [float(s.predicted_clv) for s in scores]
    top10, top25 = top_share(clv, 0.10), top_share(clv, 0.25)
    assert [s.clv_tier for s in scores] == [
        "top-10" if t10 else "top-25" if t25 else None for t10, t25 in zip(top10, top25, strict=True)
    ]
    assert 0 < sum(top10) <= 30


def test_each_fit_stores_a_backtest_against_the_naive_forecast(session: Session) -> None:
    shop_id = simulated_shop(session)
    service.fit_shop(session, shop_id, NOW)
    session.commit()
    backtest = scoring_repo.latest_backtest(session, shop_id)
    assert backtest is not None and backtest.model_used and backtest.method == "model_with_prior"
    first = session.scalar(select(func.min(Order.ordered_at)).where(Order.shop_id == shop_id))
    assert first is not None
    held_out = (NOW.date() - first.date()).days // 3  # the last third of the history
    assert backtest.holdout_end == NOW.date()
    assert backtest.calibration_end == NOW.date() - timedelta(days=held_out)
    assert backtest.actual_orders > 0 and backtest.orders_mae >= 0 and backtest.naive_orders_mae >= 0
    assert backtest.by_frequency.startswith('[{"repeat_orders":"0"')


@pytest.mark.both_dbs
@pytest.mark.usefixtures("twenty_repeat_buyers_needed")
def test_too_few_repeat_buyers_fail_soft_to_the_segment_formula_with_the_reason(
    session: Session, five_customer_shop: int
) -> None:
    fit = service.fit_shop(session, five_customer_shop, at("2026-06-01"))
    session.commit()
    assert not fit.usable and fit.r is None
    assert fit.reasons == "only 2 customers ordered twice or more; at least 20 are needed"
    result = service.rescore_shop(session, five_customer_shop, at("2026-06-01T00:05"))
    session.commit()
    assert result.clv_source == "segment_formula"
    metrics = admin_repo.metrics(session, five_customer_shop)
    assert metrics is not None and metrics["clv"]["reasons"] == [fit.reasons]


@pytest.mark.both_dbs
def test_a_shop_with_less_than_90_days_of_orders_gets_a_backtest_that_says_so(
    session: Session, five_customer_shop: int
) -> None:
    service.fit_shop(session, five_customer_shop, at("2025-07-01"))
    session.commit()
    backtest = scoring_repo.latest_backtest(session, five_customer_shop)
    assert backtest is not None and not backtest.model_used and backtest.method is None
    assert backtest.reasons == (
        "the backtest needs 90 days of orders to hold some out; the first order counted is 30 days old"
    )


def test_a_day_old_fit_or_a_grown_ledger_schedules_a_new_fit(session: Session) -> None:
    shop_id = simulated_shop(session, customers=60)
    service.rescore_shop(session, shop_id, NOW)
    service.fit_shop(session, shop_id, NOW)
    session.commit()
    session.execute(Job.__table__.delete())  # type: ignore[attr-defined]
    assert service.enqueue_due_fits(session, NOW + timedelta(hours=2)) == []
    assert service.enqueue_due_fits(session, NOW + timedelta(hours=25)) == [shop_id]
    session.rollback()
    fit = session.scalar(select(ClvFit).where(ClvFit.shop_id == shop_id))
    assert fit is not None
    fit.orders = int(fit.orders / 1.06)  # the ledger has grown by 6 % since
    session.commit()
    assert service.enqueue_due_fits(session, NOW + timedelta(hours=2)) == [shop_id]
