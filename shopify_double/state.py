"""In-memory state of the test double: shops, customers, orders, metafields, segments, tokens, call log.

One :class:`DevStore` holds any number of shops. Everything lives in Python objects guarded by one
re-entrant lock per shop (the asyncio server handles one request at a time per event loop, but tests
and the demo may also call the helpers from threads). Ids are exact ints; GIDs are built from them
(``gid://shopify/Customer/<id>``). Money is ``Decimal``; times are aware UTC datetimes.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from shopify_double.cost import LeakyBucket

if TYPE_CHECKING:
    from shopify_double.bulk import BulkOperations
from shopify_double.grants import OAuthGrants
from shopify_double.signing import make_session_token

DEFAULT_APP_ID = 4_242_424_242
PLANS: dict[str, tuple[float, float]] = {
    # plan -> (maximumAvailable, restoreRate), https://shopify.dev/docs/api/usage/limits
    "Basic": (2000.0, 100.0),
    "Standard": (2000.0, 100.0),
    "Advanced": (4000.0, 200.0),
    "Plus": (20000.0, 1000.0),
    "Enterprise": (40000.0, 2000.0),
}


def gid(kind: str, numeric_id: int) -> str:
    return f"gid://shopify/{kind}/{numeric_id}"


def parse_gid(value: str) -> tuple[str, int] | None:
    """``gid://shopify/Customer/12`` → ``("Customer", 12)``; anything else → ``None``."""
    prefix = "gid://shopify/"
    if not isinstance(value, str) or not value.startswith(prefix):
        return None
    parts = value[len(prefix) :].split("?")[0].split("/")
    if len(parts) != 2 or not parts[1].isdigit():
        return None
    return parts[0], int(parts[1])


def utcnow() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


@functools.lru_cache(maxsize=1 << 16)
def iso(ts: datetime | None) -> str | None:
    """A timestamp as Shopify writes one (UTC, whole seconds). Remembered: every view of an object
    formats its timestamps again, and a sync asks for the same objects hundreds of times."""
    if ts is None:
        return None
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Customer:
    id: int
    created_at: datetime
    updated_at: datetime
    tags: list[str] = field(default_factory=list)
    number_of_orders: int = 0
    amount_spent: Decimal = Decimal("0")
    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None

    @property
    def gid(self) -> str:
        return gid("Customer", self.id)


@dataclass
class DiscountCode:
    code: str
    amount: Decimal
    type: str = "fixed_amount"  # fixed_amount | percentage | shipping


@dataclass
class Refund:
    id: int
    created_at: datetime
    amount: Decimal


@dataclass
class Order:
    id: int
    number: int
    created_at: datetime
    updated_at: datetime
    processed_at: datetime
    total_price: Decimal
    currency_code: str = "USD"
    customer_id: int | None = None
    cancelled_at: datetime | None = None
    cancel_reason: str | None = None
    closed_at: datetime | None = None
    test: bool = False
    financial_status: str = "PAID"  # OrderDisplayFinancialStatus
    total_discounts: Decimal = Decimal("0")
    discount_codes: list[DiscountCode] = field(default_factory=list)
    source_name: str = "web"
    refunds: list[Refund] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)

    @property
    def gid(self) -> str:
        return gid("Order", self.id)

    @property
    def name(self) -> str:
        return f"#{self.number}"

    @property
    def total_refunded(self) -> Decimal:
        return sum((r.amount for r in self.refunds), Decimal("0"))

    @property
    def current_total_price(self) -> Decimal:
        if self.cancelled_at is not None:
            return Decimal("0.00")
        return max(self.total_price - self.total_refunded, Decimal("0"))


@dataclass
class MetafieldDefinition:
    id: int
    namespace: str  # as it resolves on the shop, e.g. app--4242424242
    key: str
    type: str
    name: str
    owner_type: str = "CUSTOMER"
    description: str | None = None
    validations: dict[str, str] = field(default_factory=dict)  # e.g. {"choices": '["A","B"]'}
    admin_filterable: bool = True

    @property
    def gid(self) -> str:
        return gid("MetafieldDefinition", self.id)


@dataclass
class Metafield:
    id: int
    owner_gid: str
    namespace: str
    key: str
    type: str
    value: str
    created_at: datetime
    updated_at: datetime

    @property
    def gid(self) -> str:
        return gid("Metafield", self.id)

    @property
    def compare_digest(self) -> str:
        return metafield_digest(self.type, self.value)


def metafield_digest(type_: str, value: str) -> str:
    return hashlib.sha256(f"{type_}\x00{value}".encode()).hexdigest()


@dataclass
class Segment:
    id: int
    name: str
    query: str
    creation_date: datetime
    last_edit_date: datetime

    @property
    def gid(self) -> str:
        return gid("Segment", self.id)


