"""Bytes on the wire for each embedded page, plain and gzipped, and how the static files are cached.

    .venv/bin/python bench/compression.py                     # a 20,000-customer shop
    .venv/bin/python bench/compression.py --customers 200000

The shop is seeded as bench/pages.py seeds it (the pages' sizes hardly depend on the count: they
show stored summaries and 50 customers). Each page is requested through the whole ASGI app with
`Accept-Encoding: identity` (the reference: what every page weighed before compression) and with
`Accept-Encoding: gzip`; printed with the ratio plain / gzipped. Then each static file a page names,
with its `Cache-Control`.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _database import fresh_database  # noqa: E402
from pages import API_KEY, SECRET, SHOP, bench_shop, seed  # noqa: E402

from app.main import create_app  # noqa: E402
from shopify_double import create_devstore_app  # noqa: E402
from shopify_double.signing import make_session_token  # noqa: E402

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/rfm_bench_compression"
HOST = "YWRtaW4uc2hvcGlmeS5jb20vc3RvcmUvYmVuY2g"
PAGES = [
    "/app",
    "/app/customers",
    "/app/cohorts",
    "/app/accuracy",
    "/app/outcomes",
    "/app/settings",
    "/app/status",
]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", default=DEFAULT_URL)
    parser.add_argument("--customers", type=int, default=20_000)
    args = parser.parse_args()

    from starlette.testclient import TestClient

    store, token, settings = bench_shop(args.url)
    started = time.perf_counter()
    fresh_database(args.url)
    seed(args.url, args.customers, settings, token)
    print(f"seeded {args.customers:,} customers in {time.perf_counter() - started:.1f} s\n", flush=True)
    http = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=create_devstore_app(store)), base_url="http://devstore"
    )
    app = create_app(settings, http_client=http)
    assets: set[str] = set()
    total_plain = total_gzip = 0
    print(f"{'page':18} {'plain KB':>9} {'gzip KB':>8} {'ratio':>6}")
    with TestClient(app, base_url="https://bench.example.com") as client:
        for path in PAGES:
            query = f"shop={SHOP}&host={HOST}&embedded=1&id_token={make_session_token(SHOP, API_KEY, SECRET)}"
            sizes = {}
            for encoding in ("identity", "gzip"):
                with client.stream("GET", f"{path}?{query}", headers={"Accept-Encoding": encoding}) as r:
                    assert r.status_code == 200, path
                    raw = b"".join(r.iter_raw())
                    sizes[encoding] = len(raw)
                    if encoding == "gzip":
                        assert r.headers.get("content-encoding") == "gzip", path
            html = client.get(f"{path}?{query}").text
            assets |= set(re.findall(r'(?:href|src)="(/admin/static/[^"]+)"', html))
            total_plain += sizes["identity"]
            total_gzip += sizes["gzip"]
            print(
                f"{path:18} {sizes['identity'] / 1000:9.1f} {sizes['gzip'] / 1000:8.1f} "
                f"{sizes['identity'] / sizes['gzip']:5.1f}x"
            )
        ratio = total_plain / total_gzip
        print(f"{'all pages':18} {total_plain / 1000:9.1f} {total_gzip / 1000:8.1f} {ratio:5.1f}x\n")
        for asset in sorted(assets):
            r = client.get(asset, headers={"Accept-Encoding": "gzip"})
            encoding = r.headers.get("content-encoding") or "plain"
            print(f"{asset:48} {r.headers.get('cache-control')}  ({encoding})")
    asyncio.run(http.aclose())


if __name__ == "__main__":
    main()
