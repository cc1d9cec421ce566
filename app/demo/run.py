"""`rfm-clv demo`: the whole product on one machine, with nothing else installed or configured.

1. The Shopify double (`shopify_double`) starts as a local store server, filled with a seeded
   realistic history (`app.demo.history`), with the app's metafield definitions from
   `shopify.app.toml` and its Flow triggers from `extensions/` (what `shopify app deploy` does).
2. The app starts as a local server and is installed the way the Shopify admin does it (managed
   install: the embedded page opened with a session token, then token exchange); the install
   queues the history import; a Flow workflow is turned on for each of the app's triggers.
3. A worker runs the import (bulk operation), the scoring, the CLV fit and the sync back into the
   store; meanwhile new orders stream in as signed webhooks.
4. The embedded pages are served at a printed local URL, through a development-only login.
Ctrl-C (or `--duration`) stops everything cleanly. SQLite by default; `DATABASE_URL` for PostgreSQL.
"""

from __future__ import annotations

import asyncio
import base64
import random
import sys
import threading
import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, TextIO

import httpx
import uvicorn
from sqlalchemy import func, select

import app.tasks  # noqa: F401 - registers every job kind
from app.config import Settings
from app.demo.history import generate
from app.imports.service import import_progress
from app.jobs.services import services_factory
from app.kit.db import make_engine, make_sessionmaker, migrate
from app.kit.http import tls_context
from app.main import create_app
from app.models import Customer, CustomerScore, FlowTriggerEvent, Shop
from app.sync.desired import metafields_expected
from app.worker import Worker
from shopify_double.flow import deploy_flow_triggers, lifecycle_callback
from shopify_double.oauth import install_app
from shopify_double.server import create_devstore_app
from shopify_double.signing import make_session_token
from shopify_double.state import DevStore
from shopify_double.webhooks import WebhookSender, order_payload

DEMO_SHOP = "demo-shop.myshopify.com"
NEW_BUYER_SHARE = 0.5
"""With no history (``--customers 0``), the share of streamed orders placed by a new buyer."""
# A store that counts in euros and Berlin days: the install and the import read both from the store.
DEMO_CURRENCY = "EUR"
DEMO_TIMEZONE = "Europe/Berlin"
TOML = Path(__file__).resolve().parents[2] / "shopify.app.toml"
EXTENSIONS = Path(__file__).resolve().parents[2] / "extensions"


@dataclass
class DemoResult:
    customers_generated: int = 0
    orders_generated: int = 0
    import_state: str = "not started"
    orders_imported: int = 0
    customers_scored: int = 0
    streamed_orders: int = 0
    metafields_in_store: int = 0
    metafields_expected: int = 0
    tagged_customers: int = 0
    segments_in_store: int = 0
    flow_triggers_fired: dict[str, int] = field(default_factory=dict)
    """Flow triggers the store accepted, by handle (every workflow turned on at install)."""
    url: str = ""
    page_status: int = 0
    errors: list[str] = field(default_factory=list)


class _Server:
    """A uvicorn server in a thread, stopped cleanly."""

    def __init__(self, app: Any, host: str, port: int) -> None:
        config = uvicorn.Config(
            app, host=host, port=port, log_level="warning", access_log=False, lifespan="on"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name=f"uvicorn:{port}", daemon=True)

    def start(self) -> int:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("a local server did not start")
            time.sleep(0.05)
        return int(self.server.servers[0].sockets[0].getsockname()[1])

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)


def define_app_metafields(store: DevStore, shop: str, toml_path: Path = TOML) -> int:
    """Create the `[customer.metafields.app.*]` definitions of shopify.app.toml in the store."""
    config = tomllib.loads(toml_path.read_text())
    definitions = config.get("customer", {}).get("metafields", {}).get("app", {})
    for key, spec in definitions.items():
        validations = spec.get("validations", {})
        choices = validations.get("choices")
        store.define_metafield(shop, key, spec["type"], name=spec.get("name"), choices=choices)
    return len(definitions)


_last_bar: dict[int, str] = {}


def _bar(out: TextIO, label: str, done: float, total: float | None, suffix: str = "") -> None:
    width = 28
    share = min(done / total, 1.0) if total else 0.0
    filled = int(width * share)
    count = f"{int(done):,}/{int(total):,}" if total else f"{int(done):,}"
    line = f"\r  {label:<22} [{'#' * filled}{'.' * (width - filled)}] {count} {suffix}   "
    if _last_bar.get(id(out)) != line:  # redraw only on change
        _last_bar[id(out)] = line
        out.write(line)
        out.flush()


