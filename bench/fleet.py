"""A thousand shops on one deployment: the daily cycle by 1, 2 and 4 workers, webhooks and pages meanwhile.

    .venv/bin/python bench/fleet.py                  # 1,000 shops, ~1M customers, ~5M orders
    .venv/bin/python bench/fleet.py --scale 0.05     # 50 shops, ~50k customers: a quick run
    .venv/bin/python bench/fleet.py --reuse-setup    # clone the saved setup of an earlier run
    .venv/bin/python bench/fleet.py --reuse-setup --burners 2  # no cycle: the idle load beside 2 CPU burners

Setup (not timed): 1,000 installed shops whose sizes are heavy-tailed (lognormal around a few
hundred customers, the three largest 180k, 120k and 100k customers; ~1M customers in all, 1 +
Poisson(4) orders each over three years), loaded by binary COPY and set-based SQL. Every shop is
then fitted and fully rescored by the real services with the clock one day back ("yesterday"), so
that the measured cycle is the daily one (recency moved, every stage recomputed, stage changes
recorded), and the result is saved as a template database.

Each cycle starts from a clone of that template, with every shop's last fit and full rescore set
exactly 24 h before the cycle's start D: every shop is due at D (the herd after a deploy or an
outage, the worst case; in steady state the shops' days are spread over the day). Then, against the
real app under uvicorn (2 processes) on this machine:

1. N real workers (``python -m app.worker``, N = 1, 2, 4) run the shops' daily work: the CLV fit and
   its backtest, then the full rescore with its stage changes. Measured: the cycle's time (until
   every shop's full rescore after its new fit is stored), and the longest any shop waited past D
   before its daily work started (``clv_fits.fitted_at``: the fit job's claim) and until it was done
   (seen by a 1-second poll).
2. Meanwhile signed ``orders/create`` webhooks at a steady 300/s (open loop, latency from the
   scheduled send; the generator's own delay before each send is reported apart), spread over
   the shops in proportion to their size (new orders of existing and new customers; the marks
   they leave are rescored by the same workers). Reference, same run: the same load for
   --idle-seconds with no worker running. The webhooks and the page probes below each run in a
   process of their own (``Apart``), as Shopify and the merchant's browser would.
3. Meanwhile the overview page (``/app``, session token, the whole app) of a small shop and of the
   largest, each every 0.5 s: p95 during the cycle; reference: the same during the idle phase.

Targets (docs/benchmarks.md, "Fleet"): the cycle within 15 minutes with 2 workers; no shop waits
more than 10 minutes past due; webhook p99 under 100 ms during the cycle and no more than 2x the
idle p99; page p95 under 300 ms during the cycle.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import dataclasses
import datetime as dt
import hashlib
import hmac
import json
import multiprocessing
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app import tasks  # noqa: E402,F401 - registers the job kinds (their retry policies)
from app.config import Settings  # noqa: E402
from app.kit import pgcopy  # noqa: E402
from app.kit.db import make_engine, make_sessionmaker, normalise_url, write_transaction  # noqa: E402
from app.scoring import service as scoring  # noqa: E402
from app.shops.tokens import token_cipher  # noqa: E402
from bench._database import fresh_database  # noqa: E402
from shopify_double.signing import make_session_token  # noqa: E402

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/rfm_bench_fleet"
API_KEY = "bench-key"
SECRET = "bench-secret-0123456789abcdef0123456789abcdef"
APP_URL = "https://bench.example.com"
HOST_PARAM = "YWRtaW4uc2hvcGlmeS5jb20vc3RvcmUvYmVuY2g"
SHOPS = 1000
CUSTOMERS = 1_000_000
LARGEST = (180_000, 120_000, 100_000)
HISTORY_DAYS = 3 * 365
TIMEZONES = ("America/New_York", "Europe/Berlin", "America/Los_Angeles", "Asia/Tokyo", "UTC")
TARGET_CYCLE_S = 15 * 60
TARGET_WAIT_S = 10 * 60
TARGET_WEBHOOK_P99_MS = 100.0
TARGET_PAGE_P95_MS = 300.0


# --------------------------------------------------------------------------------------------
# Setup


def shop_sizes(scale: float, seed: int) -> np.ndarray:
    """Customers per shop: lognormal (median ~250) with the three largest set to ``LARGEST``,
    the others scaled so that the fleet holds ``CUSTOMERS`` (all times ``scale``)."""
    rng = np.random.default_rng(seed)
    shops = max(round(SHOPS * scale), 10)
    sizes = rng.lognormal(np.log(250.0), 1.4, shops)
    sizes.sort()
    largest = np.array(LARGEST, dtype=float) * scale
    rest = sizes[: shops - len(largest)]
    rest *= (CUSTOMERS * scale - largest.sum()) / rest.sum()
    out = np.maximum(np.r_[rest, largest[::-1]].round(), 20).astype(np.int64)
    rng.shuffle(out)
    return out


def _pg_us(when: dt.datetime) -> int:
    return int((when - dt.datetime(2000, 1, 1, tzinfo=dt.UTC)).total_seconds() * 1e6)


def setup(url: str, sizes: np.ndarray, seed: int, yesterday: dt.datetime, settings: Settings) -> None:
    fresh_database(url)
    rng = np.random.default_rng(seed + 1)
    shops = sizes.size
    shop_of_customer = np.repeat(np.arange(1, shops + 1, dtype=np.int64), sizes)
    customer_id = np.concatenate([np.arange(1, n + 1, dtype=np.int64) for n in sizes])
    counts = 1 + rng.poisson(4.0, customer_id.size)
    shop_of_order = np.repeat(shop_of_customer, counts)
    customer_of_order = np.repeat(customer_id, counts)
    first = np.repeat(rng.uniform(0, HISTORY_DAYS, customer_id.size), counts)
    age = first * rng.random(customer_of_order.size)
    is_first = np.r_[True, customer_of_order[1:] != customer_of_order[:-1]]
    age[is_first] = first[is_first]
    age += 1 / 24  # every order an hour or more before "yesterday"
    value = np.round(rng.lognormal(4.0, 0.6, customer_of_order.size), 2)
    base = _pg_us(yesterday)
    engine = make_engine(url)
    started = time.perf_counter()
    cipher = token_cipher(settings)
    with write_transaction(make_sessionmaker(engine)) as session:
        session.execute(
            text(
                "INSERT INTO shops (shop_id, domain, currency_code, iana_timezone, installed_at, scope) "
                "SELECT g, 'fleet-' || g || '.myshopify.com', 'USD', (CAST(:zones AS text[]))[1 + g % 5], "
                ":at, 'read_orders,read_customers' FROM generate_series(1, :n) g"
            ),
            {"zones": list(TIMEZONES), "at": yesterday - dt.timedelta(days=HISTORY_DAYS), "n": shops},
        )
        session.execute(text("SELECT setval(pg_get_serial_sequence('shops', 'shop_id'), :n)"), {"n": shops})
        # The two shops whose pages are timed hold an offline token (the admin needs one); their
        # sync is off, so that no worker calls Shopify (the cycle measured is scoring's).
        for shop_id in page_shops(sizes):
            session.execute(
                text(
                    "UPDATE shops SET access_token_encrypted = :tok, access_token_expires_at = :exp "
                    "WHERE shop_id = :s"
                ),
                {
                    "tok": cipher.encrypt("shpat_bench"),
                    "exp": yesterday + dt.timedelta(days=60),
                    "s": shop_id,
                },
            )
            session.execute(
                text("INSERT INTO shop_settings (shop_id, sync_enabled, updated_at) VALUES (:s, false, :at)"),
                {"s": shop_id, "at": yesterday - dt.timedelta(days=30)},
            )
            session.execute(
                text(
                    "INSERT INTO shop_push_state (shop_id, rfm_prefix, stage_prefix, clv_prefix, "
                    "prefix_generation, former_prefixes, settings_seen_at, last_written, updated_at) "
                    "VALUES (:s, 'rfm:', 'stage:', 'clv:', 0, '[]', :at, 0, :at)"
                ),
                {"s": shop_id, "at": yesterday - dt.timedelta(days=30)},
            )
        session.execute(
            text(
                "CREATE TEMP TABLE ledger (shop_id int8, order_id int8, customer_id int8, "
                "ordered_at timestamptz, value float8)"
            )
        )
        pgcopy.copy_in(
            session,
            "ledger",
            [
                ("shop_id", "int8"),
                ("order_id", "int8"),
                ("customer_id", "int8"),
                ("ordered_at", "timestamptz"),
                ("value", "float8"),
            ],
            {
                "shop_id": shop_of_order,
                "order_id": np.arange(1, customer_of_order.size + 1, dtype=np.int64),
                "customer_id": customer_of_order,
                "ordered_at": (base - age * 86_400_000_000).astype(np.int64),
                "value": value,
            },
        )
        session.execute(
            text(
                "INSERT INTO orders (shop_id, order_id, customer_id, ordered_at, source_updated_at, test, "
                "financial_status, current_total, presentment_total, pending_refunds, value, "
                "total_discounts, discounted, source_name, qualifies) "
                "SELECT shop_id, order_id, customer_id, ordered_at, ordered_at, false, 'paid', "
                "value::numeric, value::numeric, 0, value::numeric, 0, (order_id % 3 = 0), 'web', true "
                "FROM ledger"
            )
        )
        session.execute(
            text(
                "INSERT INTO customers (shop_id, customer_id, first_order_at, last_order_at, orders_count, "
                "total_spent, average_order_value, discounted_orders_count, average_days_between_orders, "
                "score_pending, aggregates_updated_at) "
                "SELECT shop_id, customer_id, min(ordered_at), max(ordered_at), count(*), sum(value), "
                "round(sum(value) / count(*), 4), sum(CASE WHEN discounted THEN 1 ELSE 0 END), "
                "EXTRACT(EPOCH FROM max(ordered_at) - min(ordered_at)) / 86400.0 / NULLIF(count(*) - 1, 0), "
                "false, :at FROM orders GROUP BY shop_id, customer_id"
            ),
            {"at": yesterday},
        )
    _vacuum(engine)
    engine.dispose()
    print(
        f"setup: {shops:,} shops, {customer_id.size:,} customers, {customer_of_order.size:,} orders "
        f"loaded in {time.perf_counter() - started:.0f} s (not timed)",
        flush=True,
    )


def _vacuum(engine: Any) -> None:
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE"))
        conn.execute(text("CHECKPOINT"))


def _prime_shops(args: tuple[str, list[int], dt.datetime]) -> None:
    url, shop_ids, yesterday = args
    engine = make_engine(url)
    factory = make_sessionmaker(engine)
    for shop_id in shop_ids:
        with write_transaction(factory) as session:
            scoring.fit_shop(session, shop_id, yesterday)
        with write_transaction(factory) as session:
            scoring.rescore_shop(session, shop_id, yesterday, full=True)
    engine.dispose()


def prime(url: str, sizes: np.ndarray, yesterday: dt.datetime) -> None:
    """Yesterday's daily work, by the real services in 2 processes (not timed)."""
    started = time.perf_counter()
    order = [int(i) + 1 for i in np.argsort(-sizes)]
    parts = [order[0::2], order[1::2]]
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        pool.map(_prime_shops, [(url, part, yesterday) for part in parts])
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM jobs"))
    _vacuum(engine)
    engine.dispose()
    print(
        f"yesterday's fits and full rescores of every shop: {time.perf_counter() - started:.0f} s (not timed)"
    )


