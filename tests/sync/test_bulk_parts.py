"""A bulk sync in parts (docs/operations.md, "Large syncs"): each phase's JSONL cut under a byte
limit, at most ``concurrency`` parts running in Shopify at once, each part's state kept so that a
crash resumes part by part, and a file Shopify refuses ends its part with the reason shown."""

from __future__ import annotations

from itertools import pairwise
from typing import Any

import pytest
from sqlalchemy import select

from app.models import ShopPushState, SyncBulkPart
from app.shopify import bulk_mutation
from app.shopify.admin_client import AdminApiError, AdminClient
from app.sync import push, service
from shopify_double import bulk as double_bulk
from tests.sync.conftest import SHOP, World, seed

LIMITS = push.BulkLimits(part_bytes=4_000, concurrency=5)
"""About three customers' metafields per part: a shop of 30 customers needs many parts."""


def _runs(world: World) -> int:
    return sum(1 for c in world.calls() if "bulkOperationRunMutation" in c.query)


def _stagings(world: World) -> int:
    return sum(1 for c in world.calls() if "stagedUploadsCreate" in c.query)


def _parts(world: World) -> list[SyncBulkPart]:
    with world.factory() as session:
        return list(
            session.scalars(
                select(SyncBulkPart)
                .where(SyncBulkPart.shop_id == world.shop_id)
                .order_by(SyncBulkPart.phase, SyncBulkPart.part)
            )
        )


def _step(world: World, limits: push.BulkLimits = LIMITS) -> float | None:
    async def go(admin: AdminClient) -> float | None:
        return await push.sync_shop(
            world.factory,
            admin,
            world.shop_id,
            world.token,
            world.tick,
            bulk_threshold=10,
            bulk_limits=limits,
        )

    return world.run(go)


def _in_step(world: World, ids: list[int]) -> None:
    for cid in ids:
        assert world.metafields(cid)["rfm_segment"][1], cid
        assert any(t.startswith("rfm:") for t in world.tags(cid)), cid
    states = world.states()
    assert all(states[c].inflight is None and states[c].error is None for c in ids)


def test_a_bulk_sync_is_cut_into_parts_under_the_limit_and_runs_five_at_a_time(world: World) -> None:
    ids = seed(world, 30)
    world.store.bulk.auto_complete = False
    assert _step(world) is not None
    parts = _parts(world)
    metafields = [p for p in parts if p.phase == "metafields"]
    assert len(metafields) >= 7  # 30 customers' metafields, about 1 KB each, in 4 KB files
    assert all(0 < p.bytes <= LIMITS.part_bytes for p in metafields)
    assert sum(p.lines for p in metafields) == 30
    # the parts are consecutive customer ranges, none shared
    assert all(a.last_customer_id < b.first_customer_id for a, b in pairwise(metafields))
    uploads = [u for u in world.store.bulk.uploads.values() if u.content is not None]
    assert sorted(len(u.content or b"") for u in uploads) == sorted(p.bytes for p in metafields[:5])
    running = [op for op in world.store.bulk.all(SHOP) if op.status in ("CREATED", "RUNNING")]
    assert len(running) == 5 and _runs(world) == 5
    assert [p.state for p in metafields[:5]] == ["running"] * 5
    assert {p.state for p in metafields[5:]} == {"pending"}
    with world.factory() as session:
        assert service.sync_status(session, world.shop_id).bulk_running

    world.store.bulk.auto_complete = True
    for op in running:
        world.store.bulk.complete(SHOP, op.id)
    assert world.sync(bulk_threshold=10, bulk_limits=LIMITS) is None
    _in_step(world, ids)
    # the tags of 30 customers (a line each, about 100 bytes) fit one 4 KB part
    assert _runs(world) == len(metafields) + 1
    assert _parts(world) == []  # a finished bulk sync keeps no parts


