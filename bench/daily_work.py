"""The fleet's daily work without the web tier: what it costs per shop, in CPU and queries.

    .venv/bin/python bench/fleet.py --scale 0.1 --setup-only     # once: the fleet's saved setup
    .venv/bin/python bench/daily_work.py --scale 0.1             # then this, on a clone of it

On a clone of ``bench/fleet.py``'s saved setup (the same shops, customers and orders, "yesterday's"
fits and full rescores), every shop's daily work is made due at once and one in-process worker
(``app.worker.Worker``, the real schedules and job kinds) runs it to the end, with no webhooks:
the clock stands still while a job runs, so it measures the jobs, not the schedules' timing.
Measured: the worker's CPU (``time.process_time``, its threads included), the CPU of the
PostgreSQL backends of its connections (``/proc/<pid>/stat``: PostgreSQL on this machine), the
statements sent, and the wall time. Then one tick of the schedules (``tick_schedules``) with every
shop due and a customer of every shop marked: what each worker pays about once a second during a
cycle.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import time
from pathlib import Path
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import fleet  # noqa: E402

from app import tasks  # noqa: E402,F401 - registers the job kinds and schedules
from app.kit.db import make_engine, make_sessionmaker, normalise_url  # noqa: E402
from app.worker import Worker  # noqa: E402


class Meter:
    """Statements sent on an engine and the CPU of the PostgreSQL backends it connected to."""

    def __init__(self, engine: Any) -> None:
        self.statements = 0
        self.backends: set[int] = set()
        event.listen(engine, "connect", self._connected)
        event.listen(engine, "before_cursor_execute", self._sent)

    def _connected(self, dbapi: Any, _record: Any) -> None:
        cursor = dbapi.cursor()
        cursor.execute("SELECT pg_backend_pid()")
        self.backends.add(int(cursor.fetchone()[0]))
        cursor.close()
        dbapi.rollback()

    def _sent(self, *_: Any) -> None:
        self.statements += 1

    def database_cpu(self) -> float:
        ticks = 0
        for pid in self.backends:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:  # a backend that closed took its count with it
                continue
            ticks += int(fields[11]) + int(fields[12])  # utime, stime
        return ticks / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", default=fleet.DEFAULT_URL)
    parser.add_argument("--scale", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=19)
    args = parser.parse_args()
    database = make_url(normalise_url(args.url)).database
    assert database is not None
    template = f"{database}_setup_{args.scale:g}_{args.seed}".replace(".", "_")
    if not fleet._exists(args.url, template):
        sys.exit(f"no saved setup {template}: run bench/fleet.py --scale {args.scale:g} --setup-only first")
    sizes = fleet.shop_sizes(args.scale, args.seed)
    url = str(make_url(normalise_url(args.url)).set(database=f"{database}_daily"))
    fleet._clone(args.url, template, f"{database}_daily")
    due = dt.datetime.now(dt.UTC)
    fleet._set_due(url, due)
    engine = make_engine(url)
    meter = Meter(engine)
    clock = [due + dt.timedelta(seconds=1)]
    worker = Worker(make_sessionmaker(engine), clock=lambda: clock[0])
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())

    started, cpu, database_cpu = time.perf_counter(), time.process_time(), meter.database_cpu()
    jobs = 0
    while ran := worker.run_pending(limit=10**6):
        jobs += ran
        clock[0] += dt.timedelta(seconds=2)  # the rescores the fits queued
    wall = time.perf_counter() - started
    cpu, database_cpu = time.process_time() - cpu, meter.database_cpu() - database_cpu
    statements = meter.statements
    shops = sizes.size
    print(
        f"daily work of {shops} shops ({int(sizes.sum()):,} customers), one worker, {jobs} jobs "
        f"(load average {load}, 2 cores shared):\n"
        f"  worker CPU {cpu:.1f} s ({1000 * cpu / shops:.0f} ms a shop), PostgreSQL CPU {database_cpu:.1f} s "
        f"({1000 * database_cpu / shops:.0f} ms a shop), {statements:,} statements "
        f"({statements / shops:.0f} a shop), wall {wall:.1f} s"
    )

    # one schedule tick with every shop due again (a day later) and a buyer of each marked
    with engine.begin() as conn:
        conn.execute(text("UPDATE customers SET score_pending = true WHERE customer_id = 1"))
    clock[0] += dt.timedelta(days=1)
    ticking = Worker(make_sessionmaker(engine), clock=lambda: clock[0])
    ticking.tick_schedules()  # the first tick queues the day's fits and the marked buyers' rescores
    clock[0] += dt.timedelta(seconds=1.5)
    statements, started = meter.statements, time.perf_counter()
    ticking.tick_schedules()
    print(
        f"  a later tick of the schedules, every shop's work queued: {meter.statements - statements} "
        f"statements, {1000 * (time.perf_counter() - started):.0f} ms"
    )
    engine.dispose()


if __name__ == "__main__":
    main()
