"""The ledger and the customers have no foreign key to shops (migration 0027): every writer holds
the shop's row instead (`app.shops.repository.hold_shop`, and `rfm_ingest_order`'s shop lookup),
once per transaction, as the key check held it once per row. The guarantees the keys gave still
hold: nothing is written for a shop that does not exist, and erasing a shop while an import batch,
its aggregates or an order delivery is in flight leaves none of their rows behind (the erasure
waits for them and deletes what they wrote, or they wait for it and find no shop).

Tests without the `both_dbs` mark run on PostgreSQL alone (SQLite runs one write transaction at
a time: nothing races). The races are run with a fixed interleaving: one side holds its
transaction open, the other is started in a thread and is seen waiting on a lock in `pg_locks`,
then the first commits."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from sqlalchemy import Engine, inspect, select, text, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from app.imports import repository as imports_repo
from app.imports.schemas import LedgerText, copy_text, ledger_row
from app.kit.db import libpq_url
from app.models import Customer, Order, Shop
from app.orders import service as orders_service
from app.orders.schemas import OrderFacts
from app.privacy import service as privacy
from app.shops import repository as shops_repo
from tests.fixtures.database import until_waiting_on_a_lock
from tests.fixtures.factories import create_shop

NOW = datetime(2026, 3, 1, tzinfo=UTC)
MISSING = 987_654


def _facts(order_id: int, customer_id: int | None = 7) -> OrderFacts:
    return OrderFacts(
        order_id=order_id,
        customer_id=customer_id,
        ordered_at=NOW,
        updated_at=NOW,
        cancelled_at=None,
        test=False,
        financial_status="paid",
        current_total=Decimal("10.00"),
        total_discounts=Decimal(0),
        discount_codes=(),
        source_name="web",
        presentment_total=Decimal("10.00"),
    )


def _batch(shop_id: int, *order_ids: int) -> LedgerText:
    return LedgerText.of(shop_id, [(o, copy_text(ledger_row(_facts(o)))) for o in order_ids])


def _rows(session: Session, shop_id: int) -> tuple[int, int]:
    session.expire_all()
    orders = session.scalars(select(Order.order_id).where(Order.shop_id == shop_id)).all()
    customers = session.scalars(select(Customer.customer_id).where(Customer.shop_id == shop_id)).all()
    return len(orders), len(customers)


# -- no row for a shop that does not exist -----------------------------------------------------------


@pytest.mark.both_dbs
def test_the_ledger_and_the_customers_have_no_foreign_key_to_shops(engine: Engine) -> None:
    tables = inspect(engine)
    for table in ("orders", "customers"):
        assert [k for k in tables.get_foreign_keys(table) if k["referred_table"] == "shops"] == []


WRITERS: dict[str, Callable[[Session, int], object]] = {
    "order delivery (Python rules)": lambda s, shop: orders_service.apply_order(s, shop, _facts(1), NOW),
    "order deletion": lambda s, shop: orders_service.delete_order(s, shop, 1, NOW),
    "customer merge": lambda s, shop: orders_service.merge_customers(s, shop, 7, 8, NOW),
    "import batch (rows)": lambda s, shop: imports_repo.write_ledger_rows(s, shop, [ledger_row(_facts(1))]),
    "import aggregates": lambda s, shop: imports_repo.recompute_customers(s, shop, [7], NOW),
}


@pytest.mark.both_dbs
@pytest.mark.parametrize("writer", sorted(WRITERS))
def test_a_writer_refuses_a_shop_that_does_not_exist(session: Session, writer: str) -> None:
    with pytest.raises(LookupError, match=f"shop {MISSING} does not exist"):
        WRITERS[writer](session, MISSING)
    session.rollback()

    assert _rows(session, MISSING) == (0, 0)


def test_an_import_batch_as_copy_text_refuses_a_shop_that_does_not_exist(session: Session) -> None:
    with pytest.raises(LookupError, match=f"shop {MISSING} does not exist"):
        imports_repo.write_ledger_text(session, MISSING, _batch(MISSING, 1, 2))
    session.rollback()

    assert _rows(session, MISSING) == (0, 0)


def test_the_delivery_function_writes_nothing_for_an_erased_shop(session: Session, engine: Engine) -> None:
    shop = create_shop(session)
    privacy.redact_shop(session, shop.shop_id)
    session.commit()

    assert _ingest(engine, shop.domain, 1) == "unknown shop"
    assert _rows(session, shop.shop_id) == (0, 0)


def test_writers_of_one_shop_hold_it_together_and_the_shop_row_stays_writable(
    session: Session, engine: Engine
) -> None:
    """The hold is the key check's shared lock (`FOR KEY SHARE`), not an exclusive one: two import
    chunks or deliveries of one shop hold it at once, and the shop's own columns can still be
    updated (`last_webhook_at`, `customers_removed`). A lock timeout, not a wait, would say otherwise."""
    shop = create_shop(session)
    shops_repo.hold_shop(session, shop.shop_id)
    with sessionmaker(engine)() as other:
        other.execute(text("SET LOCAL lock_timeout = '2s'"))
        shops_repo.hold_shop(other, shop.shop_id)
        other.execute(update(Shop).where(Shop.shop_id == shop.shop_id).values(last_webhook_at=NOW))
        other.commit()
    session.rollback()


# -- the hold check of the test databases (tests/fixtures/holds.py) -------------------------------------


def _customer(shop_id: int) -> Customer:
    return Customer(
        shop_id=shop_id,
        customer_id=7,
        orders_count=0,
        total_spent=Decimal(0),
        discounted_orders_count=0,
        aggregates_updated_at=NOW,
    )


def _refused(shop_id: int) -> str:
    return f"rows inserted into customers for shop {shop_id}, whose row this transaction does not hold"


def test_the_test_databases_refuse_an_insert_whose_shop_is_not_held(session: Session) -> None:
    """Every PostgreSQL test runs with the check: a writer that forgets the hold fails at its first
    insert, whether or not an erasure races it."""
    shop = create_shop(session)  # committed: another transaction could erase it
    session.add(_customer(shop.shop_id))
    with pytest.raises(DBAPIError, match=_refused(shop.shop_id)):
        session.flush()
    session.rollback()

    shops_repo.hold_shop(session, shop.shop_id)
    session.add(_customer(shop.shop_id))
    session.commit()
    assert _rows(session, shop.shop_id) == (0, 1)


def test_the_check_refuses_an_insert_for_a_shop_that_does_not_exist(session: Session) -> None:
    session.add(_customer(MISSING))
    with pytest.raises(DBAPIError, match=_refused(MISSING)):
        session.flush()
    session.rollback()


def test_a_shop_row_the_transaction_wrote_itself_counts_as_held(session: Session) -> None:
    """No other transaction sees an uncommitted shop row, so none can erase it: its rows may be
    written without a lock, as a foreign key check would also pass without waiting."""
    shop = shops_repo.create(session, "new-shop.myshopify.com", NOW)  # flushed, not committed
    session.add(_customer(shop.shop_id))
    session.commit()
    assert _rows(session, shop.shop_id) == (0, 1)


# -- an erasure racing a writer ------------------------------------------------------------------------


class _InThread(threading.Thread):
    def __init__(self, work: Callable[[], object]) -> None:
        super().__init__(daemon=True)
        self.work = work
        self.result: object = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.result = self.work()
        except BaseException as error:  # handed to the test
            self.error = error

    def finish(self) -> object:
        self.join(20)
        assert not self.is_alive(), "the other transaction did not finish"
        return self.result


def _erase(engine: Engine, shop_id: int) -> None:
    with sessionmaker(engine).begin() as other:
        privacy.redact_shop(other, shop_id)


def _ingest(
    engine: Engine, domain: str, order_id: int, *, before_commit: Callable[[], None] | None = None
) -> str:
    """One delivery through `rfm_ingest_order`, in a transaction of its own; `before_commit` runs
    while it is still open."""

    async def deliver() -> str:
        async with await psycopg.AsyncConnection.connect(
            libpq_url(engine.url.render_as_string(hide_password=False))
        ) as conn:
            answer = await orders_service.ingest_order(conn, domain, _facts(order_id), NOW, touch=False)
            if before_commit is not None:
                await asyncio.to_thread(before_commit)
            await conn.commit()
            return str(answer)

    return asyncio.run(deliver())


def test_an_erasure_waits_for_an_import_batch_in_flight_and_deletes_its_rows(
    session: Session, engine: Engine
) -> None:
    shop = create_shop(session)
    imports_repo.write_ledger_text(session, shop.shop_id, _batch(shop.shop_id, 1, 2, 3))
    imports_repo.recompute_customers(session, shop.shop_id, [7], NOW)
    # the batch's rows are not committed: the erasure's deletes of the ledger and the customers
    # do not see them, and without a key to shops nothing would stop the shop's delete
    erasure = _InThread(lambda: _erase(engine, shop.shop_id))
    erasure.start()
    until_waiting_on_a_lock(engine, erasure)
    assert erasure.is_alive()
    session.commit()
    erasure.finish()

    assert erasure.error is None
    assert session.scalar(select(Shop.shop_id).where(Shop.shop_id == shop.shop_id)) is None
    assert _rows(session, shop.shop_id) == (0, 0)


def test_an_import_batch_after_an_erasure_began_is_refused(session: Session, engine: Engine) -> None:
    shop = create_shop(session)

    def batch() -> object:
        with sessionmaker(engine)() as writer:  # rolled back on leaving, whatever happened
            return imports_repo.write_ledger_text(writer, shop.shop_id, _batch(shop.shop_id, 1, 2, 3))

    privacy.redact_shop(session, shop.shop_id)
    batch_thread = _InThread(batch)
    batch_thread.start()
    until_waiting_on_a_lock(engine, batch_thread)
    assert batch_thread.is_alive()
    session.commit()
    batch_thread.finish()

    assert isinstance(batch_thread.error, LookupError)
    assert _rows(session, shop.shop_id) == (0, 0)


def test_an_erasure_waits_for_an_order_delivery_in_flight_and_deletes_its_rows(
    session: Session, engine: Engine
) -> None:
    shop = create_shop(session)
    erasure = _InThread(lambda: _erase(engine, shop.shop_id))

    def erase_while_the_delivery_is_open() -> None:
        erasure.start()
        until_waiting_on_a_lock(engine, erasure)
        assert erasure.is_alive()

    assert _ingest(engine, shop.domain, 1, before_commit=erase_while_the_delivery_is_open) == "applied"
    erasure.finish()

    assert erasure.error is None
    assert session.scalar(select(Shop.shop_id).where(Shop.shop_id == shop.shop_id)) is None
    assert _rows(session, shop.shop_id) == (0, 0)


def test_an_order_delivery_after_an_erasure_began_writes_nothing(session: Session, engine: Engine) -> None:
    shop = create_shop(session)
    privacy.redact_shop(session, shop.shop_id)
    delivery = _InThread(lambda: _ingest(engine, shop.domain, 1))
    delivery.start()
    until_waiting_on_a_lock(engine, delivery)
    assert delivery.is_alive()
    session.commit()

    assert delivery.finish() == "unknown shop"
    assert delivery.error is None
    assert _rows(session, shop.shop_id) == (0, 0)


def test_a_delivery_by_the_python_rules_after_an_erasure_began_is_refused(
    session: Session, engine: Engine
) -> None:
    shop = create_shop(session)

    def deliver() -> Any:
        with sessionmaker(engine).begin() as writer:
            return orders_service.apply_order(writer, shop.shop_id, _facts(1), NOW)

    privacy.redact_shop(session, shop.shop_id)
    delivery = _InThread(deliver)
    delivery.start()
    until_waiting_on_a_lock(engine, delivery)
    assert delivery.is_alive()
    session.commit()
    delivery.finish()

    assert isinstance(delivery.error, LookupError)
    assert _rows(session, shop.shop_id) == (0, 0)
