"""Benchmark: the history import's ingest of a bulk-operation JSONL file into PostgreSQL.

Generates N orders (default 1,000,000 over 200,000 customers) as the exact lines
`bulkOperationRunQuery` returns for `app.imports.pull.BULK_ORDERS_QUERY`, then times what the
import does with a downloaded file: stream it (1 MiB chunks), parse, write the ledger in batches of
50,000 with the webhook rules (COPY straight into it where the batch's order ids meet nothing
stored, as here: a first import; else stage by COPY and upsert), then recompute every customer's
aggregates set-based. Reference measured in the same run: a raw COPY of the same rows (a
pre-rendered text file of the ledger columns) into an unindexed temporary table.

Peak memory counts the import's parser process too (app/imports/lines.py): the peak RSS of this
process plus the largest peak of its children (their VmHWM in /proc, read every 50 ms while the
import runs; `RUSAGE_CHILDREN` would count the parent's pages a child holds until its exec), added:
an upper bound, as the two need not peak together.
`--files DIR` keeps the generated files in DIR and reuses them on the next run (same sizes).

    .venv/bin/python bench/import.py [--orders 1000000] [--customers 200000] [--database-url URL]
                                     [--files DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import Engine, func, select, text  # noqa: E402

from app.imports import pull  # noqa: E402
from app.imports.schemas import LEDGER_COLUMNS  # noqa: E402
from app.kit.db import make_engine, make_sessionmaker, write_transaction  # noqa: E402
from app.models import Customer, Order, OrderImport  # noqa: E402
from app.shops.service import register_shop  # noqa: E402
from bench._database import fresh_database  # noqa: E402

SELF, CHILDREN = resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN
DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/rfm_bench_import"


def iso(ts: datetime) -> str:
    return ts.strftime("%Y-%m-%dT%H:%M:%SZ")


def generate(jsonl: Path, reference: Path, orders: int, customers: int, seed: int = 7) -> None:
    """The bulk file, and the same rows as COPY text for the reference."""
    rng = random.Random(seed)
    base = datetime(2021, 1, 1, tzinfo=UTC)
    with jsonl.open("w") as out, reference.open("w") as ref:
        for n in range(1, orders + 1):
            when = base + timedelta(seconds=rng.randrange(3 * 365 * 86400))
            updated = when + timedelta(seconds=rng.randrange(86400 * 30))
            guest = rng.random() < 0.05
            cancelled = rng.random() < 0.03
            status = "REFUNDED" if rng.random() < 0.04 else "PAID"
            cents = rng.randrange(500, 50000)
            amount = f"{cents // 100}.{cents % 100:02d}"
            discount = "10.0" if rng.random() < 0.2 else "0.0"
            customer = None if guest else rng.randrange(1, customers + 1) + 5_000_000_000_000
            node = {
                "id": f"gid://shopify/Order/{6_000_000_000_000 + n}",
                "createdAt": iso(when),
                "processedAt": iso(when),
                "updatedAt": iso(updated),
                "cancelledAt": iso(when + timedelta(hours=1)) if cancelled else None,
                "test": False,
                "displayFinancialStatus": status,
                "currentTotalPriceSet": {
                    "shopMoney": {"amount": amount},
                    "presentmentMoney": {"amount": amount},
                },
                "currentTotalDiscountsSet": {"shopMoney": {"amount": discount}},
                "discountCodes": ["SAVE10"] if discount != "0.0" else [],
                "sourceName": "web",
                "customer": {"id": f"gid://shopify/Customer/{customer}"} if customer else None,
            }
            out.write(json.dumps(node, separators=(",", ":")) + "\n")
            qualifies = not guest and not cancelled and status == "PAID"
            row = [
                6_000_000_000_000 + n,
                customer if customer else "\\N",
                when.isoformat(),
                updated.isoformat(),
                (when + timedelta(hours=1)).isoformat() if cancelled else "\\N",
                "f",
                status.lower(),
                amount,
                amount,
                "0",
                amount,
                discount,
                "SAVE10" if discount != "0.0" else "\\N",
                "t" if discount != "0.0" else "f",
                "web",
                "t" if qualifies else "f",
            ]
            ref.write("\t".join(str(v) for v in row) + "\n")


async def file_chunks(path: Path, size: int = 1 << 20) -> AsyncIterator[bytes]:
    with path.open("rb") as fh:
        while chunk := fh.read(size):
            yield chunk


class ChildPeaks:
    """The largest VmHWM (peak RSS, reset by exec) seen among this process's children, sampled."""

    def __init__(self, every_s: float = 0.05) -> None:
        self.peak_kb = 0
        self._every = every_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> ChildPeaks:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self._every):
            for pid in self._children():
                try:
                    status = Path(f"/proc/{pid}/status").read_text()
                except OSError:
                    continue
                for line in status.splitlines():
                    if line.startswith("VmHWM:"):
                        self.peak_kb = max(self.peak_kb, int(line.split()[1]))

    @staticmethod
    def _children() -> list[str]:
        pids: list[str] = []
        for task in Path(f"/proc/{os.getpid()}/task").iterdir():
            try:
                pids += (task / "children").read_text().split()
            except OSError:
                continue
        return pids


def _backend_cpu(engine: Engine) -> dict[int, float]:
    """CPU seconds (user + system) of every PostgreSQL backend connected to the bench database,
    read from /proc (the server runs on this machine)."""
    with engine.connect() as conn:
        pids = conn.scalars(text("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")).all()
    tick = os.sysconf("SC_CLK_TCK")
    cpu = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        cpu[pid] = (int(fields[11]) + int(fields[12])) / tick
    return cpu