def page_shops(sizes: np.ndarray) -> tuple[int, int]:
    """(a small shop: the one nearest the median size, the largest shop)."""
    median = np.median(sizes)
    return int(np.argmin(np.abs(sizes - median))) + 1, int(np.argmax(sizes)) + 1


def _admin(url: str) -> Any:
    return create_engine(make_url(normalise_url(url)).set(database="postgres"), isolation_level="AUTOCOMMIT")


def _exists(url: str, name: str) -> bool:
    admin = _admin(url)
    with admin.connect() as conn:
        found = conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name})
    admin.dispose()
    return bool(found)


def _clone(url: str, source: str, target: str) -> None:
    admin = _admin(url)
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{target}"'))
        conn.execute(text(f'CREATE DATABASE "{target}" TEMPLATE "{source}" STRATEGY FILE_COPY'))
    admin.dispose()


# --------------------------------------------------------------------------------------------
# Load: webhooks and pages

LARGEST_APART = 3  # the report splits the webhooks' latency: these largest shops, and the rest


class Apart:
    """A load that runs its ``_run`` coroutine in a process of its own (forked), as Shopify and
    the merchant's browser are not in the app's processes: a thread of this script would share
    its interpreter lock with the cycle's once-a-second poll of every shop, which then delayed
    the sends and the reading of the answers (and only while a cycle ran). ``stop`` returns the
    process's ``results``."""

    results: Any

    def __init__(self) -> None:
        context = multiprocessing.get_context("fork")
        self._stop = context.Event()
        self._receive, self._send = context.Pipe(duplex=False)
        self._process = context.Process(target=self._main, daemon=True)

    def _main(self) -> None:
        asyncio.run(self._run())
        self._send.send(self.results)

    async def _run(self) -> None:
        raise NotImplementedError

    def start(self) -> Any:
        self._process.start()
        return self

    def stop(self) -> Any:
        self._stop.set()
        results = self._receive.recv()
        self._process.join()
        return results


