"""The embedded page against a seeded shop: the app's outbound client goes to the Shopify double
(which knows the shop's customers by name), the shop holds a valid offline token, and requests
carry real session tokens signed with the app's secret.

Browser tests (any ``tests/admin/test_browser*.py``) share ONE headless Chromium per test session
(Debian's chromium-headless-shell, driven by Playwright; one launch per xdist process).
To write one:

    from tests.admin.conftest import BROWSER, open_page

    pytestmark = BROWSER  # the `browser` marker, skipped where /usr/bin/chromium is missing

    def test_something(browser_page, server, seeded):   # a fresh context + page, the app on a port
        open_page(browser_page, server, "/app/settings")  # a launch query with a fresh session token
        ...

``chromium`` (the shared Browser) is there for a test that needs its own context (another viewport,
say); ``axe_violations(page)`` runs axe-core (tests/browser/package.json, installed by `.ci/run`
with `npm ci`) on the page and returns the serious and critical violations.
"""

from __future__ import annotations

import asyncio
import base64
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from sqlalchemy import Engine
from sqlalchemy.orm import Session
from starlette.testclient import TestClient

from app.config import Settings
from app.main import create_app
from app.models import Shop
from shopify_double import DevStore, create_devstore_app
from shopify_double.server import IN_PROCESS_BASE_URL_TEMPLATE
from shopify_double.signing import make_session_token
from tests.admin.seed import SeededShop, give_token, seed_shop
from tests.fixtures.database import restore, snapshot
from tests.fixtures.webhooks import SECRET

SHOP = "demo.myshopify.com"
OTHER_SHOP = "other.myshopify.com"
API_KEY = "test-key"
APP_URL = "https://app.example.com"
SCOPES = "read_orders,read_all_orders,read_customers,write_customers"
CUSTOMERS = 300
# The seeded shop counts in euros and Berlin days (the README's screenshots come from it).
SHOP_CURRENCY = "EUR"
SHOP_TIMEZONE = "Europe/Berlin"


def host_param(shop: str) -> str:
    return base64.b64encode(f"admin.shopify.com/store/{shop.split('.')[0]}".encode()).decode().rstrip("=")


def session_token(shop: str = SHOP, **claims: Any) -> str:
    claims.setdefault("now", time.time())
    return make_session_token(shop, API_KEY, SECRET, **claims)


def launch(shop: str = SHOP, *, id_token: str | None = None, **extra: Any) -> str:
    """The launch query a page load carries (shop, host, embedded, id_token) plus ``extra``."""
    params = {
        "embedded": "1",
        "host": host_param(shop),
        "id_token": id_token if id_token is not None else session_token(shop),
        "shop": shop,
    }
    params.update({k: str(v) for k, v in extra.items()})
    return urlencode(params)


def bearer(shop: str = SHOP) -> dict[str, str]:
    return {"Authorization": f"Bearer {session_token(shop)}"}


@pytest.fixture
def store() -> DevStore:
    s = DevStore(client_id=API_KEY, client_secret=SECRET)
    s.create_shop(SHOP, currency_code=SHOP_CURRENCY, iana_timezone=SHOP_TIMEZONE)
    s.create_shop(OTHER_SHOP)
    return s


@pytest.fixture
def admin_settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={"shopify_admin_base_url_template": IN_PROCESS_BASE_URL_TEMPLATE, "app_url": APP_URL}
    )


@pytest.fixture(scope="session")
def seeds() -> dict[str, SeededShop]:
    """The seeded shops of this session whose database state `restore` puts back."""
    return {}


@pytest.fixture
def seeded(
    session: Session, engine: Engine, store: DevStore, admin_settings: Settings, seeds: dict[str, SeededShop]
) -> SeededShop:
    """The demo shop: CUSTOMERS buyers known to the double by name, two years of orders, scored.

    Seeding (scoring, a fit, a backtest) costs seconds, so it runs once per session and database
    and each test gets a copy of its rows (`restore`), holding this test's token for the double."""
    people = [
        store.create_customer(SHOP, first_name=f"Ada{i}", last_name="Lovelace", email=f"ada{i}@example.com")
        for i in range(CUSTOMERS)
    ]
    token = store.issue_access_token(SHOP, SCOPES)
    customer_ids = [p.id for p in people]
    name = f"admin_{engine.dialect.name}"
    kept = seeds.get(name)
    if kept is None or kept.customer_ids != customer_ids:
        shop = seed_shop(
            session,
            SHOP,
            customer_ids,
            currency_code=SHOP_CURRENCY,
            iana_timezone=SHOP_TIMEZONE,
            settings=admin_settings,
            access_token=token,
        )
        snapshot(engine, name)
        seeds[name] = shop
        return shop
    restore(engine, name)
    give_token(session, session.get_one(Shop, kept.shop_id), admin_settings, token)
    session.commit()
    return kept


@pytest.fixture
def shopify_http(store: DevStore) -> Iterator[httpx.AsyncClient]:
    client = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=create_devstore_app(store)), base_url="http://devstore"
    )
    yield client
    # on a thread of its own: the browser tests keep Playwright's event loop running in this one
    closing = threading.Thread(target=asyncio.run, args=(client.aclose(),))
    closing.start()
    closing.join()


