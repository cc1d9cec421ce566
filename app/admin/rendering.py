"""Jinja2 templates of the embedded app (`app/admin/templates/`) and the formatting every screen
shares: money in the shop's currency, times in the shop's time zone (defaults USD / UTC)."""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from urllib.parse import urlencode
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi.templating import Jinja2Templates
from starlette.requests import Request

from app.auth.router import APP_BRIDGE_URL
from app.kit.static import FingerprintedStatic
from app.scoring.service import shop_day

POLARIS_URL = "https://cdn.shopify.com/shopifycloud/polaris.js"
LAUNCH_PARAMS = ("shop", "host", "embedded", "id_token")
"""What links between pages keep: App Bridge reads `shop`/`host`, `CurrentShop` reads `id_token`."""

DEFAULT_CURRENCY = "USD"
DEFAULT_TIMEZONE = "UTC"
# How an amount is written (docs/metrics.md, "Money and time"): English digit grouping (the pages
# are in English), the currency's own minor units (ISO 4217), and its symbol in front only where
# the symbol names one currency (CLDR's English symbols: "$" is USD alone, CA$ / A$ / NZ$ for the
# other dollars); every other currency is written with its ISO code after the amount: 1,234.50 CHF.
_SYMBOLS = {
    "USD": "$",
    "EUR": "€",
    "GBP": "£",
    "JPY": "¥",
    "CNY": "CN¥",
    "INR": "₹",
    "KRW": "₩",
    "ILS": "₪",
    "VND": "₫",
    "PHP": "₱",
    "BRL": "R$",
    "CAD": "CA$",
    "AUD": "A$",
    "NZD": "NZ$",
    "HKD": "HK$",
    "MXN": "MX$",
    "TWD": "NT$",
}
_NO_DECIMALS = {
    "BIF", "CLP", "DJF", "GNF", "HUF", "ISK", "JPY", "KMF", "KRW", "PYG",
    "RWF", "TWD", "UGX", "VND", "VUV", "XAF", "XOF", "XPF",
}  # fmt: skip
_THREE_DECIMALS = {"BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"}

STATIC_DIR = Path(__file__).parent / "static"
static_files = FingerprintedStatic(STATIC_DIR, "/admin/static")
"""Mounted by `create_app`; templates name a file with `static_url("admin.css")` (a content-hashed
URL, cached for a year: app/kit/static.py)."""

templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
templates.env.globals.update(
    app_bridge_url=APP_BRIDGE_URL, polaris_url=POLARIS_URL, static_url=static_files.url
)


class Formatter:
    """Numbers as the merchant reads them: the shop's currency and time zone."""

    def __init__(self, currency: str | None, timezone: str | None) -> None:
        self.currency = (currency or DEFAULT_CURRENCY).upper()
        self.currency_known = currency is not None
        try:
            self.zone = ZoneInfo(timezone or DEFAULT_TIMEZONE)
            self.timezone = timezone or DEFAULT_TIMEZONE
            self.timezone_known = timezone is not None
        except (ZoneInfoNotFoundError, ValueError):
            self.zone, self.timezone = ZoneInfo(DEFAULT_TIMEZONE), DEFAULT_TIMEZONE
            self.timezone_known = False

    @property
    def currency_places(self) -> int:
        if self.currency in _NO_DECIMALS:
            return 0
        return 3 if self.currency in _THREE_DECIMALS else 2

    def money(self, value: Decimal | float | int | None, *, whole: bool = False) -> str:
        if value is None:
            return "—"
        places = 0 if whole else self.currency_places
        # half away from zero, as amounts are rounded on a receipt (float formatting rounds half
        # to even: 1,234.5 would read 1,234)
        exact = Decimal(str(value)) if isinstance(value, float) else Decimal(value)
        if not exact.is_finite():
            return "—"
        rounded = exact.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
        amount = f"{abs(rounded):,.{places}f}"
        sign = "-" if rounded < 0 else ""
        symbol = _SYMBOLS.get(self.currency)
        return f"{sign}{symbol}{amount}" if symbol else f"{sign}{amount} {self.currency}"

    def amount(self, value: Decimal | float | int | None) -> str:
        """A plain number with the currency's own decimals, half away from zero (the CSV's money):
        ``1234.50`` in EUR, ``1235`` in JPY, ``1.235`` in KWD; empty for no value."""
        if value is None:
            return ""
        exact = Decimal(str(value)) if isinstance(value, float) else Decimal(value)
        if not exact.is_finite():
            return ""
        return str(exact.quantize(Decimal(1).scaleb(-self.currency_places), rounding=ROUND_HALF_UP))

    def datetime(self, value: dt.datetime | None) -> str:
        if value is None:
            return "—"
        local = value.astimezone(self.zone)
        return local.strftime("%b %-d, %Y %H:%M ") + (local.tzname() or self.timezone)

    def date(self, value: dt.datetime | dt.date | None) -> str:
        if value is None:
            return "—"
        if isinstance(value, dt.datetime):
            value = value.astimezone(self.zone).date()
        return value.strftime("%b %-d, %Y")

    @staticmethod
    def day(value: dt.datetime | None) -> str:
        """A stored calendar day of the shop (the expected next order), as it is written to Shopify."""
        return "—" if value is None else shop_day(value).strftime("%b %-d, %Y")

    @staticmethod
    def percent(value: float | None, places: int = 1) -> str:
        return "—" if value is None else f"{100 * value:.{places}f}%"

    @staticmethod
    def number(value: float | int | None, places: int = 0) -> str:
        return "—" if value is None else f"{value:,.{places}f}"

    @staticmethod
    def ratio(value: float | None) -> str:
        return "—" if value is None else f"{value:.1f}:1"


def launch_query(request: Request, **extra: str | int | None) -> str:
    """`shop=…&host=…&embedded=1&id_token=…` of this request, plus ``extra`` (None drops a key)."""
    params = {k: request.query_params[k] for k in LAUNCH_PARAMS if k in request.query_params}
    for key, value in extra.items():
        if value is None or value == "":
            params.pop(key, None)
        else:
            params[key] = str(value)
    return urlencode(params)
