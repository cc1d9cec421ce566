"""An incremental rescore against a full one on the same data at the same moment, on a shop large
enough that the changed rows are written by key (a quarter of the shop or less)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import numpy as np
import pytest
from sqlalchemy import inspect, select
from sqlalchemy.orm import Session

from app.models import CustomerScore
from app.scoring import repository as repo
from app.scoring import service
from tests.fixtures.factories import create_shop
from tests.scoring_service.ledger import add_order, at, bulk_orders

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
        repo.write_scores(session, shop_id + 1000, columns, np.asarray([0]))
