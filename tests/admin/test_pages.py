"""The screens and their JSON over HTTP (TestClient), against a seeded shop."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from starlette.testclient import TestClient

from app.config import Settings
from app.deps import RETRY_HEADER
from app.models import CustomerScore, Job, ShopMetricsSnapshot, ShopSegment
from app.shops.repository import get_by_domain
from shopify_double import DevStore
from tests.admin.conftest import OTHER_SHOP, SHOP, bearer, launch, session_token
from tests.admin.seed import SeededShop, give_token, seed_shop

PAGES = ["/app", "/app/customers", "/app/cohorts", "/app/accuracy", "/app/settings", "/app/status"]
JSON = ["/api/overview", "/api/customers", "/api/status", "/api/accuracy", "/api/metrics"]


@pytest.mark.parametrize("path", PAGES)
def test_each_screen_renders_for_the_shop_framed_by_its_admin(
    page: TestClient, seeded: SeededShop, path: str
) -> None:
    response = page.get(f"{path}?{launch()}")
    assert response.status_code == 200
    assert (
        response.headers["content-security-policy"]
        == f"frame-ancestors https://{SHOP} https://admin.shopify.com;"
    )
    html = response.text
    assert '<meta name="shopify-api-key" content="test-key">' in html
    head = html.split("</head>")[0]
    assert head.index("app-bridge.js") < head.index("polaris.js") < head.index("/admin/static/admin.")
    assert '<s-link href="/app?' in html and 'rel="home"' in html


def test_a_screen_carries_the_security_headers_beside_its_frame_ancestors(
    page: TestClient, seeded: SeededShop
) -> None:
    response = page.get(f"/app/customers?{launch()}")
    assert response.headers["content-security-policy"].startswith(f"frame-ancestors https://{SHOP} ")
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "strict-origin-when-cross-origin"
    assert response.headers["strict-transport-security"] == "max-age=31536000"  # the app URL is https


def test_links_between_pages_keep_the_launch_query(page: TestClient, seeded: SeededShop) -> None:
    token = session_token()
    html = page.get(f"/app?{launch(id_token=token)}").text
    nav = re.findall(r'<a href="(/app/customers\?[^"]*)"', html)
    assert nav and all(f"id_token={token}" in link and "shop=demo.myshopify.com" in link for link in nav)
    assert all("host=" in link and "embedded=1" in link for link in nav)


@pytest.mark.parametrize("path", JSON)
def test_each_json_endpoint_answers_a_bearer_token(page: TestClient, seeded: SeededShop, path: str) -> None:
    response = page.get(path, headers=bearer())
    assert response.status_code == 200
    assert response.json()["shop"] == SHOP


@pytest.mark.parametrize("path", JSON)
def test_a_fetch_without_a_token_gets_the_retry_header(
    page: TestClient, seeded: SeededShop, path: str
) -> None:
    response = page.get(path)
    assert response.status_code == 401
    assert response.headers[RETRY_HEADER] == "1"


@pytest.mark.parametrize("path", JSON)
def test_a_fetch_with_an_expired_token_gets_the_retry_header(
    page: TestClient, seeded: SeededShop, path: str
) -> None:
    expired = session_token(exp_in=-120)
    response = page.get(path, headers={"Authorization": f"Bearer {expired}"})
    assert (response.status_code, response.headers.get(RETRY_HEADER)) == (401, "1")


@pytest.mark.parametrize("path", PAGES[1:])
def test_a_document_load_without_a_token_bounces(page: TestClient, seeded: SeededShop, path: str) -> None:
    response = page.get(f"{path}?{launch(id_token='')}")
    assert response.status_code == 302
    assert response.headers["location"].startswith("/auth/session-token?")
    assert (
        "shopify-reload=" in response.headers["location"] and "id_token" not in response.headers["location"]
    )


def test_another_shops_token_sees_nothing_of_this_shop(
    page: TestClient, seeded: SeededShop, session: Session, store: DevStore, admin_settings: Settings
) -> None:
    other_token = store.issue_access_token(OTHER_SHOP, "read_customers")
    seed_shop(session, OTHER_SHOP, [9_000_001, 9_000_002])  # a second installed shop with two buyers

    shop = get_by_domain(session, OTHER_SHOP)
    assert shop is not None
    give_token(session, shop, admin_settings, other_token)
    session.commit()
    data = page.get("/api/customers", headers=bearer(OTHER_SHOP)).json()
    assert data["shop"] == OTHER_SHOP and data["total"] == 2
    assert {c["customer_id"] for c in data["customers"]} == {"9000001", "9000002"}
    overview = page.get("/api/overview", headers=bearer(OTHER_SHOP)).json()
    assert overview["customers_scored"] == 2
    html = page.get(f"/app/customers?{launch(OTHER_SHOP)}").text
    assert str(seeded.customer_ids[0]) not in html and "Lovelace" not in html


def test_a_shop_parameter_that_is_not_the_tokens_shop_is_refused(
    page: TestClient, seeded: SeededShop
) -> None:
    query = launch(id_token=session_token(SHOP)).replace(f"shop={SHOP}", f"shop={OTHER_SHOP}")
    assert page.get(f"/app/customers?{query}").status_code == 400


@pytest.mark.both_dbs
def test_the_overview_shows_the_stored_numbers(
    page: TestClient, seeded: SeededShop, session: Session
) -> None:
    html = page.get(f"/app?{launch()}").text
    snapshot = session.scalar(
        select(ShopMetricsSnapshot).where(ShopMetricsSnapshot.shop_id == seeded.shop_id)
    )
    assert snapshot is not None
    assert f'<strong id="customers-scored">{snapshot.customers_scored:,}</strong>' in html
    champions = session.scalar(
        select(ShopSegment).where(ShopSegment.shop_id == seeded.shop_id, ShopSegment.segment == "Champions")
    )
    assert champions is not None
    row = re.search(r'<tr data-segment="Champions">(.*?)</tr>', html, re.S)
    assert row is not None
    assert f'data-col="customers">{champions.customers:,}<' in row.group(1)
    assert f"€{champions.average_predicted_clv:,.2f}" in row.group(1)  # the shop's currency


def test_the_customers_page_shows_names_from_shopify_and_links_to_the_admin(
    page: TestClient, seeded: SeededShop, session: Session
) -> None:
    html = page.get(f"/app/customers?{launch()}").text
    top = session.scalar(
        select(CustomerScore)
        .where(CustomerScore.shop_id == seeded.shop_id)
        .order_by(CustomerScore.predicted_clv.desc(), CustomerScore.customer_id.desc())
        .limit(1)
    )
    assert top is not None
    first_row = re.search(r'<tr data-customer-id="(\d+)">(.*?)</tr>', html, re.S)
    assert first_row is not None and int(first_row.group(1)) == top.customer_id
    assert f"https://admin.shopify.com/store/demo/customers/{top.customer_id}" in first_row.group(2)
    assert re.search(r"Ada\d+ Lovelace", first_row.group(2)) and "@example.com" in first_row.group(2)


def test_the_names_query_is_valid_against_the_admin_schema(
    page: TestClient, seeded: SeededShop, store: DevStore
) -> None:
    page.get(f"/app/customers?{launch()}")
    calls = [c for c in store.calls if "CustomerNames" in c.query]
    assert len(calls) == 1 and calls[0].errors is None and calls[0].variables is not None
    assert len(calls[0].variables["ids"]) == 50  # the rows on screen only


def test_without_customer_access_the_page_shows_ids(
    page: TestClient, seeded: SeededShop, session: Session, store: DevStore, admin_settings: Settings
) -> None:
    shop = get_by_domain(session, SHOP)
    assert shop is not None
    give_token(session, shop, admin_settings, store.issue_access_token(SHOP, "read_orders"))
    session.commit()
    response = page.get(f"/app/customers?{launch()}")
    assert response.status_code == 200
    assert "Lovelace" not in response.text
    assert 'id="names-note"' in response.text and "Customer " in response.text


def test_a_revoked_token_shows_ids_and_is_dropped(
    page: TestClient, seeded: SeededShop, session: Session, store: DevStore, admin_settings: Settings
) -> None:
    store.revoke(SHOP)  # Shopify answers 401 to the stored token
    data = page.get("/api/customers", headers=bearer()).json()
    assert data["customers"] and data["names_note"] and data["customers"][0]["name"] is None
    session.expire_all()
    shop = get_by_domain(session, SHOP)
    assert shop is not None and shop.access_token_encrypted is None  # the next page load exchanges anew


@pytest.mark.both_dbs
def test_customers_filter_by_segment_and_sort(page: TestClient, seeded: SeededShop, session: Session) -> None:
    data = page.get("/api/customers?segment=Champions&sort=historic_clv&dir=asc", headers=bearer()).json()
    expected = session.scalar(
        select(func.count()).where(
            CustomerScore.shop_id == seeded.shop_id, CustomerScore.segment == "Champions"
        )
    )
    assert data["total"] == expected
    assert {c["segment"] for c in data["customers"]} == {"Champions"}
    spent = [c["total_spent"] for c in data["customers"]]
    assert spent == sorted(spent)


@pytest.mark.both_dbs
def test_customers_paginate_without_overlap(page: TestClient, seeded: SeededShop) -> None:
    first = page.get("/api/customers", headers=bearer()).json()
    second = page.get("/api/customers?page=2", headers=bearer()).json()
    ids_first = {c["customer_id"] for c in first["customers"]}
    ids_second = {c["customer_id"] for c in second["customers"]}
    assert len(ids_first) == len(ids_second) == 50 and not ids_first & ids_second and first["has_next"]


@pytest.mark.both_dbs
def test_the_csv_export_streams_the_filtered_list(
    page: TestClient, seeded: SeededShop, session: Session
) -> None:
    response = page.get(f"/app/customers.csv?{launch(stage='active')}")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(response.text)))
    expected = set(
        session.scalars(
            select(CustomerScore.customer_id).where(
                CustomerScore.shop_id == seeded.shop_id, CustomerScore.stage == "active"
            )
        )
    )
    assert {int(r["customer_id"]) for r in rows} == expected and expected
    assert {r["stage"] for r in rows} == {"active"}
    assert "Lovelace" not in response.text  # names are never stored, so never exported


@pytest.mark.both_dbs
def test_the_reimport_button_queues_an_import(page: TestClient, seeded: SeededShop, session: Session) -> None:
    response = page.post(f"/app/status/import?{launch()}")
    assert response.status_code == 303 and "notice=import-queued" in response.headers["location"]
    assert page.get("/api/status", headers=bearer()).json()["import"]["state"] == "queued"
    kinds = session.scalars(
        select(Job.kind).where(Job.shop_id == seeded.shop_id, Job.state == "pending")
    ).all()
    assert "import" in kinds  # the worker's job that runs it step by step


def test_the_reimport_button_needs_a_session_token(page: TestClient, seeded: SeededShop) -> None:
    response = page.post("/app/status/import", headers={"Authorization": "Bearer nope"})
    assert (response.status_code, response.headers.get(RETRY_HEADER)) == (401, "1")
    assert page.get("/api/status", headers=bearer()).json()["import"]["state"] == "none"


def test_resync_is_disabled_with_a_note_while_no_sync_kind_exists(
    page: TestClient, seeded: SeededShop, no_sync_kind: None
) -> None:
    html = page.get(f"/app/status?{launch()}").text
    assert 'id="resync" disabled' in html and "not available in this version yet" in html
    assert 'id="last-sync">not synced yet<' in html


def test_the_status_page_polls_json_and_has_a_refresh_link(page: TestClient, seeded: SeededShop) -> None:
    html = page.get(f"/app/status?{launch()}").text
    assert 'data-poll="/api/status"' in html and "/admin/static/status." in html
    assert 'id="refresh-link"' in html and 'http-equiv="refresh"' not in html
    assert page.get("/admin/static/status.js").status_code == 200


def test_a_failed_job_is_shown_in_plain_words(page: TestClient, seeded: SeededShop, session: Session) -> None:
    from datetime import UTC, datetime

    now = datetime.now(UTC)
    session.add(
        Job(
            shop_id=seeded.shop_id,
            kind="fit",
            key="",
            state="failed",
            run_after=now,
            attempts=3,
            max_attempts=3,
            last_error="Traceback...\nValueError: no orders",
            created_at=now,
            finished_at=now,
        )
    )
    session.commit()
    html = page.get(f"/app/status?{launch()}").text
    assert "Fitting the lifetime-value model failed after 3 attempt(s): ValueError: no orders" in html


def test_the_csv_export_reads_through_a_server_side_cursor(seeded: SeededShop, session: Session) -> None:
    from app.admin.repository import CustomerFilter, stream_customers

    rows = stream_customers(session, seeded.shop_id, CustomerFilter(), batch=10)
    next(rows)
    open_cursors = session.connection().exec_driver_sql("SELECT count(*) FROM pg_cursors").scalar()
    assert open_cursors == 1  # rows arrive in batches; the list is never all in memory
    assert 1 + sum(1 for _ in rows) == len(seeded.customer_ids)


@contextmanager
def _without_sync_kind() -> Iterator[None]:
    """No `sync` job kind for one test (a version without the sync); the registered one comes back."""
    import app.tasks  # noqa: F401 - registers every job kind
    from app.jobs import register_async_kind, register_kind, registry

    previous = registry.kind("sync")
    registry.unregister("sync")
    try:
        yield
    finally:
        if previous is not None:
            options: dict[str, Any] = {
                "max_attempts": previous.max_attempts,
                "backoff_seconds": previous.backoff_seconds,
                "max_backoff_seconds": previous.max_backoff_seconds,
                "lease_seconds": previous.lease_seconds,
            }
            if previous.async_handler is not None:
                register_async_kind(previous.name, previous.async_handler, **options)
            elif previous.handler is not None:
                register_kind(previous.name, previous.handler, **options)


@pytest.fixture
def no_sync_kind() -> Iterator[None]:
    with _without_sync_kind():
        yield


def test_resync_queues_a_sync_job(page: TestClient, seeded: SeededShop, session: Session) -> None:
    html = page.get(f"/app/status?{launch()}").text
    assert 'id="resync" disabled' not in html and 'id="resync"' in html
    response = page.post(f"/app/status/sync?{launch()}")
    assert response.status_code == 303 and "notice=sync-queued" in response.headers["location"]
    jobs = session.scalars(select(Job).where(Job.shop_id == seeded.shop_id, Job.kind == "sync")).all()
    assert [j.state for j in jobs] == ["pending"]


def test_this_week_starts_at_local_midnight_six_days_before_today() -> None:
    from datetime import UTC, datetime

    from app.admin.service import week_start

    # 03:00 UTC on July 8 is still July 7 in New York (EDT, UTC-4): the week is July 1-7 there
    assert week_start(datetime(2026, 7, 8, 3, 0, tzinfo=UTC), "America/New_York") == datetime(
        2026, 7, 1, 4, 0, tzinfo=UTC
    )


def test_stage_movements_count_this_weeks_changes_only(
    page: TestClient, seeded: SeededShop, session: Session
) -> None:
    from datetime import UTC, datetime, timedelta

    from app.models import StageChange

    now = datetime.now(UTC)
    session.add_all(
        [
            StageChange(
                shop_id=seeded.shop_id,
                customer_id=1,
                from_stage="reactivated",
                to_stage="new",
                changed_at=now - timedelta(days=1),
            ),
            StageChange(
                shop_id=seeded.shop_id,
                customer_id=2,
                from_stage="new",
                to_stage="reactivated",
                changed_at=now - timedelta(days=30),
            ),
        ]
    )
    session.commit()
    moves = page.get("/api/overview", headers=bearer()).json()["stage_movements"]
    assert {"from": "reactivated", "to": "new", "customers": 1} in moves
    assert not [m for m in moves if (m["from"], m["to"]) == ("new", "reactivated")]


def test_a_fetch_to_reimport_gets_json(page: TestClient, seeded: SeededShop) -> None:
    response = page.post("/app/status/import", headers=bearer())
    assert (response.status_code, response.json()) == (202, {"notice": "import-queued"})


@pytest.mark.parametrize(
    "query", ["", "stage=active", "stage=active&page=150", "clv=top-25", "segment=Loyal&stage=at_risk"]
)
def test_the_customer_total_matches_the_scores(
    page: TestClient, seeded: SeededShop, session: Session, query: str
) -> None:
    stmt = select(func.count()).where(CustomerScore.shop_id == seeded.shop_id)
    if "stage=active" in query:
        stmt = stmt.where(CustomerScore.stage == "active")
    if "clv=top-25" in query:
        stmt = stmt.where(CustomerScore.clv_tier.in_(["top-10", "top-25"]))
    if "segment=Loyal" in query:
        stmt = stmt.where(CustomerScore.segment == "Loyal", CustomerScore.stage == "at_risk")
    assert page.get(f"/api/customers?{query}", headers=bearer()).json()["total"] == session.scalar(stmt)


def test_the_last_sync_comes_from_the_syncs_own_state(
    page: TestClient, seeded: SeededShop, session: Session
) -> None:
    from datetime import UTC, datetime

    from app.models import ShopPushState

    synced = datetime(2026, 7, 1, 16, 5, tzinfo=UTC)
    session.add(
        ShopPushState(
            shop_id=seeded.shop_id,
            rfm_prefix="rfm:",
            stage_prefix="stage:",
            clv_prefix="clv:",
            prefix_generation=0,
            former_prefixes="[]",
            last_sync_at=synced,
            last_written=12,
            last_error="Shopify refused the app's access; open the app to reconnect.",
            updated_at=synced,
        )
    )
    session.commit()
    html = page.get(f"/app/status?{launch()}").text
    assert 'id="last-sync">Jul 1, 2026 18:05 CEST<' in html  # the shop's time zone
    assert "Writing to Shopify: Shopify refused the app&#39;s access; open the app to reconnect." in html
    data = page.get("/api/status", headers=bearer()).json()["sync"]
    assert data["last_synced_at"] == "2026-07-01T16:05:00+00:00" and data["enabled"] is True