class Webhooks(Apart):
    """Signed orders/create deliveries at a steady rate, open loop."""

    def __init__(self, port: int, sizes: np.ndarray, rate: float, seed: int, first_order: int) -> None:
        super().__init__()
        self.port, self.sizes, self.rate = port, sizes, rate
        self.rng = random.Random(seed)
        self.weights = list(np.cumsum(sizes / sizes.sum()))
        self.next_id = first_order
        # (scheduled at, latency s from the schedule, status, shop, lateness s: the send's start
        # after its schedule, before the request's first byte: this generator's own delay and any
        # wait for a free one of its 64 connections)
        self.results: list[tuple[float, float, int, int, float]] = []

    def _request(self) -> tuple[int, bytes]:
        shop = self.rng.choices(range(1, self.sizes.size + 1), cum_weights=self.weights)[0]
        self.next_id += 1
        order_id = self.next_id
        existing = self.rng.random() < 0.8
        customer = self.rng.randint(1, int(self.sizes[shop - 1])) if existing else 10**12 + order_id
        price = f"{self.rng.randrange(500, 30_000) / 100:.2f}"
        now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        money = {
            "shop_money": {"amount": price, "currency_code": "USD"},
            "presentment_money": {"amount": price, "currency_code": "USD"},
        }
        zero = {
            "shop_money": {"amount": "0.00", "currency_code": "USD"},
            "presentment_money": {"amount": "0.00", "currency_code": "USD"},
        }
        body = json.dumps(
            {
                "id": order_id,
                "admin_graphql_api_id": f"gid://shopify/Order/{order_id}",
                "name": f"#{order_id}",
                "created_at": now,
                "updated_at": now,
                "processed_at": now,
                "cancelled_at": None,
                "test": False,
                "financial_status": "paid",
                "currency": "USD",
                "presentment_currency": "USD",
                "total_price": price,
                "subtotal_price": price,
                "total_discounts": "0.00",
                "current_total_price": price,
                "current_subtotal_price": price,
                "current_total_discounts": "0.00",
                "total_price_set": money,
                "subtotal_price_set": money,
                "total_discounts_set": zero,
                "current_total_price_set": money,
                "current_subtotal_price_set": money,
                "current_total_discounts_set": zero,
                "discount_codes": [],
                "discount_applications": [],
                "source_name": "web",
                "tags": "",
                "customer": {"id": customer, "admin_graphql_api_id": f"gid://shopify/Customer/{customer}"},
                "refunds": [],
                "line_items": [],
            }
        ).encode()
        digest = base64.b64encode(hmac.new(SECRET.encode(), body, hashlib.sha256).digest()).decode()
        head = (
            f"POST /webhooks HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nX-Shopify-Topic: orders/create\r\n"
            f"X-Shopify-Hmac-Sha256: {digest}\r\nX-Shopify-Shop-Domain: fleet-{shop}.myshopify.com\r\n"
            f"X-Shopify-API-Version: 2026-10\r\nX-Shopify-Webhook-Id: fleet-{order_id}\r\n\r\n"
        )
        return shop, head.encode() + body

    async def _run(self) -> None:
        pool: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()
        for _ in range(64):
            pool.put_nowait(await asyncio.open_connection("127.0.0.1", self.port))

        async def send(shop: int, request: bytes, scheduled: float, wall: float) -> None:
            reader, writer = await pool.get()
            status = 0
            late = time.perf_counter() - scheduled
            try:
                writer.write(request)
                line = await reader.readline()
                length = 0
                while (header := await reader.readline()) not in (b"\r\n", b""):
                    if header.lower().startswith(b"content-length:"):
                        length = int(header.split(b":", 1)[1])
                await reader.readexactly(length)
                status = int(line.split()[1])
            except (OSError, asyncio.IncompleteReadError, IndexError, ValueError):
                reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
            self.results.append((wall, time.perf_counter() - scheduled, status, shop, late))
            pool.put_nowait((reader, writer))

        pending: set[asyncio.Task[None]] = set()
        start = time.perf_counter() + 0.05
        wall0 = time.time() + 0.05
        i = 0
        while not self._stop.is_set():
            scheduled = start + i / self.rate
            delay = scheduled - time.perf_counter()
            # behind schedule, still yield: the sends run, and their latency counts from the schedule
            await asyncio.sleep(max(delay, 0.0))
            task = asyncio.create_task(send(*self._request(), scheduled, wall0 + i / self.rate))
            pending.add(task)
            task.add_done_callback(pending.discard)
            i += 1
        await asyncio.gather(*pending)
        while not pool.empty():
            pool.get_nowait()[1].close()


