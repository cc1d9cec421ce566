"""Moving between pages after the launch token expired, in headless Chromium: with App Bridge on
the page (here a stand-in whose `shopify.idToken()` signs a fresh token, as App Bridge returns one),
a link, the filter form and the app nav navigate with a fresh token, and no request goes through
the bounce page; without App Bridge the same stale link does (the control)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import pytest

from app.deps import BOUNCE_PATH
from tests.admin.conftest import session_token
from tests.admin.seed import SeededShop
from tests.admin.test_browser import (  # noqa: F401 - the browser fixtures
    _open,
    browser_page,
    chromium,
    pytestmark,
    server,
)

pytestmark = pytestmark  # noqa: PLW0127 - the browser marker and the Chromium check

APP_BRIDGE_ID_TOKEN = "window.shopify = {idToken: function () { return window.__signFreshToken(); }};"
# What a page's links hold a minute after it loaded: the launch token, expired by then (and past
# the 10 s leeway the check allows).
STALE = session_token(now=time.time() - 120)
STALE_LINKS = """(stale) => {
  for (const el of document.querySelectorAll("[href*='id_token=']")) {
    const url = new URL(el.getAttribute("href"), location.href);
    url.searchParams.set("id_token", stale);
    el.setAttribute("href", url.pathname + url.search);
  }
  for (const input of document.querySelectorAll("input[name='id_token']")) input.value = stale;
}"""


@pytest.fixture
def requests_seen(browser_page: object) -> Iterator[list[str]]:  # noqa: F811
    seen: list[str] = []
    browser_page.on("request", lambda request: seen.append(request.url))  # type: ignore[attr-defined]
    yield seen


def _with_app_bridge(page: object) -> None:
    page.expose_function("__signFreshToken", lambda: session_token())  # type: ignore[attr-defined]
    page.add_init_script(APP_BRIDGE_ID_TOKEN)  # type: ignore[attr-defined]


def _bounced(seen: list[str]) -> bool:
    return any(urlsplit(url).path == BOUNCE_PATH for url in seen)


def _token_of(url: str) -> str:
    return parse_qs(urlsplit(url).query)["id_token"][0]


def test_links_the_filter_form_and_the_app_nav_after_the_token_expired_do_not_bounce(
    browser_page: object,  # noqa: F811
    server: str,  # noqa: F811
    seeded: SeededShop,
    requests_seen: list[str],
) -> None:
    page = browser_page
    _with_app_bridge(page)
    _open(page, server, "/app/status")

    # a link
    page.evaluate(STALE_LINKS, STALE)  # type: ignore[attr-defined]
    # the link leads to the page already open: wait for the navigation itself, not for a URL the
    # page has before it (the next step would then race the reload)
    with page.expect_navigation(url="**/app/status?**"):  # type: ignore[attr-defined]
        page.click("#refresh-link")  # type: ignore[attr-defined]
    page.wait_for_selector("#import-status")  # type: ignore[attr-defined]
    assert _token_of(page.url) != STALE  # type: ignore[attr-defined]

    # the app nav: App Bridge renders s-app-nav in the admin and, on a click there, dispatches
    # `shopify:navigate` on the matching s-link in the app's document
    page.evaluate(STALE_LINKS, STALE)  # type: ignore[attr-defined]
    page.evaluate(  # type: ignore[attr-defined]
        """() => document.querySelector("s-app-nav [href^='/app/customers']")
          .dispatchEvent(new CustomEvent("shopify:navigate", {bubbles: true, cancelable: true}))"""
    )
    page.wait_for_url("**/app/customers?**")  # type: ignore[attr-defined]
    page.wait_for_selector("#filters")  # type: ignore[attr-defined]

    # the filter form (a GET form: its hidden id_token is the stale one)
    page.evaluate(STALE_LINKS, STALE)  # type: ignore[attr-defined]
    page.evaluate(  # type: ignore[attr-defined]
        """() => {
      const form = document.getElementById("filters");
      form.querySelector("[name='segment']").value = "Champions";
      form.requestSubmit();
    }"""
    )
    page.wait_for_url("**/app/customers?**segment=Champions**")  # type: ignore[attr-defined]
    assert _token_of(page.url) != STALE  # type: ignore[attr-defined]
    assert not _bounced(requests_seen), requests_seen


def test_without_app_bridge_a_stale_link_goes_through_the_bounce_page(
    browser_page: object,  # noqa: F811
    server: str,  # noqa: F811
    seeded: SeededShop,
    requests_seen: list[str],
) -> None:
    page = browser_page
    _open(page, server, "/app/status")
    page.evaluate(STALE_LINKS, STALE)  # type: ignore[attr-defined]
    requests_seen.clear()

    page.click("#refresh-link")  # type: ignore[attr-defined]
    page.wait_for_url(f"**{BOUNCE_PATH}?**")  # type: ignore[attr-defined]
    assert _bounced(requests_seen)
