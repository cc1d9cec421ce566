"""The screens in real headless Chromium (the session's shared browser, tests/admin/conftest.py),
served by uvicorn on a loopback port against the test database. Shopify's CDN scripts cannot load
here (no network), so pages are checked at `domcontentloaded` with our own stylesheet only.

Screenshots are taken only when `ADMIN_SCREENSHOTS` names a folder (e.g. `docs/screenshots`).
"""

from __future__ import annotations

import csv
import random
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

import app.tasks  # noqa: F401 - registers every job kind
from app.config import Settings
from app.kit.db import make_sessionmaker
from app.models import CustomerScore, Order, ShopMetricsSnapshot, ShopSegment, StageChange
from app.worker import Worker
from shopify_double import DevStore
from tests.admin.conftest import BROWSER, SHOP, SHOP_TIMEZONE, Shots, open_page
from tests.admin.seed import NOW, SeededShop
from tests.admin.shopify_sync import double_segments, sync_into_double

pytestmark = BROWSER


def __getattr__(name: str) -> object:
    """The browser fixtures moved to tests/admin/conftest.py (one Chromium per session); a module
    that still imports them from here gets them (PEP 562)."""
    if name in ("browser_page", "chromium", "server", "shots"):
        from tests.admin import conftest

        return getattr(conftest, name)
    raise AttributeError(name)


def _open(page: object, server: str, path: str, **extra: str) -> None:
    open_page(page, server, path, **extra)


def test_every_screen_shows_the_stored_numbers(
    browser_page: object, server: str, seeded: SeededShop, session: Session, shots: Shots
) -> None:
    page = browser_page
    _open(page, server, "/app")
    snapshot = session.scalar(
        select(ShopMetricsSnapshot).where(ShopMetricsSnapshot.shop_id == seeded.shop_id)
    )
    assert snapshot is not None
    assert page.locator("#customers-scored").inner_text() == f"{snapshot.customers_scored:,}"  # type: ignore[attr-defined]
    for segment in session.scalars(
        select(ShopSegment).where(ShopSegment.shop_id == seeded.shop_id, ShopSegment.position > 0)
    ):
        cell = page.locator(f'tr[data-segment="{segment.segment}"] td[data-col="customers"]')  # type: ignore[attr-defined]
        assert cell.inner_text() == f"{segment.customers:,}"
    assert page.locator("svg.chart[role=img]").count() == 2  # type: ignore[attr-defined]
    assert page.locator("svg.chart[role=group]").count() == 1  # the grid: its cells are links  # type: ignore[attr-defined]
    assert page.locator("nav.tabs").count() == 0  # type: ignore[attr-defined] # s-app-nav is the only nav
    shots(page, "overview.png", full_page=True)

    _open(page, server, "/app/customers")
    top = session.scalar(
        select(CustomerScore)
        .where(CustomerScore.shop_id == seeded.shop_id)
        .order_by(CustomerScore.predicted_clv.desc(), CustomerScore.customer_id.desc())
        .limit(1)
    )
    assert top is not None
    first = page.locator("#customers tbody tr").first  # type: ignore[attr-defined]
    assert first.get_attribute("data-customer-id") == str(top.customer_id)
    assert first.locator('td[data-col="predicted_clv"]').inner_text() == f"€{float(top.predicted_clv):,.2f}"
    assert "Lovelace" in first.locator("th").inner_text()
    assert page.locator("#customers tbody tr").count() == 50  # type: ignore[attr-defined]
    shots(page, "customers.png", full_page=True)

    for path, name, marker in [
        ("/app/cohorts", "cohorts", "#repeat-rate"),
        ("/app/accuracy", "accuracy", "#accuracy-table"),
        ("/app/settings", "settings", "#settings-form"),
        ("/app/status", "status", "#import-status"),
    ]:
        _open(page, server, path)
        assert page.locator(marker).is_visible()  # type: ignore[attr-defined]
        shots(page, f"{name}.png", full_page=True)
    assert page.locator("#last-sync").inner_text() == "not synced yet"  # type: ignore[attr-defined]