@dataclass
class CallRecord:
    shop: str
    query: str
    variables: dict[str, Any] | None
    requested_cost: int
    actual_cost: int
    throttled: bool
    errors: list[dict[str, Any]] | None
    at: float


class ShopState:
    def __init__(
        self,
        domain: str,
        *,
        shop_id: int,
        name: str,
        currency_code: str,
        iana_timezone: str,
        plan: str,
        clock: Callable[[], float],
    ) -> None:
        self.domain = domain
        self.id = shop_id
        self.name = name
        self.currency_code = currency_code
        self.iana_timezone = iana_timezone
        self.plan = plan
        maximum, rate = PLANS.get(plan, PLANS["Standard"])
        self.bucket = LeakyBucket(maximum=maximum, restore_rate=rate, clock=clock)
        self.lock = threading.RLock()
        self.customers: dict[int, Customer] = {}
        self.orders: dict[int, Order] = {}
        self.metafield_definitions: dict[int, MetafieldDefinition] = {}
        self.metafields: dict[tuple[str, str, str], Metafield] = {}  # (owner gid, namespace, key)
        self.segments: dict[int, Segment] = {}
        self.flow_runs: list[Any] = []  # shopify_double.flow.FlowRun: the Flow triggers accepted
        self._ids = itertools.count(shop_id * 1000 + 1)
        self._order_number = itertools.count(1001)

    @property
    def gid(self) -> str:
        return gid("Shop", self.id)

    def next_id(self) -> int:
        return next(self._ids)

    def next_order_number(self) -> int:
        return next(self._order_number)

    def metafields_of(self, owner_gid: str) -> list[Metafield]:
        return sorted((m for m in self.metafields.values() if m.owner_gid == owner_gid), key=lambda m: m.id)

    def definition_for(self, owner_type: str, namespace: str, key: str) -> MetafieldDefinition | None:
        for d in self.metafield_definitions.values():
            if d.owner_type == owner_type and d.namespace == namespace and d.key == key:
                return d
        return None


