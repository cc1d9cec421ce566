"""The value limits: what an amount may be, and why every money column holds what it is given.

An amount is any one money value a delivery or the history import carries: an order's totals and
discounts, one refund transaction, the transactions of one refund together. It is refused (422,
naming the field) unless it is a finite, non-negative number below ``AMOUNT_LIMIT`` with at most
``MONEY_PLACES`` decimal places (trailing zeros aside). Every ISO 4217 currency has at most 3.

How each stored column holds what it is given (docs/operations.md, "Value limits"):

* one amount (``orders`` money columns, ``order_refunds.amount``, ``customers.average_order_value``,
  ``shop_settings.cac``): ``numeric(AMOUNT_PRECISION, 4)`` holds below 10^16, room ×10,000 above
  ``AMOUNT_LIMIT``. ``orders.pending_refunds`` (the refunds still to net, in shop money) is capped
  at ``AMOUNT_LIMIT``: past the order's total it changes nothing (the order is wholly refunded).
* sums of amounts (a buyer's total spent and CLVs, a score's monetary value, a segment's revenue,
  averages and formula CLV): ``numeric(SUM_PRECISION, 4)`` holds below ``SUM_LIMIT`` = 10^24. The
  counts beside them are int4, so a sum is of fewer than 2^31 amounts: below 2.2·10^21, and a
  formula CLV (× at most 50 years' lifespan) below 1.1·10^23. A rescore still caps any money value
  at ``SUM_LIMIT`` before it writes (and logs it), so no one buyer can fail a shop's rescore.
* SQLite keeps money as integer 1/10,000 units (exact, below 9.2·10^14); a value past int64 is
  stored as a REAL count of units instead (SQLite types values, not columns): approximate there,
  never an overflow.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any, Final

MONEY_PLACES: Final = 4
MONEY_QUANTUM: Final = Decimal(1).scaleb(-MONEY_PLACES)
AMOUNT_LIMIT: Final = Decimal(10**12)
"""Every amount is below this, in the shop's currency: far above any real order, even in the
currencies whose units are worth least."""
AMOUNT_PRECISION: Final = 20
SUM_PRECISION: Final = 28
SUM_LIMIT: Final = Decimal(10 ** (SUM_PRECISION - MONEY_PLACES))


class AmountError(ValueError):
    """Why a value is not an amount (the caller names the field)."""


def parse_amount(value: Any) -> Decimal:
    """A delivered amount as the ledger keeps it, quantized to ``MONEY_PLACES``; AmountError when
    it is not one. Checked in an order that never asks Decimal for more than its 28 digits (a
    quantize of ``1e999999999`` or ``1e-999999999`` would raise InvalidOperation)."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise AmountError("must be a decimal amount")
    try:
        amount = Decimal(value) if isinstance(value, str | int) else Decimal(repr(value))
    except InvalidOperation:
        raise AmountError(f"is not a decimal amount: {str(value)[:40]!r}") from None
    if not amount.is_finite():
        raise AmountError("must be a finite amount")
    if amount.is_signed():
        raise AmountError("must not be negative")
    if amount >= AMOUNT_LIMIT:
        raise AmountError(f"must be below {AMOUNT_LIMIT:,}")
    quantized = amount.quantize(MONEY_QUANTUM)
    if quantized != amount:
        raise AmountError(f"has more than {MONEY_PLACES} decimal places")
    return quantized
