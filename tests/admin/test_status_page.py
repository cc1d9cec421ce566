"""The Status page: an import that keeps failing is told with its attempts and next try in the
shop's time zone; no "import again" while an import runs, and a confirmation before a repeat; the
customers waiting to be written counted again only when something they depend on moved."""

from __future__ import annotations

import html
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session
from starlette.testclient import TestClient

from app.admin.status_page import PendingCounts
from app.imports.service import IMPORT_JOB, queue_import
from app.jobs import repository as jobs_repo
from app.models import CustomerScore, CustomerSyncState, Job, OrderImport
from app.sync.service import SYNC, enqueue_sync
from tests.admin.conftest import SHOP_TIMEZONE, bearer, launch
from tests.admin.seed import SeededShop


def _failing_import(session: Session, shop_id: int, error: BaseException, tries: int) -> datetime:
    """The import queued and its worker job failed ``tries`` times the way the worker records an
    exception (app/worker: ``jobs.fail`` with "<type>: <message>"); returns the next try's time."""
    now = datetime.now(UTC)
    queue_import(session, shop_id, now)
    session.commit()
    for _ in range(tries):
        session.execute(update(Job).where(Job.kind == IMPORT_JOB).values(run_after=now))
        job = jobs_repo.claim(session, "worker-1", now, [IMPORT_JOB])
        assert job is not None
        session.refresh(job)
        assert job.claim_token is not None
        jobs_repo.fail(session, job.shop_id, job.id, job.claim_token, f"{type(error).__name__}: {error}", now)
        session.commit()
    run_after = session.scalar(select(Job.run_after).where(Job.kind == IMPORT_JOB, Job.state == "pending"))
    assert run_after is not None
    return run_after


def test_an_import_that_cannot_reach_shopify_says_so_with_its_attempts_and_next_try(
    page: TestClient, seeded: SeededShop, session: Session
) -> None:
    refused = httpx.ConnectError("[Errno 111] Connection refused")
    next_try = _failing_import(session, seeded.shop_id, refused, 3)

    text = html.unescape(page.get(f"/app/status?{launch()}").text)

    assert 'id="import-state">not started: shopify could not be reached<' in text
    assert "waiting to start" not in text.split('id="import-state">')[1][:80]
    local = next_try.astimezone(ZoneInfo(SHOP_TIMEZONE))
    assert f'id="import-retry-next">{local.strftime("%b %-d, %Y %H:%M")} {local.tzname()}<' in text
    assert 'id="import-retry-attempts">3<' in text
    retry = page.get("/api/status", headers=bearer()).json()["import"]["retry"]
    assert retry["attempts"] == 3 and retry["shopify_unreachable"] is True
    assert datetime.fromisoformat(retry["next_try_at"]) == next_try


def test_another_failure_is_told_in_its_own_words(
    page: TestClient, seeded: SeededShop, session: Session
) -> None:
    _failing_import(session, seeded.shop_id, ValueError("the export file is truncated"), 1)
    retry = page.get("/api/status", headers=bearer()).json()["import"]["retry"]
    assert retry["words"] == "The last try failed: ValueError: the export file is truncated"


def test_no_import_again_while_one_is_under_way(
    page: TestClient, seeded: SeededShop, session: Session
) -> None:
    queue_import(session, seeded.shop_id, datetime.now(UTC))
    session.commit()
    text = page.get(f"/app/status?{launch()}").text
    assert 'id="reimport-form" hidden' in text and 'id="reimport-busy">' in text

    response = page.post(f"/app/status/import?{launch()}", data={"confirm": "import"})
    assert response.status_code == 409 and "already under way" in response.text


def test_a_repeat_import_needs_its_confirmation(
    page: TestClient, seeded: SeededShop, session: Session
) -> None:
    queue_import(session, seeded.shop_id, datetime.now(UTC))
    session.execute(update(OrderImport).where(OrderImport.shop_id == seeded.shop_id).values(state="done"))
    session.execute(
        update(Job).where(Job.shop_id == seeded.shop_id, Job.kind == IMPORT_JOB).values(state="done")
    )
    session.commit()
    assert 'name="confirm" value="import" required' in page.get(f"/app/status?{launch()}").text

    refused = page.post(f"/app/status/import?{launch()}", data={})
    assert refused.status_code == 422 and "confirm: tick the box" in refused.text
    queued = page.post(f"/app/status/import?{launch()}", data={"confirm": "import"})
    assert queued.status_code == 303 and "notice=import-queued" in queued.headers["location"]


def test_the_waiting_customers_are_counted_again_only_when_something_moved(
    seeded: SeededShop, session: Session
) -> None:
    shop_id = seeded.shop_id
    scored = int(session.scalar(select(func.count()).where(CustomerScore.shop_id == shop_id)) or 0)
    clock = [1000.0]
    counts = PendingCounts(recount_every=10.0, clock=lambda: clock[0])
    assert counts(session, shop_id) == scored  # nothing written to Shopify yet

    # the sync state written behind the stamp's back: the kept count stands
    session.execute(
        insert(CustomerSyncState).from_select(
            ["shop_id", "customer_id", "synced_hash", "prefix_generation", "updated_at"],
            select(
                CustomerScore.shop_id,
                CustomerScore.customer_id,
                CustomerScore.synced_hash,
                func.cast(0, CustomerSyncState.prefix_generation.type),
                func.now(),
            ).where(CustomerScore.shop_id == shop_id),
        )
    )
    assert counts(session, shop_id) == scored

    enqueue_sync(session, shop_id, datetime.now(UTC))  # a sync job: the stamp moves, so a recount
    assert counts(session, shop_id) == 0

    # while the sync is pending the count may move without the stamp: again after 10 s at most
    session.execute(
        update(CustomerSyncState).where(CustomerSyncState.shop_id == shop_id).values(synced_hash=None)
    )
    clock[0] += 5
    assert counts(session, shop_id) == 0
    clock[0] += 6
    assert counts(session, shop_id) == scored
    assert session.scalar(select(func.count()).where(Job.shop_id == shop_id, Job.kind == SYNC)) == 1
    assert timedelta(seconds=counts.recount_every) == timedelta(seconds=10)
