"""The one-round-trip order delivery on PostgreSQL (`rfm_ingest_order`, migration 0009) keeps the
ledger and the aggregates exactly as the Python rules (`apply_order`) do, whatever the deliveries."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import select, text
from sqlalchemy.orm import Session, sessionmaker

from app.customers import repository as customers_repo
from app.kit.db import libpq_url, write_transaction
from app.kit.sql import advisory_lock, lock_key
from app.models import Customer, DeletedOrder, Order, Shop
from app.orders import service as orders
from app.orders.schemas import OrderFacts, parse_order, parse_order_edit, parse_refund
from app.shops import repository as shops_repo
from tests.fixtures.factories import create_shop, order_payload, refund_payload

BASE = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)
NOW = datetime(2026, 6, 1, tzinfo=UTC)


class _Deliveries:
    """One event loop and one autocommit connection, as a web process's pool hands out, for the
    deliveries of the module (a connection and a loop per call cost more than the call); closed
    when the module's tests are done, opened again if more of them follow."""

    def __init__(self) -> None:
        self.runner: asyncio.Runner | None = None
        self.connections: dict[str, psycopg.AsyncConnection[Any]] = {}

    def ingest(
        self, url: str, domain: str, facts: OrderFacts, touch: bool
    ) -> orders.Outcome | orders.Ingested:
        if self.runner is None:
            self.runner = asyncio.Runner()
        if url not in self.connections:
            connect = psycopg.AsyncConnection.connect(libpq_url(url), autocommit=True)
            self.connections[url] = self.runner.run(connect)
        return self.runner.run(orders.ingest_order(self.connections[url], domain, facts, NOW, touch=touch))

    def close(self) -> None:
        if self.runner is not None:
            for conn in self.connections.values():
                self.runner.run(conn.close())
            self.runner.close()
        self.runner, self.connections = None, {}


_deliveries = _Deliveries()


@pytest.fixture(scope="module", autouse=True)
def _close_deliveries() -> Iterator[None]:
    yield
    _deliveries.close()


def ingest(
    url: str, domain: str, facts: OrderFacts, *, touch: bool = False
) -> orders.Outcome | orders.Ingested:
    return _deliveries.ingest(url, domain, facts, touch)


def facts(order_id: int, customer_id: int | None, minutes: int, **fields: Any) -> OrderFacts:
    when = (BASE + timedelta(minutes=minutes)).isoformat()
    return parse_order(order_payload(order_id, customer_id, updated_at=when, **fields))


def test_the_function_and_the_python_paths_take_the_same_locks(session: Session) -> None:
    cases = [("order", 1, 2), ("customer", 7, 6_012_345_678_901), ("order", 3, 0)]
    factory = sessionmaker(session.get_bind())
    with write_transaction(factory) as holder:
        advisory_lock(holder, [lock_key(*case) for case in cases])
        with factory() as other:
            for case in cases:
                taken = other.scalar(
                    text("SELECT pg_try_advisory_xact_lock(rfm_lock_key(:n, :s, :i))"),
                    dict(zip("nsi", case, strict=True)),
                )
                assert taken is False, case
            assert other.scalar(text("SELECT pg_try_advisory_xact_lock(rfm_lock_key('order', 1, 3))"))