class DevStore:
    """All shops of the double, their tokens and the API call log.

    ``clock`` (monotonic seconds) drives the cost buckets; ``now`` (aware datetime) stamps records.
    Both are injectable so tests can use a fake clock.
    """

    def __init__(
        self,
        *,
        app_id: int = DEFAULT_APP_ID,
        client_id: str = "devstore-client-id",
        client_secret: str = "devstore-client-secret",
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = utcnow,
    ) -> None:
        self.app_id = app_id
        self.client_id = client_id  # the app's API key: `aud` of session tokens, OAuth `client_id`
        self.client_secret = client_secret
        self.clock = clock
        self.now = now
        self.shops: dict[str, ShopState] = {}
        self.calls: list[CallRecord] = []
        self._tokens: dict[str, tuple[str, frozenset[str]]] = {}  # token -> (shop, scopes)
        self._shop_ids = itertools.count(60_000_000_001)
        self._lock = threading.RLock()
        self.grants = OAuthGrants(now)  # OAuth codes, token expiry, refresh tokens (oauth.py)
        # Protected customer data (customer_data.py): level 1 and the level 2 fields approved for
        # the app; everything on a development store.
        self.protected_customer_data = True
        self.protected_customer_fields: set[str] = {"name", "email", "phone", "address"}
        self._outages: dict[str, list[int]] = {}
        self.flow_triggers: dict[str, Any] = {}  # handle -> shopify_double.flow.FlowTriggerDefinition

    @property
    def bulk(self) -> BulkOperations:
        """Bulk operations of every shop, with test hooks (``complete``/``fail``/``expire``)."""
        from shopify_double.bulk import BulkOperations

        with self._lock:
            bulk: BulkOperations = self.__dict__.setdefault("_bulk", None) or BulkOperations(self)
            self.__dict__["_bulk"] = bulk
            return bulk

    # -- namespaces ---------------------------------------------------------------------------
    @property
    def app_namespace(self) -> str:
        return f"app--{self.app_id}"

    def resolve_namespace(self, namespace: str | None) -> str:
        """``$app`` (the default) → ``app--<app id>``; ``$app:x`` → ``app--<app id>--x``."""
        if namespace is None or namespace == "$app":
            return self.app_namespace
        if namespace.startswith("$app:"):
            return f"{self.app_namespace}--{namespace[5:]}"
        return namespace

    # -- shops and tokens ---------------------------------------------------------------------
    def create_shop(
        self,
        domain: str,
        *,
        name: str | None = None,
        currency_code: str = "USD",
        iana_timezone: str = "America/New_York",
        plan: str = "Basic",
    ) -> ShopState:
        with self._lock:
            if domain in self.shops:
                return self.shops[domain]
            shop = ShopState(
                domain,
                shop_id=next(self._shop_ids),
                name=name or domain.split(".")[0].replace("-", " ").title(),
                currency_code=currency_code,
                iana_timezone=iana_timezone,
                plan=plan,
                clock=self.clock,
            )
            self.shops[domain] = shop
            return shop

    def shop(self, domain: str) -> ShopState:
        return self.shops[domain]

    def update_shop(
        self, domain: str, *, currency_code: str | None = None, iana_timezone: str | None = None
    ) -> ShopState:
        """The merchant changes the store's currency or time zone in its settings (Shopify then
        sends ``shop/update``: ``shopify_double.webhooks.shop_update``)."""
        shop = self.shops[domain]
        with shop.lock:
            shop.currency_code = currency_code or shop.currency_code
            shop.iana_timezone = iana_timezone or shop.iana_timezone
        return shop

    def issue_access_token(self, shop_domain: str, scope: str | Iterable[str]) -> str:
        """Register (and return) a new Admin API token for ``shop_domain`` with ``scope``
        (comma-separated string or iterable). Creates the shop if it does not exist."""
        self.create_shop(shop_domain)
        scopes = scope.split(",") if isinstance(scope, str) else list(scope)
        token = "shpat_" + secrets.token_hex(16)
        with self._lock:
            self._tokens[token] = (shop_domain, frozenset(s.strip() for s in scopes if s.strip()))
        return token

    def revoke(self, shop_domain: str, token: str | None = None) -> None:
        """Revoke one token, or every token of the shop (what uninstalling does)."""
        if token is None:
            self.grants.forget_shop(shop_domain)
        with self._lock:
            for tok, (shop, _) in list(self._tokens.items()):
                if shop == shop_domain and (token is None or tok == token):
                    del self._tokens[tok]

    def token_scopes(self, shop_domain: str, token: str | None) -> frozenset[str] | None:
        """The scopes of ``token`` if it is valid for ``shop_domain``, else ``None``."""
        if not token:
            return None
        entry = self._tokens.get(token)
        if entry is None or entry[0] != shop_domain or self.grants.is_expired(token):
            return None
        return entry[1]

    def session_token(self, shop_domain: str, **claims: Any) -> str:
        """A session token (ID token) App Bridge would hand the app for ``shop_domain``, signed
        with this app's secret; ``claims`` are ``make_session_token``'s overrides (``exp_in``, ``sub``…)."""
        claims.setdefault("now", self.now().timestamp())
        return make_session_token(shop_domain, self.client_id, self.client_secret, **claims)

    # -- customers and orders -----------------------------------------------------------------
    def create_customer(
        self,
        shop_domain: str,
        *,
        tags: Iterable[str] = (),
        created_at: datetime | None = None,
        first_name: str | None = None,
        last_name: str | None = None,
        email: str | None = None,
    ) -> Customer:
        shop = self.shops[shop_domain]
        now = created_at or self.now()
        with shop.lock:
            customer = Customer(
                id=shop.next_id(),
                created_at=now,
                updated_at=now,
                tags=normalize_tags([], tags),
                first_name=first_name,
                last_name=last_name,
                email=email,
            )
            shop.customers[customer.id] = customer
            return customer

    def create_customers(self, shop_domain: str, count: int, *, tags: Iterable[str] = ()) -> list[Customer]:
        """``count`` customers at once (cheap: the demo creates tens of thousands)."""
        shop = self.shops[shop_domain]
        now = self.now()
        base_tags = normalize_tags([], tags)
        with shop.lock:
            out = []
            for _ in range(count):
                c = Customer(id=shop.next_id(), created_at=now, updated_at=now, tags=list(base_tags))
                shop.customers[c.id] = c
                out.append(c)
            return out

    def create_order(
        self,
        shop_domain: str,
        *,
        customer_id: int | None,
        total_price: Decimal | str | int,
        processed_at: datetime | None = None,
        created_at: datetime | None = None,
        currency_code: str | None = None,
        test: bool = False,
        financial_status: str = "PAID",
        cancelled_at: datetime | None = None,
        total_discounts: Decimal | str = Decimal("0"),
        discount_codes: Iterable[DiscountCode] = (),
        source_name: str = "web",
    ) -> Order:
        shop = self.shops[shop_domain]
        now = self.now()
        with shop.lock:
            order = Order(
                id=shop.next_id(),
                number=shop.next_order_number(),
                created_at=created_at or now,
                updated_at=now,
                processed_at=processed_at or created_at or now,
                total_price=Decimal(str(total_price)),
                currency_code=currency_code or shop.currency_code,
                customer_id=customer_id,
                cancelled_at=cancelled_at,
                test=test,
                financial_status=financial_status,
                total_discounts=Decimal(str(total_discounts)),
                discount_codes=list(discount_codes),
                source_name=source_name,
            )
            shop.orders[order.id] = order
            if customer_id is not None:
                customer = shop.customers[customer_id]
                customer.number_of_orders += 1
                customer.amount_spent += order.current_total_price
                customer.updated_at = now
            return order

    def create_orders(self, shop_domain: str, rows: Iterable[Mapping[str, Any]]) -> list[Order]:
        """Many orders at once; each row holds :meth:`create_order` keyword arguments."""
        return [self.create_order(shop_domain, **dict(row)) for row in rows]

    def update_order(self, shop_domain: str, order_id: int, **changes: Any) -> Order:
        """Change an order (e.g. ``cancelled_at=...``), bump ``updated_at``, keep customer totals right."""
        shop = self.shops[shop_domain]
        with shop.lock:
            order = shop.orders[order_id]
            before = order.current_total_price
            for k, v in changes.items():
                setattr(order, k, v)
            order.updated_at = self.now()
            if order.customer_id is not None:
                customer = shop.customers[order.customer_id]
                customer.amount_spent += order.current_total_price - before
                customer.updated_at = order.updated_at
            return order

    # -- metafield definitions ----------------------------------------------------------------
    def define_metafield(
        self,
        shop_domain: str,
        key: str,
        type: str,
        *,
        namespace: str = "$app",
        name: str | None = None,
        owner_type: str = "CUSTOMER",
        choices: list[str] | None = None,
        validations: Mapping[str, str] | None = None,
        admin_filterable: bool = True,
    ) -> MetafieldDefinition:
        """What ``shopify app deploy`` does for a ``[customer.metafields.app.<key>]`` TOML entry."""
        import json

        shop = self.shops[shop_domain]
        vals = dict(validations or {})
        if choices is not None:
            vals["choices"] = json.dumps(choices)
        with shop.lock:
            ns = self.resolve_namespace(namespace)
            existing = shop.definition_for(owner_type, ns, key)
            if existing:
                return existing
            d = MetafieldDefinition(
                id=shop.next_id(),
                namespace=ns,
                key=key,
                type=type,
                name=name or key,
                owner_type=owner_type,
                validations=vals,
                admin_filterable=admin_filterable,
            )
            shop.metafield_definitions[d.id] = d
            return d

    def metafield_value(
        self, shop_domain: str, owner_gid: str, key: str, namespace: str = "$app"
    ) -> str | None:
        m = self.shops[shop_domain].metafields.get((owner_gid, self.resolve_namespace(namespace), key))
        return m.value if m else None

    # -- segments -----------------------------------------------------------------------------
    def segment_member_ids(self, shop_domain: str, segment_id: int | str) -> set[str]:
        """Customer GIDs a segment's query selects (tags, order count, amount, metafields)."""
        from shopify_double.segments import evaluate, parse_segment_query

        shop = self.shops[shop_domain]
        if isinstance(segment_id, str):
            parsed = parse_gid(segment_id)
            if parsed is None:
                raise KeyError(segment_id)
            segment_id = parsed[1]
        segment = shop.segments[segment_id]
        expr = parse_segment_query(segment.query, self, shop)
        with shop.lock:
            return {c.gid for c in shop.customers.values() if evaluate(expr, c, self, shop)}

    # -- outages -------------------------------------------------------------------------------
    def fail_next(self, shop_domain: str, count: int = 1, status: int = 503) -> None:
        """The next ``count`` Admin API requests for the shop answer HTTP ``status`` (a passing
        outage on Shopify's side: 5xx, or 429 without a Retry-After)."""
        with self._lock:
            self._outages.setdefault(shop_domain, []).extend([status] * count)

    def end_outage(self, shop_domain: str) -> None:
        """Shopify is back: the outage ``fail_next`` began answers no more requests."""
        with self._lock:
            self._outages.pop(shop_domain, None)

    def take_outage(self, shop_domain: str) -> int | None:
        with self._lock:
            queued = self._outages.get(shop_domain)
            return queued.pop(0) if queued else None

    # -- call log -----------------------------------------------------------------------------
    def record_call(self, record: CallRecord) -> None:
        with self._lock:
            self.calls.append(record)

    def calls_for(self, shop_domain: str) -> list[CallRecord]:
        return [c for c in self.calls if c.shop == shop_domain]


def normalize_tags(existing: list[str], new: Iterable[str]) -> list[str]:
    """Append ``new`` to ``existing``: split on commas, strip, drop blanks, de-duplicate
    case-insensitively keeping the first spelling (Shopify's tag rules)."""
    out = list(existing)
    seen = {t.lower() for t in out}
    for raw in new:
        for part in str(raw).split(","):
            tag = part.strip()
            if tag and tag.lower() not in seen:
                seen.add(tag.lower())
                out.append(tag)
    return out
