"""Tables, buttons and form fields once Polaris has defined its web components (app/admin/static/
polaris.js, docs/design.md "Tables, buttons and fields"), in the session's Chromium.

Shopify's CDN cannot load here, so ``polaris_double.js`` stands in for Polaris' registration of its
elements: a test double with the documented behaviour only (layout, roles, form association). The
pages without it are the other browser tests. Here, with it: the plain tables, buttons and fields
are replaced, the cells keep their numbers, every page still fits 360 px and passes axe, and the
forms send exactly the fields they sent as plain HTML.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from tests.admin.conftest import BROWSER, new_context, open_page
from tests.admin.seed import SeededShop
from tests.admin.test_browser_pages import DESKTOP, PAGES, PHONE, _check_page

pytestmark = BROWSER

POLARIS_DOUBLE = (Path(__file__).parent / "polaris_double.js").read_text()
# static/polaris.js marks each family it has upgraded
UPGRADED = (
    "['polarisTables', 'polarisButtons', 'polarisFields'].every(k => document.documentElement.dataset[k])"
)
CELLS = "row => [...row.children].map(cell => cell.textContent.trim())"
# What is left plain on purpose: a required checkbox, number inputs (static/polaris.js).
LEFT_PLAIN = """() => [
  ...document.querySelectorAll("table, button, a.button, select, input:not([type=hidden]):not([type=number])")
].filter(el => !(el.type === "checkbox" && el.required)).map(el => el.outerHTML.slice(0, 80))"""


def _polaris_page(chromium: Any, width: int, height: int) -> tuple[Any, Any]:
    context = new_context(chromium, width, height)
    page = context.new_page()
    with_polaris(page)
    return context, page


def with_polaris(page: Any) -> None:
    """The double registered before the scripts of every page this page loads from now on (a test
    loads the plain page first in the same page, instead of a second context)."""
    page.add_init_script(POLARIS_DOUBLE)


def _open(page: Any, server: str, path: str, **extra: str) -> None:
    open_page(page, server, path, **extra)
    page.wait_for_function(UPGRADED)


def test_every_page_upgrades_fits_a_phone_and_passes_axe(
    chromium: Any, server: str, seeded: SeededShop
) -> None:
    # At the phone's width only: the upgrade does not depend on the width, and 360 px is where a
    # page can overflow and where _check_page runs every axe rule (the plain pages are checked at
    # both widths by test_browser_pages.py).
    problems: list[str] = []
    width, height = PHONE
    context, page = _polaris_page(chromium, width, height)
    for path, _ in PAGES:
        _open(page, server, path)
        left = page.evaluate(LEFT_PLAIN)
        if left:
            problems.append(f"{width} px {path}: left plain {left}")
        problems += _check_page(page, width)
    context.close()
    assert not problems, "\n".join(problems)


def test_a_table_becomes_an_s_table_with_the_same_cells(
    chromium: Any, server: str, seeded: SeededShop
) -> None:
    context = new_context(chromium, *DESKTOP)
    page = context.new_page()
    open_page(page, server, "/app")
    plain = page.evaluate(f"() => [...document.querySelectorAll('#segments tr')].map({CELLS})")

    with_polaris(page)
    _open(page, server, "/app")
    table = page.locator("s-table#segments")
    assert table.count() == 1
    headers = table.locator("s-table-header-row s-table-header")
    assert headers.first.get_attribute("listslot") == "primary"
    assert headers.nth(1).get_attribute("format") == "numeric"
    rows = page.evaluate(
        "() => [document.querySelector('#segments s-table-header-row'),"
        f" ...document.querySelectorAll('#segments s-table-row')].map({CELLS})"
    )
    assert rows == plain  # header, body and the "All customers" row, cell for cell
    cell = page.locator('s-table-row[data-segment="Champions"] s-table-cell[data-col="customers"]')
    assert cell.count() == 1  # the rows and cells keep their data-* for scripts and tests
    context.close()


def _post_body(page: Any, click: str) -> list[tuple[str, str]]:
    with page.expect_request(lambda r: r.method == "POST") as request:
        page.click(click)
    return sorted(parse_qsl(request.value.post_data or "", keep_blank_values=True))


def _settings_post(page: Any, server: str) -> list[tuple[str, str]]:
    open_page(page, server, "/app/settings")
    page.wait_for_load_state("domcontentloaded")
    page.locator('[name="conversion_rate"]').first.evaluate("el => { el.value = '2'; }")
    return _post_body(page, "#save-settings")


def test_the_settings_form_sends_the_same_fields_through_polaris(
    chromium: Any, server: str, seeded: SeededShop
) -> None:
    context = new_context(chromium, *DESKTOP)
    page = context.new_page()
    plain = _settings_post(page, server)
    page.wait_for_selector("#settings-errors")

    with_polaris(page)
    _open(page, server, "/app/settings")
    assert page.locator("#settings-form s-text-field").count() >= 8
    assert page.locator("#settings-form s-select").count() == 1 + 25  # the method and the grid
    assert page.locator("#settings-form s-checkbox[name=sync_enabled]").count() == 1
    assert page.locator("s-button#save-settings").count() == 1
    upgraded = _settings_post(page, server)
    assert upgraded == plain and ("conversion_rate", "2") in upgraded
    page.wait_for_selector("#settings-errors")  # the refused page, upgraded: the error on its field
    page.wait_for_function(UPGRADED)
    field = page.locator('s-text-field[name="conversion_rate"]')
    assert field.get_attribute("error") == page.locator("#conversion_rate-error").text_content().strip()
    assert page.locator("#conversion_rate-error").is_hidden()  # shown once, by the field
    context.close()


def test_the_customer_filter_sends_the_same_query_through_polaris(
    chromium: Any, server: str, seeded: SeededShop
) -> None:
    def query(page: Any) -> list[tuple[str, str]]:
        page.locator("#search").evaluate("el => { el.value = 'Ada'; }")
        page.locator('[name="segment"]').evaluate("el => { el.value = 'Champions'; }")
        with page.expect_navigation():
            page.click("#filters .actions > :first-child")
        return sorted(parse_qsl(urlsplit(page.url).query, keep_blank_values=True))

    context = new_context(chromium, *DESKTOP)
    page = context.new_page()
    open_page(page, server, "/app/customers")
    plain = query(page)

    with_polaris(page)
    _open(page, server, "/app/customers")
    assert page.locator("#filters s-select").count() == 8 and page.locator("s-text-field#search").count() == 1
    assert page.locator("s-button#export-csv").get_attribute("download") is not None
    upgraded = query(page)
    assert dict(upgraded) | {"id_token": ""} == dict(plain) | {"id_token": ""}
    assert ("segment", "Champions") in upgraded and ("q", "Ada") in upgraded
    context.close()


def test_a_required_box_stays_plain_and_still_holds_the_form_back(
    chromium: Any, server: str, seeded: SeededShop
) -> None:
    context, page = _polaris_page(chromium, *DESKTOP)
    _open(page, server, "/app/settings")
    box = page.locator('#cleanup-form input[type=checkbox][name="confirm"]')
    assert box.count() == 1 and box.get_attribute("required") is not None
    page.click("s-button#cleanup-submit")
    assert "/app/settings/cleanup" not in page.url  # the unticked box holds it back
    assert page.evaluate("document.querySelector('#cleanup-form').checkValidity()") is False
    context.close()