def test_a_settings_change_moves_the_segments(
    browser_page: object, server: str, seeded: SeededShop, session: Session, engine: object
) -> None:
    page = browser_page

    def champions() -> int:
        session.expire_all()
        return int(
            session.scalar(
                select(func.count()).where(
                    CustomerScore.shop_id == seeded.shop_id, CustomerScore.segment == "Champions"
                )
            )
            or 0
        )

    before = champions()
    assert before > 0
    _open(page, server, "/app/settings")
    for cell in ("5_4", "5_5", "4_5"):  # no more Champions: they become Loyal
        page.select_option(f'select[name="grid_{cell}"]', "Loyal")  # type: ignore[attr-defined]
    page.click("#save-settings")  # type: ignore[attr-defined]
    page.wait_for_selector("#settings-confirm")  # type: ignore[attr-defined] # how many it rewrites
    page.click("#confirm-save")  # type: ignore[attr-defined]
    page.wait_for_selector("#settings-saved")  # type: ignore[attr-defined]
    assert "scored again" in page.locator("#settings-saved").inner_text()  # type: ignore[attr-defined]

    factory: sessionmaker[Session] = make_sessionmaker(engine)  # type: ignore[arg-type]
    Worker(factory, run_schedules=False).run_pending()  # the worker picks up the queued rescore
    assert champions() == 0

    _open(page, server, "/app")
    assert page.locator('tr[data-segment="Champions"] td[data-col="customers"]').inner_text() == "0"  # type: ignore[attr-defined]
    loyal = session.scalar(
        select(ShopSegment.customers).where(
            ShopSegment.shop_id == seeded.shop_id, ShopSegment.segment == "Loyal"
        )
    )
    assert page.locator('tr[data-segment="Loyal"] td[data-col="customers"]').inner_text() == f"{loyal:,}"  # type: ignore[attr-defined]


def test_a_settings_error_is_shown_next_to_the_form(
    browser_page: object, server: str, seeded: SeededShop
) -> None:
    page = browser_page
    _open(page, server, "/app/settings")
    page.fill('input[name="conversion_rate"]', "2")  # type: ignore[attr-defined]
    page.click("#save-settings")  # type: ignore[attr-defined]
    page.wait_for_selector("#settings-errors")  # type: ignore[attr-defined]
    assert (
        "Conversion rate: Must be a share above 0 and at most 1 (0.02)"
        in page.locator(  # type: ignore[attr-defined]
            "#settings-errors"
        ).inner_text()
    )


def test_the_csv_export_downloads_the_filtered_rows(
    browser_page: object, server: str, seeded: SeededShop, session: Session, tmp_path: Path
) -> None:
    page = browser_page
    _open(page, server, "/app/customers", segment="Champions")
    with page.expect_download() as download:  # type: ignore[attr-defined]
        page.click("#export-csv")  # type: ignore[attr-defined]
    target = tmp_path / "export.csv"
    download.value.save_as(target)
    with target.open(newline="") as f:
        rows = list(csv.DictReader(f))
    expected = list(
        session.scalars(
            select(CustomerScore.customer_id)
            .where(CustomerScore.shop_id == seeded.shop_id, CustomerScore.segment == "Champions")
            .order_by(CustomerScore.predicted_clv.desc(), CustomerScore.customer_id.desc())
        )
    )
    assert [int(r["customer_id"]) for r in rows] == expected and expected
    assert {r["segment"] for r in rows} == {"Champions"}


