"""The customer list a merchant uses: search through Shopify's customer search (the double), the
F and M score filters, churn-risk bands, "expected to order in the next N days", the sorts by last
order, next order and total CLV (ties, NULLs, pages), the CSV's dates and money, and what the page
says when Shopify gives no names."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session
from starlette.testclient import TestClient

from app.admin.service import (
    NAMES_PROTECTED,
    NAMES_TRANSIENT,
    SEARCH_LIMIT,
    SEARCH_PAGES,
    shopify_search_query,
)
from app.models import Customer, CustomerScore, Shop
from app.scoring.service import shop_day
from app.vocabulary import CHURN_RISK_BANDS
from shopify_double import DevStore
from tests.admin.conftest import API_KEY, OTHER_SHOP, SHOP, SHOP_CURRENCY, SHOP_TIMEZONE, bearer, launch
from tests.admin.seed import SeededShop
from tests.fixtures.webhooks import SECRET

ZONE = ZoneInfo(SHOP_TIMEZONE)


@pytest.fixture
def store() -> DevStore:
    """The admin tests' store on the Plus plan's API budget: these tests walk every page of
    searches that match all 300 buyers (about 500 cost points a page), which on the Basic plan
    waits seconds for the bucket to refill. The pacing is tested on its own (tests/shopify)."""
    s = DevStore(client_id=API_KEY, client_secret=SECRET)
    s.create_shop(SHOP, currency_code=SHOP_CURRENCY, iana_timezone=SHOP_TIMEZONE, plan="Plus")
    s.create_shop(OTHER_SHOP)
    return s


def _scores(session: Session, shop_id: int) -> list[CustomerScore]:
    session.expire_all()
    return list(session.scalars(select(CustomerScore).where(CustomerScore.shop_id == shop_id)))


def _all_pages(page: TestClient, **params: Any) -> list[dict[str, Any]]:
    """Every page of the JSON list, checking that pages never overlap."""
    seen: list[dict[str, Any]] = []
    n = 1
    while True:
        data = page.get(f"/api/customers?{launch(page=n, **params)}", headers=bearer()).json()
        seen += data["customers"]
        if not data["has_next"]:
            break
        n += 1
    ids = [c["customer_id"] for c in seen]
    assert len(ids) == len(set(ids)), "a customer appeared on two pages"
    return seen


# -- search --------------------------------------------------------------------------------------


@pytest.mark.both_dbs
def test_a_search_lists_only_the_scored_customers_shopify_finds(
    page: TestClient, seeded: SeededShop, session: Session, store: DevStore
) -> None:
    data = page.get(f"/api/customers?{launch(q='Ada12')}", headers=bearer()).json()
    people = store.shop(SHOP).customers
    # the double's people are Ada0..Ada299 Lovelace: "Ada12" is a prefix of Ada12 and Ada120..Ada129
    wanted = {c.id for c in people.values() if re.fullmatch(r"Ada12\d?", c.first_name or "")}
    scored = {s.customer_id for s in _scores(session, seeded.shop_id)}
    assert {int(c["customer_id"]) for c in data["customers"]} == wanted & scored
    assert data["total"] == len(wanted & scored) > 0
    assert all(re.fullmatch(r"Ada12\d? Lovelace", c["name"]) for c in data["customers"])
    searches = [c for c in store.calls if "CustomerSearch" in c.query]
    assert len(searches) == 1 and searches[0].errors is None  # valid against the 2026-10 schema
    assert searches[0].variables is not None and searches[0].variables["query"] == "Ada12*"


def test_a_search_by_email_finds_that_customer(
    page: TestClient, seeded: SeededShop, session: Session, store: DevStore
) -> None:
    scored = sorted(s.customer_id for s in _scores(session, seeded.shop_id))
    person = store.shop(SHOP).customers[scored[0]]
    data = page.get(f"/api/customers?{launch(q=person.email)}", headers=bearer()).json()
    assert [int(c["customer_id"]) for c in data["customers"]] == [person.id]


def test_a_search_combines_with_the_filters(page: TestClient, seeded: SeededShop, session: Session) -> None:
    everyone = _all_pages(page, q="lovelace")
    assert len(everyone) == len(_scores(session, seeded.shop_id))  # every seeded buyer is a Lovelace
    stage = everyone[0]["stage"]
    narrowed = _all_pages(page, q="lovelace", stage=stage)
    assert narrowed and {c["stage"] for c in narrowed} == {stage}


def test_what_the_merchant_types_is_text_never_search_syntax(
    page: TestClient, seeded: SeededShop, store: DevStore
) -> None:
    assert shopify_search_query("-ada OR O'Brien (x):") == "ada* OR* O\\'Brien* \\(x\\)\\:*"
    response = page.get(f"/api/customers?{launch(q='-ada OR lovelace')}", headers=bearer())
    assert response.status_code == 200
    # "-ada" is not NOT ada, "OR" not a connective: every term must match, none does for "OR"
    assert response.json()["customers"] == []
    assert all(c.errors is None for c in store.calls if "CustomerSearch" in c.query)


def test_a_search_for_nobody_says_so(page: TestClient, seeded: SeededShop) -> None:
    html = page.get(f"/app/customers?{launch(q='zebedee')}").text
    assert "No scored customer matches “zebedee”" in html
    assert 'name="q"' in html and 'value="zebedee"' in html


def test_page_links_and_the_csv_link_keep_the_search_and_filters(
    page: TestClient, seeded: SeededShop
) -> None:
    html = page.get(f"/app/customers?{launch(q='lovelace', risk='low', sort='total_clv')}").text
    export = re.search(r'id="export-csv" href="([^"]+)"', html)
    assert export is not None
    for part in ("q=lovelace", "risk=low", "sort=total_clv"):
        assert part in export.group(1)
    following = re.search(r'rel="next" href="([^"]+)"', html)
    if following is not None:
        assert "q=lovelace" in following.group(1) and "page=2" in following.group(1)


# -- filters -------------------------------------------------------------------------------------


@pytest.mark.both_dbs
def test_the_f_and_m_filters_select_those_scores(
    page: TestClient, seeded: SeededShop, session: Session
) -> None:
    scores = _scores(session, seeded.shop_id)
    pick = max(scores, key=lambda s: s.predicted_clv)
    expected = {
        s.customer_id
        for s in scores
        if s.frequency_score == pick.frequency_score and s.monetary_score == pick.monetary_score
    }
    listed = _all_pages(page, f=pick.frequency_score, m=pick.monetary_score)
    assert {int(c["customer_id"]) for c in listed} == expected
    only_f = _all_pages(page, f=pick.frequency_score)
    assert {int(c["customer_id"]) for c in only_f} == {
        s.customer_id for s in scores if s.frequency_score == pick.frequency_score
    }


@pytest.mark.both_dbs
@pytest.mark.parametrize("band", list(CHURN_RISK_BANDS))
def test_each_churn_risk_band_selects_its_range(
    page: TestClient, seeded: SeededShop, session: Session, band: str
) -> None:
    _, low, high = CHURN_RISK_BANDS[band]
    scores = _scores(session, seeded.shop_id)
    expected = {s.customer_id for s in scores if low <= s.churn_risk and (s.churn_risk < high or high >= 1.0)}
    listed = _all_pages(page, risk=band)
    assert {int(c["customer_id"]) for c in listed} == expected


def test_the_bands_are_written_on_the_page_with_their_thresholds(
    page: TestClient, seeded: SeededShop
) -> None:
    html = page.get(f"/app/customers?{launch()}").text
    notes = re.search(r'id="filter-notes">(.*?)</p>', html, re.S)
    assert notes is not None
    assert "Low (under 20%)" in notes.group(1) and "Medium (20% to under 50%)" in notes.group(1)
    assert "High (50% or more)" in notes.group(1)


def test_the_bands_cover_every_churn_risk_once() -> None:
    edges = sorted((low, high) for _, low, high in CHURN_RISK_BANDS.values())
    assert edges[0][0] == 0.0 and edges[-1][1] == 1.0
    assert all(a[1] == b[0] for a, b in zip(edges, edges[1:], strict=False))


@pytest.mark.both_dbs
def test_expected_to_order_in_the_next_n_days_uses_the_next_order_date(
    page: TestClient, seeded: SeededShop, session: Session
) -> None:
    today = datetime.now(UTC).astimezone(ZONE).date()
    scores = _scores(session, seeded.shop_id)
    for days in (7, 30, 365):
        expected = {
            s.customer_id
            for s in scores
            if s.expected_next_order_at is not None
            and today <= shop_day(s.expected_next_order_at) <= today + timedelta(days=days)
        }
        listed = _all_pages(page, next_days=days)
        assert {int(c["customer_id"]) for c in listed} == expected
        assert all(
            today.isoformat() <= c["expected_next_order_at"] <= (today + timedelta(days=days)).isoformat()
            for c in listed
        )
    assert expected  # the seeded shop has customers expected within a year


# -- sorts ---------------------------------------------------------------------------------------


def _make_ties(session: Session, shop_id: int) -> None:
    """Ten customers with the same total CLV, the same last order and the same next order day."""
    ids = sorted(s.customer_id for s in _scores(session, shop_id))[:10]
    day = datetime.combine(datetime.now(UTC).date() + timedelta(days=9), datetime.min.time(), UTC)
    session.execute(
        update(CustomerScore)
        .where(CustomerScore.shop_id == shop_id, CustomerScore.customer_id.in_(ids))
        .values(historic_clv=Decimal("100.00"), predicted_clv=Decimal("50.00"), expected_next_order_at=day)
    )
    session.execute(
        update(Customer)
        .where(Customer.shop_id == shop_id, Customer.customer_id.in_(ids))
        .values(last_order_at=datetime(2026, 1, 2, 3, 4, tzinfo=UTC))
    )
    session.commit()


def _key(sort: str, c: dict[str, Any], last: dict[int, datetime | None]) -> Any:
    if sort == "total_clv":
        return c["total_clv"]
    if sort == "next_order":
        return c["expected_next_order_at"]
    return last[int(c["customer_id"])]


@pytest.mark.both_dbs
@pytest.mark.parametrize("sort", ["total_clv", "last_order", "next_order"])
@pytest.mark.parametrize("direction", ["desc", "asc"])
def test_a_sort_is_total_with_ties_by_id_and_nulls_last_across_pages(
    page: TestClient, seeded: SeededShop, session: Session, sort: str, direction: str
) -> None:
    _make_ties(session, seeded.shop_id)
    listed = _all_pages(page, sort=sort, dir=direction)
    assert len(listed) == len(_scores(session, seeded.shop_id))
    last = {
        cid: (at.replace(tzinfo=UTC) if at is not None and at.tzinfo is None else at)
        for cid, at in session.execute(
            select(Customer.customer_id, Customer.last_order_at).where(Customer.shop_id == seeded.shop_id)
        )
    }
    keys = [(_key(sort, c, last), int(c["customer_id"])) for c in listed]
    present = [k for k in keys if k[0] is not None]
    missing = [k for k in keys if k[0] is None]
    assert keys == present + missing  # no value: last, whichever the direction
    assert present == sorted(present, reverse=direction == "desc")
    assert missing == sorted(missing, key=lambda k: k[1], reverse=direction == "desc")
    if sort == "next_order":
        assert missing  # some customers are unlikely to return
    values = [k[0] for k in present]
    assert max(values.count(v) for v in set(values)) >= 10  # the ties exist; sorted() put them by id


# -- CSV -----------------------------------------------------------------------------------------


def _csv(page: TestClient, **params: Any) -> list[dict[str, str]]:
    response = page.get(f"/app/customers.csv?{launch(**params)}")
    assert response.status_code == 200, response.text
    return list(csv.DictReader(io.StringIO(response.text)))


@pytest.mark.both_dbs
def test_the_csv_has_first_and_last_order_days_in_the_shops_named_zone(
    page: TestClient, seeded: SeededShop, session: Session
) -> None:
    rows = _csv(page)
    stored = {
        cid: (first, last)
        for cid, first, last in session.execute(
            select(Customer.customer_id, Customer.first_order_at, Customer.last_order_at).where(
                Customer.shop_id == seeded.shop_id
            )
        )
    }

    def day(at: datetime) -> str:
        return (at if at.tzinfo else at.replace(tzinfo=UTC)).astimezone(ZONE).date().isoformat()

    assert rows and {r["time_zone"] for r in rows} == {SHOP_TIMEZONE}
    for r in rows:
        first, last = stored[int(r["customer_id"])]
        assert (r["first_order_date"], r["last_order_date"]) == (day(first), day(last))
        assert r["first_order_date"] <= r["last_order_date"]


@pytest.mark.both_dbs
@pytest.mark.parametrize(("currency", "places"), [("EUR", 2), ("JPY", 0), ("KWD", 3)])
def test_the_csv_money_has_the_currencys_decimals(
    page: TestClient, seeded: SeededShop, session: Session, currency: str, places: int
) -> None:
    session.execute(update(Shop).where(Shop.shop_id == seeded.shop_id).values(currency_code=currency))
    session.commit()
    rows = _csv(page)
    quantum = Decimal(1).scaleb(-places)
    scores = {s.customer_id: s for s in _scores(session, seeded.shop_id)}
    assert {r["currency"] for r in rows} == {currency}
    for r in rows:
        for column in ("total_spent", "predicted_clv", "total_clv"):
            value = r[column]
            assert ("." in value) == (places > 0) and (places == 0 or len(value.split(".")[1]) == places)
        s = scores[int(r["customer_id"])]
        spent = Decimal(str(s.historic_clv)).quantize(quantum, rounding=ROUND_HALF_UP)
        assert Decimal(r["total_spent"]) == spent


def test_the_csv_of_a_search_holds_the_customers_shopify_found(
    page: TestClient, seeded: SeededShop, session: Session
) -> None:
    rows = _csv(page, q="Ada12")
    listed = _all_pages(page, q="Ada12")
    assert {r["customer_id"] for r in rows} == {c["customer_id"] for c in listed} and rows
    assert "Lovelace" not in str(rows)  # names are never exported


# -- when Shopify gives no names -------------------------------------------------------------------


def _note(html: str, key: str = "names-note") -> str:
    found = re.search(rf'id="{key}"[^>]*>(.*?)</', html, re.S)
    assert found is not None, f"no {key}"
    return found.group(1)


@pytest.mark.both_dbs
def test_a_passing_failure_says_names_will_come_back(
    page: TestClient, seeded: SeededShop, store: DevStore
) -> None:
    store.fail_next(SHOP, 1, status=503)
    html = page.get(f"/app/customers?{launch()}").text
    assert NAMES_TRANSIENT in _note(html) and "protected" not in _note(html)
    assert "Lovelace" not in html and len(re.findall(r'<tr data-customer-id="\d+">', html)) == 50
    assert "Lovelace" in page.get(f"/app/customers?{launch()}").text  # the next load has names


def test_no_protected_name_access_says_so(page: TestClient, seeded: SeededShop, store: DevStore) -> None:
    store.protected_customer_fields = {"phone", "address"}  # level 2 without name and email
    html = page.get(f"/app/customers?{launch()}").text
    assert NAMES_PROTECTED in _note(html) and "Lovelace" not in html
    calls = [c for c in store.calls if "CustomerNames" in c.query]
    assert calls and calls[-1].errors and "not approved to access" in calls[-1].errors[0]["message"]


def test_no_protected_customer_data_at_all_says_so(
    page: TestClient, seeded: SeededShop, store: DevStore
) -> None:
    store.protected_customer_data = False  # not even level 1
    data = page.get("/api/customers", headers=bearer()).json()
    assert data["names_note"] == NAMES_PROTECTED and data["customers"]
    assert all(c["name"] is None for c in data["customers"])


def test_a_search_shopify_cannot_run_lists_nobody_and_says_why(
    page: TestClient, seeded: SeededShop, store: DevStore
) -> None:
    store.fail_next(SHOP, 1, status=503)
    html = page.get(f"/app/customers?{launch(q='ada')}").text
    assert "did not answer the app in time" in _note(html, "search-note")
    assert "<tr data-customer-id" not in html  # not the unsearched list passed off as results
    store.protected_customer_data = False
    data = page.get(f"/api/customers?{launch(q='ada')}", headers=bearer()).json()
    assert data["customers"] == [] and "protected customer data" in data["search_note"]
    assert page.get(f"/app/customers.csv?{launch(q='ada')}").status_code == 503


def test_a_search_past_what_the_app_reads_says_to_narrow_it(
    page: TestClient, seeded: SeededShop, store: DevStore
) -> None:
    for i in range(SEARCH_LIMIT + 1 - 300):  # with the 300 seeded Ada Lovelaces, one past the limit
        store.create_customer(SHOP, first_name=f"Ada{1000 + i}", last_name="Byron")
    html = page.get(f"/app/customers?{launch(q='ada')}").text
    assert "only the first 1,000 are listed" in _note(html, "search-capped")
    assert len([c for c in store.calls if "CustomerSearch" in c.query]) == SEARCH_PAGES
    assert all(c.errors is None for c in store.calls if "CustomerSearch" in c.query)
