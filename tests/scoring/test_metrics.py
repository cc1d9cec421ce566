"""Segments table (with the segment formula and acquisition economics) and metrics stored by a
full rescore, so the pages only read."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy.orm import Session

from app.admin import repository as admin_repo
from app.scoring import service
from app.settings.service import update_settings
from tests.fixtures.factories import create_shop
from tests.scoring.ledger import add_order, at

NOW = at("2026-06-01")


@pytest.mark.both_dbs
def test_the_segments_table_holds_counts_shares_formula_clv_and_acquisition_economics(
    session: Session, five_customer_shop: int
) -> None:
    update_settings(session, five_customer_shop, {"cac": "50", "conversion_rate": 0.02}, NOW)
    session.commit()
    service.rescore_shop(session, five_customer_shop, NOW)
    session.commit()
    rows = {s.segment: s for s in admin_repo.segments(session, five_customer_shop)}
    shop = rows["All customers"]
    assert (shop.position, shop.customers, shop.orders, shop.revenue) == (0, 5, 8, Decimal("820.0000"))
    # Last year: 7 orders (c3's is 365 days old), 320 of sales over 5 customers → 64 a year.
    assert shop.purchase_frequency == pytest.approx(7 / 5)
    assert shop.customer_value == Decimal("64.00")
    assert shop.formula_clv == Decimal("192.00")  # × 3 years
    # The acquisition economics look forward: predicted CLV over the horizon, not the past's formula.
    assert shop.average_predicted_clv is not None
    assert shop.ltv_to_cac == pytest.approx(float(shop.average_predicted_clv) / 50, abs=1e-3)
    assert shop.max_cpc == (shop.average_predicted_clv * Decimal("0.02")).quantize(Decimal("0.01"))
    loyal = rows["Loyal"]  # c4: 3 orders, 100 last year, 31 days ago: predicted 100 × (1 - 0.10)
    assert (loyal.customers, loyal.customer_share, loyal.revenue_share) == (1, 0.2, pytest.approx(100 / 820))
    assert (loyal.average_order_value, loyal.formula_clv, loyal.average_predicted_clv, loyal.max_cpc) == (
        Decimal("33.33"),
        Decimal("300.00"),
        Decimal("90.00"),
        Decimal("1.80"),
    )
    # 300 / 50 = 6:1 on its three-year formula, but 90 / 50 = 1.8:1 on what it is expected to spend
    assert loyal.ltv_to_cac == pytest.approx(1.8)
    assert rows["Champions"].customers == 0 and rows["Champions"].formula_clv is None


@pytest.mark.both_dbs
def test_a_full_rescore_stores_the_cohort_table_by_first_order_month(session: Session) -> None:
    shop_id = create_shop(session).shop_id
    for customer_id, day, total in (
        (1, "2026-01-05", "10.00"),
        (1, "2026-02-05", "30.00"),
        (2, "2026-01-20", "20.00"),
        (3, "2026-02-10", "40.00"),
        (3, "2026-03-10", "40.00"),
    ):
        add_order(session, shop_id, customer_id, day, total)
    service.rescore_shop(session, shop_id, at("2026-03-15"))
    session.commit()
    metrics = admin_repo.metrics(session, shop_id)
    assert metrics is not None
    cohorts = metrics["shop"]["cohorts"]
    assert cohorts["cohorts"] == ["2026-01-01", "2026-02-01", "2026-03-01"]
    assert cohorts["customers"] == [2, 1, 0]
    assert cohorts["active_share"][0] == [1.0, 0.5, 0.0]
    assert cohorts["cumulative_revenue_per_customer"][0] == [15.0, 30.0, 30.0]
    assert cohorts["active_share"][1] == [1.0, 1.0, None]
    assert metrics["shop"]["repeat_purchase_rate"] == pytest.approx(2 / 3)
    assert metrics["stages"]["active"] == 2 and metrics["stages"]["new"] == 1
    assert metrics["clv"]["source"] == "segment_formula"


@pytest.mark.both_dbs
def test_an_incremental_rescore_keeps_the_metrics_of_the_last_full_one(
    session: Session, five_customer_shop: int
) -> None:
    service.rescore_shop(session, five_customer_shop, NOW)
    session.commit()
    add_order(session, five_customer_shop, 9, "2026-06-01T13:00", now=at("2026-06-01T13:00"))
    result = service.rescore_shop(session, five_customer_shop, at("2026-06-01T13:01"))
    session.commit()
    metrics = admin_repo.metrics(session, five_customer_shop)
    assert result.full is False and metrics is not None and metrics["shop"]["customers"] == 5
    assert [s.customers for s in admin_repo.segments(session, five_customer_shop)][0] == 6