def test_shopifys_concurrency_limit_is_waited_for_not_failed(world: World) -> None:
    """Another bulk operation of the app holds Shopify's slots: the part staged meanwhile starts
    when one is free, nothing is refused or uploaded twice."""
    ids = seed(world, 12)
    world.store.bulk.auto_complete = False
    world.store.bulk.max_concurrent_mutations = 2
    assert _step(world) is not None
    states = [p.state for p in _parts(world) if p.phase == "metafields"]
    assert states[:3] == ["running", "running", "staged"]  # the third start got LIMIT_REACHED
    stagings = _stagings(world)
    for op in world.store.bulk.all(SHOP):
        world.store.bulk.complete(SHOP, op.id)
    world.store.bulk.auto_complete = True
    assert world.sync(bulk_threshold=10, bulk_limits=LIMITS) is None
    _in_step(world, ids)
    parts = len(world.store.bulk.all(SHOP))
    assert _stagings(world) - stagings == parts - 3  # the staged part was not uploaded again
    assert _runs(world) == parts + 1  # one LIMIT_REACHED, every part run once


class Crash(Exception):
    pass


@pytest.mark.parametrize("lost", ["before the start", "the start's answer"])
def test_a_crash_between_staging_and_running_is_resumed_without_a_second_operation(
    world: World, monkeypatch: pytest.MonkeyPatch, lost: str
) -> None:
    ids = seed(world, 12)
    real = bulk_mutation.run_mutation
    calls = 0

    async def crashing(*args: Any) -> str:
        nonlocal calls
        calls += 1
        if calls == 2:  # the second part: staged, then the worker dies
            if lost == "the start's answer":
                await real(*args)  # Shopify started it; the answer never arrives
            raise Crash
        return await real(*args)

    monkeypatch.setattr(bulk_mutation, "run_mutation", crashing)
    with pytest.raises(Crash):
        _step(world)
    states = [p.state for p in _parts(world) if p.phase == "metafields"]
    assert states[:2] == ["running", "staged"]
    assert world.sync(bulk_threshold=10, bulk_limits=LIMITS) is None
    _in_step(world, ids)
    operations = world.store.bulk.all(SHOP)
    metafield_ops = [op for op in operations if "metafieldsSet" in op.query]
    names = [op.query.split("(", 1)[0] for op in metafield_ops]
    assert len(names) == len(set(names))  # no part ran twice
    assert _stagings(world) == len(operations)  # nor was uploaded twice


