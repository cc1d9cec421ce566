"""Benchmark: three ways to keep the ledger and the customers from outliving their shop, by the
PostgreSQL backend's CPU, on the two paths that write them (migration 0027, docs/benchmarks.md):

- `key`: the foreign keys to shops (before 0027): one `SELECT … FOR KEY SHARE` of the shop per row;
- `hold`: no keys; the writer holds the shop's row once (0027: `rfm_ingest_order`'s lookup,
  `app.shops.repository.hold_shop` in the import);
- `trigger`: no keys; a statement-level trigger over the inserted rows (a transition table) locks
  their distinct shops once per statement.

Per way, alternated `--rounds` times on one freshly migrated database: (1) the import's ledger
write, `--rows` rows COPYed into `orders` in batches of 50,000, each batch its own transaction;
(2) `--deliveries` order deliveries, one `rfm_ingest_order` call each (prepared, autocommit, new
order ids, buyers drawn from 200,000), as the webhook path makes them. CPU seconds of the
connection's backend are read from /proc (the server runs on this machine), which the machine's
other work disturbs far less than wall time.

    .venv/bin/python bench/shop_key_check.py [--rows 500000] [--deliveries 10000] [--rounds 3]
                                             [--database-url URL]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import random
import sys
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._database import fresh_database  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/rfm_bench_shop_key"
BATCH = 50_000
COLUMNS = (
    "shop_id, order_id, customer_id, ordered_at, source_updated_at, cancelled_at, test, financial_status,"
    " current_total, presentment_total, pending_refunds, value, total_discounts, discount_codes, discounted,"
    " source_name, qualifies"
)
KEYS = (("orders", "fk_orders_shop_id_shops"), ("customers", "fk_customers_shop_id_shops"))
TRIGGER_FUNCTION = """
CREATE OR REPLACE FUNCTION bench_rows_have_shops() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    v_shops bigint[];
    v_held bigint;
BEGIN
    SELECT array_agg(DISTINCT shop_id) INTO v_shops FROM new_rows;
    IF v_shops IS NULL THEN
        RETURN NULL;
    END IF;
    PERFORM 1 FROM shops WHERE shop_id = ANY (v_shops) FOR KEY SHARE;
    GET DIAGNOSTICS v_held = ROW_COUNT;
    IF v_held <> cardinality(v_shops) THEN
        RAISE foreign_key_violation USING MESSAGE = 'a row names a shop that does not exist';
    END IF;
    RETURN NULL;
END
$$
"""
DELIVERY = (
    "SELECT rfm_ingest_order('bench.myshopify.com', now(), false, %s, %s, now() - interval '1 day', now(),"
    " NULL, false, 'PAID', 12.34, 12.34, 0, NULL, false, 'web', 12.34, true)"
)


def _migration_0027() -> object:
    path = next((ROOT / "migrations" / "versions").glob("*_0027_*.py"))
    spec = importlib.util.spec_from_file_location("migration_0027", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _setup(conn: psycopg.Connection[tuple[object, ...]], way: str, functions: object) -> None:
    for table, name in KEYS:
        conn.execute(f"ALTER TABLE {table} DROP CONSTRAINT IF EXISTS {name}")
        conn.execute(f"DROP TRIGGER IF EXISTS bench_rows_have_shops ON {table}")
    conn.execute(functions.INGEST_ORDER if way == "hold" else functions.INGEST_ORDER_0013)  # type: ignore[attr-defined]
    if way == "key":
        for table, name in KEYS:
            conn.execute(
                f"ALTER TABLE {table} ADD CONSTRAINT {name} FOREIGN KEY (shop_id) REFERENCES shops (shop_id)"
            )
    elif way == "trigger":
        for table, _ in KEYS:
            conn.execute(
                f"CREATE TRIGGER bench_rows_have_shops AFTER INSERT ON {table}"
                " REFERENCING NEW TABLE AS new_rows"
                " FOR EACH STATEMENT EXECUTE FUNCTION bench_rows_have_shops()"
            )


def _cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _batches(rows: int) -> list[bytes]:
    stamp = "2026-01-01 00:00:00+00"
    rest = "\\N\tf\tPAID\t12.34\t12.34\t0\t12.34\t0\t\\N\tf\tweb\tt\n"
    lines = [
        f"1\t{n}\t{5_000_000 + (n * 7919) % 200_000}\t{stamp}\t{stamp}\t{rest}" for n in range(1, rows + 1)
    ]
    return ["".join(lines[i : i + BATCH]).encode() for i in range(0, rows, BATCH)]


def _ledger_write(
    conn: psycopg.Connection[tuple[object, ...]], pid: int, batches: list[bytes], way: str
) -> float:
    conn.execute("TRUNCATE orders, customers")
    before = _cpu(pid)
    for data in batches:
        with conn.transaction():
            if way == "hold":
                conn.execute("SELECT 1 FROM shops WHERE shop_id = 1 FOR KEY SHARE")
            with conn.cursor() as cur, cur.copy(f"COPY orders ({COLUMNS}) FROM STDIN") as copy:
                copy.write(data)
    return _cpu(pid) - before


def _deliveries(
    conn: psycopg.Connection[tuple[object, ...]], pid: int, count: int, rng: random.Random
) -> float:
    def deliver() -> None:
        conn.execute(
            DELIVERY, (rng.randrange(10**7, 10**12), rng.randrange(5_000_000, 5_200_000)), prepare=True
        )

    for _ in range(500):  # the plans cached, the function compiled
        deliver()
    before = _cpu(pid)
    for _ in range(count):
        deliver()
    return _cpu(pid) - before


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=500_000)
    parser.add_argument("--deliveries", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL))
    args = parser.parse_args()

    fresh_database(args.database_url)
    functions = _migration_0027()
    batches = _batches(args.rows)
    rng = random.Random(11)
    with psycopg.connect(args.database_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO shops (shop_id, domain, installed_at, customers_removed)"
            " VALUES (1, 'bench.myshopify.com', now(), 0)"
        )
        conn.execute(TRIGGER_FUNCTION)
        pid = int(conn.execute("SELECT pg_backend_pid()").fetchone()[0])  # type: ignore[index]
        print(
            f"{args.rows:,} ledger rows in batches of {BATCH:,}; {args.deliveries:,} deliveries; backend CPU"
        )
        for round_ in range(1, args.rounds + 1):
            for way in ("key", "hold", "trigger"):
                _setup(conn, way, functions)
                ledger = _ledger_write(conn, pid, batches, way)
                conn.execute("VACUUM ANALYZE orders")
                conn.execute("VACUUM ANALYZE customers")
                delivery = _deliveries(conn, pid, args.deliveries, rng)
                print(
                    f"round {round_} {way:8s} ledger write {ledger:5.2f} s"
                    f" ({1e6 * ledger / args.rows:4.2f} µs a row)"
                    f"   delivery {1e6 * delivery / args.deliveries:6.1f} µs"
                    f"   load {os.getloadavg()[0]:.1f}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
