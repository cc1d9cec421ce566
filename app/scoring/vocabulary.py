"""Names scoring stores that other parts of the app read (the admin pages filter on them); a
module without dependencies, so that reading a name loads none of the scoring maths."""

from __future__ import annotations

from typing import Final

ALL_CUSTOMERS: Final = "All customers"
"""The `shop_segments` row that counts every scored customer (beside one row per RFM segment)."""