class Pages(Apart):
    """The overview page of a small and of the largest shop, each every ``every`` seconds."""

    def __init__(self, port: int, domains: dict[str, str], every: float = 0.5) -> None:
        super().__init__()
        self.port, self.domains, self.every = port, domains, every
        self.results: dict[str, list[tuple[float, float, int]]] = {label: [] for label in domains}

    async def _run(self) -> None:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{self.port}", timeout=30) as client:

            async def probe(label: str, domain: str) -> None:
                while not self._stop.is_set():
                    token = make_session_token(domain, API_KEY, SECRET)
                    path = f"/app?shop={domain}&host={HOST_PARAM}&embedded=1&id_token={token}"
                    wall, started = time.time(), time.perf_counter()
                    response = await client.get(path)
                    self.results[label].append((wall, time.perf_counter() - started, response.status_code))
                    await asyncio.sleep(self.every)

            await asyncio.gather(*(probe(label, domain) for label, domain in self.domains.items()))


# --------------------------------------------------------------------------------------------
# Processes


def server_env(url: str) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": url,
        "APP_ENV": "test",
        "SHOPIFY_API_KEY": API_KEY,
        "SHOPIFY_API_SECRET": SECRET,
        "APP_URL": APP_URL,
        "LOG_LEVEL": "WARNING",
    }


def start_web(url: str, port: int, processes: int, pgoptions: str | None = None) -> subprocess.Popen[bytes]:
    env = {**server_env(url), "PGAPPNAME": "fleet-web"}
    if pgoptions:
        env["PGOPTIONS"] = pgoptions  # the web processes' connections only, not the workers'
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "app.main:app",
            "--port",
            str(port),
            "--workers",
            str(processes),
            "--no-access-log",
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=env,
    )
    deadline = time.time() + 300  # a loaded machine imports the app slowly
    while time.time() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    server.kill()
    raise RuntimeError("uvicorn did not start")


SERIAL_QUERIES = "-c max_parallel_workers_per_gather=0"


