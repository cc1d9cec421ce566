"""Time a shop's rescore on PostgreSQL: full (first and daily) and incremental after 1,000 orders.

    .venv/bin/python bench/rescore.py                       # 200,000 customers, ~1,000,000 orders
    .venv/bin/python bench/rescore.py --customers 1000000   # ~5,000,000 orders
    .venv/bin/python bench/rescore.py --url postgresql://postgres@127.0.0.1/rfm_bench_scoring
    .venv/bin/python bench/rescore.py --reuse-setup   # clone the saved setup of an earlier run

The setup is saved as a database of its own (``<name>_setup_<customers>_<seed>``); with
``--reuse-setup`` the bench database is cloned from it (CREATE DATABASE … TEMPLATE) instead of
being built again, so that repeated runs time the same data.

The ledger and the customer aggregates are loaded with binary COPY and set-based SQL (not timed).
The timed part runs in a fresh child process so that its peak memory (ru_maxrss) is the rescore's
own (the reference runs in another). Reference, measured in the same run: a plain SELECT of the
customer aggregates (id, last order, orders count, total spent) fetched into NumPy arrays; each
figure is printed with its ratio to it.
Targets: full rescore of 200k customers < 5 s, of 1M < 30 s, peak memory < 1 GB,
incremental after 1,000 new orders well under a second.
"""

from __future__ import annotations

import argparse
import datetime as dt
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.customers import repository as customers_repo  # noqa: E402
from app.kit import pgcopy
from app.kit.db import make_engine, make_sessionmaker, normalise_url, write_transaction  # noqa: E402
from app.scoring import service  # noqa: E402
from bench._database import fresh_database  # noqa: E402

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/rfm_bench_scoring"
NOW = dt.datetime(2026, 11, 1, 12, 0, tzinfo=dt.UTC)
HISTORY_DAYS = 3 * 365


def _setup_name(url: str, customers: int, seed: int) -> str:
    return f"{make_url(normalise_url(url)).database}_setup_{customers}_{seed}"


def _clone(url: str, source: str, target: str) -> bool:
    """CREATE DATABASE target TEMPLATE source (after dropping target); False if source is missing."""
    admin = create_engine(make_url(normalise_url(url)).set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        if not conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": source}):
            admin.dispose()
            return False
        conn.execute(text(f'DROP DATABASE IF EXISTS "{target}"'))
        # FILE_COPY: the default (WAL_LOG) writes the whole copy to the WAL, and the checkpoints
        # that follows would land in the timed rescores.
        conn.execute(text(f'CREATE DATABASE "{target}" TEMPLATE "{source}" STRATEGY FILE_COPY'))
    admin.dispose()
    return True


def _us(days_before_now: np.ndarray) -> np.ndarray:
    now_us = pgcopy.PG_EPOCH_US * 0 + int(
        (NOW - dt.datetime(2000, 1, 1, tzinfo=dt.UTC)).total_seconds() * 1e6
    )
    return (now_us - days_before_now * 86_400_000_000).astype(np.int64)


def setup(url: str, customers: int, seed: int) -> None:
    """A fresh database with one shop, its ledger and its aggregates."""
    fresh_database(url)
    rng = np.random.default_rng(seed)
    counts = 1 + rng.poisson(4.0, customers)
    customer_of_order = np.repeat(np.arange(1, customers + 1, dtype=np.int64), counts)
    first = rng.uniform(0, HISTORY_DAYS, customers)
    first_of_order = np.repeat(first, counts)
    age = first_of_order * rng.random(customer_of_order.size)
    is_first = np.r_[True, customer_of_order[1:] != customer_of_order[:-1]]
    age[is_first] = first_of_order[is_first]
    value = np.round(rng.lognormal(4.0, 0.6, customer_of_order.size), 2)
    engine = make_engine(url)
    started = time.perf_counter()
    with write_transaction(make_sessionmaker(engine)) as session:
        session.execute(
            text("INSERT INTO shops (domain, installed_at) VALUES ('bench.myshopify.com', :now)"),
            {"now": NOW},
        )
        session.execute(
            text(
                "CREATE TEMP TABLE ledger "
                "(order_id int8, customer_id int8, ordered_at timestamptz, value float8)"
            )
        )
        pgcopy.copy_in(
            session,
            "ledger",
            [
                ("order_id", "int8"),
                ("customer_id", "int8"),
                ("ordered_at", "timestamptz"),
                ("value", "float8"),
            ],
            {
                "order_id": np.arange(1, customer_of_order.size + 1, dtype=np.int64),
                "customer_id": customer_of_order,
                "ordered_at": _us(age),
                "value": value,
            },
        )
        session.execute(
            text(
                "INSERT INTO orders (shop_id, order_id, customer_id, ordered_at, source_updated_at, test, "
                "financial_status, current_total, presentment_total, pending_refunds, value, "
                "total_discounts, discounted, source_name, qualifies) "
                "SELECT 1, order_id, customer_id, ordered_at, ordered_at, false, 'paid', value::numeric, "
                "value::numeric, 0, value::numeric, 0, (order_id % 3 = 0), 'web', true FROM ledger"
            )
        )
        session.execute(
            text(
                "INSERT INTO customers (shop_id, customer_id, first_order_at, last_order_at, orders_count, "
                "total_spent, average_order_value, discounted_orders_count, average_days_between_orders, "
                "score_pending, aggregates_updated_at) "
                "SELECT 1, customer_id, min(ordered_at), max(ordered_at), count(*), sum(value), "
                "round(sum(value) / count(*), 4), sum(CASE WHEN discounted THEN 1 ELSE 0 END), "
                "EXTRACT(EPOCH FROM max(ordered_at) - min(ordered_at)) / 86400.0 / NULLIF(count(*) - 1, 0), "
                # as the history import leaves a shop never scored: no customer marked to score
                # (app.customers.repository.recompute)
                "false, :now FROM orders WHERE shop_id = 1 GROUP BY customer_id"
            ),
            {"now": NOW},
        )
    with engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("VACUUM ANALYZE"))
    engine.dispose()
    database = make_url(normalise_url(url)).database
    assert database is not None
    _clone(url, database, _setup_name(url, customers, seed))
    print(
        f"setup: {customers:,} customers, {customer_of_order.size:,} orders loaded in "
        f"{time.perf_counter() - started:.1f} s (not timed)"
    )