def test_the_status_panel_updates_while_you_watch(
    browser_page: object, server: str, seeded: SeededShop, session: Session
) -> None:
    page = browser_page
    page.clock.install()  # type: ignore[attr-defined] # the status page's polls, on the test's command
    _open(page, server, "/app/status")
    assert page.locator("#import-state").inner_text() == "never imported"  # type: ignore[attr-defined]
    from datetime import UTC, datetime

    from app.imports.service import request_import

    request_import(session, seeded.shop_id, datetime.now(UTC))  # e.g. the install queued one
    session.commit()
    page.clock.run_for(3_000)  # type: ignore[attr-defined] # the next poll (every 3 s), now
    page.wait_for_function(  # type: ignore[attr-defined]
        "document.getElementById('import-state').textContent === 'waiting to start'", timeout=10_000
    )
    # no "import again" while that import is under way
    assert page.locator("#reimport-busy").is_visible()  # type: ignore[attr-defined]
    assert not page.locator("#reimport").is_visible()  # type: ignore[attr-defined]


# App Bridge opens `shopify://admin/...` links itself (the admin is not here): record what it would
# be asked to open instead of letting Chromium try an unknown scheme.
APP_BRIDGE_STAND_IN = """
document.addEventListener("click", function (event) {
  var a = event.target.closest && event.target.closest("a");
  if (a && a.getAttribute("href") && a.getAttribute("href").indexOf("shopify:") === 0) {
    event.preventDefault();
    window.__adminNavigation = {href: a.getAttribute("href"), target: a.getAttribute("target")};
  }
}, true);
"""


def test_a_segment_row_opens_its_segment_in_the_shopify_admin(
    browser_page: object,
    server: str,
    seeded: SeededShop,
    engine: Engine,
    store: DevStore,
    admin_settings: Settings,
    shots: Shots,
) -> None:
    sync_into_double(engine, store, admin_settings, seeded.shop_id, SHOP)
    in_shopify = double_segments(store, SHOP)
    page = browser_page
    page.add_init_script(APP_BRIDGE_STAND_IN)  # type: ignore[attr-defined]
    _open(page, server, "/app")

    row = page.locator('tr[data-segment="At risk"]')  # type: ignore[attr-defined]
    row.locator("a.shopify-link").click()
    opened = page.evaluate("window.__adminNavigation")  # type: ignore[attr-defined]
    assert opened == {
        "href": f"shopify://admin/customers/segments/{in_shopify['RFM · At risk']}",
        "target": "_top",
    }
    assert page.locator("#use-segment").is_visible()  # type: ignore[attr-defined]
    assert page.locator("#act").is_visible()  # type: ignore[attr-defined]
    shots(page.locator("#act"), "act.png")  # type: ignore[attr-defined]

    page.locator('tr[data-segment="At risk"] th a').first.click()  # type: ignore[attr-defined]
    page.wait_for_url("**/app/customers?**")  # type: ignore[attr-defined]
    page.locator("#shopify-segment a.shopify-link").click()  # type: ignore[attr-defined]
    opened = page.evaluate("window.__adminNavigation")  # type: ignore[attr-defined]
    assert opened["href"] == f"shopify://admin/customers/segments/{in_shopify['RFM · At risk']}"


def test_a_heat_map_cell_opens_the_list_of_its_customers(
    browser_page: object, server: str, seeded: SeededShop, session: Session, shots: Shots
) -> None:
    page = browser_page
    _open(page, server, "/app")
    r, fm = 5, 5
    count = session.scalar(
        select(func.count()).where(
            CustomerScore.shop_id == seeded.shop_id,
            CustomerScore.recency_score == r,
            CustomerScore.fm_score == fm,
        )
    )
    assert count
    cell = page.locator(f'svg.chart a.cell-link[aria-label^="R {r}, FM {fm}:"]')  # type: ignore[attr-defined]
    assert cell.count() == 1
    cell.focus()  # focusable: reachable from the keyboard
    assert page.evaluate("document.activeElement.getAttribute('aria-label')").startswith(
        f"R {r}, FM {fm}: {count}"
    )  # type: ignore[attr-defined]
    page.keyboard.press("Enter")  # type: ignore[attr-defined]
    page.wait_for_url(f"**/app/customers?**r={r}**")  # type: ignore[attr-defined]

    assert f"fm={fm}" in page.url  # type: ignore[attr-defined]
    assert page.locator("#grid-cell").inner_text().startswith(f"Grid cell R {r} × FM {fm}")  # type: ignore[attr-defined]
    assert f"of {count:,} customers" in page.locator("#result-count").inner_text()  # type: ignore[attr-defined]
    assert page.locator("#customers tbody tr").count() == min(count, 50)  # type: ignore[attr-defined]
    shots(page, "grid-cell.png", full_page=True)

    _open(page, server, "/app")
    page.locator('svg.chart a.cell-link[aria-label^="R 1, FM 1:"]').click()  # type: ignore[attr-defined]
    page.wait_for_url("**/app/customers?**")  # type: ignore[attr-defined]
    ones = session.scalar(
        select(func.count()).where(
            CustomerScore.shop_id == seeded.shop_id,
            CustomerScore.recency_score == 1,
            CustomerScore.fm_score == 1,
        )
    )
    shown = page.locator("#result-count").inner_text()  # type: ignore[attr-defined]
    assert (f"of {ones:,} customers" in shown) if ones else ("No customers match" in shown)