class Placement:
    """A diagnostic (``--worker-placement idle``): every 20 ms, put the worker processes (each of
    their threads) and the PostgreSQL backends serving them (found by ``application_name``; their
    queries run without parallel workers, SERIAL_QUERIES) under SCHED_IDLE, the kernel's lowest
    class, which any other runnable task preempts at once: to see whether the webhooks' tail is
    the CPU the workers' side takes. Needs root for the backends, which belong to postgres; a
    backend's first 20 ms run at the default priority."""

    def __init__(self, url: str, pids: list[int]) -> None:
        self.url, self.pids = url, pids
        self._stop = threading.Event()
        self._done: set[int] = set()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> Placement:
        self._thread.start()
        return self

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return len(self._done)

    def _apply(self, tid: int) -> None:
        try:
            os.sched_setscheduler(tid, os.SCHED_IDLE, os.sched_param(0))
            self._done.add(tid)
        except OSError:
            pass

    def _run(self) -> None:
        engine = make_engine(self.url)
        query = text(
            "SELECT pid FROM pg_stat_activity WHERE application_name = 'fleet-worker' "
            "OR leader_pid IN (SELECT pid FROM pg_stat_activity WHERE application_name = 'fleet-worker')"
        )
        while not self._stop.wait(0.02):
            with engine.connect() as conn:
                backends = list(conn.scalars(query))
            alive = [f"/proc/{pid}/task" for pid in self.pids if os.path.isdir(f"/proc/{pid}/task")]
            threads = [int(tid) for folder in alive for tid in os.listdir(folder)]
            for tid in set(threads + backends) - self._done:
                self._apply(tid)
        engine.dispose()


# a burner: one process that keeps a core busy and touches nothing the app uses (no database, no
# socket, no file), under the scheduling class given by its first argument; "loop" spins in the
# interpreter (a few kB of cache), "memory" copies 64 MB arrays back and forth (the last-level
# cache and the memory bus, as a worker's NumPy and its backend's sorts do)
BURNER = """
import os, sys
if sys.argv[1] == "idle":
    os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
if sys.argv[2] == "memory":
    import numpy as np
    a, b = np.ones(8 << 20), np.zeros(8 << 20)
    while True:
        np.copyto(b, a); np.copyto(a, b)
else:
    n = 0
    while True:
        n += 1
"""
BURNERS = (("idle", "loop"), ("idle", "memory"), ("normal", "loop"))


def run_burners(
    url: str, template: str, sizes: np.ndarray, args: argparse.Namespace, first_order: int
) -> None:
    """A diagnostic (``--burners N``): the idle reference, then the same webhook and page load
    beside N burners of each kind (BURNER): whether two busy cores raise the webhooks' tail by
    themselves, with nothing that the webhooks could wait on but the cores (and the caches and
    the memory bus they share) and, under SCHED_IDLE, not even the cores' time."""
    database = make_url(normalise_url(url)).database
    assert database is not None
    _clone(url, template, database)
    port = free_port()
    web = start_web(url, port, args.web_processes, args.web_pgoptions)
    phases: list[Phase] = []
    try:
        phases.append(run_idle(port, sizes, args, first_order))
        for n, (policy, kind) in enumerate(BURNERS, start=1):
            burners = [
                subprocess.Popen([sys.executable, "-c", BURNER, policy, kind]) for _ in range(args.burners)
            ]
            try:
                time.sleep(1.0)
                phase = run_idle(port, sizes, args, first_order + n * 10**7)
            finally:
                for b in burners:
                    b.kill()
                    b.wait()
            phase.label = f"{args.burners} {kind} burner{'s' if args.burners > 1 else ''}, {policy}"
            phases.append(phase)
            phases.append(run_idle(port, sizes, args, first_order + n * 10**7 + 5 * 10**6))
    finally:
        stop(web)
    print(
        f"\nwebhooks at {args.rate:.0f}/s, {args.idle_seconds:.0f} s a phase: p50 / p99 ms"
        " (requests, non-200)"
    )
    reference = phases[0].webhook_ms()[1]
    for p in phases:
        w50, w99, count, bad = p.webhook_ms()
        l50, l99, s99 = p.lateness_ms()
        print(
            f"  {p.label:32} {w50:6.1f} {w99:7.1f}  ({count}, {bad})  p99 {w99 / reference:.2f}x the first; "
            f"generator's delay p99 {l99:.1f}, p99 from the send {s99:.1f}"
        )
    print(f"load average at the end: {', '.join(f'{v:.1f}' for v in os.getloadavg())}")


def stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=120)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --------------------------------------------------------------------------------------------
# Measuring


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


@dataclasses.dataclass
class Phase:
    label: str
    seconds: float
    webhooks: list[tuple[float, float, int, int, float]]
    pages: dict[str, list[tuple[float, float, int]]]
    longest_wait_start: float = 0.0
    longest_wait_done: float = 0.0
    median_wait_done_small: float = 0.0
    worst_shop: str = ""
    jobs_run: int = 0
    shops_done: int = 0
    shops: int = 0

    def webhook_ms(self, shops: Callable[[int], bool] = lambda shop: True) -> tuple[float, float, int, int]:
        rows = [row for row in self.webhooks if shops(row[3])]
        lat = [1000 * row[1] for row in rows]
        bad = sum(1 for row in rows if row[2] != 200)
        return pct(lat, 50), pct(lat, 99), len(lat), bad

    def lateness_ms(self) -> tuple[float, float, float]:
        """The generator's own delay (p50, p99 ms) and the latency from the actual send (p99 ms)."""
        late = [1000 * row[4] for row in self.webhooks]
        sent = [1000 * (row[1] - row[4]) for row in self.webhooks]
        return pct(late, 50), pct(late, 99), pct(sent, 99)

    def page_ms(self, label: str) -> tuple[float, float, int, int]:
        rows = self.pages[label]
        lat = [1000 * latency for _, latency, _ in rows]
        bad = sum(1 for *_, status in rows if status != 200)
        return pct(lat, 50), pct(lat, 95), len(lat), bad


