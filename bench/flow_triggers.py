"""Benchmark: Shopify Flow triggers for N changed customers, paced within the shop's cost budget.

The app's database holds N queued Flow triggers (``flow_trigger_events``, one per customer whose
lifecycle stage changed, as a rescore queues them) for a shop whose workflow uses the trigger; the
Shopify double holds the app's trigger extensions (``extensions/``) on a Standard plan (2,000
points, 100 points/s). ``app.sync.push.sync_shop`` sends them with ``flowTriggerReceive`` over ASGI
against the double with a fake clock: the waits the budget forces are computed, not slept.

Printed per run: triggers Flow accepted (and distinct customers: none twice), calls, requested and
actual cost points, THROTTLED replies (0: never over budget), the lowest the bucket went, the
simulated time the budget imposed, and the real wall and CPU time. Reference, from the same run's
figures: the minimum time the budget allows for the points requested, (requested − 2,000) / 100
points/s; the ratio is simulated time / that minimum. ``--fields`` compares documents of 20 aliased
mutations (the app's) with one trigger per request.

    .venv/bin/python bench/flow_triggers.py [--customers 10000] [--fields 20 1] [--database-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from app.config import Settings  # noqa: E402
from app.kit.db import make_engine, make_sessionmaker, write_transaction  # noqa: E402
from app.models import ShopMetricsSnapshot  # noqa: E402
from app.scoring import flow_events  # noqa: E402
from app.settings.service import update_settings  # noqa: E402
from app.shopify.admin_client import AdminClient  # noqa: E402
from app.shops.service import register_shop  # noqa: E402
from app.sync import push, service  # noqa: E402
from app.vocabulary import FLOW_STAGE_CHANGED, STAGE_LABELS, STAGE_NAMES  # noqa: E402
from bench._database import fresh_database  # noqa: E402
from shopify_double import DevStore, FakeClock, create_devstore_app  # noqa: E402
from shopify_double.flow import deploy_flow_triggers  # noqa: E402

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/rfm_bench_flow"
SHOP = "bench-flow.myshopify.com"
BUCKET, RATE = 2000.0, 100.0
STAGES = tuple(STAGE_LABELS[name] for name in STAGE_NAMES)


def event(shop_id: int, customer_id: int, i: int) -> dict[str, Any]:
    payload = {
        "customer_id": customer_id,
        "Previous stage": STAGES[i % 5],
        "New stage": STAGES[(i + 2) % 5],
        "Predicted CLV": round(10 + (i % 997) * 1.37, 2),
        "Churn risk": (i % 100) / 100,
        "Currency": "EUR",
    }
    return {
        "shop_id": shop_id,
        "event_key": f"{FLOW_STAGE_CHANGED}:{customer_id}:1",
        "handle": FLOW_STAGE_CHANGED,
        "customer_id": customer_id,
        "payload": json.dumps(payload, separators=(",", ":")),
    }


def run_one(url: str, customers: int, fields: int) -> dict[str, float]:
    fresh_database(url)
    engine = make_engine(url)
    factory = make_sessionmaker(engine)
    clock = FakeClock()
    store = DevStore(clock=clock)
    store.create_shop(SHOP, plan="Standard")
    deploy_flow_triggers(store, ROOT / "extensions")
    token = store.issue_access_token(SHOP, "read_customers,write_customers")
    now = datetime(2026, 3, 1, tzinfo=UTC)
    ids = list(range(7_000_000_001, 7_000_000_001 + customers))
    with write_transaction(factory) as session:
        shop_id = register_shop(session, SHOP, now).shop_id
        service.record_trigger_usage(session, shop_id, FLOW_STAGE_CHANGED, True, now)
        # the customers' metafields, tags and segments are off: every request measured is a trigger
        update_settings(session, shop_id, {"sync_enabled": False}, now)
        rows = [event(shop_id, cid, i) for i, cid in enumerate(ids)]
        for start in range(0, len(rows), 10_000):
            flow_events.queue(session, rows[start : start + 10_000], now)
        session.add(
            ShopMetricsSnapshot(shop_id=shop_id, rescored_at=now, customers_scored=0, orders_scored=0)
        )
    settings = Settings(
        app_env="test", database_url=url, shopify_admin_base_url_template="http://devstore/shops/{shop}"
    )
    bucket = store.shop(SHOP).bucket
    lowest = [float(bucket.status()["currentlyAvailable"])]

    async def sleep(seconds: float) -> None:
        clock.advance(seconds)

    def tick() -> datetime:
        return now + timedelta(seconds=clock())

    double = create_devstore_app(store)

    async def watched(scope: Any, receive: Any, send: Any) -> None:
        await double(scope, receive, send)
        lowest.append(float(bucket.status()["currentlyAvailable"]))

    async def go() -> None:
        transport = httpx.ASGITransport(app=watched)
        async with httpx.AsyncClient(transport=transport, base_url="http://devstore", timeout=None) as http:
            admin = AdminClient(http, settings, sleep=sleep, clock=clock)
            while True:
                again = await push.sync_shop(
                    factory, admin, shop_id, token, tick, budget_s=10**9, flow_document_fields=fields
                )
                if again is None:
                    return
                clock.advance(again)

    wall, cpu = time.perf_counter(), time.process_time()
    start_clock = clock()
    asyncio.run(go())
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    simulated = clock() - start_clock
    calls = store.calls_for(SHOP)
    runs = store.shop(SHOP).flow_runs
    engine.dispose()
    requested = float(sum(c.requested_cost for c in calls))
    return {
        "fired": len(runs),
        "distinct": len({r.payload["customer_id"] for r in runs}),
        "calls": len(calls),
        "throttled": sum(1 for c in calls if c.throttled),
        "requested": requested,
        "actual": float(sum(c.actual_cost for c in calls)),
        "lowest": min(lowest),
        "simulated_s": simulated,
        "minimum_s": max(requested - BUCKET, 0.0) / RATE,
        "wall_s": wall,
        "cpu_s": cpu,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--customers", type=int, nargs="+", default=[10_000])
    parser.add_argument("--fields", type=int, nargs="+", default=[20], help="flowTriggerReceive per document")
    parser.add_argument("--database-url", default=DEFAULT_URL)
    args = parser.parse_args()
    print(f"Standard cost budget: {BUCKET:.0f} points, {RATE:.0f} points/s; fake clock (waits computed)")
    print(
        f"{'customers':>10} {'per doc':>7} {'fired':>7} {'distinct':>8} {'calls':>6} {'thr':>4} "
        f"{'requested':>10} {'actual':>9} {'lowest':>7} {'budget time':>12} {'minimum':>9} {'ratio':>6} "
        f"{'wall':>7} {'cpu':>7}"
    )
    for n in args.customers:
        for fields in args.fields:
            r = run_one(args.database_url, n, fields)
            ratio = f"{r['simulated_s'] / r['minimum_s']:.3f}" if r["minimum_s"] > 0 else "n/a"
            print(
                f"{n:>10} {fields:>7} {int(r['fired']):>7} {int(r['distinct']):>8} {int(r['calls']):>6} "
                f"{int(r['throttled']):>4} {r['requested']:>10.0f} {r['actual']:>9.0f} {r['lowest']:>7.0f} "
                f"{r['simulated_s']:>11.1f}s {r['minimum_s']:>8.1f}s {ratio:>6} {r['wall_s']:>6.1f}s "
                f"{r['cpu_s']:>6.1f}s",
                flush=True,
            )
    print(
        "fired: triggers Flow accepted; distinct: customers among them (= fired: none twice). thr: THROTTLED "
        "replies; lowest: the fewest points the shop's bucket held after any request (never below 0: never "
        "over budget). minimum = (requested - 2000) / 100 points/s, the least time the budget allows for the "
        "points requested; ratio = budget time / minimum. wall/cpu: the whole run, app + double in one "
        "process."
    )


if __name__ == "__main__":
    main()
