"""One CLV story on the pages: every CLV figure names its period and method, total CLV is shown
and exported as historic + predicted, and a customer unlikely to return has no date."""

from __future__ import annotations

import csv
import io
import re
from decimal import Decimal

from sqlalchemy import select, update
from sqlalchemy.orm import Session
from starlette.testclient import TestClient

from app.models import Backtest, ClvFit, CustomerScore
from app.settings.service import update_settings
from tests.admin.conftest import bearer, launch
from tests.admin.seed import SeededShop
from tests.scoring.ledger import at


def test_every_clv_figure_on_the_overview_names_its_horizon_and_method(
    page: TestClient, seeded: SeededShop, session: Session
) -> None:
    html = page.get(f"/app?{launch()}").text
    assert "Avg predicted CLV (next 12 months)" in html
    assert "Avg total CLV (spent + next 12 months)" in html
    assert "Segment-formula CLV (3-year lifespan)" in html
    assert "LTV:CAC (predicted CLV, next 12 months)" in html
    assert re.search(r"Predicted CLV \(next 12 months\): distribution", html)

    update_settings(
        session, seeded.shop_id, {"clv_horizon_days": "730", "lifespan_years": "5"}, at("2026-06-01")
    )
    session.commit()
    html = page.get(f"/app?{launch()}").text
    assert "Avg predicted CLV (next 2 years)" in html and "Segment-formula CLV (5-year lifespan)" in html
    assert "12 months" not in re.sub(r"last 12 months", "", html)
    assert page.get("/api/overview", headers=bearer()).json()["clv_horizon_days"] == 730


def test_total_clv_is_spent_plus_predicted_on_the_page_and_in_the_csv(
    page: TestClient, seeded: SeededShop, session: Session
) -> None:
    scores = {
        s.customer_id: s
        for s in session.scalars(select(CustomerScore).where(CustomerScore.shop_id == seeded.shop_id))
    }
    html = page.get(f"/app/customers?{launch()}").text
    assert "Predicted CLV (next 12 months)" in html and "Total CLV (spent + next 12 months)" in html
    for customer_id, cell in re.findall(
        r'<tr data-customer-id="(\d+)">.*?data-col="total_clv">([^<]*)<', html, re.S
    ):
        s = scores[int(customer_id)]
        total = Decimal(str(s.historic_clv)).quantize(Decimal("0.01")) + Decimal(str(s.predicted_clv))
        assert cell == f"€{total:,.2f}"  # the seeded shop counts in euros
    rows = list(csv.DictReader(io.StringIO(page.get(f"/app/customers.csv?{launch()}").text)))
    assert rows and {r["clv_horizon_days"] for r in rows} == {"365"}
    for r in rows:
        s = scores[int(r["customer_id"])]
        assert Decimal(r["total_clv"]) == Decimal(r["total_spent"]).quantize(Decimal("0.01")) + Decimal(
            r["predicted_clv"]
        )
        assert Decimal(r["predicted_clv"]) == s.predicted_clv
    body = page.get("/api/customers", headers=bearer()).json()
    assert body["clv_horizon_days"] == 365
    api = body["customers"]
    assert all(
        c["total_clv"]
        == float(Decimal(str(c["total_spent"])).quantize(Decimal("0.01")) + Decimal(str(c["predicted_clv"])))
        for c in api
    )


def test_a_customer_unlikely_to_return_shows_no_date(
    page: TestClient, seeded: SeededShop, session: Session
) -> None:
    gone = session.scalars(
        select(CustomerScore.customer_id)
        .where(CustomerScore.shop_id == seeded.shop_id, CustomerScore.expected_next_order_at.is_(None))
        .order_by(CustomerScore.customer_id)
    ).first()
    if gone is None:  # the seed has none: make one as a rescore would
        gone = session.scalars(
            select(CustomerScore.customer_id)
            .where(CustomerScore.shop_id == seeded.shop_id)
            .order_by(CustomerScore.customer_id)
        ).first()
        session.execute(
            update(CustomerScore)
            .where(CustomerScore.shop_id == seeded.shop_id, CustomerScore.customer_id == gone)
            .values(expected_next_order_at=None, churn_risk=0.95)
        )
        session.commit()
    html = page.get(f"/app/customers?{launch(sort='customer_id', dir='asc')}").text
    rows = dict(re.findall(r'<tr data-customer-id="(\d+)">.*?data-col="next_order">([^<]*)<', html, re.S))
    assert rows[str(gone)] == "unlikely to return"
    csv_rows = {
        r["customer_id"]: r
        for r in csv.DictReader(io.StringIO(page.get(f"/app/customers.csv?{launch()}").text))
    }
    assert csv_rows[str(gone)]["expected_next_order_date"] == ""


def test_the_accuracy_page_says_which_method_it_measured_and_grades_it_in_words(
    page: TestClient, seeded: SeededShop, session: Session
) -> None:
    backtest = session.scalars(
        select(Backtest).where(Backtest.shop_id == seeded.shop_id).order_by(Backtest.id.desc())
    ).first()
    assert backtest is not None and backtest.method is not None
    html = page.get(f"/app/accuracy?{launch()}").text
    label = {
        "model_with_prior": "the model with a prior",
        "model": "the model",
        "segment_formula": "the segment formula",
    }[backtest.method]
    assert "This measures the method your CLV figures come from" in html
    assert f"Predicted by {label}" in html
    assert '<th scope="row">Purchase days</th>' in html and '<th scope="row">Orders</th>' not in html
    assert re.search(
        rf"On revenue per customer, {label} was (off by \d+% (less|more) than|as accurate as)", html
    )
    json = page.get("/api/accuracy", headers=bearer()).json()
    assert json["backtest"]["method"] == backtest.method
    assert json["backtest"]["orders_are"] == "purchase days (days with an order)"


def test_the_accuracy_page_names_the_method_and_says_how_much_the_prior_contributed(
    page: TestClient, seeded: SeededShop, session: Session
) -> None:
    """The seeded shop's 300 customers: the model with a prior that contributed a visible share."""
    fit = session.scalars(
        select(ClvFit).where(ClvFit.shop_id == seeded.shop_id, ClvFit.usable).order_by(ClvFit.id.desc())
    ).first()
    assert fit is not None and fit.purchases_prior_share is not None
    html = page.get(f"/app/accuracy?{launch()}").text
    assert "Method: model with prior." in html
    words = re.search(r'<span id="clv-prior">([^<]*)</span>', html)
    assert words is not None
    assert words.group(1).startswith(f"With {fit.repeat_buyers:,} repeat buyers, the forecast ")
    share = re.search(r"makes up about (\d+)% of what the fit knows", words.group(1))
    json = page.get("/api/accuracy", headers=bearer()).json()
    assert json["clv_method"] == "model_with_prior" and share is not None
    assert int(share.group(1)) == round(json["prior_share"] * 100)
    assert "published studies of retail customers" in words.group(1)


def test_an_accuracy_page_with_nothing_measured_says_what_is_missing(
    page: TestClient, seeded: SeededShop, session: Session
) -> None:
    session.execute(
        update(Backtest)
        .where(Backtest.shop_id == seeded.shop_id)
        .values(
            method=None,
            model_used=False,
            reasons="the model could not be fitted on the orders up to Jan 2, 2026: it did not converge",
            predicted_orders=0.0,
            predicted_revenue=0.0,
        )
    )
    session.commit()
    html = page.get(f"/app/accuracy?{launch()}").text
    assert "No accuracy figures yet: the model could not be fitted on the orders up to Jan 2, 2026" in html
    assert 'id="accuracy-table"' not in html and "% worse" not in html and "naive forecast" not in html
