"""The removal of what the app wrote to Shopify, clicked in headless Chromium: the box must be ticked
before the form goes, the post lands on the Status page, and its panel follows the job."""

from __future__ import annotations

import threading

from sqlalchemy import Engine

from app.config import Settings
from shopify_double import DevStore
from tests.admin.conftest import BROWSER, Shots
from tests.admin.conftest import open_page as _open
from tests.admin.seed import SeededShop
from tests.admin.test_cleanup_page import _work

pytestmark = BROWSER


def test_the_removal_needs_the_box_and_its_progress_shows_on_the_status_page(
    browser_page: object,
    server: str,
    seeded: SeededShop,
    engine: Engine,
    store: DevStore,
    admin_settings: Settings,
    shots: Shots,
) -> None:
    page = browser_page
    page.clock.install()  # type: ignore[attr-defined] # the status page's polls, on the test's command
    _open(page, server, "/app/settings")
    assert "before you uninstall the app" in page.locator("#leave").inner_text()  # type: ignore[attr-defined]
    page.click("#cleanup-submit")  # type: ignore[attr-defined]
    assert "/app/settings/cleanup" not in page.url  # type: ignore[attr-defined] # the unticked box holds it back

    page.check('#cleanup-form input[name="confirm"]')  # type: ignore[attr-defined]
    page.click("#cleanup-submit")  # type: ignore[attr-defined]
    page.wait_for_selector("#notice")  # type: ignore[attr-defined]
    assert "the sync is off" in page.locator("#notice").inner_text()  # type: ignore[attr-defined]
    assert page.locator("#cleanup-state").inner_text() == "waiting to start"  # type: ignore[attr-defined]

    # on a thread of its own: Playwright keeps an event loop running in this one
    worker = threading.Thread(target=_work, args=(engine, admin_settings, store, "cleanup"))
    worker.start()
    worker.join(30)

    # the next poll, however far the status page's back-off has put it (12 s at most while
    # something runs, app/admin/static/status.js), comes now instead of on the clock
    page.clock.run_for(12_000)  # type: ignore[attr-defined]
    page.wait_for_function(  # type: ignore[attr-defined]
        "document.getElementById('cleanup-state').textContent === 'done'", timeout=10_000
    )
    assert page.locator("#cleanup-percent").inner_text() == "100%"  # type: ignore[attr-defined]
    shots(page, "status-cleanup.png", full_page=True)