def _set_due(url: str, due: dt.datetime) -> None:
    """Every shop's last fit and full rescore exactly a day before ``due``: all due at ``due``."""
    engine = make_engine(url)
    with engine.begin() as conn:
        day_before = due - dt.timedelta(days=1)
        conn.execute(text("UPDATE shop_metrics SET computed_at = :t, rescored_at = :t"), {"t": day_before})
        conn.execute(text("UPDATE clv_fits SET fitted_at = :t"), {"t": day_before})
        conn.execute(text("UPDATE backtests SET computed_at = :t"), {"t": day_before})
    engine.dispose()


# A shop's daily work is done once a full rescore followed its first fit of the cycle (webhooks
# that grow a ledger by 5 % ask for another fit later: that one is not the daily work).
DONE_SQL = text(
    """SELECT m.shop_id, f.fitted_at, m.computed_at FROM shop_metrics m
       LEFT JOIN LATERAL (SELECT min(fitted_at) AS fitted_at FROM clv_fits
                          WHERE shop_id = m.shop_id AND fitted_at >= :due) f ON true"""
)


def run_cycle(
    url: str,
    template: str,
    workers: int,
    sizes: np.ndarray,
    args: argparse.Namespace,
    first_order: int,
    timeout: float,
    idle: list[Phase],
) -> Phase:
    """One cycle on a fresh clone of the template; with ``idle`` empty, the idle reference first
    (the same web server and load, no worker running), appended to it."""
    database = make_url(normalise_url(url)).database
    assert database is not None
    _clone(url, template, database)
    port = free_port()
    web = start_web(url, port, args.web_processes, args.web_pgoptions)
    small, large = page_shops(sizes)
    try:
        if not idle:
            idle.append(run_idle(port, sizes, args, first_order - 10**7))
        engine = make_engine(url)
        due = dt.datetime.now(dt.UTC)
        _set_due(url, due)
        hooks = Webhooks(port, sizes, args.rate, args.seed + workers, first_order).start()
        pages = Pages(
            port, {"small": f"fleet-{small}.myshopify.com", "largest": f"fleet-{large}.myshopify.com"}
        ).start()
        started = time.perf_counter()
        procs = [
            subprocess.Popen(
                [sys.executable, "-m", "app.worker"],
                cwd=ROOT,
                env={
                    **server_env(url),
                    "PGAPPNAME": "fleet-worker",
                    # placed, a worker's queries run in its backend alone: a parallel worker
                    # lives for one query, often less than the placement's 20 ms
                    **({"PGOPTIONS": SERIAL_QUERIES} if args.worker_placement else {}),
                },
            )
            for _ in range(workers)
        ]
        placement = Placement(url, [p.pid for p in procs]).start() if args.worker_placement else None
        done_at: dict[int, float] = {}
        starts: dict[int, float] = {}
        shops = sizes.size
        last_print = 0.0
        while len(done_at) < shops:
            time.sleep(1.0)
            elapsed = time.perf_counter() - started
            with engine.connect() as conn:
                for shop_id, fitted_at, computed_at in conn.execute(DONE_SQL, {"due": due}):
                    if fitted_at is None or fitted_at < due:
                        continue
                    starts.setdefault(shop_id, (fitted_at - due).total_seconds())
                    if computed_at is not None and computed_at >= fitted_at and shop_id not in done_at:
                        done_at[shop_id] = elapsed
            if elapsed - last_print >= 30:
                last_print = elapsed
                print(
                    f"  {workers} worker(s): {elapsed:5.0f} s, {len(done_at)}/{shops} shops done", flush=True
                )
            if elapsed > timeout:
                print(f"  timed out after {elapsed:.0f} s", flush=True)
                break
            if any(p.poll() is not None for p in procs):
                raise RuntimeError("a worker exited")
        seconds = time.perf_counter() - started
        cycle_end = time.time()
        if placement is not None:
            print(f"  {args.worker_placement}: {placement.stop()} threads and backends placed", flush=True)
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            stop(p)
        page_results = pages.stop()
        hook_results = hooks.stop()
        with engine.connect() as conn:
            jobs_run = int(conn.scalar(text("SELECT count(*) FROM jobs WHERE state = 'done'")) or 0)
        engine.dispose()
    finally:
        stop(web)
    cycle_start_wall = cycle_end - seconds
    phase = Phase(
        f"{workers} worker{'s' if workers > 1 else ''}",
        seconds,
        [r for r in hook_results if cycle_start_wall <= r[0] <= cycle_end],
        {k: [r for r in v if cycle_start_wall <= r[0] <= cycle_end] for k, v in page_results.items()},
        jobs_run=jobs_run,
    )
    phase.shops_done, phase.shops = len(done_at), sizes.size
    if starts:
        worst = max(starts, key=lambda s: starts[s])
        phase.longest_wait_start = starts[worst]
    if len(starts) < sizes.size:  # timed out: the shops not started waited the whole cycle
        phase.longest_wait_start = seconds
    if done_at:
        worst = max(done_at, key=lambda s: done_at[s])
        phase.longest_wait_done = done_at[worst]
        phase.worst_shop = f"shop {worst} ({int(sizes[worst - 1]):,} customers)"
        small_shops = [s for s in done_at if sizes[s - 1] <= 1000]
        phase.median_wait_done_small = (
            float(np.median([done_at[s] for s in small_shops])) if small_shops else 0.0
        )
    return phase


