"""`rfm-clv demo`: build the demo shop on the embedded default and print what the app now knows.

The history lives in the local Shopify double and reaches the app as signed webhooks through
the real `POST /webhooks` endpoint (in-process ASGI), concurrently and so partly out of order,
as Shopify delivers them."""

from __future__ import annotations

import asyncio
import sys
import time
from datetime import UTC, datetime
from typing import Any, TextIO

import httpx

from app.config import Settings
from app.customers.service import ShopSummary, shop_summary
from app.db import migrate, write_transaction
from app.demo.history import apply_event, generate
from app.devstore.state import DevStore
from app.devstore.webhooks import Delivery, WebhookSender, order_delete_payload, order_payload
from app.main import create_app
from app.shops.service import register_shop

DEMO_SHOP = "demo-shop.myshopify.com"
CONCURRENCY = 16


async def send_history(
    settings: Settings, store: DevStore, customers: int, seed: int, out: TextIO
) -> ShopSummary:
    migrate(settings.database_url)
    app = create_app(settings)
    factory = app.state.sessionmaker
    with write_transaction(factory) as session:
        shop_id = register_shop(session, DEMO_SHOP, datetime.now(UTC), currency_code="USD").shop_id
    store.create_shop(DEMO_SHOP)
    history = generate(store, DEMO_SHOP, customers=customers, seed=seed)
    events = history.sorted_events()
    out.write(
        f"Demo shop {DEMO_SHOP}: {history.customers} customers, {history.orders} orders over two years\n"
    )

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
        sender = WebhookSender(client, secret=settings.shopify_api_secret, max_retries=3, base_delay=0.05)
        queue: asyncio.Queue[Delivery | None] = asyncio.Queue(maxsize=CONCURRENCY * 4)
        failed: list[Delivery] = []

        async def worker() -> None:
            while (delivery := await queue.get()) is not None:
                if not (await sender.deliver(delivery)).delivered:
                    failed.append(delivery)

        workers = [asyncio.create_task(worker()) for _ in range(CONCURRENCY)]
        started = time.perf_counter()
        for done, (at, topic, order) in enumerate(events, start=1):
            for deliver_topic, payload in _deliveries(store, topic, order, at):
                await queue.put(sender.build("/webhooks", deliver_topic, DEMO_SHOP, payload))
            if done % 2000 == 0 or done == len(events):
                _progress(out, done, len(events), started)
        for _ in workers:
            await queue.put(None)
        await asyncio.gather(*workers)
        out.write("\n")
        if failed:
            raise RuntimeError(f"{len(failed)} webhooks were refused; first: {failed[0].attempts[-1]}")
        elapsed = time.perf_counter() - started
        out.write(f"Sent {len(sender.deliveries)} signed webhooks in {elapsed:.1f} s\n")
    with factory() as session:
        summary = shop_summary(session, shop_id)
    app.state.engine.dispose()
    return summary


def _deliveries(store: DevStore, topic: str, order: Any, at: datetime) -> list[tuple[str, Any]]:
    refund = apply_event(store, DEMO_SHOP, topic, order, at)
    if topic == "orders/delete":
        return [("orders/delete", order_delete_payload(order))]
    body = order_payload(store, DEMO_SHOP, order)
    if refund is not None:
        refund_body = next(r for r in body["refunds"] if r["id"] == refund.id)
        return [("refunds/create", refund_body), ("orders/updated", body)]
    return [(topic, body)]


def _progress(out: TextIO, done: int, total: int, started: float) -> None:
    width = 30
    filled = int(width * done / total)
    rate = done / max(time.perf_counter() - started, 1e-9)
    out.write(f"\r  [{'#' * filled}{'.' * (width - filled)}] {done}/{total} events, {rate:,.0f}/s")
    out.flush()


def print_summary(summary: ShopSummary, out: TextIO) -> None:
    rate = summary.repeat_purchase_rate
    out.write(
        "\nCustomers and aggregates\n"
        f"  buyers with a qualifying order  {summary.customers:>10,}\n"
        f"  repeat buyers                   {summary.repeat_customers:>10,}"
        f"  ({(rate or 0) * 100:.1f}% repeat purchase rate)\n"
        f"  qualifying orders               {summary.orders:>10,}  (ledger rows {summary.ledger_rows:,})\n"
        f"  revenue                         {summary.revenue:>13,.2f}\n"
        f"  average order value             {summary.average_order_value or 0:>13,.2f}\n"
        f"  median days between orders      {summary.median_days_between_orders or 0:>13.1f}\n"
        "  top customers by total spent:\n"
    )
    for customer_id, orders, spent in summary.top_customers:
        out.write(f"    customer {customer_id:<16} {orders:>4} orders  {spent:>12,.2f}\n")


def run_demo(
    settings: Settings, *, customers: int = 3000, seed: int = 7, out: TextIO = sys.stdout
) -> ShopSummary:
    summary = asyncio.run(send_history(settings, DevStore(), customers, seed, out))
    print_summary(summary, out)
    return summary
