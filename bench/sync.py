"""Benchmark: pushing N changed customers into Shopify under the standard cost budget.

For each N (default 10,000 and 100,000) the app's database holds N freshly scored customers that
Shopify has never seen (the first sync after an import), and the Shopify double holds the same
customers with the app's metafield definitions (from ``shopify.app.toml``) on a Standard plan
(2,000 points, 100 points/s). ``app.sync.push.sync_shop`` runs over ASGI against the double with a
fake clock: the waits the budget forces are computed, not slept.

Two paths per N: call by call (forced, as if the bulk threshold were infinite) and the default,
which sends a sync this large through bulk mutations. Printed per run: calls, requested and actual
cost points, THROTTLED replies, the simulated time the budget imposed, and the real wall and CPU
time. Reference, from the same run's figures: the minimum time the budget allows for the points
requested, (requested − 2,000) / 100 points/s; the ratio is simulated time / that minimum.

The bulk path also prints its parts (docs/operations.md, "Large syncs"): how many staged files,
the largest one in bytes and its ratio to Shopify's 100 MB limit (which the double enforces), and
the most bulk mutations running in Shopify at once (Shopify allows five). ``--customers 250000``
is the shop whose metafields need four files.

    .venv/bin/python bench/sync.py [--customers 10000 100000] [--paths calls bulk] [--database-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import tomllib
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from app.config import Settings  # noqa: E402
from app.kit.db import make_engine, make_sessionmaker, write_transaction  # noqa: E402
from app.models import CustomerScore, ShopMetricsSnapshot  # noqa: E402
from app.models.base import table_of  # noqa: E402
from app.shopify.admin_client import AdminClient  # noqa: E402
from app.shopify.bulk_mutation import FILE_LIMIT_BYTES  # noqa: E402
from app.shops.service import register_shop  # noqa: E402
from app.sync import push  # noqa: E402
from bench._database import fresh_database  # noqa: E402
from shopify_double import DevStore, FakeClock, create_devstore_app  # noqa: E402

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/rfm_bench_sync"
SHOP = "bench-sync.myshopify.com"
BUCKET, RATE = 2000.0, 100.0
SEGMENTS = ("Champions", "Loyal", "Active", "Promising", "New", "Needs attention", "At risk", "Dormant")
STAGES = ("new", "active", "at_risk", "lapsed", "reactivated")


def deploy_definitions(store: DevStore) -> None:
    config = tomllib.loads((ROOT / "shopify.app.toml").read_text())
    for key, spec in config["customer"]["metafields"]["app"].items():
        validations = dict(spec.get("validations") or {})
        choices = validations.pop("choices", None)
        store.define_metafield(
            SHOP, key, spec["type"], choices=choices, validations={k: str(v) for k, v in validations.items()}
        )


def score_row(shop_id: int, customer_id: int, i: int, now: datetime) -> dict[str, Any]:
    return {
        "shop_id": shop_id,
        "customer_id": customer_id,
        "frequency": 1 + i % 6,
        "monetary": Decimal(20 + i % 400),
        "orders_last_year": i % 4,
        "spent_last_year": Decimal(i % 300),
        "recency_score": 1 + i % 5,
        "frequency_score": 1 + (i // 5) % 5,
        "monetary_score": 1 + (i // 25) % 5,
        "rfm_code": "111",
        "fm_score": 1 + i % 5,
        "segment": SEGMENTS[i % len(SEGMENTS)],
        "thirds_group": "Middle",
        "stage": STAGES[i % len(STAGES)],
        "stage_since": now,
        "first_time_buyer": i % 2 == 0,
        "repeat_buyer": i % 2 == 1,
        "big_spender": False,
        "high_aov": False,
        "discount_shopper": False,
        "full_price_buyer": False,
        "vip": False,
        "historic_clv": Decimal(20 + i % 400),
        "predicted_clv": Decimal(i % 997) + Decimal("0.37"),
        "predicted_orders": 1.5,
        "churn_risk": (i % 100) / 100,
        "expected_next_order_at": now + timedelta(days=1 + i % 90),
        "average_days_between_orders": 40.0,
        "clv_tier": ("top-10", "top-25", None, None)[i % 4],
        "clv_source": "model",
        "row_hash": i + 1,
        "synced_hash": i + 1,
        "values_changed_at": now,
    }


def run_one(url: str, customers: int, path: str) -> dict[str, float]:
    fresh_database(url)
    engine = make_engine(url)
    factory = make_sessionmaker(engine)
    clock = FakeClock()
    store = DevStore(clock=clock)
    store.create_shop(SHOP, plan="Standard")
    deploy_definitions(store)
    token = store.issue_access_token(SHOP, "read_customers,write_customers")
    ids = [c.id for c in store.create_customers(SHOP, customers, tags=["wholesale"])]
    now = datetime(2026, 3, 1, tzinfo=UTC)
    with write_transaction(factory) as session:
        shop_id = register_shop(session, SHOP, now).shop_id
        rows = [score_row(shop_id, cid, i, now) for i, cid in enumerate(ids)]
        for start in range(0, len(rows), 10_000):
            session.execute(table_of(CustomerScore).insert(), rows[start : start + 10_000])
        session.add(
            ShopMetricsSnapshot(shop_id=shop_id, rescored_at=now, customers_scored=customers, orders_scored=0)
        )
    settings = Settings(
        app_env="test", database_url=url, shopify_admin_base_url_template="http://devstore/shops/{shop}"
    )

    waited = 0.0

    async def sleep(seconds: float) -> None:
        nonlocal waited
        waited += seconds
        clock.advance(seconds)

    def tick() -> datetime:
        return now + timedelta(seconds=clock())

    double = create_devstore_app(store)
    in_double = 0.0
    most_running = 0
    run_mutation = store.bulk.run_mutation

    def counted(ctx: Any, mutation: str, path: str) -> Any:
        nonlocal most_running
        answer = run_mutation(ctx, mutation, path)
        running = [op for op in store.bulk.all(SHOP) if op.status in ("CREATED", "RUNNING")]
        most_running = max(most_running, len(running))
        return answer

    store.bulk.run_mutation = counted  # type: ignore[method-assign]

    async def timed(scope: Any, receive: Any, send: Any) -> None:
        nonlocal in_double
        started = time.perf_counter()
        try:
            await double(scope, receive, send)
        finally:
            in_double += time.perf_counter() - started

    async def go() -> None:
        nonlocal waited
        transport = httpx.ASGITransport(app=timed)
        async with httpx.AsyncClient(transport=transport, base_url="http://devstore", timeout=None) as http:
            admin = AdminClient(http, settings, sleep=sleep, clock=clock)
            threshold = 10**12 if path == "calls" else push.BULK_THRESHOLD
            while True:
                again = await push.sync_shop(
                    factory, admin, shop_id, token, tick, bulk_threshold=threshold, budget_s=10**9
                )
                if again is None:
                    return
                waited += again  # the worker runs the next step after this long (bulk polls)
                clock.advance(again)

    wall, cpu = time.perf_counter(), time.process_time()
    start_clock = clock()
    asyncio.run(go())
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    simulated = clock() - start_clock
    calls = store.calls_for(SHOP)
    shop = store.shop(SHOP)
    written = sum(
        1
        for cid in ids
        if shop.metafields.get((f"gid://shopify/Customer/{cid}", store.app_namespace, "rfm_segment"))
    )
    engine.dispose()
    files = [len(u.content) for u in store.bulk.uploads.values() if u.content is not None]
    requested = float(sum(c.requested_cost for c in calls))
    return {
        "customers": customers,
        "written": written,
        "calls": len(calls),
        "throttled": sum(1 for c in calls if c.throttled),
        "requested": requested,
        "actual": float(sum(c.actual_cost for c in calls)),
        "simulated_s": simulated,
        "minimum_s": max(requested - BUCKET, 0.0) / RATE,
        "wall_s": wall,
        "cpu_s": cpu,
        "double_s": in_double,
        "parts": len(files),
        "largest": max(files, default=0),
        "most_running": most_running,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--customers", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--paths", nargs="+", choices=("calls", "bulk"), default=["calls", "bulk"])
    parser.add_argument("--database-url", default=DEFAULT_URL)
    args = parser.parse_args()
    print(f"Standard cost budget: {BUCKET:.0f} points, {RATE:.0f} points/s; fake clock (waits computed)")
    header = (
        f"{'customers':>10} {'path':>6} {'written':>8} {'calls':>7} {'thr':>4} {'requested':>10} "
        f"{'actual':>10} {'budget time':>12} {'minimum':>10} {'ratio':>6} {'wall':>8} {'cpu':>8} "
        f"{'in double':>10}"
    )
    print(header)
    for n in args.customers:
        for path in args.paths:
            r = run_one(args.database_url, n, path)
            ratio = f"{r['simulated_s'] / r['minimum_s']:.3f}" if r["minimum_s"] > 0 else "n/a"
            print(
                f"{n:>10} {path:>6} {int(r['written']):>8} {int(r['calls']):>7} {int(r['throttled']):>4} "
                f"{r['requested']:>10.0f} {r['actual']:>10.0f} {r['simulated_s']:>11.1f}s "
                f"{r['minimum_s']:>9.1f}s {ratio:>6} {r['wall_s']:>7.1f}s {r['cpu_s']:>7.1f}s "
                f"{r['double_s']:>9.1f}s",
                flush=True,
            )
            if path == "bulk":
                print(
                    f"{'':>10} {'':>6} staged files {int(r['parts'])}, largest {int(r['largest']):,} bytes "
                    f"({r['largest'] / FILE_LIMIT_BYTES:.3f} of Shopify's {FILE_LIMIT_BYTES:,}), "
                    f"at most {int(r['most_running'])} bulk mutations running at once",
                    flush=True,
                )
    print(
        "minimum = (requested - 2000) / 100 points/s: the time the budget allows at best for the points "
        "requested; ratio = budget time / minimum. 'n/a': under one bucketful, no wait is needed. "
        "Bulk budget time is the worker's polling delays (5 s) between steps (the double completes an "
        "operation when first polled). wall/cpu: real time of the whole run, app + double in one process; "
        "'in double': wall time spent inside the double's ASGI app."
    )


if __name__ == "__main__":
    main()