def test_a_crash_while_parts_run_follows_them_and_never_resends_a_finished_one(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = seed(world, 12)
    world.store.bulk.auto_complete = False
    assert _step(world) is not None  # every metafields part runs in Shopify
    first = [p for p in _parts(world) if p.phase == "metafields"]
    operations = world.store.bulk.all(SHOP)
    world.store.bulk.complete(SHOP, operations[0].id)
    real = push._record_part
    recorded = 0

    def crash_after_one(*args: Any) -> None:
        nonlocal recorded
        recorded += 1
        if recorded == 2:
            raise Crash  # the worker dies after the first part's outcome was recorded
        real(*args)

    monkeypatch.setattr(push, "_record_part", crash_after_one)
    world.store.bulk.complete(SHOP, operations[1].id)
    with pytest.raises(Crash):
        _step(world)
    monkeypatch.setattr(push, "_record_part", real)
    runs = _runs(world)
    assert runs == len(first)
    states = [p.state for p in _parts(world) if p.phase == "metafields"]
    assert states.count("done") == 1 and states.count("running") == len(first) - 1

    world.store.bulk.auto_complete = True
    assert world.sync(bulk_threshold=10, bulk_limits=LIMITS) is None
    _in_step(world, ids)
    metafield_runs = [op for op in world.store.bulk.all(SHOP) if "metafieldsSet" in op.query]
    assert len(metafield_runs) == len(first)  # followed, not re-sent


def test_a_file_shopify_refuses_ends_its_part_with_the_reason_shown(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The double's file limit lowered under the app's part size: Shopify refuses every metafields
    file. Each part ends once (no retry loop), the status names the refusal, and the customers stay
    due: the rest of the step writes them call by call."""
    ids = seed(world, 12)
    monkeypatch.setattr(double_bulk, "MAX_UPLOAD_BYTES", 2_500)
    world.store.bulk.auto_complete = False

    assert _step(world) is not None  # the tags part runs; every metafields part was refused
    parts = _parts(world)
    refused = [p for p in parts if p.phase == "metafields"]
    assert {p.state for p in refused} == {"failed"}
    assert all("File size is too large" in (p.error or "") for p in refused)
    assert _stagings(world) == len(refused) + 1  # each asked once, and the tags part
    with world.factory() as session:
        status = service.sync_status(session, world.shop_id)
        push_row = session.get(ShopPushState, world.shop_id)
        assert push_row is not None and push_row.bulk_error is not None
    assert any(
        "Shopify refused the bulk write of the metafields: File size is too large" in e for e in status.errors
    )

    world.store.bulk.auto_complete = True
    assert world.sync(bulk_threshold=10, bulk_limits=LIMITS) is None
    _in_step(world, ids)  # written call by call after the bulk sync ended
    with world.factory() as session:
        assert not service.sync_status(session, world.shop_id).errors
    assert _stagings(world) == len(refused) + 1  # + the tags part: nothing was staged again


def test_a_staged_file_that_expired_while_waiting_is_uploaded_again(world: World) -> None:
    ids = seed(world, 12)
    world.store.bulk.auto_complete = False
    world.store.bulk.max_concurrent_mutations = 1
    assert _step(world) is not None
    metafields = [p for p in _parts(world) if p.phase == "metafields"]
    assert [p.state for p in metafields[:2]] == ["running", "staged"]
    assert metafields[1].staged_path is not None
    del world.store.bulk.uploads[metafields[1].staged_path]  # Shopify's staged upload expired
    for op in world.store.bulk.all(SHOP):
        world.store.bulk.complete(SHOP, op.id)
    stagings = _stagings(world)
    world.store.bulk.auto_complete = True
    assert world.sync(bulk_threshold=10, bulk_limits=LIMITS) is None
    _in_step(world, ids)
    # NO_SUCH_FILE: the waiting part staged once more, the parts not staged yet, the tags part
    assert _stagings(world) - stagings == 1 + (len(metafields) - 2) + 1
    assert len(world.store.bulk.all(SHOP)) == len(metafields) + 1  # each part ran once


def test_an_upload_that_keeps_failing_ends_its_part_after_three_tries(world: World) -> None:
    """The storage answers 503: the step fails and is retried (a job retry), the part counting its
    tries; the third ends the part with the reason shown, and the sync goes on without it."""
    ids = seed(world, 12)
    world.store.bulk.failing_uploads = push.BULK_PART_ATTEMPTS
    world.store.bulk.auto_complete = False
    for attempt in range(1, push.BULK_PART_ATTEMPTS):
        with pytest.raises(AdminApiError, match="HTTP 503"):
            _step(world)
        assert _parts(world)[0].attempts == attempt
    assert _step(world) is not None  # the third failure ends the part; the others run
    failed = [p for p in _parts(world) if p.state == "failed"]
    assert len(failed) == 1 and "HTTP 503" in (failed[0].error or "") and "3 tries" in (failed[0].error or "")
    with world.factory() as session:
        errors = service.sync_status(session, world.shop_id).errors
    assert any("Shopify refused the bulk write of the metafields" in e and "503" in e for e in errors)

    for op in world.store.bulk.all(SHOP):
        world.store.bulk.complete(SHOP, op.id)
    world.store.bulk.auto_complete = True
    assert world.sync(bulk_threshold=10, bulk_limits=LIMITS) is None
    assert _parts(world) == []  # the bulk sync is over
    _in_step(world, ids)  # the ended part's customers were written call by call
    uploads = [u for u in world.store.bulk.uploads.values() if u.content is not None]
    assert len(uploads) == len(world.store.bulk.all(SHOP))  # every other part uploaded once