def _cpu_between(before: dict[int, float], after: dict[int, float]) -> float:
    return sum(v - before.get(pid, 0.0) for pid, v in after.items())


def _own_cpu(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def _load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--customers", type=int, default=200_000)
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL))
    parser.add_argument("--files", type=Path, help="keep the generated files here and reuse them")
    args = parser.parse_args()

    fresh_database(args.database_url)
    engine = make_engine(args.database_url)
    factory = make_sessionmaker(engine)
    now = datetime.now(UTC)
    with write_transaction(factory) as s:
        shop = register_shop(s, "bench.myshopify.com", now)
        shop_id = shop.shop_id
        run_id = str(uuid.uuid4())
        s.add(
            OrderImport(
                shop_id=shop_id,
                run_id=run_id,
                state="ingesting",
                requested_at=now,
                started_at=now,
                updated_at=now,
                orders_done=0,
                lines_done=0,
                bytes_done=0,
                attempts=0,
            )
        )

    with tempfile.TemporaryDirectory() as tmp:
        folder = args.files or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        name = f"{args.orders}-{args.customers}"
        jsonl, reference = folder / f"orders-{name}.jsonl", folder / f"reference-{name}.tsv"
        if not (jsonl.exists() and reference.exists()):
            t = time.perf_counter()
            generate(jsonl, reference, args.orders, args.customers)
            print(f"generated {args.orders:,} orders in {time.perf_counter() - t:.1f}s (not timed)")
        print(f"{args.orders:,} orders, {jsonl.stat().st_size / 1e6:.0f} MB JSONL; load {_load()}")

        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        db0, me0, kids0 = _backend_cpu(engine), _own_cpu(SELF), _own_cpu(CHILDREN)
        t0 = time.perf_counter()
        with ChildPeaks() as children:
            complete = asyncio.run(pull.ingest_stream(factory, shop_id, run_id, file_chunks(jsonl)))
        t1 = time.perf_counter()
        db1, me1, kids1 = _backend_cpu(engine), _own_cpu(SELF), _own_cpu(CHILDREN)
        done = pull._recompute_aggregates(factory, shop_id, run_id, lambda: datetime.now(UTC), None)
        t2 = time.perf_counter()
        db2, me2 = _backend_cpu(engine), _own_cpu(SELF)
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        child_mb = children.peak_kb / 1024
        assert complete and done

        with factory() as s:
            ledger = s.scalar(select(func.count()).select_from(Order).where(Order.shop_id == shop_id))
            buyers = s.scalar(
                select(func.count())
                .select_from(Customer)
                .where(Customer.shop_id == shop_id, Customer.orders_count > 0)
            )
            row = s.get(OrderImport, shop_id)
            assert row is not None and row.state == "done" and row.orders_done == args.orders

        # Reference: the same rows, COPYed raw into an unindexed temp table.
        raw = engine.raw_connection()
        try:
            cur = raw.cursor()
            cols = ", ".join(LEDGER_COLUMNS)
            cur.execute(
                "CREATE TEMP TABLE ref_stage (order_id bigint, customer_id bigint, ordered_at timestamptz,"
                " source_updated_at timestamptz, cancelled_at timestamptz, test boolean,"
                " financial_status varchar(32), current_total numeric(20,4), presentment_total numeric(20,4),"
                " pending_refunds numeric(20,4), value numeric(20,4), total_discounts numeric(20,4),"
                " discount_codes text, discounted boolean, source_name varchar(255), qualifies boolean)"
            )
            rdb0, rme0 = _backend_cpu(engine), _own_cpu(SELF)
            r0 = time.perf_counter()
            with reference.open("rb") as fh, cur.copy(f"COPY ref_stage ({cols}) FROM STDIN") as copy:  # type: ignore[attr-defined]
                while chunk := fh.read(1 << 20):
                    copy.write(chunk)
            raw.commit()
            r1 = time.perf_counter()
            ref_cpu = _cpu_between(rdb0, _backend_cpu(engine)) + _own_cpu(SELF) - rme0
        finally:
            raw.close()

    total = t2 - t0
    reference_s = r1 - r0
    print(f"ledger rows {ledger:,}; customers with qualifying orders {buyers:,}")
    print(
        f"import: ingest {t1 - t0:.1f}s + aggregates {t2 - t1:.1f}s = {total:.1f}s wall "
        f"({args.orders / total:,.0f} orders/s); peak RSS {peak_mb:.0f} MB "
        f"(before ingest {rss_before / 1024:.0f} MB) + parser process {child_mb:.0f} MB "
        f"= {peak_mb + child_mb:.0f} MB"
    )
    print(
        f"CPU: ingest: this process {me1 - me0:.1f}s, parser process {kids1 - kids0:.1f}s, "
        f"database {_cpu_between(db0, db1):.1f}s; aggregates: this process {me2 - me1:.1f}s, "
        f"database {_cpu_between(db1, db2):.1f}s"
    )
    print(
        f"reference: raw COPY of the same {args.orders:,} rows into an unindexed temp table "
        f"{reference_s:.1f}s"
    )
    import_cpu = (me2 - me0) + (kids1 - kids0) + _cpu_between(db0, db2)
    print(
        f"ratio import / raw COPY: {total / reference_s:.1f}x; load {_load()}; "
        f"CPU: import {import_cpu:.1f}s, raw COPY {ref_cpu:.1f}s ({import_cpu / ref_cpu:.1f}x)"
    )
    engine.dispose()


if __name__ == "__main__":
    main()
