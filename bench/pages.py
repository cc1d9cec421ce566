"""Server time of each embedded page and of the customers JSON for a 200,000-customer shop.

    .venv/bin/python bench/pages.py                      # 200,000 customers, 30 timed requests each
    .venv/bin/python bench/pages.py --customers 50000 --requests 50
    .venv/bin/python bench/pages.py --url postgresql://postgres@127.0.0.1/rfm_bench_pages

The shop is seeded with bulk SQL (not timed): customers, customer_scores, stage changes (a first
staging of everyone a month ago and 5 % moving this week), the segments table, the metrics snapshot
(docs/metrics.md, computed by the real functions over ~600,000 synthetic orders), a CLV fit and a backtest.
Requests go through the whole ASGI app in-process (session-token check, SQL, templates, charts);
the customer-name lookup is answered by the in-process Shopify double, so a real Shopify round trip
adds its network latency on top of the customers page figures.

Reference, measured in the same run: each page's SQL alone (the repository calls the page makes, on
one session), printed with the ratio page / SQL. Target: p95 under 200 ms per page.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.admin import repository as admin_repo  # noqa: E402
from app.admin import service as admin_service  # noqa: E402
from app.config import Settings  # noqa: E402
from app.kit.db import make_engine, make_sessionmaker  # noqa: E402
from app.main import create_app  # noqa: E402
from app.scoring import compute  # noqa: E402
from app.scoring import metrics as shop_metrics_rules  # noqa: E402
from app.settings import service as settings_service  # noqa: E402
from app.shops.tokens import token_cipher  # noqa: E402
from app.vocabulary import SEGMENT_NAMES, STAGE_NAMES  # noqa: E402
from bench._database import fresh_database  # noqa: E402
from shopify_double import DevStore, create_devstore_app  # noqa: E402
from shopify_double.server import IN_PROCESS_BASE_URL_TEMPLATE  # noqa: E402
from shopify_double.signing import make_session_token  # noqa: E402

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/rfm_bench_pages"
SHOP = "bench.myshopify.com"
API_KEY = "bench-key"
SECRET = "bench-secret-0123456789abcdef0123456789abcdef"
TARGET_MS = 200.0


def _metrics_json(customers: int, now: dt.datetime, rng: np.random.Generator) -> str:
    """The snapshot the worker stores, from the real shop-metrics functions over synthetic orders."""
    orders = customers * 3
    customer = rng.integers(0, customers, orders)
    today = (now.date() - dt.date(1970, 1, 1)).days
    day = today - rng.integers(0, 3 * 365, orders)
    value = rng.gamma(4.0, 18.0, orders)
    computed = shop_metrics_rules.shop_metrics(customer, day, value, as_of=today, max_months_after=36)
    clv = np.sort(rng.gamma(0.8, 90.0, customers))
    grid = rng.integers(1_000, 15_000, (5, 5))
    body = {
        "as_of": now.date(),
        "scored": {
            "customers": customers,
            "orders": orders,
            "repeat_buyers": customers // 2,
            "repeat_purchase_rate": 0.5,
            "average_days_between_orders": 61.5,
            "median_days_between_orders": 48.0,
        },
        "shop": computed,
        "typical_interval_days": 48.0,
        "stages": dict.fromkeys(STAGE_NAMES, customers // 5),
        "behaviour": {"first_time_buyers": customers // 2, "repeat_buyers": customers // 2},
        "rfm_grid": {"rows_r": [5, 4, 3, 2, 1], "columns_fm": [1, 2, 3, 4, 5], "customers": grid.tolist()},
        "predicted_clv": {
            "deciles": np.quantile(clv, np.linspace(0, 1, 11)).tolist(),
            "mean": float(clv.mean()),
        },
        "clv": {"source": "model", "fit_id": 1, "reasons": []},
    }
    return json.dumps(compute.to_jsonable(body))


def seed(url: str, customers: int, settings: Settings, token: str) -> int:
    now = dt.datetime.now(dt.UTC)
    rng = np.random.default_rng(8)
    cipher = token_cipher(settings)
    engine = make_engine(url)
    segments = "ARRAY[" + ",".join(f"'{s}'" for s in SEGMENT_NAMES) + "]"
    stages = "ARRAY[" + ",".join(f"'{s}'" for s in STAGE_NAMES) + "]"
    with engine.begin() as conn:
        shop_id = conn.execute(
            text(
                "INSERT INTO shops (domain, currency_code, iana_timezone, installed_at,"
                " access_token_encrypted,"
                " access_token_expires_at, scope) VALUES (:d, 'EUR', 'Europe/Berlin', :now, :tok, :exp,"
                " 'read_orders,read_customers') RETURNING shop_id"
            ),
            {"d": SHOP, "now": now, "tok": cipher.encrypt(token), "exp": now + dt.timedelta(days=1)},
        ).scalar_one()
        params = {"shop": shop_id, "n": customers, "now": now}
        conn.execute(
            text(
                """INSERT INTO customers (shop_id, customer_id, first_order_at, last_order_at, orders_count,
                   total_spent, average_order_value, discounted_orders_count, average_days_between_orders,
                   score_pending, aggregates_updated_at)
                SELECT :shop, 7000000000000 + g, :now - (g % 1000) * interval '1 day' - interval '30 days',
                   :now - (g % 700) * interval '1 day', 1 + g % 7, (20 + g % 900)::numeric, 50, g % 3,
                   CASE WHEN g % 7 > 0 THEN 30 + g % 60 END, false, :now
                FROM generate_series(1::bigint, :n) g"""
            ),
            params,
        )
        conn.execute(
            text(
                f"""INSERT INTO customer_scores (shop_id, customer_id, frequency, monetary, orders_last_year,
                   spent_last_year, recency_score, frequency_score, monetary_score, rfm_code, fm_score,
                   segment,
                   thirds_group, stage, stage_since, first_time_buyer, repeat_buyer, big_spender, high_aov,
                   discount_shopper, full_price_buyer, vip, historic_clv, predicted_clv, predicted_orders,
                   churn_risk, expected_next_order_at, average_days_between_orders, clv_tier, clv_source,
                   row_hash, synced_hash, values_changed_at)
                SELECT :shop, 7000000000000 + g, 1 + g % 7, (20 + g % 900)::numeric, g % 4,
                   (g % 300)::numeric,
                   1 + g % 5, 1 + (g / 5) % 5, 1 + (g / 25) % 5,
                   (1 + g % 5)::text || (1 + (g / 5) % 5)::text || (1 + (g / 25) % 5)::text, 1 + (g / 5) % 5,
                   ({segments})[1 + (g * 7919) % {len(SEGMENT_NAMES)}], 'Middle',
                   ({stages})[1 + (g * 104729) % {len(STAGE_NAMES)}], :now - interval '20 days',
                   g % 7 = 0, g % 7 > 0, g % 10 = 0, g % 10 = 1, g % 5 = 0, g % 5 = 1, g % 50 = 0,
                   (20 + g % 900)::numeric, round((random() * random() * 2000)::numeric, 2),
                   random() * 4, random(), :now + (g % 90) * interval '1 day', 30 + g % 60,
                   CASE WHEN g % 10 = 0 THEN 'top-10' WHEN g % 4 = 0 THEN 'top-25' END, 'model', g, g, :now
                FROM generate_series(1::bigint, :n) g"""
            ),
            params,
        )
        conn.execute(
            text(
                f"""INSERT INTO stage_changes (shop_id, customer_id, from_stage, to_stage, changed_at)
                SELECT :shop, 7000000000000 + g, NULL, ({stages})[1 + g % 5], :now - interval '30 days'
                FROM generate_series(1::bigint, :n) g
                UNION ALL
                SELECT :shop, 7000000000000 + g, ({stages})[1 + g % 5], ({stages})[1 + (g + 1) % 5],
                   :now - (g % 6) * interval '1 day'
                FROM generate_series(1::bigint, :n / 20) g"""
            ),
            params,
        )
        rows = []
        for position, name in enumerate(["All customers", *SEGMENT_NAMES]):
            share = 1.0 if position == 0 else 1 / len(SEGMENT_NAMES)
            rows.append(
                {
                    "shop": shop_id,
                    "segment": name,
                    "position": position,
                    "customers": int(customers * share),
                    "share": share,
                    "orders": int(customers * share * 3),
                    "revenue": 1000.0 * position,
                    "aov": 55.5,
                    "clv": 80.25,
                    "formula": 240.75,
                    "ratio": 4.0,
                    "now": now,
                }
            )
        conn.execute(
            text(
                """INSERT INTO shop_segments (shop_id, segment, position, customers, customer_share, orders,
                   revenue,
                   revenue_share, average_order_value, average_predicted_clv, average_historic_clv,
                   purchase_frequency, customer_value, formula_clv, ltv_to_cac, max_cpc, computed_at)
                VALUES (:shop, :segment, :position, :customers, :share, :orders, :revenue, :share, :aov, :clv,
                   :clv, 1.2, 80.25, :formula, :ratio, 4.8, :now)"""
            ),
            rows,
        )
        conn.execute(
            text(
                "INSERT INTO shop_metrics (shop_id, metrics, computed_at, rescored_at, customers_scored,"
                " orders_scored) VALUES (:shop, :m, :now, :now, :n, :o)"
            ),
            {
                "shop": shop_id,
                "m": _metrics_json(customers, now, rng),
                "now": now,
                "n": customers,
                "o": 3 * customers,
            },
        )
        conn.execute(
            text(
                """INSERT INTO clv_fits (shop_id, fitted_at, customers, repeat_buyers, orders, usable,
                   r, alpha, a, b,
                   p, q, v, fallback_order_value, seconds)
                   VALUES (:shop, :now, :n, :n / 2, :n * 3, true, 0.24,
                   4.4, 0.79, 2.4, 6.2, 3.7, 15.0, 55.0, 0.4)"""
            ),
            params,
        )
        by_frequency = json.dumps(
            [
                {
                    "repeat_orders": str(k),
                    "customers": 1000,
                    "actual": 0.5 * k,
                    "predicted": 0.55 * k,
                    "naive": 0.8 * k,
                }
                for k in range(8)
            ]
        )
        conn.execute(
            text(
                """INSERT INTO backtests (shop_id, computed_at, calibration_end, holdout_end, customers,
                   model_used,
                   predicted_orders, actual_orders, naive_orders, orders_mae, orders_bias, naive_orders_mae,
                   naive_orders_bias, predicted_revenue, actual_revenue, naive_revenue, revenue_mae,
                   revenue_bias,
                   naive_revenue_mae, naive_revenue_bias, by_frequency)
                VALUES (:shop, :now, :cut, :end, :n, true, 1000, 950, 1400, 0.8, 0.1, 1.2, 0.5, 50000, 47000,
                   70000, 40, 5, 60, 20, :bf)"""
            ),
            params | {"cut": (now - dt.timedelta(days=180)).date(), "end": now.date(), "bf": by_frequency},
        )
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE customers, customer_scores, stage_changes"))
    engine.dispose()
    return int(shop_id)


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def bench_shop(url: str) -> tuple[DevStore, str, Settings]:
    """The benchmarks' shop in the Shopify double, its offline token, and the app's settings for a
    database at ``url`` with the double in process (bench/pages.py and the page benchmarks)."""
    store = DevStore(client_id=API_KEY, client_secret=SECRET)
    store.create_shop(SHOP)
    token = store.issue_access_token(SHOP, "read_orders,read_customers")
    settings = Settings(
        app_env="test",
        database_url=url,
        shopify_api_key=API_KEY,
        shopify_api_secret=SECRET,
        app_url="https://bench.example.com",
        shopify_admin_base_url_template=IN_PROCESS_BASE_URL_TEMPLATE,
    )
    return store, token, settings


def _time(fn: Callable[[], Any], requests: int, warmup: int = 3) -> list[float]:
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(requests):
        started = time.perf_counter()
        fn()
        out.append(1000 * (time.perf_counter() - started))
    return out


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
    print(f"seeding {args.customers:,} customers into {args.url} ...", flush=True)
    started = time.perf_counter()
    fresh_database(args.url)
    shop_id = seed(args.url, args.customers, settings, token)
    print(f"seeded in {time.perf_counter() - started:.1f} s", flush=True)

    http = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=create_devstore_app(store)), base_url="http://devstore"
    )
    app = create_app(settings, http_client=http)
    factory = make_sessionmaker(make_engine(args.url))
    host = "YWRtaW4uc2hvcGlmeS5jb20vc3RvcmUvYmVuY2g"

    def launch(extra: str = "") -> str:
        tok = make_session_token(SHOP, API_KEY, SECRET)
        return f"shop={SHOP}&host={host}&embedded=1&id_token={tok}{extra}"

    def sql(fn: Callable[..., Any], *a: Any) -> Callable[[], Any]:
        def run() -> Any:
            with factory() as session:
                return fn(session, *a)

        return run

    now = dt.datetime.now(dt.UTC)
    champions = admin_repo.CustomerFilter(segment="Champions", sort="historic_clv")
    at_risk = admin_repo.CustomerFilter(stage="at_risk", sort="churn_risk")
    default = admin_repo.CustomerFilter()

    def list_sql(f: admin_repo.CustomerFilter, page: int) -> Callable[[], Any]:
        return sql(admin_service.customers, shop_id, f, page)

    cases: list[tuple[str, str, Callable[[], Any]]] = [
        ("overview  /app", "/app?{q}", sql(admin_service.overview, shop_id, now)),
        ("customers /app/customers", "/app/customers?{q}", list_sql(default, 1)),
        (
            "customers segment+sort",
            "/app/customers?{q}&segment=Champions&sort=historic_clv",
            list_sql(champions, 1),
        ),
        (
            "customers stage, page 100",
            "/app/customers?{q}&stage=at_risk&sort=churn_risk&page=100",
            list_sql(at_risk, 100),
        ),
        ("JSON /api/customers", "/api/customers", list_sql(default, 1)),
        (
            "JSON /api/customers tier",
            "/api/customers?clv=top-10&sort=orders",
            list_sql(admin_repo.CustomerFilter(clv_tier="top-10", sort="orders"), 1),
        ),
        ("cohorts   /app/cohorts", "/app/cohorts?{q}", sql(admin_service.overview, shop_id, now)),
        ("accuracy  /app/accuracy", "/app/accuracy?{q}", sql(admin_service.accuracy, shop_id)),
        ("settings  /app/settings", "/app/settings?{q}", sql(settings_service.get_settings, shop_id)),
        ("status    /app/status", "/app/status?{q}", sql(admin_service.status, _shop(factory, shop_id))),
        ("JSON /api/status", "/api/status", sql(admin_service.status, _shop(factory, shop_id))),
    ]
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    print(f"\n{args.requests} timed requests each (3 warm-up); times in ms; load average {load}\n")
    print(f"{'page':32} {'p50':>8} {'p95':>8}   {'SQL p50':>8} {'ratio':>6}   target p95 < {TARGET_MS:.0f}")
    worst = 0.0
    with TestClient(app, base_url="https://bench.example.com") as client:
        for label, path, reference in cases:
            if path.startswith("/api/"):

                def request(path: str = path) -> None:
                    r = client.get(
                        path, headers={"Authorization": f"Bearer {make_session_token(SHOP, API_KEY, SECRET)}"}
                    )
                    assert r.status_code == 200, r.text[:200]
            else:

                def request(path: str = path) -> None:
                    r = client.get(path.replace("{q}", launch()))
                    assert r.status_code == 200, r.text[:200]

            times = _time(request, args.requests)
            ref = _time(reference, args.requests)
            p50, p95, ref50 = statistics.median(times), _percentile(times, 0.95), statistics.median(ref)
            worst = max(worst, p95)
            print(
                f"{label:32} {p50:8.1f} {p95:8.1f}   {ref50:8.1f} {p50 / ref50:6.1f}x   "
                f"{'ok' if p95 < TARGET_MS else 'SLOW'}"
            )

        started = time.perf_counter()
        size = 0
        with client.stream("GET", f"/app/customers.csv?{launch()}") as response:
            for chunk in response.iter_bytes():
                size += len(chunk)
        export = time.perf_counter() - started
        print(
            f"\nCSV export of all {args.customers:,} customers: {export:.2f} s, {size / 1e6:.1f} MB streamed"
        )
    print(
        f"worst page p95: {worst:.1f} ms "
        f"({'meets' if worst < TARGET_MS else 'misses'} the {TARGET_MS:.0f} ms target)"
    )
    asyncio.run(http.aclose())


def _shop(factory: Any, shop_id: int) -> Any:
    from app.models import Shop

    with factory() as session:
        shop = session.get(Shop, shop_id)
        session.expunge(shop)
        return shop


if __name__ == "__main__":
    main()