def _entries_history(session: Session, seeded: SeededShop) -> list[tuple[int, str, datetime]]:
    """Entries into stages over the last six months for the seeded buyers (a fixed draw), so the
    outcomes read them against the seeded ledger; returns (customer, stage, when)."""
    rng = random.Random(17)
    entries = []
    for customer_id in seeded.customer_ids:
        for stage in ("at_risk", "lapsed", "reactivated"):
            if rng.random() < 0.45:
                entries.append(
                    (customer_id, stage, NOW - timedelta(days=rng.uniform(1, 178), hours=rng.uniform(0, 23)))
                )
    for customer_id, stage, when in entries:
        session.add(
            StageChange(
                shop_id=seeded.shop_id,
                customer_id=customer_id,
                from_stage="active",
                to_stage=stage,
                changed_at=when,
                cause="behaviour",
            )
        )
    session.commit()
    return entries


def test_the_outcomes_chart_shows_who_came_back(
    browser_page: object, server: str, seeded: SeededShop, session: Session, shots: Shots
) -> None:
    entries = _entries_history(session, seeded)
    zone = ZoneInfo(SHOP_TIMEZONE)
    # an independent count for the oldest month shown (complete for 30 days): the at-risk entrants
    # of that month (first entry each) with a qualifying order within 30 days after it
    oldest = sorted(e for e in entries if e[1] == "at_risk")
    first_month = min(when.astimezone(zone).replace(day=1).date() for _, _, when in oldest)
    shown_from = (NOW.astimezone(zone).date().replace(day=1) - timedelta(days=150)).replace(day=1)
    month = max(first_month, shown_from)
    firsts: dict[int, datetime] = {}
    for customer_id, _, when in sorted((e for e in oldest), key=lambda e: e[2]):
        if when.astimezone(zone).replace(day=1).date() == month:
            firsts.setdefault(customer_id, when)
    came_back = 0
    for customer_id, when in firsts.items():
        later = session.scalar(
            select(func.count()).where(
                Order.shop_id == seeded.shop_id,
                Order.customer_id == customer_id,
                Order.qualifies,
                Order.ordered_at > when,
                Order.ordered_at <= when + timedelta(days=30),
            )
        )
        came_back += 1 if later else 0

    page = browser_page
    _open(page, server, "/app/outcomes")
    section = page.locator("#outcome-at_risk")  # type: ignore[attr-defined]
    assert section.locator("svg.chart[role=img]").count() == 1
    row = section.locator(f'tr[data-period="{month.isoformat()}"]')
    assert row.locator("td").nth(0).inner_text() == str(len(firsts))
    share = round(100 * came_back / len(firsts))
    assert row.locator('td[data-days="30"]').inner_text() == f"{came_back} ({share}%)"
    assert section.locator("rect.bar.missing").count() >= 1  # the month under way is not complete yet
    for stage in ("lapsed", "reactivated"):
        assert page.locator(f"#outcome-{stage} svg.chart").count() == 1  # type: ignore[attr-defined]
    shots(page, "outcomes.png", full_page=True)
