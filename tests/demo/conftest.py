"""The demo as the tests run it: headless (no port), bounded, its output kept in memory."""

from __future__ import annotations

import io

from app.config import Settings
from app.demo.run import Demo


def headless_demo(settings: Settings, *, customers: int, seed: int, duration: float) -> Demo:
    """A demo store of `customers` buyers streaming five orders a second for `duration` seconds.
    The store is on the Plus plan's API budget: the sync's pacing is tested on its own
    (tests/sync), not here."""
    return Demo(
        settings,
        customers=customers,
        seed=seed,
        duration=duration,
        port=0,
        orders_per_second=5.0,
        out=io.StringIO(),
        plan="Plus",
    )
