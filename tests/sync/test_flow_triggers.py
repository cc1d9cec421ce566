"""Shopify Flow triggers: queued by the rescore for real changes only, fired once each by the sync
with flowTriggerReceive, into the double, which checks them against the app's extension tomls."""

from __future__ import annotations

import json
import threading
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import event, select, update
from sqlalchemy.orm import Session
from starlette.testclient import TestClient

from app.kit.db import WRITE_OPTION, write_transaction
from app.models import ClvFit, CustomerScore, FlowTriggerEvent, FlowTriggerUsage, Shop
from app.scoring import flow_events
from app.scoring import service as scoring
from app.scoring.store import erase_customer
from app.settings.service import update_settings
from app.sync import flow, push, service
from app.vocabulary import (
    FLOW_STAGE_CHANGED,
    FLOW_TRIGGER_HANDLES,
)
from shopify_double.flow import lifecycle_callback
from tests.fixtures.factories import order_payload
from tests.fixtures.webhooks import post_webhook
from tests.scoring.ledger import add_order, at
from tests.sync.conftest import SHOP, World

NOW = at("2026-03-05")


def enable(
    client: TestClient, world: World, *handles: str, enabled: bool = True, when: datetime = NOW
) -> None:
    """Flow's lifecycle callback, signed, through the app's endpoint."""
    for handle in handles:
        body, headers = lifecycle_callback(world.store, SHOP, handle, enabled, when)
        response = client.post("/flow/lifecycle", content=body, headers=headers)
        assert response.status_code == 200, response.text


def rescore(world: World, now: datetime, full: bool | None = None) -> None:
    with write_transaction(world.factory) as session:
        scoring.rescore_shop(session, world.shop_id, now, full=full)


def events(world: World) -> list[FlowTriggerEvent]:
    with world.factory() as session:
        return list(
            session.scalars(
                select(FlowTriggerEvent)
                .where(FlowTriggerEvent.shop_id == world.shop_id)
                .order_by(FlowTriggerEvent.id)
            )
        )


def fired(world: World) -> list[tuple[str, dict[str, Any]]]:
    return [(run.handle, run.payload) for run in world.store.shop(SHOP).flow_runs]


def monthly_buyers(world: World, session: Session) -> list[int]:
    """Four customers in the double, ordering every 30 days in the app's ledger (the shop's typical
    interval: at risk after 60 days without an order); the first one's last order is recent."""
    ids = [c.id for c in world.store.create_customers(SHOP, 4)]
    for n, customer_id in enumerate(ids):
        days = (
            ("2025-12-01", "2025-12-31", "2026-03-01")
            if n == 0
            else ("2026-01-04", "2026-02-03", "2026-03-04")
        )
        for k, day in enumerate(days):
            add_order(session, world.shop_id, customer_id, day, order_id=customer_id * 10 + k, now=at(day))
    world.customers.extend(ids)
    return ids


@pytest.mark.both_dbs
def test_a_live_order_that_moves_a_customer_into_at_risk_fires_one_stage_trigger(
    world: World, session: Session, client: TestClient
) -> None:
    ids = monthly_buyers(world, session)
    rescore(world, NOW)
    enable(client, world, FLOW_STAGE_CHANGED)
    world.sync()
    assert fired(world) == []

    # the customer's order of 2026-03-01 is cancelled: their last order is now 64 days old
    cancelled = order_payload(
        ids[0] * 10 + 2,
        ids[0],
        processed_at="2026-03-01T12:00:00+00:00",
        updated_at="2026-03-05T09:00:00+00:00",
        cancelled_at="2026-03-05T09:00:00+00:00",
    )
    assert post_webhook(client, "orders/cancelled", cancelled, SHOP).status_code == 200
    rescore(world, at("2026-03-05T09:01"))
    world.sync()
    world.sync()  # a second run has nothing more to send

    assert fired(world) == [
        (
            FLOW_STAGE_CHANGED,
            {
                "customer_id": ids[0],
                "Previous stage": "Active",
                "New stage": "At risk",
                "Predicted CLV": pytest.approx(fired(world)[0][1]["Predicted CLV"]),
                "Churn risk": pytest.approx(fired(world)[0][1]["Churn risk"]),
                "Currency": fired(world)[0][1]["Currency"],
            },
        )
    ]
    with world.factory() as s:
        score = s.get(CustomerScore, (world.shop_id, ids[0]))
        assert score is not None and score.stage == "at_risk"
        payload = fired(world)[0][1]
        assert payload["Predicted CLV"] == round(float(score.predicted_clv), 2)
        assert payload["Churn risk"] == round(float(score.churn_risk), 2)
    assert [e.status for e in events(world)] == ["sent"]


