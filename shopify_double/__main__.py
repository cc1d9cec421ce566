"""``python -m shopify_double [--port 8765] [--shop demo.myshopify.com] [--customers 100]``: serve the
double with uvicorn, one shop seeded, and print the shop's base URL and an access token."""

from __future__ import annotations

import argparse

import uvicorn

from shopify_double.server import create_devstore_app, shop_base_url
from shopify_double.state import DevStore


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--shop", default="demo.myshopify.com")
    parser.add_argument("--customers", type=int, default=100)
    parser.add_argument("--scope", default="read_orders,read_all_orders,read_customers,write_customers")
    args = parser.parse_args()
    store = DevStore()
    store.create_shop(args.shop)
    store.create_customers(args.shop, args.customers)
    token = store.issue_access_token(args.shop, args.scope)
    base = shop_base_url(args.shop, f"http://{args.host}:{args.port}/shops/{{shop}}")
    print(f"devstore: {base}/admin/api/2026-10/graphql.json  X-Shopify-Access-Token: {token}", flush=True)
    uvicorn.run(create_devstore_app(store), host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