def test_outcomes(session: Session, database_url: str) -> None:
    shop = create_shop(session, "fn-shop.myshopify.com")
    gone = create_shop(session, "fn-gone.myshopify.com", uninstalled_at=NOW)
    assert ingest(database_url, "nobody.myshopify.com", facts(1, 5, 0)) is orders.Ingested.unknown_shop
    assert ingest(database_url, gone.domain, facts(1, 5, 0)) is orders.Ingested.uninstalled
    assert ingest(database_url, shop.domain, facts(1, 5, 0, total="40.00")) is orders.Outcome.applied
    assert ingest(database_url, shop.domain, facts(1, 5, 0)) is orders.Outcome.stale
    assert ingest(database_url, shop.domain, facts(2, None, 0)) is orders.Outcome.guest
    session.rollback()
    buyer = session.scalars(select(Customer).where(Customer.shop_id == shop.shop_id)).one()
    assert (buyer.customer_id, buyer.orders_count, buyer.total_spent) == (5, 1, Decimal("40.00"))
    assert session.scalars(select(Customer).where(Customer.shop_id == gone.shop_id)).first() is None

    # a refund newer than the next delivery: nothing written, the Python rules take over
    with write_transaction(sessionmaker(session.get_bind())) as s:
        refund = parse_refund(refund_payload(9, 1, "10.00", (BASE + timedelta(minutes=30)).isoformat()))
        orders.apply_refund(s, shop.shop_id, refund, NOW)
    before = session.scalars(select(Order).where(Order.order_id == 1)).one().source_updated_at
    assert (
        ingest(database_url, shop.domain, facts(1, 5, 10, total="40.00")) is orders.Ingested.needs_full_rules
    )
    session.rollback()
    assert session.scalars(select(Order).where(Order.order_id == 1)).one().source_updated_at == before

    with write_transaction(sessionmaker(session.get_bind())) as s:
        orders.delete_order(s, shop.shop_id, 1, NOW)
    assert ingest(database_url, shop.domain, facts(1, 5, 60)) is orders.Outcome.deleted


def test_touch_records_the_last_webhook(session: Session, database_url: str) -> None:
    shop = create_shop(session, "fn-touch.myshopify.com")
    last_webhook = select(Shop.last_webhook_at).where(Shop.shop_id == shop.shop_id)
    ingest(database_url, shop.domain, facts(1, 5, 0), touch=False)
    session.rollback()
    assert session.scalar(last_webhook) is None
    ingest(database_url, shop.domain, facts(2, 5, 0), touch=True)
    session.rollback()
    assert session.scalar(last_webhook) == NOW


# -- parity with the Python rules ------------------------------------------------------------------

ORDER_IDS = (1, 2, 3)
event = st.one_of(
    st.tuples(
        st.just("order"),
        st.sampled_from(ORDER_IDS),
        st.sampled_from((101, 102, None)),
        st.integers(0, 40),  # minutes: repeats and reorderings happen
        st.sampled_from(("0.00", "19.99", "100.00", "250.50")),
        st.sampled_from(("paid", "pending", "refunded", "partially_refunded")),
        st.booleans(),  # cancelled
        st.booleans(),  # test
        st.booleans(),  # discounted
        st.sampled_from((None, "80.00")),  # presentment total (another currency)
        st.integers(0, 40),  # processed at
    ),
    st.tuples(
        st.just("refund"), st.sampled_from(ORDER_IDS), st.sampled_from(("5.00", "100.00")), st.integers(0, 40)
    ),
    st.tuples(st.just("edit"), st.sampled_from(ORDER_IDS), st.integers(0, 40)),
    st.tuples(st.just("delete"), st.sampled_from(ORDER_IDS)),
)


def _order_facts(e: tuple[Any, ...]) -> OrderFacts:
    _, oid, customer, minutes, total, status, cancelled, test, discounted, presentment, processed = e
    when = (BASE + timedelta(minutes=minutes)).isoformat()
    return parse_order(
        order_payload(
            oid,
            customer,
            total=total,
            updated_at=when,
            processed_at=(BASE - timedelta(days=processed)).isoformat(),
            cancelled_at=when if cancelled else None,
            financial_status=status,
            test=test,
            discount_codes=["SAVE"] if discounted else None,
            presentment_total=presentment,
        )
    )


def _apply(factory: sessionmaker[Session], shop_id: int, e: tuple[Any, ...], refund_id: int) -> None:
    with write_transaction(factory) as s:
        if e[0] == "order":
            orders.apply_order(s, shop_id, _order_facts(e), NOW)
        elif e[0] == "refund":
            when = (BASE + timedelta(minutes=e[3])).isoformat()
            orders.apply_refund(s, shop_id, parse_refund(refund_payload(refund_id, e[1], e[2], when)), NOW)
        elif e[0] == "edit":
            when = (BASE + timedelta(minutes=e[2])).isoformat()
            edit = {
                "order_edit": {"id": refund_id, "order_id": e[1], "committed_at": when, "created_at": when}
            }
            orders.flag_order_edit(s, shop_id, parse_order_edit(edit))
        else:
            orders.delete_order(s, shop_id, e[1], NOW)


