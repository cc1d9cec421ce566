"""An incremental rescore against a full one on the same data at the same moment, on a shop large
enough that the changed rows are written by key (a quarter of the shop or less)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import numpy as np
import pytest
from sqlalchemy import inspect, select, update
from sqlalchemy.orm import Session

from app.customers import repository as customers_repo
from app.models import Customer, CustomerScore
from app.scoring import load, service, store
from app.scoring.service import RescoreCache
from tests.fixtures.factories import create_shop
from tests.scoring.ledger import add_order, at, bulk_orders

NOW = at("2026-06-01")
# Ranked against every customer's predicted CLV, which an incremental rescore keeps as stored for
# the customers it does not recompute (a full one recomputes them all), and the hashes over them.
PREDICTION_RANKED = ("clv_tier", "vip", "row_hash", "synced_hash", "values_changed_at")
RELATIVE = (
    "recency_score",
    "frequency_score",
    "monetary_score",
    "rfm_code",
    "fm_score",
    "segment",
    "thirds_group",
)


def _history(session: Session, customers: int = 60) -> int:
    shop = create_shop(session)
    rng = np.random.default_rng(5)
    rows = []
    for customer_id in range(1, customers + 1):
        for _ in range(int(rng.integers(1, 6))):
            rows.append(
                (customer_id, NOW - timedelta(days=int(rng.integers(1, 700))), float(rng.uniform(5, 400)))
            )
    bulk_orders(session, shop.shop_id, rows, NOW - timedelta(hours=1))
    return shop.shop_id


def _scores(session: Session, shop_id: int) -> dict[int, dict[str, Any]]:
    session.expire_all()
    columns = [c.key for c in inspect(CustomerScore).columns]
    rows = session.scalars(select(CustomerScore).where(CustomerScore.shop_id == shop_id)).all()
    return {row.customer_id: {name: getattr(row, name) for name in columns} for row in rows}


@pytest.mark.both_dbs
def test_an_incremental_rescore_stores_for_the_changed_customers_what_a_full_rescore_would(
    session: Session,
) -> None:
    shop_id = _history(session)
    service.rescore_shop(session, shop_id, NOW, full=True)
    session.commit()
    for customer_id, total in ((7, "900.00"), (31, "15.00")):
        add_order(session, shop_id, customer_id, "2026-06-01T08:00", total, now=at("2026-06-01T08:00"))

    incremental = service.rescore_shop(session, shop_id, NOW)
    session.commit()
    after_incremental = _scores(session, shop_id)
    full = service.rescore_shop(session, shop_id, NOW, full=True)
    session.commit()
    after_full = _scores(session, shop_id)

    assert incremental.full is False and full.full is True
    for customer_id in (7, 31):
        own = {k: v for k, v in after_full[customer_id].items() if k not in PREDICTION_RANKED}
        assert {k: after_incremental[customer_id][k] for k in own} == own
    assert after_incremental[7]["frequency"] == after_full[7]["frequency"] > 1
    for customer_id, row in after_full.items():
        assert {k: after_incremental[customer_id][k] for k in RELATIVE} == {k: row[k] for k in RELATIVE}


def test_scores_are_not_stored_for_a_shop_that_no_longer_exists(session: Session) -> None:
    shop_id = _history(session, customers=3)
    columns: dict[str, Any] = {"customer_id": np.asarray([1], dtype=np.int64), "is_new": np.asarray([True])}

    with pytest.raises(LookupError):
        store.write_scores(session, shop_id + 1000, columns, np.asarray([0]))


def _twin_shops(session: Session) -> tuple[int, int]:
    return _history(session), _history(session)


def _reads_of_every_customer(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    read = load.load_customers

    def counted(session: Session, shop_id: int, *args: Any, **kwargs: Any) -> load.LoadedCustomers:
        calls.append(shop_id)
        return read(session, shop_id, *args, **kwargs)

    monkeypatch.setattr(load, "load_customers", counted)
    return calls


def _without_shop(scores: dict[int, dict[str, Any]]) -> dict[int, dict[str, Any]]:
    return {c: {k: v for k, v in row.items() if k != "shop_id"} for c, row in scores.items()}


def test_an_incremental_rescore_from_the_remembered_arrays_stores_what_reading_every_customer_does(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    read_everyone, remembered = _twin_shops(session)
    cache = RescoreCache()
    for shop_id in (read_everyone, remembered):  # the second is the one the cache remembers
        service.rescore_shop(session, shop_id, NOW, full=True, cache=cache)
        session.commit()
    reads = _reads_of_every_customer(monkeypatch)
    for shop_id in (remembered, read_everyone):
        add_order(session, shop_id, 7, "2026-06-01T08:00", "900.00", now=at("2026-06-01T08:00"))
        add_order(
            session, shop_id, 61, "2026-06-01T09:00", "45.00", now=at("2026-06-01T09:00")
        )  # a new buyer
        result = service.rescore_shop(session, shop_id, at("2026-06-01T10:00"), cache=cache)
        session.commit()
        assert result.full is False

    assert reads == [read_everyone]
    assert _without_shop(_scores(session, remembered)) == _without_shop(_scores(session, read_everyone))
    assert 61 in _scores(session, remembered)


def test_a_customer_removed_without_a_mark_makes_the_next_rescore_read_every_customer(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    shop_id = _history(session)
    cache = RescoreCache()
    service.rescore_shop(session, shop_id, NOW, full=True, cache=cache)
    session.commit()
    customers_repo.remove(session, shop_id, 12)  # as a merge leaves the merged-away customer
    add_order(session, shop_id, 7, "2026-06-01T08:00", "900.00", now=at("2026-06-01T08:00"))
    reads = _reads_of_every_customer(monkeypatch)

    result = service.rescore_shop(session, shop_id, at("2026-06-01T10:00"), cache=cache)
    session.commit()

    assert reads == [shop_id]
    assert result.removed == [12] and 12 not in _scores(session, shop_id)


def test_a_rolled_back_rescore_is_not_remembered(session: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    shop_id = _history(session)
    cache = RescoreCache()
    service.rescore_shop(session, shop_id, NOW, full=True, cache=cache)
    session.commit()
    add_order(session, shop_id, 7, "2026-06-01T08:00", "900.00", now=at("2026-06-01T08:00"))
    service.rescore_shop(session, shop_id, at("2026-06-01T10:00"), cache=cache)
    session.rollback()
    reads = _reads_of_every_customer(monkeypatch)

    service.rescore_shop(session, shop_id, at("2026-06-01T10:00"), cache=cache)
    session.commit()

    assert reads == [shop_id]
    assert _scores(session, shop_id)[7]["frequency"] > 1


def test_the_unmarked_buyers_checksum_sums_their_update_times_to_the_microsecond(session: Session) -> None:
    shop = create_shop(session)
    times = {}
    for customer_id in range(1, 9):
        moment = NOW - timedelta(days=customer_id * 400, microseconds=123_457 * customer_id)
        bulk_orders(session, shop.shop_id, [(customer_id, moment, 10.0)], moment)
        times[customer_id] = moment
    session.execute(
        update(Customer)
        .where(Customer.shop_id == shop.shop_id, Customer.customer_id != 8)
        .values(score_pending=False)
    )

    checksum = load.unmarked_buyers_checksum(session, shop.shop_id)

    assert checksum == (7, sum(range(1, 8)), sum(load.to_us(times[c]) for c in range(1, 8)))
