"""The rescore's computation without a database: hand-made buyer columns and orders in, score
columns out (``app.scoring.compute``)."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from typing import Any

import numpy as np

from app.kit import pgcopy
from app.scoring import columns, compute, rules
from app.settings.schemas import ScoringSettings

NOW = dt.datetime(2026, 6, 1, 12, tzinfo=dt.UTC)
TODAY = (NOW.date() - dt.date(1970, 1, 1)).days


def _buyers(orders: dict[int, list[tuple[int, float]]]) -> dict[str, np.ndarray]:
    """Never scored buyers with the aggregates of ``orders`` ({customer id: [(days ago, value)]}),
    the stored columns at their defaults, as ``load.load_customers`` reads them."""
    ids = sorted(orders)
    values: dict[str, list[Any]] = {name: [] for name, _ in columns.CUSTOMER_COLUMNS}
    for customer_id in ids:
        days = sorted(TODAY - ago for ago, _ in orders[customer_id])
        count = len(days)
        record = {
            "customer_id": customer_id,
            "first_day": days[0],
            "last_day": days[-1],
            "orders_count": count,
            "total_spent": sum(v for _, v in orders[customer_id]),
            "discounted_orders_count": 0,
            "average_days_between_orders": (days[-1] - days[0]) / (count - 1) if count > 1 else np.nan,
            "pending": True,
            "aggregates_updated_at": 0,
            "scored": False,
        }
        for name, _ in columns.CUSTOMER_COLUMNS:
            values[name].append(record.get(name, columns.STORED_DEFAULTS.get(name, 0)))
    native = {"int2": np.int16, "int4": np.int32, "int8": np.int64, "float8": np.float64, "bool": np.bool_}
    return {
        name: np.asarray(values[name], dtype=native.get(kind, np.int64))
        for name, kind in columns.CUSTOMER_COLUMNS
    }


def _ledger(orders: dict[int, list[tuple[int, float]]]) -> dict[str, np.ndarray]:
    rows = [(c, TODAY - ago, v) for c, placed in orders.items() for ago, v in placed]
    return {
        "customer_id": np.asarray([r[0] for r in rows], dtype=np.int64),
        "day": np.asarray([r[1] for r in rows], dtype=np.int32),
        "value": np.asarray([r[2] for r in rows], dtype=np.float64),
    }


def _score(cust: dict[str, np.ndarray], ords: dict[str, np.ndarray], full: bool) -> compute.Scores:
    recompute, full = compute.rows_to_recompute(cust, full)
    position, day, value = compute.align_orders(cust["customer_id"], ords)
    inputs = compute.ledger_inputs(cust, recompute, position, day, value, TODAY, None)
    return compute.score_customers(
        1,
        cust,
        recompute,
        inputs,
        today=TODAY,
        now=NOW,
        settings=ScoringSettings(),
        models=None,
        fit=None,
        shop_level=compute.order_metrics(ords, TODAY, cust["customer_id"]) if full else None,
    )


ORDERS = {
    3: [(400, 20.0)],
    5: [(10, 80.0), (40, 120.0), (40, 30.0), (90, 60.0)],
    8: [(2, 500.0), (200, 250.0)],
    13: [(700, 15.0)],
}


def test_a_first_scoring_writes_every_buyer_with_every_score_column() -> None:
    scores = _score(_buyers(ORDERS), _ledger(ORDERS), full=True)

    assert set(scores.columns) == {name for name, _ in columns.SCORE_COLUMNS} | {"is_new"}
    assert scores.rows.tolist() == [0, 1, 2, 3] and scores.synced_changed.all()
    assert scores.columns["frequency"].tolist() == [1, 4, 2, 1]
    assert scores.columns["historic_clv"].tolist() == [20.0, 290.0, 750.0, 15.0]
    assert scores.columns["clv_source"].tolist() == [0, 0, 0, 0] and scores.clv_source == "segment_formula"
    # a first stage is dated, not logged as a change
    assert scores.stage_moves.customer_id.size == 0
    assert (scores.columns["stage_since"] == columns.to_us(NOW)).all()
    assert [row["segment"] for row in scores.segments] == [compute.ALL_CUSTOMERS, *rules.SEGMENT_NAMES]
    assert scores.segments[0]["customers"] == 4
    assert scores.metrics is not None and scores.metrics["clv"]["source"] == "segment_formula"


def test_scoring_again_what_was_stored_writes_nothing() -> None:
    cust = _buyers(ORDERS)
    first = _score(cust, _ledger(ORDERS), full=True)
    stored = dict(cust, pending=np.zeros(4, dtype=np.bool_), scored=np.ones(4, dtype=np.bool_))
    for name, _ in (*columns.STORED_STATE_COLUMNS, *columns.STORED_VALUE_COLUMNS):
        stored[name] = first.columns[name].astype(cust[name].dtype)

    again = _score(stored, _ledger(ORDERS), full=True)

    assert again.rows.size == 0 and not again.synced_changed.any()


def test_an_incremental_scoring_recomputes_only_the_marked_buyer() -> None:
    cust = _buyers(ORDERS)
    first = _score(cust, _ledger(ORDERS), full=True)
    stored = dict(cust, pending=np.asarray([False, False, True, False]), scored=np.ones(4, dtype=np.bool_))
    for name, _ in (*columns.STORED_STATE_COLUMNS, *columns.STORED_VALUE_COLUMNS):
        stored[name] = first.columns[name].astype(cust[name].dtype)
    stored["orders_last_year"] = np.asarray([9, 9, 9, 9], dtype=np.int32)  # kept where not recomputed

    recompute, full = compute.rows_to_recompute(stored, False)

    assert recompute.tolist() == [2] and full is False
    again = _score(stored, _ledger(ORDERS), full=False)
    assert again.columns["orders_last_year"].tolist() == [9, 9, 2, 9]
    assert again.metrics["shop"] is None  # order history: the full rescore's, kept by the caller
    assert sum(again.metrics["stages"].values()) == 4  # the counts over the scores: this run's


def test_the_computation_imports_no_database_library() -> None:
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys, app.scoring.compute; print(sorted(sys.modules))"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert "'sqlalchemy'" not in loaded and "'psycopg'" not in loaded and "'app.kit.db'" not in loaded


def test_the_pure_time_constants_are_the_wire_ones() -> None:
    assert (columns.NULL_TIME, columns.PG_EPOCH_US) == (pgcopy.NULL_TIME, pgcopy.PG_EPOCH_US)