def run_idle(port: int, sizes: np.ndarray, args: argparse.Namespace, first_order: int) -> Phase:
    small, large = page_shops(sizes)
    hooks = Webhooks(port, sizes, args.rate, args.seed, first_order).start()
    pages = Pages(
        port, {"small": f"fleet-{small}.myshopify.com", "largest": f"fleet-{large}.myshopify.com"}
    ).start()
    time.sleep(args.idle_seconds)
    page_results = pages.stop()
    hook_results = hooks.stop()
    skip = time.time() - args.idle_seconds + 3  # the first 3 s warm the connections
    return Phase(
        "workers idle",
        args.idle_seconds,
        [r for r in hook_results if r[0] >= skip],
        {k: [r for r in v if r[0] >= skip] for k, v in page_results.items()},
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", default=DEFAULT_URL)
    parser.add_argument(
        "--scale", type=float, default=1.0, help="shops and customers times this (develop with 0.05)"
    )
    parser.add_argument("--seed", type=int, default=19)
    parser.add_argument("--workers", default="1,2,4", help="the worker counts to run the cycle with")
    parser.add_argument("--rate", type=float, help="webhooks per second (default 300 times --scale)")
    parser.add_argument("--idle-seconds", type=float, default=60.0)
    parser.add_argument("--web-processes", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=3600.0, help="give up on a cycle after this long")
    parser.add_argument(
        "--deadline", help="UTC time (ISO 8601) by which the cycles must end: each gets its share"
    )
    parser.add_argument(
        "--web-pgoptions",
        help="PGOPTIONS for the web processes' connections only (not the workers'): e.g. "
        "'-c synchronous_commit=off' shows how much of the webhooks' latency is the commit's WAL flush",
    )
    parser.add_argument(
        "--worker-placement",
        choices=("idle",),
        help="a diagnostic: the workers and their database backends under SCHED_IDLE (see Placement)",
    )
    parser.add_argument(
        "--burners",
        type=int,
        help="a diagnostic instead of the cycles: the idle load beside this many CPU burners (see BURNER)",
    )
    parser.add_argument(
        "--timeline", action="store_true", help="also the webhooks' p99 of each 10 s of each cycle"
    )
    parser.add_argument("--reuse-setup", action="store_true")
    parser.add_argument("--setup-only", action="store_true", help="build and save the setup, time nothing")
    args = parser.parse_args()

    sizes = shop_sizes(args.scale, args.seed)
    if args.rate is None:
        args.rate = 300.0 * args.scale
    database = make_url(normalise_url(args.url)).database
    assert database is not None
    template = f"{database}_setup_{args.scale:g}_{args.seed}".replace(".", "_")
    settings = Settings(
        app_env="test",
        database_url=args.url,
        shopify_api_key=API_KEY,
        shopify_api_secret=SECRET,
        app_url=APP_URL,
    )
    small, large = page_shops(sizes)
    largest = ", ".join(f"{int(n):,}" for n in sorted(sizes)[-3:][::-1])
    print(
        f"fleet: {sizes.size:,} shops, {int(sizes.sum()):,} customers; median shop "
        f"{int(np.median(sizes)):,}, 90th percentile {int(np.percentile(sizes, 90)):,}, largest {largest}; "
        f"pages of shop {small} ({int(sizes[small - 1]):,} customers) and shop {large} "
        f"({int(sizes[large - 1]):,})",
        flush=True,
    )
    if not (args.reuse_setup and _exists(args.url, template)):
        yesterday = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
        setup(args.url, sizes, args.seed, yesterday, settings)
        prime(args.url, sizes, yesterday)
        _clone(args.url, database, template)
    if args.setup_only:
        return
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    print(f"load average before the timed phases: {load} (2 cores, shared with other sessions)", flush=True)

    first_order = 10**9
    if args.burners:
        run_burners(args.url, template, sizes, args, first_order)
        return
    phases: list[Phase] = []
    idle_phase: list[Phase] = []
    counts = [int(w) for w in args.workers.split(",")]
    for n, workers in enumerate(counts):
        timeout = args.timeout
        if args.deadline:
            left = (dt.datetime.fromisoformat(args.deadline) - dt.datetime.now(dt.UTC)).total_seconds()
            timeout = min(timeout, (left - 60 * (len(counts) - n - 1)) / (len(counts) - n) - 60)
        phases.append(run_cycle(args.url, template, workers, sizes, args, first_order, timeout, idle_phase))
        first_order += 10**8
        print(f"  load average: {', '.join(f'{v:.1f}' for v in os.getloadavg())}", flush=True)
    phases.sort(key=lambda p: int(p.label.split()[0]))
    idle = idle_phase[0]

    print(
        f"\nThe daily cycle of {sizes.size:,} shops ({int(sizes.sum()):,} customers), all due at once; "
        f"{args.rate:.0f} webhooks/s and the pages meanwhile"
    )
    print(f"{'':12} {'cycle':>9} {'longest wait':>13} {'longest until':>14} {'small shops':>12} {'jobs':>6}")
    print(f"{'':12} {'':>9} {'to start':>13} {'done':>14} {'median done':>12}")
    for p in phases:
        print(
            f"{p.label:12} {p.seconds:8.0f}s {p.longest_wait_start:12.0f}s {p.longest_wait_done:13.0f}s "
            f"{p.median_wait_done_small:11.0f}s {p.jobs_run:6}   last done: {p.worst_shop}"
            + ("" if p.shops_done == p.shops else f"  STOPPED with {p.shops_done}/{p.shops} shops done")
        )
    one = phases[0].seconds
    for p in phases[1:]:
        print(f"speed-up {p.label} vs {phases[0].label} (same run): {one / p.seconds:.2f}x")
    i50, i99, n_idle, bad_idle = idle.webhook_ms()
    print(f"\nwebhooks at {args.rate:.0f}/s: p50 / p99 ms (requests, non-200)")
    print(f"{idle.label:12} {i50:7.1f} {i99:7.1f}   ({n_idle}, {bad_idle})  <- reference")
    for p in phases:
        w50, w99, n, bad = p.webhook_ms()
        print(f"{p.label:12} {w50:7.1f} {w99:7.1f}   ({n}, {bad})  p99 {w99 / i99:.2f}x idle")
    print("  the generator's own delay before a send (this machine's load on the stand-in for Shopify):")
    print("  p50 / p99 ms, and the p99 from the actual send")
    for p in (idle, *phases):
        l50, l99, s99 = p.lateness_ms()
        print(f"  {p.label:12} {l50:7.1f} {l99:7.1f}   from the send: p99 {s99:7.1f}")
    # where the tail is: the deliveries to the largest shops (whose long jobs hold their rows) or
    # spread over every shop (the CPU)
    largest_shops = set(int(i) + 1 for i in np.argsort(sizes)[-LARGEST_APART:])
    for name, keep in (
        (f"the {LARGEST_APART} largest shops", lambda shop: shop in largest_shops),
        ("every other shop", lambda shop: shop not in largest_shops),
    ):
        print(f"  of which to {name}: p50 / p99 ms (requests)")
        for p in (idle, *phases):
            w50, w99, n, _ = p.webhook_ms(keep)
            print(f"  {p.label:12} {w50:7.1f} {w99:7.1f}   ({n})")
    if args.timeline:
        print("  p99 ms of each 10 s of the cycle (when the tail comes):")
        for p in phases:
            start = min(r[0] for r in p.webhooks)
            windows: dict[int, list[float]] = {}
            for row in p.webhooks:
                windows.setdefault(int((row[0] - start) // 10), []).append(1000 * row[1])
            print(f"  {p.label:12} " + " ".join(f"{pct(windows[w], 99):.0f}" for w in sorted(windows)))
    print("\noverview page /app: p50 / p95 ms (requests, non-200)")
    for label in ("small", "largest"):
        r50, r95, rn, rbad = idle.page_ms(label)
        print(f"{label:8} {idle.label:12} {r50:7.1f} {r95:7.1f}   ({rn}, {rbad})  <- reference")
        for p in phases:
            q50, q95, qn, qbad = p.page_ms(label)
            print(f"{label:8} {p.label:12} {q50:7.1f} {q95:7.1f}   ({qn}, {qbad})  p95 {q95 / r95:.2f}x idle")

    two = next((p for p in phases if p.label == "2 workers"), None)
    print("\ntargets:")
    if two is not None:
        w99 = two.webhook_ms()[1]
        worst_page = max(two.page_ms("small")[1], two.page_ms("largest")[1])
        checks = [
            (
                "cycle with 2 workers within 15 min",
                two.shops_done == two.shops and two.seconds <= TARGET_CYCLE_S,
                f"{two.seconds:.0f} s, {two.shops_done}/{two.shops} shops done",
            ),
            (
                "no shop waits more than 10 min past due (2 workers, to start)",
                two.longest_wait_start <= TARGET_WAIT_S,
                f"{two.longest_wait_start:.0f} s",
            ),
            ("webhook p99 < 100 ms during the cycle", w99 < TARGET_WEBHOOK_P99_MS, f"{w99:.1f} ms"),
            ("webhook p99 <= 2x idle", w99 <= 2 * i99, f"{w99 / i99:.2f}x"),
            ("page p95 < 300 ms during the cycle", worst_page < TARGET_PAGE_P95_MS, f"{worst_page:.1f} ms"),
        ]
        for label, ok, figure in checks:
            print(f"  {'met   ' if ok else 'MISSED'} {label}: {figure}")
    print(f"load average at the end: {', '.join(f'{v:.1f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