def _state(session: Session, shop_id: int) -> tuple[list[Any], list[Any], list[Any]]:
    session.rollback()
    ledger = [
        {c: v for c, v in vars(o).items() if not c.startswith("_") and c != "shop_id"}
        for o in session.scalars(select(Order).where(Order.shop_id == shop_id).order_by(Order.order_id))
    ]
    buyers = [
        {
            c: v
            for c, v in vars(b).items()
            if not c.startswith("_") and c not in ("shop_id", "aggregates_updated_at")
        }
        for b in session.scalars(
            select(Customer).where(Customer.shop_id == shop_id).order_by(Customer.customer_id)
        )
    ]
    deleted = list(session.scalars(select(DeletedOrder.order_id).where(DeletedOrder.shop_id == shop_id)))
    return ledger, buyers, sorted(deleted)


_shops = iter(range(1, 10**6))


def _order_event(oid: int, customer: int | None, minutes: int, total: str = "100.00") -> tuple[Any, ...]:
    return ("order", oid, customer, minutes, total, "paid", False, False, False, "80.00", 3)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(events=st.lists(event, min_size=1, max_size=14))
# an edit newer than the delivery that follows it: the order stays marked for reconciliation
@example(events=[_order_event(1, 101, 5), ("edit", 1, 20), _order_event(1, 101, 10, "19.99")])
# a refund newer than the delivery: converted at the order's rate, subtracted until netted
@example(events=[_order_event(1, 101, 5), ("refund", 1, "5.00", 30), _order_event(1, 101, 10)])
# the buyer's next order is summed with the value (not the total) of the refunded one
@example(events=[_order_event(1, 101, 5), ("refund", 1, "5.00", 30), _order_event(2, 101, 10)])
# the order moves to another buyer, then to a guest
@example(events=[_order_event(1, 101, 5), _order_event(1, 102, 10), _order_event(1, None, 15)])
def test_the_function_and_the_python_rules_leave_the_same_state(
    session: Session, database_url: str, events: list[tuple[Any, ...]]
) -> None:
    n = next(_shops)
    by_function = create_shop(session, f"fn-a-{n}.myshopify.com")
    by_python = create_shop(session, f"fn-b-{n}.myshopify.com")
    factory = sessionmaker(session.get_bind(), expire_on_commit=False)
    for i, e in enumerate(events):
        _apply(factory, by_python.shop_id, e, refund_id=i + 1)
        if e[0] == "order":
            outcome = ingest(database_url, by_function.domain, _order_facts(e))
            if outcome is orders.Ingested.needs_full_rules:
                _apply(factory, by_function.shop_id, e, refund_id=i + 1)
        else:
            _apply(factory, by_function.shop_id, e, refund_id=10_000 + i + 1)
    assert _state(session, by_function.shop_id) == _state(session, by_python.shop_id)


def test_aggregates_are_the_same_for_a_few_buyers_and_for_many(session: Session) -> None:
    """`recompute` runs one statement per shape on PostgreSQL (a LATERAL lookup per buyer for a
    delivery's one or two, a join for an import's chunk): both write the same rows."""
    shop = create_shop(session, "fn-many.myshopify.com")
    factory = sessionmaker(session.get_bind(), expire_on_commit=False)
    buyers = list(range(500, 540))
    with write_transaction(factory) as s:
        for n, buyer in enumerate(buyers):
            for k in range(n % 4):  # 0 to 3 orders each, some discounted, one cancelled
                e = (
                    "order",
                    1000 * buyer + k,
                    buyer,
                    k,
                    f"{10 + n}.{k}5",
                    "paid",
                    n % 7 == 0,
                    False,
                    k == 1,
                    None,
                    n,
                )
                orders.apply_order(s, shop.shop_id, _order_facts(e), NOW)
    with write_transaction(factory) as s:
        shops_repo.hold_shop(s, shop.shop_id)  # as the import's aggregates do
        customers_repo.recompute(s, shop.shop_id, buyers, NOW)  # many: the join
    many = _state(session, shop.shop_id)[1]
    with write_transaction(factory) as s:
        for buyer in buyers:
            customers_repo.recompute(s, shop.shop_id, [buyer], NOW)  # few: per buyer
    assert _state(session, shop.shop_id)[1] == many
    assert len(many) == len(buyers)
