"""A seeded shop for the admin page tests: a two-year order history in the ledger (bulk insert),
scored, fitted and backtested by the real services, as the worker would leave it."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import count
from typing import Any

from sqlalchemy import delete
from sqlalchemy.orm import Session

from app.config import Settings
from app.customers import repository as customers_repo
from app.models import Job, Order, Shop
from app.models.base import table_of
from app.scoring import service as scoring
from app.settings.service import update_settings
from app.shopify.oauth import AccessToken
from app.shops import repository as shops_repo
from app.shops.service import register_shop
from app.shops.tokens import store_token, token_cipher

NOW = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
_order_ids = count(5_000_000)


@dataclass(frozen=True)
class SeededShop:
    shop_id: int
    domain: str
    customer_ids: list[int]


def history(
    customer_ids: list[int], now: datetime, seed: int = 7
) -> list[tuple[int, datetime, Decimal, bool]]:
    """(customer, time, value, discounted) orders over two years: BG/NBD-like buyers."""
    rng = random.Random(seed)
    orders = []
    for customer_id in customer_ids:
        # BG/NBD-like buyers: a gamma-distributed order rate, a chance to drop out after each order
        moment = now - timedelta(days=rng.uniform(5, 720))
        rate = rng.gammavariate(0.9, 1 / 45)
        dropout = rng.betavariate(1.2, 3.5)
        spend = rng.gammavariate(4, 18)
        discount = rng.random() < 0.3
        while moment < now:
            value = Decimal(str(round(spend * rng.uniform(0.7, 1.3), 2)))
            orders.append((customer_id, moment, value, discount))
            if rng.random() < dropout:
                break
            moment += timedelta(days=rng.expovariate(rate))
    return orders


def insert_orders(
    session: Session, shop_id: int, rows: list[tuple[int, datetime, Decimal, bool]], now: datetime
) -> None:
    records: list[dict[str, Any]] = []
    for customer_id, moment, value, discounted in rows:
        records.append(
            {
                "shop_id": shop_id,
                "order_id": next(_order_ids),
                "customer_id": customer_id,
                "ordered_at": moment,
                "source_updated_at": moment,
                "cancelled_at": None,
                "test": False,
                "financial_status": "paid",
                "current_total": value,
                "presentment_total": value,
                "pending_refunds": Decimal(0),
                "value": value,
                "total_discounts": Decimal("5.00") if discounted else Decimal(0),
                "discount_codes": '["SAVE"]' if discounted else None,
                "discounted": discounted,
                "source_name": "web",
                "qualifies": True,
                "stale_since": None,
            }
        )
    shops_repo.hold_shop(session, shop_id)  # as every writer of the ledger does (tests/fixtures/holds.py)
    if records:
        session.execute(table_of(Order).insert(), records)
    customers_repo.recompute(session, shop_id, {r[0] for r in rows}, now)


def seed_shop(
    session: Session,
    domain: str,
    customer_ids: list[int],
    *,
    now: datetime = NOW,
    currency_code: str | None = "USD",
    iana_timezone: str | None = "America/New_York",
    settings: Settings | None = None,
    access_token: str | None = None,
) -> SeededShop:
    """The shop with its history scored, fitted and backtested (commits)."""
    shop = register_shop(session, domain, now, currency_code=currency_code, iana_timezone=iana_timezone)
    if settings is not None and access_token is not None:
        give_token(session, shop, settings, access_token)
    # a merchant who entered acquisition economics (LTV:CAC and max CPC on the overview)
    update_settings(session, shop.shop_id, {"cac": "25", "conversion_rate": "0.02"}, now)
    session.execute(delete(Job).where(Job.shop_id == shop.shop_id))  # the rescore below runs it now
    session.commit()
    insert_orders(session, shop.shop_id, history(customer_ids, now), now)
    session.commit()
    score(session, shop.shop_id, now)
    return SeededShop(shop.shop_id, domain, customer_ids)


def score(session: Session, shop_id: int, now: datetime) -> None:
    """What the worker does for a new shop: rescore, fit (+ backtest), rescore with the model."""
    scoring.rescore_shop(session, shop_id, now, full=True)
    session.commit()
    scoring.fit_shop(session, shop_id, now)
    session.commit()
    scoring.rescore_shop(session, shop_id, now + timedelta(minutes=1), full=True)
    session.commit()


def give_token(session: Session, shop: Shop, settings: Settings, token: str) -> None:
    """An expiring offline token valid for a day, so that pages need no token exchange."""
    expires = datetime.now(UTC) + timedelta(days=1)
    store_token(
        shop,
        AccessToken(
            access_token=token,
            scope=["read_orders", "read_all_orders", "read_customers", "write_customers"],
            expires_at=expires,
            refresh_token="shprt_test",
            refresh_token_expires_at=expires + timedelta(days=30),
        ),
        token_cipher(settings),
    )


# The settings form as the page posts it with the defaults (tests change one field at a time).
SETTINGS_FORM = {
    "scoring_method": "quintile",
    "window_days": "",
    "clv_horizon_days": "365",
    "lifespan_years": "3",
    "cac": "",
    "conversion_rate": "",
    "rfm_tag_prefix": "rfm:",
    "stage_tag_prefix": "stage:",
    "clv_tag_prefix": "clv:",
    "sync_enabled": "on",
}
