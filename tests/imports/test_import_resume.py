"""Crashes, restarts, failures on Shopify's side, and a second request while one runs."""

from __future__ import annotations

from typing import Any

import pytest

from app.imports import pull, repository
from app.imports.schemas import ImportState
from tests.imports.conftest import SHOP, World, expected_aggregates, no_sleep, seed_history


def _step(world: World, **kwargs: Any) -> pull.ImportProgress:
    return world.run(lambda admin: pull.advance_import(world.factory, admin, world.shop_id, **kwargs))


def _start(world: World) -> pull.ImportProgress:
    return world.run(lambda admin: pull.start_import(world.factory, world.shop_id))


def _finish(world: World) -> pull.ImportProgress:
    return world.run(lambda admin: pull.run_import(world.factory, admin, world.shop_id, sleep=no_sleep))


def test_a_crash_mid_ingest_resumes_without_counting_twice(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed_history(world.store, 1200)
    # the batch write the ingest calls: COPY text on PostgreSQL, ledger rows on SQLite
    name = "write_ledger_text" if world.engine.dialect.name == "postgresql" else "write_ledger_rows"
    real = getattr(repository, name)
    calls = {"n": 0}

    def crash_on_third_batch(*args: Any) -> int:
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("worker killed")
        return int(real(*args))

    monkeypatch.setattr(repository, name, crash_on_third_batch)
    _start(world)
    _step(world)  # queued → running
    _step(world)  # running → downloading
    with pytest.raises(RuntimeError):
        _step(world, batch_rows=200)
    crashed = world.import_row()
    assert crashed.state == ImportState.ingesting and crashed.lines_done == 400

    progress = _finish(world)

    assert progress.state == ImportState.done
    assert progress.orders_done == len(world.store.shop(SHOP).orders)
    assert world.aggregates() == expected_aggregates(world.store)


def test_a_step_with_a_time_budget_stops_at_a_committed_position_and_the_next_resumes(world: World) -> None:
    seed_history(world.store, 900)
    _start(world)
    _step(world)
    _step(world)

    first = _step(world, budget_s=0, batch_rows=100)

    row = world.import_row()
    assert first.state == ImportState.ingesting and 0 < row.lines_done < 900 and row.bytes_done > 0
    assert _finish(world).orders_done == len(world.store.shop(SHOP).orders)
    assert world.aggregates() == expected_aggregates(world.store)


def test_a_second_start_while_one_runs_does_not_start_another(world: World) -> None:
    seed_history(world.store, 40)
    world.store.bulk.auto_complete = False
    _start(world)
    _step(world)
    run_id = world.import_row().run_id

    again = _start(world)
    _step(world)

    assert again.state == ImportState.running
    assert world.import_row().run_id == run_id
    assert len(world.store.bulk.all(SHOP)) == 1


def test_an_operation_started_before_a_crash_is_adopted_not_doubled(world: World) -> None:
    seed_history(world.store, 40)
    world.store.bulk.auto_complete = False
    _start(world)
    # The previous worker started the export, then died before recording it.
    world.run(
        lambda admin: admin.execute(
            SHOP, _token(world), pull.RUN_BULK_QUERY, {"query": pull.BULK_ORDERS_QUERY}
        )
    )

    _step(world)

    ops = world.store.bulk.all(SHOP)
    assert len(ops) == 1 and world.import_row().bulk_operation_id == ops[0].gid


def test_a_failed_bulk_operation_is_reported_then_retried(world: World) -> None:
    seed_history(world.store, 60)
    world.store.bulk.auto_complete = False
    _start(world)
    _step(world)
    first = world.store.bulk.all(SHOP)[0]
    world.store.bulk.fail(SHOP, first.id, "INTERNAL_SERVER_ERROR")

    retrying = _step(world)

    assert retrying.state == ImportState.queued
    assert retrying.error is not None and "internal error" in retrying.error and retrying.attempts == 1
    world.store.bulk.auto_complete = True
    done = _finish(world)
    assert done.state == ImportState.done and done.error is None
    assert len(world.store.bulk.all(SHOP)) == 2
    assert world.aggregates() == expected_aggregates(world.store)


def test_an_expired_result_file_starts_a_new_operation(world: World) -> None:
    seed_history(world.store, 60)
    _start(world)
    _step(world)
    _step(world)
    assert world.import_row().state == ImportState.downloading
    world.store.bulk.expire(SHOP, world.import_row().bulk_operation_id or "")

    expired = _step(world)

    assert expired.state == ImportState.queued and "expired" in (expired.error or "")
    assert _finish(world).state == ImportState.done
    assert world.aggregates() == expected_aggregates(world.store)


def test_an_operation_failing_every_time_ends_failed_with_the_reason(world: World) -> None:
    seed_history(world.store, 10)
    world.store.bulk.auto_complete = False
    _start(world)
    progress = None
    for _ in range(pull.MAX_ATTEMPTS):
        _step(world)
        op = world.store.bulk.all(SHOP)[-1]
        world.store.bulk.fail(SHOP, op.id, "TIMEOUT")
        progress = _step(world)

    assert progress is not None and progress.state == ImportState.failed
    assert progress.error is not None and "too long" in progress.error and progress.finished_at is not None


def test_too_many_running_exports_keep_the_import_queued(world: World) -> None:
    world.store.bulk.auto_complete = False
    world.store.bulk.max_concurrent = 0
    _start(world)

    waiting = _step(world)

    assert waiting.state == ImportState.queued and "too many exports" in (waiting.error or "")


def _token(world: World) -> str:
    from app.models import Shop
    from app.shops.tokens import access_token, token_cipher

    with world.factory() as s:
        shop = s.get(Shop, world.shop_id)
        assert shop is not None
        token = access_token(shop, token_cipher(world.settings))
        assert token is not None
        return token


def _ingest_the_file(world: World) -> None:
    _start(world)
    _step(world)  # queued → running
    _step(world)  # running → downloading
    _step(world)  # the whole file into the ledger
    assert world.import_row().ledger_done_at is not None


@pytest.mark.both_dbs
def test_the_aggregates_step_stops_within_its_budget_at_a_committed_chunk_and_resumes(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed_history(world.store, 300)
    monkeypatch.setattr(pull, "CUSTOMER_CHUNK", 7)
    _ingest_the_file(world)

    first = _step(world, budget_s=0)

    assert first.state == ImportState.ingesting and world.import_row().aggregates_after is not None
    assert _finish(world).state == ImportState.done
    assert world.aggregates() == expected_aggregates(world.store)


def test_a_failed_chunk_of_aggregates_leaves_the_position_at_the_chunk_before_it(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed_history(world.store, 300)
    monkeypatch.setattr(pull, "CUSTOMER_CHUNK", 5)
    _ingest_the_file(world)
    with world.factory() as s:
        ids = repository.customer_ids(s, world.shop_id, None)
    real = repository.recompute_customers

    def third_chunk_fails(session: Any, shop_id: int, chunk: Any, now: Any) -> None:
        if chunk[0] == ids[10]:
            raise RuntimeError("worker killed")
        real(session, shop_id, chunk, now)

    monkeypatch.setattr(repository, "recompute_customers", third_chunk_fails)
    with pytest.raises(RuntimeError):
        _step(world)

    # the fourth chunk, recomputed beside the third, did not move the position past it
    assert world.import_row().aggregates_after == ids[9]
    monkeypatch.setattr(repository, "recompute_customers", real)
    assert _finish(world).state == ImportState.done
    assert world.aggregates() == expected_aggregates(world.store)