def _queue(world: World, count: int) -> list[int]:
    ids = [c.id for c in world.store.create_customers(SHOP, count)]
    rows = [
        {
            "shop_id": world.shop_id,
            "event_key": f"{FLOW_STAGE_CHANGED}:{c}:1",
            "handle": FLOW_STAGE_CHANGED,
            "customer_id": c,
            "payload": json.dumps(
                {
                    "customer_id": c,
                    "Previous stage": "Active",
                    "New stage": "At risk",
                    "Predicted CLV": 12.5,
                    "Churn risk": 0.4,
                    "Currency": "USD",
                }
            ),
        }
        for c in ids
    ]
    with write_transaction(world.factory) as session:
        flow_events.queue(session, rows, NOW)
        flow_events.queue(session, rows, NOW)  # the same changes again: nothing more is queued
    return ids


@pytest.mark.both_dbs
def test_a_retry_after_a_failure_fires_none_twice(
    world: World, client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    enable(client, world, FLOW_STAGE_CHANGED)
    world.sync()  # the app's segments exist: the next runs send triggers only
    ids = _queue(world, 30)
    tx = flow._tx
    documents: list[int] = []

    def outage_after_two_documents(factory: Any, fn: Any, *args: Any) -> Any:
        result = tx(factory, fn, *args)
        if fn is flow._record:
            documents.append(result)
            if len(documents) == 2:  # Shopify goes down: every retry of the third document fails too
                world.store.fail_next(SHOP, 1000)
        return result

    monkeypatch.setattr(flow, "_tx", outage_after_two_documents)
    with pytest.raises(push.AdminApiError):
        world.sync(flow_document_fields=7)
    assert len(fired(world)) == 14
    assert [e.status for e in events(world)].count("pending") == 16

    world.store.end_outage(SHOP)
    world.sync(flow_document_fields=7)  # the job's retry
    world.sync(flow_document_fields=7)

    sent = [p["customer_id"] for _, p in fired(world)]
    assert sorted(sent) == sorted(ids) and len(sent) == len(set(sent))
    assert {e.status for e in events(world)} == {"sent"}


def test_a_crash_after_a_document_is_recorded_sends_nothing_twice(
    world: World, client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    enable(client, world, FLOW_STAGE_CHANGED)
    ids = _queue(world, 30)
    tx = flow._tx
    recorded: list[int] = []

    def crash_after_second_commit(factory: Any, fn: Any, *args: Any) -> Any:
        result = tx(factory, fn, *args)  # committed
        if fn is flow._record:
            recorded.append(result)
            if len(recorded) == 2:
                raise push.SyncStopped
        return result

    monkeypatch.setattr(flow, "_tx", crash_after_second_commit)
    with pytest.raises(push.SyncStopped):
        world.sync(flow_document_fields=7)
    monkeypatch.setattr(flow, "_tx", tx)
    world.sync(flow_document_fields=7)

    sent = [p["customer_id"] for _, p in fired(world)]
    assert sorted(sent) == sorted(ids) and len(sent) == len(set(sent))


def test_a_crash_between_sending_and_recording_repeats_only_that_document(
    world: World, client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """flowTriggerReceive takes no idempotency key: the one document Shopify accepted before the
    crash is sent again, nothing else (docs/flow.md)."""
    enable(client, world, FLOW_STAGE_CHANGED)
    ids = _queue(world, 30)
    record = flow._record
    calls: list[int] = []

    def crash_before_second(session: Session, *args: Any) -> int:
        calls.append(1)
        if len(calls) == 2:
            raise push.SyncStopped
        return record(session, *args)

    monkeypatch.setattr(flow, "_record", crash_before_second)
    with pytest.raises(push.SyncStopped):
        world.sync(flow_document_fields=7)
    monkeypatch.setattr(flow, "_record", record)
    world.sync(flow_document_fields=7)

    sent = [p["customer_id"] for _, p in fired(world)]
    assert sorted(set(sent)) == sorted(ids)
    assert len(sent) == len(ids) + 7


@pytest.mark.both_dbs
def test_triggers_of_a_workflow_turned_off_are_dropped_unsent(world: World, client: TestClient) -> None:
    enable(client, world, FLOW_STAGE_CHANGED)
    _queue(world, 3)
    enable(client, world, FLOW_STAGE_CHANGED, enabled=False, when=at("2026-03-06T10:00"))
    enable(client, world, FLOW_STAGE_CHANGED, enabled=True, when=at("2026-03-06T09:00"))  # older: ignored
    world.sync()
    assert fired(world) == []
    assert {e.status for e in events(world)} == {"dropped"}


@pytest.mark.both_dbs
def test_a_refused_trigger_is_recorded_and_not_sent_again_after_its_last_attempt(
    world: World, client: TestClient
) -> None:
    enable(client, world, FLOW_STAGE_CHANGED)
    with write_transaction(world.factory) as session:
        flow_events.queue(
            session,
            [
                {
                    "shop_id": world.shop_id,
                    "event_key": "bad",
                    "handle": FLOW_STAGE_CHANGED,
                    "customer_id": 5,
                    "payload": json.dumps({"customer_id": 5, "New stage": 3}),
                }
            ],
            NOW,
        )
    for _ in range(flow.MAX_ATTEMPTS + 2):
        world.sync()
    [event] = events(world)
    assert event.status == "refused" and event.attempts == flow.MAX_ATTEMPTS
    assert event.error is not None and "'Previous stage' is required" in event.error
    assert fired(world) == []
    with world.factory() as session:
        shown = service.sync_status(session, world.shop_id).errors
    assert any(e.startswith("Shopify Flow refused 1 trigger after 3 tries") for e in shown), shown


# -- what fires none --------------------------------------------------------------------------------


def _enable_all(session: Session, shop_id: int) -> None:
    for handle in FLOW_TRIGGER_HANDLES:
        service.record_trigger_usage(session, shop_id, handle, True, NOW)
    session.commit()


def _queued(session: Session, shop_id: int) -> list[tuple[str, int]]:
    session.expire_all()
    rows = session.scalars(select(FlowTriggerEvent).where(FlowTriggerEvent.shop_id == shop_id))
    return sorted((r.handle, r.customer_id) for r in rows)


@pytest.mark.both_dbs
def test_a_refit_queues_no_trigger(session: Session, world: World) -> None:
    shop_id = world.shop_id
    for customer_id, days in (
        (1, ("2026-04-02", "2026-05-02")),
        (2, ("2026-03-03", "2026-04-02", "2026-05-02")),
    ):
        for day in days:
            add_order(session, shop_id, customer_id, day)
    scoring.rescore_shop(session, shop_id, at("2026-06-01"))  # segment formula: both active
    session.commit()
    _enable_all(session, shop_id)
    # a fit whose buyers drop out after almost every order: the same history reads as lapsed
    session.add(
        ClvFit(
            shop_id=shop_id,
            fitted_at=at("2026-06-01T13:00"),
            customers=2,
            repeat_buyers=2,
            orders=5,
            usable=True,
            r=0.24,
            alpha=4.4,
            a=50.0,
            b=0.5,
            fallback_order_value=50.0,
            seconds=0.1,
        )
    )
    session.commit()
    scoring.rescore_shop(session, shop_id, at("2026-06-01T14:00"))
    session.commit()

    assert {
        s.stage for s in session.scalars(select(CustomerScore).where(CustomerScore.shop_id == shop_id))
    } == {"lapsed"}  # the refit did move both customers (and their churn risk)
    assert _queued(session, shop_id) == []


@pytest.mark.both_dbs
def test_a_settings_change_queues_no_trigger(session: Session, world: World) -> None:
    shop_id = world.shop_id
    for customer_id in range(1, 11):
        for k in range(1 + customer_id % 4):
            add_order(
                session,
                shop_id,
                customer_id,
                f"2026-0{1 + (customer_id + k) % 5}-1{k}",
                str(20 * customer_id),
            )
    scoring.rescore_shop(session, shop_id, at("2026-06-01"))
    session.commit()
    _enable_all(session, shop_id)
    before = {s.customer_id: s.segment for s in session.scalars(select(CustomerScore))}
    update_settings(session, shop_id, {"scoring_method": "thirds"}, at("2026-06-01T12:10"))
    session.commit()
    scoring.rescore_shop(session, shop_id, at("2026-06-01T12:11"))
    session.commit()

    session.expire_all()
    after = {s.customer_id: s.segment for s in session.scalars(select(CustomerScore))}
    assert after != before  # every segment was renamed by the new method
    assert _queued(session, shop_id) == []


@pytest.mark.both_dbs
def test_time_passing_is_a_real_change_and_queues_each_trigger_once(session: Session, world: World) -> None:
    shop_id = world.shop_id
    for customer_id in (1, 2):
        for day in ("2026-05-01", "2026-05-31"):
            add_order(session, shop_id, customer_id, day)
    scoring.rescore_shop(session, shop_id, at("2026-06-01"))
    session.commit()
    _enable_all(session, shop_id)
    scoring.rescore_shop(session, shop_id, at("2026-08-15"))  # 76 days: both at risk
    session.commit()
    scoring.rescore_shop(session, shop_id, at("2026-08-15T00:10"))  # again: nothing new
    session.commit()
    queued = _queued(session, shop_id)
    assert queued.count((FLOW_STAGE_CHANGED, 1)) == 1 and queued.count((FLOW_STAGE_CHANGED, 2)) == 1


@pytest.mark.both_dbs
def test_every_trigger_a_rescore_queues_is_accepted_by_flow(
    session: Session, world: World, client: TestClient
) -> None:
    """Time passing moves stages, segments, churn risk and tiers; each payload the rescore builds
    matches its extension (the double refuses any that does not)."""
    ids = [c.id for c in world.store.create_customers(SHOP, 12)]
    for n, customer_id in enumerate(ids):
        for k in range(1 + n % 3):
            add_order(
                session, world.shop_id, customer_id, f"2026-0{1 + (n + k) % 5}-0{1 + k}", str(15 * (n + 1))
            )
    world.customers.extend(ids)
    rescore(world, at("2026-06-01"))
    enable(client, world, *FLOW_TRIGGER_HANDLES, when=at("2026-06-01"))
    for customer_id in ids[:4]:  # some come back
        add_order(session, world.shop_id, customer_id, "2026-09-14", "400.00")
    rescore(world, at("2026-09-15"), full=True)  # months later: everyone moved on
    world.sync()

    statuses = {(e.handle, e.status) for e in events(world)}
    assert {status for _, status in statuses} == {"sent"}, [e.error for e in events(world) if e.error]
    assert {h for h, _ in statuses} == set(FLOW_TRIGGER_HANDLES)  # on both databases
    assert len(fired(world)) == len(events(world))


@pytest.mark.both_dbs
def test_a_redacted_customer_leaves_no_trigger_behind(world: World, client: TestClient) -> None:
    enable(client, world, FLOW_STAGE_CHANGED)
    ids = _queue(world, 2)
    with write_transaction(world.factory) as session:
        erase_customer(session, world.shop_id, ids[0])
    assert [e.customer_id for e in events(world)] == [ids[1]]


@pytest.mark.both_dbs
def test_the_callback_waits_for_a_writer_of_another_process(world: World, client: TestClient) -> None:
    """Flow's callback arrives while another process (the worker) holds a write transaction, which
    commits once the callback has begun: the callback waits for it and answers 200. On SQLite a
    callback that read the shop before taking the write lock would fail at once (503)."""
    held, reached = threading.Event(), threading.Event()
    writer_thread: list[int] = []

    def begun(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        # the callback's first read (a deferred transaction) or its wait for the write lock
        if threading.get_ident() not in writer_thread and not statement.startswith("BEGIN"):
            reached.set()

    def waiting(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if threading.get_ident() not in writer_thread and statement == "BEGIN IMMEDIATE":
            reached.set()

    def other_process() -> None:
        writer_thread.append(threading.get_ident())
        with world.engine.connect() as conn, conn.execution_options(**{WRITE_OPTION: True}).begin():
            conn.execute(
                update(Shop).where(Shop.shop_id == world.shop_id).values(access_token_expires_at=world.tick())
            )
            held.set()
            assert reached.wait(timeout=30)

    event.listen(world.engine, "after_cursor_execute", begun)
    event.listen(world.engine, "before_cursor_execute", waiting)
    writer = threading.Thread(target=other_process)
    try:
        writer.start()
        assert held.wait(timeout=30)
        enable(client, world, FLOW_STAGE_CHANGED)
    finally:
        reached.set()
        writer.join()
        event.remove(world.engine, "after_cursor_execute", begun)
        event.remove(world.engine, "before_cursor_execute", waiting)
    with world.factory() as session:
        usage = session.get(FlowTriggerUsage, (world.shop_id, FLOW_STAGE_CHANGED))
        assert usage is not None and usage.enabled