@pytest.fixture
def admin_app(admin_settings: Settings, shopify_http: httpx.AsyncClient, engine: Engine) -> FastAPI:
    return create_app(admin_settings, http_client=shopify_http, engine=engine)


@pytest.fixture
def page(admin_app: FastAPI) -> Iterator[TestClient]:
    with TestClient(admin_app, base_url=APP_URL, follow_redirects=False) as client:
        yield client


# -- the shared browser ---------------------------------------------------------------------------

# Debian's chromium-headless-shell: the same Blink and V8 as its `chromium` package, without the
# browser's windows and their WebUI (/usr/bin/chromium's headless mode draws an omnibox popup per
# window, a renderer of its own), and what Playwright itself runs for headless tests. The browser
# tests spend about half the CPU they spent with /usr/bin/chromium (docs/benchmarks.md, "Test suite
# time").
CHROMIUM = "/usr/bin/chromium-headless-shell"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
BROWSER = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} is not installed (browser tests need it)"
    ),
]
AXE = Path(__file__).resolve().parents[1] / "browser" / "node_modules" / "axe-core" / "axe.min.js"


@dataclass
class SharedChromium:
    browser: Any
    loop: asyncio.AbstractEventLoop | None


@pytest.fixture(scope="session")
def _shared_chromium() -> Iterator[SharedChromium]:
    """Playwright's sync API keeps its event loop marked as running in this thread for as long as
    it is started, which would break every later test of the process that runs a loop of its own
    (`asyncio.run`). So the loop is marked running only while a browser test runs (`chromium`)."""
    from playwright.sync_api import sync_playwright

    playwright = sync_playwright().start()
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    shared = SharedChromium(browser, asyncio.events._get_running_loop())
    asyncio.events._set_running_loop(None)
    yield shared
    asyncio.events._set_running_loop(shared.loop)
    try:
        browser.close()
        playwright.stop()
    finally:
        asyncio.events._set_running_loop(None)


@pytest.fixture
def chromium(_shared_chromium: SharedChromium) -> Iterator[Any]:
    """The session's Chromium (a Playwright Browser), for this test."""
    asyncio.events._set_running_loop(_shared_chromium.loop)
    try:
        yield _shared_chromium.browser
    finally:
        asyncio.events._set_running_loop(None)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def server(admin_app: FastAPI) -> Iterator[str]:
    """The app served by uvicorn on a loopback port (a thread of this process), its base URL."""
    port = _free_port()
    config = uvicorn.Config(admin_app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    served = uvicorn.Server(config)
    thread = threading.Thread(target=served.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not served.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    served.should_exit = True
    thread.join(5)


def new_context(chromium: Any, width: int = 1280, height: int = 900) -> Any:
    """A context of the shared browser at this viewport; nothing leaves the machine (Shopify's CDN
    is unreachable in the tests: its requests fail at once)."""
    context = chromium.new_context(viewport={"width": width, "height": height}, accept_downloads=True)
    context.route("https://**/*", lambda route: route.abort())
    return context


@pytest.fixture
def browser_page(chromium: Any, server: str) -> Iterator[Any]:
    context = new_context(chromium)
    yield context.new_page()
    context.close()


@dataclass
class Shots:
    """Screenshots for the README, written to ``folder`` (``ADMIN_SCREENSHOTS``, e.g.
    docs/screenshots) and taken only when it is set: no test reads their pixels, and a full-page
    PNG costs Chromium about as much CPU as loading the page."""

    folder: Path | None

    def __call__(self, target: Any, name: str, *, full_page: bool = False) -> None:
        """``target`` (a page, or a locator: its element alone) as ``name`` in the folder."""
        if self.folder is None:
            return
        options = {"full_page": True} if full_page else {}
        target.screenshot(path=str(self.folder / name), **options)


@pytest.fixture
def shots() -> Shots:
    import os

    folder = os.environ.get("ADMIN_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
    return Shots(Path(folder) if folder else None)


def open_page(page: Any, server: str, path: str, **extra: str) -> None:
    """Load ``path`` with a launch query (fresh session token), up to DOMContentLoaded (Shopify's
    scripts never load here, so `load` is not the moment to wait for)."""
    page.goto(f"{server}{path}?{launch(**extra)}", wait_until="domcontentloaded")


_axe_source: list[str] = []


def axe_violations(
    page: Any, impacts: tuple[str, ...] = ("serious", "critical"), rules: tuple[str, ...] = ()
) -> list[str]:
    """axe-core's violations of these impacts on the page as it is now, one line each; every rule,
    or only ``rules`` (axe rule ids) when given."""
    if not _axe_source:
        assert AXE.exists(), f"{AXE} is missing: run `npm ci --prefix tests/browser` (.ci/run does)"
        # evaluated as a script of the page (its `var axe` a global), not added as a <script>
        # element: half the CPU; a document that has it already (a resized page) keeps it
        _axe_source.append(AXE.read_text() + "\n;undefined")
    if not page.evaluate("typeof axe !== 'undefined'"):
        page.evaluate(_axe_source[0])
    options: dict[str, Any] = {"resultTypes": ["violations"]}
    if rules:
        options["runOnly"] = {"type": "rule", "values": list(rules)}
    found = page.evaluate("options => axe.run(document, options).then(r => r.violations)", options)
    return [
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:5]}"
        for v in found
        if v["impact"] in impacts
    ]
