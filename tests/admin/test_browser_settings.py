"""The settings form in headless Chromium: after a refused save, focus is on the summary of the
problems, each links to its field, and the field is marked invalid and described by its error."""

from __future__ import annotations

from tests.admin.seed import SeededShop
from tests.admin.test_browser import (  # noqa: F401 - the browser fixtures
    _open,
    browser_page,
    chromium,
    pytestmark,
    server,
)

pytestmark = pytestmark  # noqa: PLW0127 - the browser marker and the Chromium check


def test_focus_moves_to_the_errors_after_a_refused_save(
    browser_page: object,  # noqa: F811
    server: str,  # noqa: F811
    seeded: SeededShop,
) -> None:
    page = browser_page
    _open(page, server, "/app/settings")
    page.fill('input[name="window_days"]', "12.5")  # type: ignore[attr-defined]
    page.fill('input[name="conversion_rate"]', "2%%")  # type: ignore[attr-defined]
    with page.expect_navigation():  # type: ignore[attr-defined]
        page.click("#save-settings")  # type: ignore[attr-defined]
    # the page's deferred scripts (forms.js moves the focus) have run by DOMContentLoaded, which the
    # element's mere presence does not wait for
    page.wait_for_load_state("domcontentloaded")  # type: ignore[attr-defined]
    page.wait_for_selector("#settings-errors")  # type: ignore[attr-defined]

    assert page.evaluate("document.activeElement.id") == "settings-errors"  # type: ignore[attr-defined]
    field = page.locator('input[name="conversion_rate"]')  # type: ignore[attr-defined]
    assert field.get_attribute("aria-invalid") == "true"
    described = field.get_attribute("aria-describedby").split()
    assert page.locator(f"#{described[0]}").inner_text().startswith("Must be a share above 0")  # type: ignore[attr-defined]
    assert field.input_value() == "2%%"  # what was typed stays

    page.locator('#settings-errors a[href="#field-window_days"]').click()  # type: ignore[attr-defined]
    page.keyboard.press("Tab")  # type: ignore[attr-defined] # from the field's block into its input
    assert page.evaluate("document.activeElement.name") == "window_days"  # type: ignore[attr-defined]