class Demo:
    def __init__(
        self,
        settings: Settings,
        *,
        customers: int = 8000,
        seed: int = 7,
        orders_per_second: float = 2.0,
        duration: float | None = None,
        host: str = "127.0.0.1",
        port: int = 8000,
        out: TextIO = sys.stdout,
        plan: str = "Basic",
    ) -> None:
        if settings.app_env == "production":
            raise SystemExit("the demo is for development only (APP_ENV is production)")
        self.base_settings = settings
        self.customers, self.seed = customers, seed
        self.rate, self.duration = orders_per_second, duration
        self.host, self.port, self.out = host, port, out
        self.plan = plan  # the store's Shopify plan sets its API budget, and so the sync's pace
        self.store = DevStore(client_id=settings.shopify_api_key, client_secret=settings.shopify_api_secret)
        self.result = DemoResult()
        self._stop = threading.Event()
        self._stream_done = threading.Event()
        self._servers: list[_Server] = []
        self._threads: list[threading.Thread] = []
        self._worker: Worker | None = None

    # -- the run -----------------------------------------------------------------------------
    def run(self) -> DemoResult:
        try:
            self._run()
        except KeyboardInterrupt:
            self.out.write("\nStopping…\n")
        finally:
            self.stop()
        return self.result

    def stop(self) -> None:
        self._stop.set()
        if self._worker is not None:
            self._worker.stop()
        for thread in self._threads:
            thread.join(timeout=30)
        for server in reversed(self._servers):
            server.stop()
        self._servers.clear()
        self._threads.clear()

    def _run(self) -> None:
        out = self.out
        migrate(self.base_settings.database_url)
        store_server = _Server(create_devstore_app(self.store), self.host, 0)
        self._servers.append(store_server)
        store_port = store_server.start()
        out.write(f"Shopify double (local store) at http://{self.host}:{store_port}\n")

        self.store.create_shop(
            DEMO_SHOP,
            name="Demo Shop",
            plan=self.plan,
            currency_code=DEMO_CURRENCY,
            iana_timezone=DEMO_TIMEZONE,
        )
        history = generate(self.store, DEMO_SHOP, customers=self.customers, seed=self.seed)
        self._apply_history(history)
        self.result.customers_generated, self.result.orders_generated = history.customers, history.orders
        definitions = define_app_metafields(self.store, DEMO_SHOP)
        triggers = deploy_flow_triggers(self.store, EXTENSIONS)
        out.write(
            f"Store history: {history.customers:,} customers, {history.orders:,} orders over two years; "
            f"{definitions} app metafield definitions and {triggers} Flow triggers deployed\n"
        )

        settings = self.base_settings.model_copy(
            update={
                "shopify_admin_base_url_template": f"http://{self.host}:{store_port}/shops/{{shop}}",
                "dev_login": True,
                # the local store finishes a bulk operation as soon as it is asked
                "bulk_poll_seconds": 0.5,
            }
        )
        app = create_app(settings)
        app_server = _Server(app, self.host, self.port)
        self._servers.append(app_server)
        app_port = app_server.start()
        settings = settings.model_copy(update={"app_url": f"http://{self.host}:{app_port}"})
        app.state.settings = settings
        self.result.url = f"http://{self.host}:{app_port}/dev/login?shop={DEMO_SHOP}"

        self._install(app_port, settings)
        out.write("Installed through Shopify-managed install + token exchange; history import queued\n")
        self._turn_on_workflows(app_port)
        out.write("A Flow workflow turned on for each of the app's triggers (Flow's lifecycle callback)\n")

        engine = make_engine(settings.database_url)
        factory = make_sessionmaker(engine)
        # the local store answers at once and has no API budget to batch for: the worker looks for
        # due work (a sync after a rescore, say) twice a second instead of every few seconds
        self._worker = Worker(
            factory, services=services_factory(settings), poll_seconds=0.2, schedule_cap_seconds=0.5
        )
        worker_thread = threading.Thread(target=self._run_worker, name="worker", daemon=True)
        self._threads.append(worker_thread)
        worker_thread.start()

        self._follow_import(factory)
        stream = threading.Thread(
            target=self._stream_orders, args=(app_port, settings), name="orders", daemon=True
        )
        self._threads.append(stream)
        stream.start()
        self._follow_scoring(factory)
        self.result.page_status = self._open_overview()
        out.write(
            f"\nOpen the embedded pages at {self.result.url}  (overview answered {self.result.page_status})\n"
        )
        out.write("New orders arrive as signed webhooks; Ctrl-C stops everything.\n")
        started = time.monotonic()
        while not self._stop.is_set():
            left = None if self.duration is None else self.duration - (time.monotonic() - started)
            if left is not None and left <= 0:
                break
            self._refresh_store_counts()
            self._stop.wait(1.0 if left is None else min(1.0, left))
        # The orders stop; the summary waits (briefly) for the sync to write the last scores, so
        # that what Shopify holds and what the app expects are counted at the same moment.
        self._stream_done.set()
        stream.join(timeout=15)

        def caught_up() -> bool:
            self._refresh_store_counts()
            self.result.metafields_expected = self._metafields_expected(factory)
            with factory() as session:  # and the Flow triggers of the last changes are sent
                pending = session.scalar(select(func.count()).where(FlowTriggerEvent.status == "pending"))
            self._refresh_store_counts()
            return self.result.metafields_in_store == self.result.metafields_expected and not pending

        self._wait(caught_up, timeout=30)
        self._summarise(factory)
        engine.dispose()

    # -- steps -------------------------------------------------------------------------------
    def _apply_history(self, history: Any) -> None:
        from app.demo.history import apply_event

        for at, topic, order in history.sorted_events():
            if topic != "orders/create":
                apply_event(self.store, DEMO_SHOP, topic, order, at)

    def _install(self, app_port: int, settings: Settings) -> None:
        install_app(self.store, DEMO_SHOP)
        token = make_session_token(DEMO_SHOP, settings.shopify_api_key, settings.shopify_api_secret)
        host = base64.b64encode(b"admin.shopify.com/store/demo-shop").decode().rstrip("=")
        params = {"embedded": "1", "shop": DEMO_SHOP, "host": host, "id_token": token}
        with self._local_client(app_port) as client:
            response = client.get("/app", params=params)
        if response.status_code != 200:
            raise RuntimeError(f"the embedded page answered {response.status_code} on install")

    def _turn_on_workflows(self, app_port: int) -> None:
        """What Shopify Flow tells the app when the merchant turns on a workflow using a trigger."""
        with self._local_client(app_port) as client:
            for handle in self.store.flow_triggers:
                body, headers = lifecycle_callback(self.store, DEMO_SHOP, handle, True, datetime.now(UTC))
                response = client.post("/flow/lifecycle", content=body, headers=headers)
                if response.status_code != 200:
                    raise RuntimeError(f"the Flow lifecycle callback answered {response.status_code}")

    def _open_overview(self) -> int:
        with httpx.Client(follow_redirects=True, timeout=30, verify=tls_context()) as client:
            return client.get(self.result.url).status_code

    def _local_client(self, app_port: int) -> httpx.Client:
        """A client of the demo's own app server. The process's one TLS context (app.kit.http): a
        new client would otherwise load the CA bundle again (about 25 ms of CPU) for plain HTTP."""
        return httpx.Client(base_url=f"http://{self.host}:{app_port}", timeout=30, verify=tls_context())

    def _run_worker(self) -> None:
        assert self._worker is not None
        try:
            self._worker.run()
        finally:
            self._worker.close()

    def _wait(self, step: Callable[[], bool], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not self._stop.is_set() and time.monotonic() < deadline:
            if step():
                return True
            time.sleep(0.3)
        return False

    def _follow_import(self, factory: Any) -> None:
        def step() -> bool:
            with factory() as session:
                shop_id = session.scalar(select(Shop.shop_id).where(Shop.domain == DEMO_SHOP))
                progress = import_progress(session, shop_id) if shop_id is not None else None
            if progress is None:
                return False
            self.result.import_state = str(progress.state.value)
            self.result.orders_imported = progress.orders_done
            _bar(
                self.out,
                "history import",
                progress.orders_done,
                progress.orders_expected,
                progress.state.value,
            )
            if progress.state.value == "failed":
                self.result.errors.append(f"import failed: {progress.error}")
                return True
            return progress.state.value == "done"

        if not self._wait(step, timeout=900):
            self.result.errors.append("the import did not finish in time")
        self.out.write("\n")

    def _follow_scoring(self, factory: Any) -> None:
        def step() -> bool:
            with factory() as session:
                buyers = (
                    session.scalar(
                        select(func.count()).select_from(Customer).where(Customer.orders_count > 0)
                    )
                    or 0
                )
                scored = session.scalar(select(func.count()).select_from(CustomerScore)) or 0
            self.result.customers_scored = scored
            self.result.metafields_expected = self._metafields_expected(factory)
            _bar(self.out, "scoring + CLV", scored, buyers)
            return buyers > 0 and scored >= buyers

        self._wait(step, timeout=600)
        self.out.write("\n")

        def synced() -> bool:
            self._refresh_store_counts()
            self.result.metafields_expected = self._metafields_expected(factory)
            _bar(
                self.out,
                "metafields in Shopify",
                self.result.metafields_in_store,
                self.result.metafields_expected,
            )
            return self.result.tagged_customers >= self.result.customers_scored > 0

        self._wait(synced, timeout=300)
        self.out.write("\n")

    @staticmethod
    def _metafields_expected(session_factory: Any) -> int:
        """The metafields the scored customers should hold in Shopify, by the sync's own list."""
        with session_factory() as session:
            scored, dated = session.execute(
                select(func.count(), func.count(CustomerScore.expected_next_order_at))
            ).one()
        return metafields_expected(scored or 0, dated or 0)

    def _refresh_store_counts(self) -> None:
        shop = self.store.shop(DEMO_SHOP)
        prefixes = ("rfm:", "stage:", "clv:")
        self.result.metafields_in_store = len(shop.metafields)
        self.result.tagged_customers = sum(
            1 for c in list(shop.customers.values()) if any(t.lower().startswith(prefixes) for t in c.tags)
        )
        self.result.segments_in_store = len(getattr(shop, "segments", {}))
        fired: dict[str, int] = {}
        for run in list(shop.flow_runs):
            fired[run.handle] = fired.get(run.handle, 0) + 1
        self.result.flow_triggers_fired = fired

    def _stream_orders(self, app_port: int, settings: Settings) -> None:
        asyncio.run(self._stream(app_port, settings))

    async def _stream(self, app_port: int, settings: Settings) -> None:
        rng = random.Random(self.seed + 1)
        shop = self.store.shop(DEMO_SHOP)
        customer_ids = [c.id for c in list(shop.customers.values())]
        async with httpx.AsyncClient(
            base_url=f"http://{self.host}:{app_port}", timeout=10, verify=tls_context()
        ) as client:
            sender = WebhookSender(client, secret=settings.shopify_api_secret, max_retries=3, base_delay=0.5)
            while not self._stop.is_set() and not self._stream_done.is_set():
                if not customer_ids or (self.customers == 0 and rng.random() < NEW_BUYER_SHARE):
                    # a store that starts empty gains its buyers from the stream itself
                    customer_ids.append(self.store.create_customers(DEMO_SHOP, 1)[0].id)
                order = self.store.create_order(
                    DEMO_SHOP,
                    customer_id=rng.choice(customer_ids),
                    total_price=Decimal(rng.randrange(1500, 25000)) / 100,
                    processed_at=datetime.now(UTC),
                )
                delivery = await sender.send(
                    "/webhooks", "orders/create", DEMO_SHOP, order_payload(self.store, DEMO_SHOP, order)
                )
                if delivery.delivered:
                    self.result.streamed_orders += 1
                await asyncio.sleep(1.0 / self.rate if self.rate > 0 else 1.0)

    def _summarise(self, factory: Any) -> None:
        with factory() as session:
            self.result.customers_scored = (
                session.scalar(select(func.count()).select_from(CustomerScore)) or 0
            )
        r = self.result
        self.out.write(
            "\nSummary\n"
            f"  orders imported by bulk operation  {r.orders_imported:>10,}  ({r.import_state})\n"
            f"  customers scored                   {r.customers_scored:>10,}\n"
            f"  orders streamed as webhooks        {r.streamed_orders:>10,}\n"
            f"  app metafields in the store        {r.metafields_in_store:>10,}\n"
            f"  customers with the app's tags      {r.tagged_customers:>10,}\n"
            f"  segments in the store              {r.segments_in_store:>10,}\n"
            f"  Flow triggers fired                {sum(r.flow_triggers_fired.values()):>10,}"
            + "".join(f"\n    {handle:<32} {n:>10,}" for handle, n in sorted(r.flow_triggers_fired.items()))
            + "\n"
        )
        for error in r.errors:
            self.out.write(f"  problem: {error}\n")


def run_demo(settings: Settings, **options: Any) -> DemoResult:
    return Demo(settings, **options).run()
