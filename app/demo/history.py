"""A seeded, realistic store history: several kinds of buyer, two years of orders, and the
refunds, cancellations, deletions, guest and test orders a real store has.

The history is put into the local Shopify double (`shopify_double`), which then sends it to the
app exactly as Shopify would."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import numpy as np

from shopify_double.state import DevStore, DiscountCode, Order, Refund


@dataclass(frozen=True)
class Behaviour:
    name: str
    share: float
    days_between_orders: float  # mean gap while the buyer is still active
    stop_after_order: float  # probability of never buying again after each order
    spend_multiplier: float


BEHAVIOURS = (
    Behaviour("one-time", 0.52, 0.0, 1.0, 1.0),
    Behaviour("occasional", 0.26, 110.0, 0.30, 1.0),
    Behaviour("regular", 0.12, 40.0, 0.08, 1.2),
    Behaviour("vip", 0.03, 18.0, 0.02, 2.5),
    Behaviour("lapsed", 0.07, 25.0, 0.0, 1.1),  # buys often for a few months, then stops
)


FIRST_NAMES = ("Ada", "Bo", "Chen", "Dara", "Eli", "Fatima", "Gus", "Hana", "Ivo", "Jun", "Kai", "Lena")
LAST_NAMES = ("Okafor", "Lindqvist", "Moreau", "Tanaka", "Silva", "Novak", "Haddad", "Kowalski", "Reyes")


@dataclass
class History:
    """What was generated, in the order Shopify would have sent it."""

    events: list[tuple[datetime, str, Order]] = field(default_factory=list)
    customers: int = 0
    orders: int = 0

    def sorted_events(self) -> list[tuple[datetime, str, Order]]:
        return sorted(self.events, key=lambda e: e[0])


def generate(
    store: DevStore,
    shop_domain: str,
    *,
    customers: int = 3000,
    years: float = 2.0,
    seed: int = 7,
    now: datetime | None = None,
) -> History:
    rng = np.random.default_rng(seed)
    now = (now or datetime.now(UTC)).replace(microsecond=0)
    start = now - timedelta(days=365 * years)
    span_days = (now - start).days
    history = History(customers=customers)
    kinds = rng.choice(len(BEHAVIOURS), size=customers, p=[b.share for b in BEHAVIOURS])
    buyers = store.create_customers(shop_domain, customers)
    for buyer in buyers:  # a real store's customers have names and emails; the app never stores them
        buyer.first_name = FIRST_NAMES[buyer.id % len(FIRST_NAMES)]
        buyer.last_name = LAST_NAMES[(buyer.id // 7) % len(LAST_NAMES)]
        buyer.email = f"{buyer.first_name}.{buyer.last_name}.{buyer.id}@example.com".lower()
    for buyer, kind in zip(buyers, kinds, strict=True):
        behaviour = BEHAVIOURS[kind]
        discount_prone = rng.random() < 0.3
        typical_spend = float(rng.lognormal(np.log(55.0), 0.45)) * behaviour.spend_multiplier
        day = float(rng.uniform(0, span_days - 1))
        active_until = day + float(rng.uniform(90, 270)) if behaviour.name == "lapsed" else span_days
        while day < min(span_days, active_until):
            _place_order(
                store,
                shop_domain,
                history,
                rng,
                start + timedelta(days=day),
                now,
                buyer.id,
                typical_spend,
                discount_prone,
            )
            if behaviour.days_between_orders == 0 or rng.random() < behaviour.stop_after_order:
                break
            day += float(rng.exponential(behaviour.days_between_orders)) + 1.0
    for _ in range(int(history.orders * 0.08)):  # guest checkouts
        when = start + timedelta(days=float(rng.uniform(0, span_days)))
        _place_order(
            store, shop_domain, history, rng, when, now, None, float(rng.lognormal(np.log(45.0), 0.4)), False
        )
    return history


def _place_order(
    store: DevStore,
    shop_domain: str,
    history: History,
    rng: np.random.Generator,
    when: datetime,
    now: datetime,
    customer_id: int | None,
    typical_spend: float,
    discount_prone: bool,
) -> None:
    amount = Decimal(str(round(max(5.0, typical_spend * float(rng.lognormal(0.0, 0.25))), 2)))
    discount = Decimal(0)
    codes: list[DiscountCode] = []
    if rng.random() < (0.7 if discount_prone else 0.08):
        discount = (amount * Decimal("0.15")).quantize(Decimal("0.01"))
        codes = [DiscountCode("WELCOME15" if rng.random() < 0.5 else "SPRING15", discount, "fixed_amount")]
    order = store.create_order(
        shop_domain,
        customer_id=customer_id,
        total_price=amount - discount,
        processed_at=when,
        created_at=when,
        test=bool(rng.random() < 0.005),
        total_discounts=discount,
        discount_codes=codes,
        source_name="pos" if rng.random() < 0.1 else "web",
    )
    order.updated_at = when
    history.orders += 1
    history.events.append((when, "orders/create", order))
    fate = rng.random()
    later = min(when + timedelta(days=float(rng.uniform(1, 20))), now)
    if fate < 0.02:
        history.events.append((later, "orders/cancelled", order))
    elif fate < 0.06:
        history.events.append((later, "refunds/create", order))
    elif fate < 0.07:
        history.events.append((later, "refunds/create-full", order))
    elif fate < 0.072:
        history.events.append((later, "orders/delete", order))


def apply_event(store: DevStore, shop_domain: str, topic: str, order: Order, at: datetime) -> Refund | None:
    """Change the double's order as the event says (so its state and the webhook agree)."""
    if topic == "orders/cancelled":
        store.update_order(
            shop_domain, order.id, cancelled_at=at, cancel_reason="customer", financial_status="VOIDED"
        )
        order.updated_at = at
    elif topic.startswith("refunds/create"):
        full = topic.endswith("-full")
        amount = order.total_price if full else (order.total_price * Decimal("0.3")).quantize(Decimal("0.01"))
        refund = Refund(id=store.shop(shop_domain).next_id(), created_at=at, amount=amount)
        status = "REFUNDED" if full else "PARTIALLY_REFUNDED"
        store.update_order(shop_domain, order.id, refunds=[*order.refunds, refund], financial_status=status)
        order.updated_at = at
        return refund
    elif topic == "orders/delete":
        store.shop(shop_domain).orders.pop(order.id, None)
    return None
