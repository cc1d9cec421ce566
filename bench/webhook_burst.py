"""Webhook burst: how fast every delivery of a sudden burst is answered, through uvicorn on loopback,
on PostgreSQL. Shopify counts a delivery as failed when its answer takes more than 5 s
(https://shopify.dev/docs/apps/webhooks/best-practices).

    BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/rfm_bench_burst \\
        .venv/bin/python bench/webhook_burst.py [--burst 600] [--workers 2] [--pool-size 5]

Uses bench/webhook_ingest.py's scratch database (dropped and migrated), shop, signed payloads and
HTTP helpers. Each phase starts its own `uvicorn app.main:app`, warms it up, then opens `--burst`
connections at once, each sending one signed order delivery; an answer's time runs from the
moment its connection was opened (Shopify's clock starts there too):
1. bounded (the app's defaults: WEBHOOK_MAX_CONCURRENCY = 2 x WEBHOOK_POOL_SIZE per worker,
   WEBHOOK_SLOT_WAIT_SECONDS = 1): median/p95/p99/max, 200s and 503s; then the refused deliveries
   are sent again, as Shopify's retry would, until each is applied, and the ledger is counted;
2. unbounded, same run (WEBHOOK_MAX_CONCURRENCY=100000: every delivery queues, as before the limit);
3. reference, same run: the same number of deliveries sent one after another on one keep-alive
   connection (no concurrency), their median answer time and total. The ratios are burst / reference.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import webhook_ingest as ingest  # noqa: E402
from sqlalchemy import text  # noqa: E402

from app.kit.db import make_engine  # noqa: E402

SHOPIFY_LIMIT_SECONDS = 5.0


def start_server(port: int, workers: int, pool_size: int, concurrency: int | None) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "DATABASE_URL": ingest.DB_URL,
        "SHOPIFY_API_SECRET": ingest.SECRET,
        "APP_ENV": "test",
        "LOG_LEVEL": "WARNING",  # not a line per refused delivery
        "WEBHOOK_POOL_SIZE": str(pool_size),
    }
    if concurrency is not None:
        env["WEBHOOK_MAX_CONCURRENCY"] = str(concurrency)
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "app.main:app", "--port", str(port), "--workers", str(workers)]
        + ["--no-access-log", "--log-level", "warning", "--backlog", "4096"],
        cwd=ingest.ROOT,
        env=env,
    )
    ingest.wait_for(port)
    return server


async def burst(requests: list[bytes], port: int) -> list[tuple[int, float]]:
    """Every request on its own new connection, all at once: (status, seconds from connecting)."""
    gate = asyncio.Event()

    async def one(request: bytes) -> tuple[int, float]:
        await gate.wait()
        started = time.perf_counter()
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            status = await ingest._exchange(reader, writer, request)
            writer.close()
        except (ConnectionError, asyncio.IncompleteReadError):
            status = 0  # refused or reset: Shopify counts it as a failure and retries
        return status, time.perf_counter() - started

    tasks = [asyncio.create_task(one(r)) for r in requests]
    await asyncio.sleep(0.2)  # every task waiting at the gate
    gate.set()
    return await asyncio.gather(*tasks)


async def sequential(requests: list[bytes], port: int) -> list[float]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    times = []
    for request in requests:
        started = time.perf_counter()
        assert await ingest._exchange(reader, writer, request) == 200
        times.append(time.perf_counter() - started)
    writer.close()
    return times


async def retry_until_applied(requests: list[bytes], port: int) -> int:
    """Send refused deliveries again (a few at a time, as Shopify's retries trickle in); rounds taken."""
    rounds = 0
    sem = asyncio.Semaphore(8)

    async def again(request: bytes) -> bytes | None:
        async with sem:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            status = await ingest._exchange(reader, writer, request)
            writer.close()
            return None if status == 200 else request

    while requests:
        rounds += 1
        requests = [r for r in await asyncio.gather(*(again(r) for r in requests)) if r is not None]
    return rounds


def orders_in_ledger() -> int:
    engine = make_engine(ingest.DB_URL)
    with engine.connect() as conn:
        count = conn.scalar(text("SELECT count(*) FROM orders"))
    engine.dispose()
    return int(count or 0)


def summary(label: str, results: list[tuple[int, float]]) -> float:
    times = [t for _, t in results]
    statuses = [s for s, _ in results]
    others = len(statuses) - statuses.count(200) - statuses.count(503)
    late = sum(t >= SHOPIFY_LIMIT_SECONDS for t in times)
    print(
        f"{label}: {len(results)} deliveries, median {statistics.median(times) * 1000:.0f} ms, "
        f"p95 {ingest.percentile(times, 95):.0f} ms, p99 {ingest.percentile(times, 99):.0f} ms, "
        f"max {max(times) * 1000:.0f} ms; 200: {statuses.count(200)}, 503: {statuses.count(503)}, "
        f"other: {others}; answered at or after {SHOPIFY_LIMIT_SECONDS:.0f} s: {late}"
    )
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--burst", type=int, default=600, help="deliveries sent at once")
    parser.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    parser.add_argument("--pool-size", type=int, default=5, help="WEBHOOK_POOL_SIZE per worker")
    args = parser.parse_args()

    ingest.prepare_database()
    warmup = 300
    payloads = ingest.make_payloads(warmup * 2 + args.burst * 3, 5_000, seed=2)
    port = ingest.free_port()
    requests = ingest.requests_for(payloads, port)
    warm_a, warm_b = requests[:warmup], requests[warmup : 2 * warmup]
    bounded, unbounded, reference = (
        requests[2 * warmup + i * args.burst : 2 * warmup + (i + 1) * args.burst] for i in range(3)
    )
    print(
        f"[{args.workers} uvicorn workers x {args.pool_size} database connections, "
        f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at start]"
    )

    server = start_server(port, args.workers, args.pool_size, None)
    try:
        asyncio.run(ingest.closed_loop(warm_a, port, 16))
        ingest.analyze()
        results = asyncio.run(burst(bounded, port))
        median_bounded = summary(f"burst, bounded (limit {2 * args.pool_size}/worker)", results)
        refused = [r for r, (status, _) in zip(bounded, results, strict=True) if status != 200]
        rounds = asyncio.run(retry_until_applied(refused, port))
        print(
            f"  retried the {len(refused)} refused deliveries: all applied after {rounds} round(s); "
            f"orders in the ledger {orders_in_ledger()} (expected {warmup + args.burst})"
        )
        ref_times = asyncio.run(sequential(reference, port))
    finally:
        server.terminate()
        server.wait(timeout=30)

    server = start_server(port, args.workers, args.pool_size, 100_000)
    try:
        asyncio.run(ingest.closed_loop(warm_b, port, 16))
        summary("burst, unbounded (every delivery queues)", asyncio.run(burst(unbounded, port)))
    finally:
        server.terminate()
        server.wait(timeout=30)

    ref_median = statistics.median(ref_times)
    print(
        f"reference: the same number sent one after another on one connection: median "
        f"{ref_median * 1000:.1f} ms, {len(ref_times)} in {sum(ref_times):.2f} s"
    )
    print(f"ratio burst (bounded) median / sequential median: {median_bounded / ref_median:.0f}")
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
