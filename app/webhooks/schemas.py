"""What a topic's handler is to the webhook endpoint: a parser that turns a verified body into an
`Apply` (a write run in the delivery's transaction). The endpoint is given its topics by
`create_app` (`app.webhooks.handlers.TOPICS`), so that it imports none of the domains a topic's
handler reaches (the compliance topics reach scoring and sync)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from app.orders import service as orders
from app.orders.schemas import OrderFacts
from app.shops.repository import ShopRef

Apply = Callable[[Session, ShopRef, datetime], object]


@dataclass(frozen=True)
class Topic:
    # the payload and the shop domain of the delivery's (lowercased) X-Shopify-Shop-Domain header
    parse: Callable[[Any, str], Apply]
    # compliance and uninstall deliveries still arrive after the app was removed
    accepts_uninstalled: bool = False
    # shop/redact may name a shop already erased: answer 200 so Shopify stops asking
    accepts_unknown_shop: bool = False


@dataclass(frozen=True)
class OrderDelivery:
    """orders/create, /updated, /paid, /cancelled. Carries its facts so that the webhook endpoint
    can hand them to the one-round-trip path on PostgreSQL (`orders.ingest_order`)."""

    facts: OrderFacts

    def __call__(self, session: Session, shop: ShopRef, now: datetime) -> object:
        return orders.apply_order(session, shop.shop_id, self.facts, now)
