"""Webhook ingest: sustained order webhooks/s and latency, through uvicorn on loopback, on PostgreSQL.

    .venv/bin/python bench/webhook_ingest.py [--orders 30000] [--workers 4] [--pool-size 5]

Starts `uvicorn app.main:app` against a scratch PostgreSQL database (BENCH_DATABASE_URL, default
postgresql://postgres@127.0.0.1:5432/rfm_bench, dropped and migrated), signs realistic order
payloads built by the Shopify double, and drives them over keep-alive HTTP/1.1 connections:
1. throughput: as fast as the server answers (closed loop), webhooks/s and p50/p99;
2. latency at a fixed 500 webhooks/s (open loop; latency counted from the scheduled send time);
3. reference, same run: the same SQL (one `rfm_ingest_order` call per order, as the server makes
   on PostgreSQL) called directly in one loop on one connection (no HTTP, no JSON, no HMAC, no
   concurrency), webhooks/s. The ratio is HTTP throughput / reference.
Targets (this 2-core machine): >= 1,000 webhooks/s sustained, p99 < 50 ms at 500/s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402
from sqlalchemy import text  # noqa: E402

from app.kit.db import libpq_url, make_engine, make_sessionmaker, migrate, write_transaction  # noqa: E402
from app.orders import service as orders  # noqa: E402
from app.shops.service import register_shop  # noqa: E402
from app.webhooks.handlers import TOPICS  # noqa: E402
from shopify_double.state import DevStore  # noqa: E402
from shopify_double.webhooks import order_payload, sign_webhook  # noqa: E402

DB_URL = os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/rfm_bench")
SECRET = "bench-secret"
SHOP = "bench-shop.myshopify.com"
REF_SHOP = "bench-reference.myshopify.com"


def prepare_database() -> None:
    admin = make_engine(DB_URL.rsplit("/", 1)[0] + "/postgres", isolation_level="AUTOCOMMIT")
    name = DB_URL.rsplit("/", 1)[1]
    with admin.connect() as conn:
        if not conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}):
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    engine = make_engine(DB_URL)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()
    migrate(DB_URL)
    engine = make_engine(DB_URL)
    with write_transaction(make_sessionmaker(engine)) as session:
        for domain in (SHOP, REF_SHOP):
            register_shop(session, domain, datetime.now(UTC))
    engine.dispose()


def analyze() -> None:
    engine = make_engine(DB_URL, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text("ANALYZE orders"))
        conn.execute(text("ANALYZE customers"))
    engine.dispose()


def make_payloads(orders: int, customers: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    store = DevStore()
    store.create_shop(SHOP)
    buyers = store.create_customers(SHOP, customers)
    start = datetime(2025, 1, 1, tzinfo=UTC)
    payloads = []
    for _ in range(orders):
        when = start + timedelta(minutes=rng.randrange(0, 600_000))
        order = store.create_order(
            SHOP,
            customer_id=rng.choice(buyers).id,
            total_price=Decimal(rng.randrange(500, 30_000)) / 100,
            processed_at=when,
            created_at=when,
        )
        payloads.append(order_payload(store, SHOP, order))
    return payloads


def requests_for(payloads: list[dict], port: int) -> list[bytes]:
    out = []
    for i, payload in enumerate(payloads):
        body = json.dumps(payload).encode()
        head = (
            f"POST /webhooks HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nX-Shopify-Topic: orders/create\r\n"
            f"X-Shopify-Hmac-Sha256: {sign_webhook(body, SECRET)}\r\nX-Shopify-Shop-Domain: {SHOP}\r\n"
            f"X-Shopify-API-Version: 2026-10\r\nX-Shopify-Webhook-Id: bench-{i}\r\n\r\n"
        )
        out.append(head.encode() + body)
    return out


async def _exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> int:
    writer.write(request)
    status_line = await reader.readline()
    length = 0
    while (line := await reader.readline()) not in (b"\r\n", b""):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    await reader.readexactly(length)
    return int(status_line.split()[1])


async def closed_loop(requests: list[bytes], port: int, connections: int) -> tuple[float, list[float], int]:
    queue = iter(requests)
    latencies: list[float] = []
    errors = 0

    async def client() -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for request in queue:
            t = time.perf_counter()
            if await _exchange(reader, writer, request) != 200:
                errors += 1
            latencies.append(time.perf_counter() - t)
        writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(connections)))
    return time.perf_counter() - started, latencies, errors


async def open_loop(
    requests: list[bytes], port: int, rate: float, connections: int
) -> tuple[list[float], int]:
    pool: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()
    for _ in range(connections):
        pool.put_nowait(await asyncio.open_connection("127.0.0.1", port))
    latencies: list[float] = []
    errors = 0

    async def send(request: bytes, scheduled: float) -> None:
        nonlocal errors
        conn = await pool.get()
        if await _exchange(*conn, request) != 200:
            errors += 1
        latencies.append(time.perf_counter() - scheduled)
        pool.put_nowait(conn)

    tasks = []
    start = time.perf_counter() + 0.1
    for i, request in enumerate(requests):
        scheduled = start + i / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(send(request, scheduled)))
    await asyncio.gather(*tasks)
    while not pool.empty():
        pool.get_nowait()[1].close()
    return latencies, errors


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] * 1000


def reference_rate(payloads: list[dict]) -> float:
    """The same SQL per order as the server runs (one `rfm_ingest_order` call, its own transaction),
    called in a plain loop on one connection: no HTTP, JSON, HMAC or concurrency."""
    applies = [TOPICS["orders/create"].parse(p, REF_SHOP) for p in payloads]

    async def run() -> float:
        async with await psycopg.AsyncConnection.connect(libpq_url(DB_URL), autocommit=True) as conn:
            started = time.perf_counter()
            for apply in applies:
                now = datetime.now(UTC)
                outcome = await orders.ingest_order(conn, REF_SHOP, apply.facts, now, touch=False)
                assert outcome is orders.Outcome.applied, outcome
            return len(applies) / (time.perf_counter() - started)

    return asyncio.run(run())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(port: int, timeout: float = 30.0) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("uvicorn did not start")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--orders", type=int, default=30_000, help="orders for the throughput phase")
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--workers", type=int, default=4, help="uvicorn worker processes")
    parser.add_argument("--pool-size", type=int, default=5, help="WEBHOOK_POOL_SIZE per worker")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rate", type=float, default=500.0)
    parser.add_argument("--seconds-at-rate", type=float, default=15.0)
    args = parser.parse_args()

    prepare_database()
    at_rate = int(args.rate * args.seconds_at_rate)
    payloads = make_payloads(args.orders + at_rate + 5000, args.customers, seed=1)
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": DB_URL,
        "SHOPIFY_API_SECRET": SECRET,
        "APP_ENV": "test",
        "WEBHOOK_POOL_SIZE": str(args.pool_size),
    }
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "app.main:app",
            "--port",
            str(port),
            "--workers",
            str(args.workers),
            "--no-access-log",
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=env,
    )
    try:
        wait_for(port)
        requests = requests_for(payloads[: args.orders + at_rate], port)
        asyncio.run(closed_loop(requests[:500], port, args.connections))  # warm up
        # The scratch ledger started empty: the plans the server cached for it would scan the shop
        # until autovacuum's first ANALYZE (within its one-minute naptime) invalidates them. Take
        # that ANALYZE now, so that the timed phases see the steady state.
        analyze()
        elapsed, lat, errors = asyncio.run(closed_loop(requests[500 : args.orders], port, args.connections))
        n = args.orders - 500
        throughput = n / elapsed
        print(
            f"throughput: {n} order webhooks in {elapsed:.2f} s = {throughput:,.0f}/s "
            f"(p50 {percentile(lat, 50):.1f} ms, p99 {percentile(lat, 99):.1f} ms, non-200: {errors}) "
            f"[{args.workers} uvicorn workers x {args.pool_size} database connections,"
            f" {args.connections} client connections]"
        )
        lat2, errors2 = asyncio.run(open_loop(requests[args.orders :], port, args.rate, 64))
        print(
            f"at {args.rate:.0f}/s for {args.seconds_at_rate:.0f} s: p50 {percentile(lat2, 50):.1f} ms, "
            f"p99 {percentile(lat2, 99):.1f} ms, non-200: {errors2}"
        )
    finally:
        server.terminate()
        server.wait(timeout=30)
    reference = reference_rate(payloads[args.orders + at_rate :])
    print(f"reference (the same SQL per order in a direct loop, one connection): {reference:,.0f}/s")
    print(f"ratio HTTP throughput / reference: {throughput / reference:.2f}")


if __name__ == "__main__":
    main()
