"""One snapshot per page: after live orders (signed webhooks through the endpoint) and an
incremental rescore, every count the pages show agrees with the others and with the database."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from starlette.testclient import TestClient

from app.models import ClvFit, Customer, CustomerScore, Order, ShopSegment, StageChange
from app.scoring import service as scoring
from app.settings.service import get_settings
from app.vocabulary import (
    BEHAVIOUR_FLAG_COLUMNS,
    BEHAVIOUR_SEGMENT_NAMES,
    CLV_TIERS,
    SEGMENT_NAMES,
    STAGE_NAMES,
)
from shopify_double import DevStore
from tests.admin.conftest import SHOP, bearer, launch
from tests.admin.seed import NOW, SeededShop
from tests.fixtures.factories import order_payload
from tests.fixtures.webhooks import post_webhook

LIVE_ORDER_AT = NOW + timedelta(minutes=2)  # after the seed's scorings: the lapsed come back
RESCORED_AT = NOW + timedelta(minutes=5)


@dataclass(frozen=True)
class LiveShop:
    shop_id: int
    ordered: set[int]
    """Customers who ordered live (the webhook), the new buyer included."""
    lapsed_who_ordered: set[int]
    new_buyer: int


def _stages(session: Session, shop_id: int) -> dict[int, str]:
    rows = session.execute(
        select(CustomerScore.customer_id, CustomerScore.stage).where(CustomerScore.shop_id == shop_id)
    )
    return {int(c): s for c, s in rows}


@pytest.fixture
def live(page: TestClient, seeded: SeededShop, session: Session, store: DevStore) -> LiveShop:
    """The seeded shop after eight live orders (four from lapsed customers, three from others, one
    from a new buyer), a test order (received, counts for nothing), and the incremental rescore."""
    stages = _stages(session, seeded.shop_id)
    lapsed = sorted(c for c, s in stages.items() if s == "lapsed")[:4]
    others = sorted(c for c, s in stages.items() if s in ("active", "new"))[:3]
    assert len(lapsed) == 4 and len(others) == 3
    new_buyer = store.create_customer(
        SHOP, first_name="Grace", last_name="Hopper", email="grace@example.com"
    ).id
    at = LIVE_ORDER_AT.isoformat()
    buyers = [*lapsed, *others, new_buyer]
    for i, customer_id in enumerate(buyers):
        payload = order_payload(8_000_000 + i, customer_id, total="80.00", processed_at=at, updated_at=at)
        assert post_webhook(page, "orders/create", payload, SHOP).status_code == 200
    test_order = order_payload(8_000_100, others[0], total="55.00", processed_at=at, updated_at=at, test=True)
    assert post_webhook(page, "orders/create", test_order, SHOP).status_code == 200
    session.commit()

    result = scoring.rescore_shop(session, seeded.shop_id, RESCORED_AT)
    session.commit()
    assert not result.full  # an incremental rescore, as after any webhook
    return LiveShop(seeded.shop_id, set(buyers), set(lapsed), new_buyer)


def _number(text: str) -> int:
    return int(text.replace(",", ""))


def _stat(html: str, element_id: str) -> str:
    found = re.search(rf'id="{element_id}">([^<]*)<', html)
    assert found is not None, element_id
    return found.group(1)


def _customers_shown(page: TestClient, **filters: str) -> int:
    html = page.get(f"/app/customers?{launch(**filters)}").text
    found = re.search(
        r'id="result-count">(?:Showing [\d,]+–[\d,]+ of ([\d,]+) customers\.|No customers)', html
    )
    assert found is not None, filters
    return _number(found.group(1)) if found.group(1) else 0


def _table(html: str, table_id: str, key: str) -> dict[str, int]:
    """{row key: its customers cell} of a table whose rows carry ``data-<key>``."""
    body = re.search(rf'id="{table_id}">(.*?)</table>', html, re.S)
    assert body is not None, table_id
    rows = re.findall(rf'<tr data-{key}="([^"]+)">.*?<td class="num"[^>]*>([\d,]+)</td>', body.group(1), re.S)
    return {name: _number(count) for name, count in rows}


def test_the_overview_grid_stages_and_totals_agree_with_the_segments_table_and_the_database(
    page: TestClient, live: LiveShop, session: Session
) -> None:
    html = page.get(f"/app?{launch()}").text
    overview = page.get("/api/overview", headers=bearer()).json()
    shop_id = live.shop_id
    scored = session.scalar(select(func.count()).where(CustomerScore.shop_id == shop_id))
    qualifying = session.scalar(select(func.count()).where(Order.shop_id == shop_id, Order.qualifies))
    aggregated = session.scalar(select(func.sum(Customer.orders_count)).where(Customer.shop_id == shop_id))

    customers, orders = _number(_stat(html, "customers-scored")), _number(_stat(html, "orders-scored"))
    assert customers == scored == overview["customers_scored"] == overview["all_customers"]["customers"]
    assert orders == qualifying == aggregated == overview["orders_scored"]

    segments_table = _table(html, "segments", "segment")
    in_database = dict(
        session.execute(
            select(CustomerScore.segment, func.count())
            .where(CustomerScore.shop_id == shop_id)
            .group_by(CustomerScore.segment)
        ).all()
    )
    assert segments_table == {name: in_database.get(name, 0) for name in SEGMENT_NAMES}
    assert sum(segments_table.values()) == customers

    grid = overview["rfm_grid"]
    cells = get_settings(session, shop_id).segment_grid
    per_segment = dict.fromkeys(SEGMENT_NAMES, 0)
    for r, row in zip(grid["rows_r"], grid["customers"], strict=True):
        for fm, count in zip(grid["columns_fm"], row, strict=True):
            per_segment[cells[(r, fm)]] += count
    assert per_segment == segments_table

    stages = dict(
        session.execute(
            select(CustomerScore.stage, func.count())
            .where(CustomerScore.shop_id == shop_id)
            .group_by(CustomerScore.stage)
        ).all()
    )
    assert overview["stages"] == {stage: stages.get(stage, 0) for stage in STAGE_NAMES}
    flags = session.execute(
        select(
            *(
                func.count().filter(getattr(CustomerScore, BEHAVIOUR_FLAG_COLUMNS[name]))
                for name in BEHAVIOUR_SEGMENT_NAMES
            )
        ).where(CustomerScore.shop_id == shop_id)
    ).one()
    assert overview["behaviour"] == dict(zip(BEHAVIOUR_SEGMENT_NAMES, flags, strict=True))
    mean_clv = session.scalar(
        select(func.avg(CustomerScore.predicted_clv)).where(CustomerScore.shop_id == shop_id)
    )
    assert overview["predicted_clv"]["mean"] == pytest.approx(float(mean_clv), abs=0.01)


def test_every_filter_of_the_customers_list_counts_what_the_other_pages_show(
    page: TestClient, live: LiveShop, session: Session
) -> None:
    cohorts = page.get(f"/app/cohorts?{launch()}").text
    stage_table = _table(cohorts, "stages", "stage")
    assert set(stage_table) == set(STAGE_NAMES)
    for stage, shown in stage_table.items():
        assert _customers_shown(page, stage=stage) == shown, stage
    assert stage_table["reactivated"] >= len(live.lapsed_who_ordered)

    segments = {
        s.segment: s.customers
        for s in session.scalars(select(ShopSegment).where(ShopSegment.shop_id == live.shop_id))
    }
    for name in SEGMENT_NAMES:
        assert _customers_shown(page, segment=name) == segments[name], name
    assert _customers_shown(page) == segments["All customers"]

    for tier in (*CLV_TIERS, "other"):
        stmt = select(func.count()).where(CustomerScore.shop_id == live.shop_id)
        if tier == "other":
            stmt = stmt.where(CustomerScore.clv_tier.is_(None))
        else:
            position = CLV_TIERS.index(tier)
            stmt = stmt.where(CustomerScore.clv_tier.in_(CLV_TIERS[: position + 1]))
        assert _customers_shown(page, clv=tier) == session.scalar(stmt), tier


def test_customers_orders_and_times_agree_between_overview_cohorts_and_status(
    page: TestClient, live: LiveShop, session: Session
) -> None:
    overview = page.get(f"/app?{launch()}").text
    cohorts = page.get(f"/app/cohorts?{launch()}").text
    status = page.get(f"/app/status?{launch()}").text
    for element_id in ("customers-scored", "orders-scored"):
        assert _stat(cohorts, element_id) == _stat(overview, element_id), element_id
    assert _table(cohorts, "segment-share", "segment") == _table(overview, "segments", "segment")
    last_update = _stat(overview, "last-update")
    assert _stat(status, "last-scoring") == last_update
    assert last_update in _stat(overview, "snapshot-note") and last_update in _stat(cohorts, "scored-note")
    # the order history (cohorts, retention) is the last full rescore's, and says so
    note = _stat(cohorts, "order-history-as-of")
    assert note.startswith("As of ") and last_update not in note
    metrics = page.get("/api/metrics", headers=bearer()).json()
    assert metrics["order_history_as_of"] < metrics["rescored_at"]
    cohort_sizes = metrics["metrics"]["shop"]["cohorts"]["customers"]
    assert sum(cohort_sizes) == _number(_stat(overview, "customers-scored")) - 1  # the new buyer comes next


def test_the_accuracy_page_and_the_overview_name_the_same_method(
    page: TestClient, live: LiveShop, session: Session
) -> None:
    fit = session.scalar(
        select(ClvFit).where(ClvFit.shop_id == live.shop_id).order_by(ClvFit.fitted_at.desc()).limit(1)
    )
    assert fit is not None
    overview = page.get(f"/app?{launch()}").text
    accuracy = page.get("/api/accuracy", headers=bearer()).json()
    assert page.get(f"/app/accuracy?{launch()}").status_code == 200
    assert accuracy["model"]["usable"] == fit.usable
    method = "the fitted model" if fit.usable else "the segment formula"
    assert f'<strong id="clv-source">{method}, next ' in overview


def test_stage_movements_this_week_are_the_live_orders_only(
    page: TestClient, live: LiveShop, session: Session
) -> None:
    moves = page.get("/api/overview", headers=bearer()).json()["stage_movements"]
    moved = {
        int(c)
        for c in session.scalars(
            select(StageChange.customer_id).where(
                StageChange.shop_id == live.shop_id,
                StageChange.changed_at >= NOW - timedelta(days=6),
                StageChange.cause == "behaviour",
            )
        )
    }
    assert moved <= live.ordered
    assert live.lapsed_who_ordered <= moved
    assert sum(m["customers"] for m in moves) == len(moved)
    assert {"from": "lapsed", "to": "reactivated", "customers": len(live.lapsed_who_ordered)} in moves
