"""The accuracy backtest measures the method the shop's CLV comes from, and says when it cannot."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import numpy as np
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import CustomerScore
from app.scoring import repository as scoring_repo
from app.scoring import service
from app.settings.service import update_settings
from tests.fixtures.factories import create_shop
from tests.scoring.ledger import bulk_orders
from tests.scoring.test_clv import NOW

Row = tuple[int, datetime, float]


def few_repeat_buyers(seed: int = 4) -> list[Row]:
    """60 buyers over 420 days, 15 of whom come back: too few for the model (20 needed)."""
    rng = np.random.default_rng(seed)
    rows: list[Row] = []
    for customer_id in range(1, 61):
        first = float(rng.uniform(0, 400))
        rows.append((customer_id, NOW - timedelta(days=420 - first), float(rng.uniform(20, 120))))
        if customer_id <= 15:
            for _ in range(int(rng.integers(1, 4))):
                later = float(rng.uniform(first + 1, 420))
                rows.append((customer_id, NOW - timedelta(days=420 - later), float(rng.uniform(20, 120))))
    return rows


@pytest.mark.usefixtures("twenty_repeat_buyers_needed")
def test_a_shop_on_the_segment_formula_gets_the_segment_formula_backtested(session: Session) -> None:
    """The backtest's forecast is what the live segment formula would have said on the cut-off
    day, for a horizon as long as the held-out period."""
    rows = few_repeat_buyers()
    shop_id = create_shop(session).shop_id
    bulk_orders(session, shop_id, rows, NOW)
    fit = service.fit_shop(session, shop_id, NOW)
    session.commit()
    backtest = scoring_repo.latest_backtest(session, shop_id)
    assert not fit.usable and backtest is not None
    assert backtest.method == "segment_formula" and not backtest.model_used
    assert backtest.predicted_revenue != pytest.approx(backtest.naive_revenue)

    # the same shop as it stood on the cut-off day, scored live with the held-out period as horizon
    cut = backtest.calibration_end
    as_of = datetime.combine(cut, time(23, 0), tzinfo=UTC)
    then = create_shop(session).shop_id
    bulk_orders(session, then, [r for r in rows if r[1] <= as_of], as_of)
    holdout = (backtest.holdout_end - cut).days
    update_settings(session, then, {"clv_horizon_days": str(holdout)}, as_of)
    session.commit()
    service.rescore_shop(session, then, as_of, full=True)
    session.commit()
    live = sum(
        float(v)
        for v in session.scalars(select(CustomerScore.predicted_clv).where(CustomerScore.shop_id == then))
    )
    # (the backtest counts the typical interval in whole days, the live aggregate to the second)
    assert backtest.predicted_revenue == pytest.approx(live, rel=0.01)


@pytest.mark.usefixtures("twenty_repeat_buyers_needed")
def test_a_backtest_whose_own_fit_fails_says_so_instead_of_repeating_the_naive_forecast(
    session: Session,
) -> None:
    """The live model fits on the whole history, but before the cut-off too few customers had
    come back: nothing is measured, and the reason says so."""
    rng = np.random.default_rng(8)
    rows: list[Row] = []
    for customer_id in range(1, 81):
        day = float(rng.uniform(300, 450))  # days before NOW: the first order, long before the cut-off
        rows.append((customer_id, NOW - timedelta(days=day), float(rng.uniform(20, 120))))
        if customer_id <= 12:  # a few came back before the cut-off (150 days before NOW)
            rows.append((customer_id, NOW - timedelta(days=float(rng.uniform(160, day - 1))), 70.0))
        if customer_id <= 45:  # many came back only in the last 150 days
            for _ in range(int(rng.integers(1, 3))):
                rows.append((customer_id, NOW - timedelta(days=float(rng.uniform(1, 140))), 60.0))
    shop_id = create_shop(session).shop_id
    bulk_orders(session, shop_id, rows, NOW)
    fit = service.fit_shop(session, shop_id, NOW)
    session.commit()
    backtest = scoring_repo.latest_backtest(session, shop_id)
    assert fit.usable and backtest is not None
    assert backtest.method is None and not backtest.model_used
    assert backtest.reasons is not None
    assert backtest.reasons.startswith("the model could not be fitted on the orders up to ")
    assert "only 12 customers ordered twice or more" in backtest.reasons
    assert backtest.predicted_revenue == 0 and backtest.by_frequency == "[]"
