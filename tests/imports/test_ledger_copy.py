"""The history import's batch write on PostgreSQL (``repository.write_ledger_text``): COPY straight
into the ledger when the batch's order ids meet nothing stored, the upsert otherwise; either way
the webhook path's rules hold (the newer state wins, a deleted order stays deleted)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from app.imports import repository as repo
from app.imports.schemas import LedgerText, copy_text, ledger_row
from app.models import Order
from app.orders import repository as orders_repo
from app.orders.schemas import OrderFacts
from tests.fixtures.factories import create_shop

T0 = datetime(2025, 3, 1, tzinfo=UTC)


def _line(order_id: int, updated: datetime, total: str = "10.00") -> tuple[int, str]:
    facts = OrderFacts(
        order_id=order_id,
        customer_id=7,
        ordered_at=T0,
        updated_at=updated,
        cancelled_at=None,
        test=False,
        financial_status="paid",
        current_total=Decimal(total),
        total_discounts=Decimal(0),
        discount_codes=(),
        source_name="web",
        presentment_total=Decimal(total),
    )
    return order_id, copy_text(ledger_row(facts))


def _write(session: Session, shop_id: int, *lines: tuple[int, str]) -> int:
    """One batch through the import's write: the lines in ascending order id, as COPY text."""
    return repo.write_ledger_text(session, shop_id, LedgerText.of(shop_id, lines))


def _ledger(session: Session, shop_id: int) -> dict[int, tuple[datetime, Decimal]]:
    rows = session.query(Order).filter(Order.shop_id == shop_id).all()
    return {o.order_id: (o.source_updated_at, o.current_total) for o in rows}


def _no_upsert(*args: Any, **kwargs: Any) -> int:
    raise AssertionError("the batch took the upsert")


def _count_upserts(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    upsert = repo.write_ledger_rows

    def counted(session: Session, shop_id: int, rows: Any) -> int:
        calls.append(len(rows))
        return upsert(session, shop_id, rows)

    monkeypatch.setattr(repo, "write_ledger_rows", counted)
    return calls


def _range_looks_new(monkeypatch: pytest.MonkeyPatch) -> None:
    """What a delivery committing between the check and the COPY looks like: the check saw nothing."""
    monkeypatch.setattr(repo, "_RANGE_IS_NEW", text("SELECT TRUE"))


def test_a_batch_of_new_orders_goes_straight_into_the_ledger(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    shop = create_shop(session)
    monkeypatch.setattr(repo, "write_ledger_rows", _no_upsert)

    assert _write(session, shop.shop_id, _line(1, T0), _line(2, T0, "25.50")) == 2
    session.commit()

    assert _ledger(session, shop.shop_id) == {1: (T0, Decimal("10.00")), 2: (T0, Decimal("25.50"))}


def test_a_batch_meeting_a_stored_order_takes_the_upsert_and_keeps_the_newer_state(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    shop = create_shop(session)
    later = T0 + timedelta(hours=1)
    _write(session, shop.shop_id, _line(2, later, "30.00"))
    upserts = _count_upserts(monkeypatch)

    _write(session, shop.shop_id, _line(1, T0), _line(2, T0, "99.00"), _line(3, T0))
    session.commit()

    assert upserts == [3]
    assert _ledger(session, shop.shop_id) == {
        1: (T0, Decimal("10.00")),
        2: (later, Decimal("30.00")),
        3: (T0, Decimal("10.00")),
    }


def test_an_order_stored_after_the_check_sends_the_batch_to_the_upsert(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    shop = create_shop(session)
    later = T0 + timedelta(hours=1)
    _write(session, shop.shop_id, _line(2, later, "30.00"))
    _range_looks_new(monkeypatch)
    upserts = _count_upserts(monkeypatch)

    _write(session, shop.shop_id, _line(1, T0), _line(2, T0, "99.00"), _line(3, T0))
    session.commit()

    assert upserts == [3]  # the COPY failed on order 2 and rolled back to its savepoint
    assert _ledger(session, shop.shop_id) == {
        1: (T0, Decimal("10.00")),
        2: (later, Decimal("30.00")),
        3: (T0, Decimal("10.00")),
    }


def test_a_deletion_met_after_the_copy_is_dropped_again(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    shop = create_shop(session)
    orders_repo.remove(session, shop.shop_id, [2], T0)
    _range_looks_new(monkeypatch)
    monkeypatch.setattr(repo, "write_ledger_rows", _no_upsert)

    assert _write(session, shop.shop_id, _line(1, T0), _line(2, T0), _line(3, T0)) == 2
    session.commit()

    assert set(_ledger(session, shop.shop_id)) == {1, 3}


def test_a_deleted_order_in_the_range_sends_the_batch_to_the_upsert(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    shop = create_shop(session)
    orders_repo.remove(session, shop.shop_id, [2], T0)
    upserts = _count_upserts(monkeypatch)

    _write(session, shop.shop_id, _line(1, T0), _line(2, T0), _line(3, T0))
    session.commit()

    assert upserts == [3]
    assert set(_ledger(session, shop.shop_id)) == {1, 3}