def _reference(factory) -> float:  # type: ignore[no-untyped-def]
    """A plain SELECT of the customer aggregates into NumPy arrays (row fetch, the usual way)."""
    started = time.perf_counter()
    with factory() as session:
        rows = session.execute(
            text(
                "SELECT customer_id, last_order_at, orders_count, total_spent FROM customers "
                "WHERE shop_id = 1 AND orders_count > 0"
            )
        ).all()
        ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        last = np.array([r[1].replace(tzinfo=None) for r in rows], dtype="datetime64[us]")
        counts = np.fromiter((r[2] for r in rows), dtype=np.int64, count=len(rows))
        spent = np.fromiter((float(r[3]) for r in rows), dtype=np.float64, count=len(rows))
    assert ids.size == last.size == counts.size == spent.size
    return time.perf_counter() - started


def _add_orders(factory, count: int, seed: int) -> None:  # type: ignore[no-untyped-def]
    """`count` new orders of random existing customers, as webhooks would leave them (not timed)."""
    rng = np.random.default_rng(seed)
    with write_transaction(factory) as session:
        customers = int(session.scalar(text("SELECT count(*) FROM customers WHERE shop_id = 1")) or 0)
        top = int(session.scalar(text("SELECT max(order_id) FROM orders WHERE shop_id = 1")) or 0)
        ids = rng.integers(1, customers + 1, count)
        session.execute(
            text(
                "INSERT INTO orders (shop_id, order_id, customer_id, ordered_at, source_updated_at, test, "
                "financial_status, current_total, pending_refunds, value, total_discounts, discounted, "
                "qualifies) "
                "SELECT 1, :top + n, c, :at, :at, false, 'paid', 80, 0, 80, 0, false, true "
                "FROM unnest(CAST(:ids AS int8[])) WITH ORDINALITY AS t(c, n)"
            ),
            {"top": top, "ids": ids.tolist(), "at": NOW + dt.timedelta(days=1)},
        )
        customers_repo.recompute(session, 1, ids.tolist(), NOW + dt.timedelta(days=1))


def measure_reference(url: str) -> None:
    engine = make_engine(url)
    print(min(_reference(make_sessionmaker(engine)) for _ in range(3)))
    engine.dispose()


def measure(url: str, reference: float) -> None:
    engine = make_engine(url)
    factory = make_sessionmaker(engine)
    with engine.connect() as conn:
        # Start from a checkpoint: the setup's own writes are not the rescore's to flush.
        conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("CHECKPOINT"))
    print(f"reference: SELECT customer aggregates into NumPy arrays      {reference:7.3f} s")

    cache = service.RescoreCache()  # as the worker keeps one

    def timed(label: str, now: dt.datetime, full: bool | None) -> None:
        started = time.perf_counter()
        with write_transaction(factory) as session:
            result = service.rescore_shop(session, 1, now, full=full, cache=cache)
        elapsed = time.perf_counter() - started
        print(
            f"{label:<58} {elapsed:7.3f} s  ({elapsed / reference:5.1f}x reference)  "
            f"{result.customers:,} customers, {result.written:,} rows written, "
            f"{result.stage_changes:,} stage changes"
        )

    timed("full rescore, first (every customer written)", NOW, True)
    timed("full rescore, next day (only changed rows written)", NOW + dt.timedelta(days=1), True)
    _add_orders(factory, 1000, seed=99)
    timed("incremental rescore after 1,000 new orders", NOW + dt.timedelta(days=1, minutes=5), False)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak memory of the rescoring process (ru_maxrss)             {peak:7.0f} MB")
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", default=DEFAULT_URL)
    parser.add_argument("--customers", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--reuse-setup", action="store_true", help="clone the saved setup if there is one")
    parser.add_argument("--measure-only", type=float, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--reference-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.reference_only:
        measure_reference(args.url)
        return
    if args.measure_only is not None:
        measure(args.url, args.measure_only)
        return
    database = make_url(normalise_url(args.url)).database
    assert database is not None
    if args.reuse_setup and _clone(args.url, _setup_name(args.url, args.customers, args.seed), database):
        print(f"setup: cloned from {_setup_name(args.url, args.customers, args.seed)} (not timed)")
    else:
        setup(args.url, args.customers, args.seed)
    # The reference runs in a process of its own, so that its Python row objects do not count in
    # the rescoring process's peak memory.
    reference = subprocess.run(
        [sys.executable, __file__, "--url", args.url, "--reference-only"],
        check=True,
        capture_output=True,
        text=True,
    )
    seconds = float(reference.stdout.strip().splitlines()[-1])
    subprocess.run([sys.executable, __file__, "--url", args.url, "--measure-only", str(seconds)], check=True)


if __name__ == "__main__":
    main()
