"""Numbers in the shop's currency and time zone; USD and UTC when the shop's are unknown."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy.orm import Session
from starlette.testclient import TestClient

from app.admin.rendering import Formatter
from app.models import Shop
from tests.admin.conftest import launch
from tests.admin.seed import SeededShop

MOMENT = datetime(2026, 7, 1, 3, 30, tzinfo=UTC)


def test_money_uses_the_shops_currency() -> None:
    assert Formatter("EUR", None).money(Decimal("1234.5")) == "€1,234.50"
    assert Formatter("JPY", None).money(Decimal("1234.5")) == "¥1,235"  # half up, as on a receipt
    assert Formatter("CHF", None).money(Decimal("-3")) == "-3.00 CHF"


def test_dollar_sign_is_the_us_dollar_alone_and_decimals_follow_the_currency() -> None:
    assert Formatter("CAD", None).money(Decimal("1234.5")) == "CA$1,234.50"
    assert Formatter("AUD", None).money(Decimal("-2")) == "-A$2.00"
    assert Formatter("KRW", None).money(Decimal("15000")) == "₩15,000"
    assert Formatter("KWD", None).money(Decimal("1.5")) == "1.500 KWD"
    assert Formatter("EUR", None).money(Decimal("1234.5"), whole=True) == "€1,235"


def test_an_unknown_currency_and_time_zone_fall_back_to_usd_and_utc() -> None:
    fmt = Formatter(None, "Not/AZone")
    assert fmt.money(Decimal("5")) == "$5.00"
    assert (fmt.timezone, fmt.datetime(MOMENT)) == ("UTC", "Jul 1, 2026 03:30 UTC")


def test_times_and_days_are_in_the_shops_time_zone() -> None:
    fmt = Formatter("USD", "America/New_York")
    assert fmt.datetime(MOMENT) == "Jun 30, 2026 23:30 EDT"
    assert fmt.date(MOMENT) == "Jun 30, 2026"


def test_the_page_shows_money_in_the_shops_currency(
    page: TestClient, seeded: SeededShop, session: Session
) -> None:
    shop = session.get(Shop, seeded.shop_id)
    assert shop is not None
    shop.currency_code = "EUR"
    session.commit()
    html = page.get(f"/app?{launch()}").text
    assert "€" in html and "$" not in html.split('id="segments"')[1].split("</table>")[0]
