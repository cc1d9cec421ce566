"""Server time of the Status page and of its poll (`/api/status`) for a 200,000-customer shop whose
scores were written to Shopify (a sync state per customer, 1 % of them behind).

    .venv/bin/python bench/status_page.py                  # 200,000 customers, 30 timed requests each
    .venv/bin/python bench/status_page.py --customers 50000 --requests 50

The shop is seeded as bench/pages.py seeds it, plus a `customer_sync_state` row per customer.
Requests go through the whole ASGI app in-process (session-token check, SQL, template).

Reference, measured in the same run: the same requests with the customers waiting to be written
counted on every request, as the page did before it kept the count between requests
(`app.admin.status_page.PendingCounts`); printed with the ratio reference / now. The poll's
schedule (every 3 s before; now 3 s while something runs and moves, doubling to 60 s when nothing
moves) is printed as requests in the first ten minutes of an idle page.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _database import fresh_database  # noqa: E402
from pages import API_KEY, SECRET, SHOP, bench_shop, seed  # noqa: E402

from app.admin.status_page import PendingCounts  # noqa: E402
from app.kit.db import make_engine  # noqa: E402
from app.main import create_app  # noqa: E402
from app.sync import service as sync_service  # noqa: E402
from shopify_double import create_devstore_app  # noqa: E402
from shopify_double.signing import make_session_token  # noqa: E402

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/rfm_bench_status"
HOST = "YWRtaW4uc2hvcGlmeS5jb20vc3RvcmUvYmVuY2g"


def seed_sync_states(url: str, shop_id: int) -> None:
    """Every customer written to Shopify once; 1 % of them changed since (their hash differs)."""
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(
            text(
                """INSERT INTO customer_sync_state (shop_id, customer_id, synced_hash, prefix_generation,
                   metafields, digests, tags, error_attempts, updated_at)
                SELECT shop_id, customer_id,
                   CASE WHEN customer_id % 100 = 0 THEN synced_hash + 1 ELSE synced_hash END, 0,
                   '{"rfm_segment": "Champions", "predicted_clv": "123.45"}', '{}',
                   '["rfm:champions", "stage:active"]', 0, now()
                FROM customer_scores WHERE shop_id = :shop"""
            ),
            {"shop": shop_id},
        )
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE customer_sync_state"))
    engine.dispose()


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def _time(fn: Callable[[], Any], requests: int, warmup: int = 3) -> list[float]:
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(requests):
        started = time.perf_counter()
        fn()
        out.append(1000 * (time.perf_counter() - started))
    return out


def polls_in(seconds: float, *, fast: float = 3.0, slow: float = 60.0, backoff: bool = True) -> int:
    """Poll requests of an idle Status page in ``seconds`` (app/admin/static/status.js's schedule)."""
    t, delay, polls = fast, fast, 0
    while t <= seconds:
        polls += 1
        delay = min(delay * 2, slow) if backoff else fast
        t += delay
    return polls


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", default=DEFAULT_URL)
    parser.add_argument("--customers", type=int, default=200_000)
    parser.add_argument("--requests", type=int, default=30)
    args = parser.parse_args()

    from starlette.testclient import TestClient

    store, token, settings = bench_shop(args.url)
    print(f"seeding {args.customers:,} customers (and their sync state) into {args.url} ...", flush=True)
    started = time.perf_counter()
    fresh_database(args.url)
    shop_id = seed(args.url, args.customers, settings, token)
    seed_sync_states(args.url, shop_id)
    print(f"seeded in {time.perf_counter() - started:.1f} s", flush=True)

    http = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=create_devstore_app(store)), base_url="http://devstore"
    )
    app = create_app(settings, http_client=http)

    def page(client: Any) -> None:
        tok = make_session_token(SHOP, API_KEY, SECRET)
        r = client.get(f"/app/status?shop={SHOP}&host={HOST}&embedded=1&id_token={tok}")
        assert r.status_code == 200, r.text[:200]

    def poll(client: Any) -> None:
        r = client.get(
            "/api/status", headers={"Authorization": f"Bearer {make_session_token(SHOP, API_KEY, SECRET)}"}
        )
        assert r.status_code == 200, r.text[:200]

    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    print(f"\n{args.requests} timed requests each (3 warm-up); times in ms; load average {load}\n")
    print(f"{'request':24} {'now p50':>8} {'p95':>8}   {'reference p50':>13} {'p95':>8}   {'ratio':>6}")
    with TestClient(app, base_url="https://bench.example.com") as client:
        pending = client.get(
            "/api/status", headers={"Authorization": f"Bearer {make_session_token(SHOP, API_KEY, SECRET)}"}
        )
        waiting = pending.json()["sync"]["customers_pending"]
        for label, fn in (("page /app/status", page), ("poll /api/status", poll)):
            app.state.pending_counts = PendingCounts()
            now = _time(lambda fn=fn: fn(client), args.requests)
            # the reference: counted on every request, as before
            app.state.pending_counts = lambda session, shop: sync_service.customers_pending(session, shop)
            before = _time(lambda fn=fn: fn(client), args.requests)
            p50, ref50 = statistics.median(now), statistics.median(before)
            print(
                f"{label:24} {p50:8.1f} {_percentile(now, 0.95):8.1f}   {ref50:13.1f} "
                f"{_percentile(before, 0.95):8.1f}   {ref50 / p50:5.1f}x"
            )
    print(f"\ncustomers waiting to be written: {waiting:,} of {args.customers:,}")
    idle_before, idle_now = polls_in(600, backoff=False), polls_in(600)
    print(
        f"polls of an idle Status page in its first 10 minutes: {idle_now} now, {idle_before} before "
        f"({idle_before / idle_now:.0f}x fewer)"
    )
    asyncio.run(http.aclose())


if __name__ == "__main__":
    main()
