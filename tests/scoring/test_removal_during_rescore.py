"""A rescore rewrites score rows by deleting and copying them in (PostgreSQL), so a customer
removed while it runs must not come back: removed before it writes, it drops what it wrote for
them; redacted while it writes, the redaction waits for its commit and then erases. And what marks
a customer to score: deliveries always, the import only customers who have scores."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session, sessionmaker

from app.customers import repository as customers_repo
from app.models import Customer, CustomerScore, Shop
from app.orders import service as orders_service
from app.privacy import service as privacy
from app.scoring import load, service, store
from app.shops import repository as shops_repo
from tests.fixtures.database import until_waiting_on_a_lock
from tests.scoring.ledger import add_order, at

NOW = at("2026-06-01")


def _scored(session: Session, shop_id: int) -> list[int]:
    session.expire_all()
    return list(
        session.scalars(
            select(CustomerScore.customer_id)
            .where(CustomerScore.shop_id == shop_id)
            .order_by(CustomerScore.customer_id)
        )
    )


def _postgres_only(session: Session) -> None:
    if not load.is_postgres(session):
        pytest.skip("SQLite has one writer at a time: nothing runs during a rescore")


@pytest.mark.parametrize("full", [True, False])
def test_a_customer_redacted_after_the_rescore_read_them_gets_no_scores_back(
    session: Session, engine: Engine, five_customer_shop: int, monkeypatch: pytest.MonkeyPatch, full: bool
) -> None:
    _postgres_only(session)
    shop_id = five_customer_shop
    if not full:  # an incremental rescore of customer 3 (a new order)
        service.rescore_shop(session, shop_id, NOW)
        session.commit()
        add_order(session, shop_id, 3, "2026-06-01T13:00", now=at("2026-06-01T13:00"))
    real_lock = store.lock_scores

    def redact_first(s: Session, shop: int) -> int:
        monkeypatch.setattr(store, "lock_scores", real_lock)  # the removal takes it too
        with sessionmaker(engine).begin() as other:
            privacy.redact_customer(other, shop, 3, [], NOW)
        return real_lock(s, shop)

    monkeypatch.setattr(store, "lock_scores", redact_first)
    result = service.rescore_shop(session, shop_id, at("2026-06-01T14:00"), full=full)
    session.commit()

    assert result.full is full
    # first scoring: its row was copied in, then dropped; scored before: the update found no row
    assert (3 in result.removed) is full
    assert _scored(session, shop_id) == [1, 2, 4, 5]


def test_a_redaction_during_the_rescore_writes_waits_and_then_erases(
    session: Session, engine: Engine, five_customer_shop: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    _postgres_only(session)
    shop_id = five_customer_shop
    redaction = threading.Thread(
        target=lambda: _redact(engine, shop_id, 3),
        daemon=True,
    )
    real_insert = store.insert_stage_changes
    waited: list[bool] = []

    def start_redaction_then_go_on(*args: Any, **kwargs: Any) -> int:
        redaction.start()  # the scores are written, not committed
        until_waiting_on_a_lock(engine, redaction, "the redaction")
        waited.append(redaction.is_alive())
        return real_insert(*args, **kwargs)

    monkeypatch.setattr(store, "insert_stage_changes", start_redaction_then_go_on)
    service.rescore_shop(session, shop_id, NOW)
    session.commit()
    redaction.join(10)

    assert waited == [True] and not redaction.is_alive()
    assert _scored(session, shop_id) == [1, 2, 4, 5]


def _redact(engine: Engine, shop_id: int, customer_id: int) -> None:
    with sessionmaker(engine).begin() as other:
        privacy.redact_customer(other, shop_id, customer_id, [], NOW)


def test_a_merge_after_the_rescore_read_the_customers_drops_the_merged_away_scores(
    session: Session, engine: Engine, five_customer_shop: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    _postgres_only(session)
    shop_id = five_customer_shop
    real_lock = store.lock_scores

    def merge_first(s: Session, shop: int) -> int:
        monkeypatch.setattr(store, "lock_scores", real_lock)  # the removal takes it too
        with sessionmaker(engine).begin() as other:
            orders_service.merge_customers(other, shop, 1, 5, NOW)
        return real_lock(s, shop)

    monkeypatch.setattr(store, "lock_scores", merge_first)
    result = service.rescore_shop(session, shop_id, NOW)
    session.commit()

    assert 5 in result.removed
    assert _scored(session, shop_id) == [1, 2, 3, 4]
    assert session.get(Shop, shop_id).customers_removed == 1  # type: ignore[union-attr]


@pytest.mark.both_dbs
def test_the_import_marks_only_customers_with_scores_and_never_clears_a_mark(
    session: Session, five_customer_shop: int
) -> None:
    shop_id = five_customer_shop
    service.rescore_shop(session, shop_id, NOW)
    add_order(session, shop_id, 6, "2026-05-31")  # a delivery marks a new buyer
    session.execute(update(Customer).where(Customer.customer_id != 6).values(score_pending=False))
    session.commit()

    shops_repo.hold_shop(session, shop_id)  # as the import's aggregates do
    customers_repo.recompute(session, shop_id, [1, 2, 3, 4, 5, 6, 7], NOW, mark_unscored=False)
    session.commit()
    session.expire_all()
    marked = session.scalars(
        select(Customer.customer_id).where(Customer.shop_id == shop_id, Customer.score_pending)
    ).all()

    assert sorted(marked) == [1, 2, 3, 4, 5, 6]  # 6: marked by its delivery; 7: no scores, no mark
