"""What each screen shows, shaped from the stored tables (session first, never commits), and the
customer names fetched live from Shopify for the rows on screen (never stored, docs/privacy.md)."""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import httpx
from sqlalchemy.orm import Session

from app.admin import repository as repo
from app.config import Settings
from app.imports import service as imports_service
from app.imports.schemas import ImportProgress
from app.jobs import registry
from app.kit.errors import AppError, BadRequest
from app.models import Job, Shop
from app.scoring import service as scoring
from app.settings import service as settings_service
from app.settings.schemas import ScoringSettings, SettingsChange
from app.settings.service import get_settings
from app.shopify.admin_client import AdminApiError, AdminClient, GraphQLError, Unauthorized
from app.shopify.token_crypto import TokenDecryptError
from app.shops.tokens import ShopTokens
from app.sync import cleanup as sync_cleanup
from app.sync import service as sync_service
from app.sync.desired import clv_segment_key, rfm_segment_key, stage_segment_key
from app.sync.service import SyncStatus
from app.vocabulary import (
    BELOW_CLV_TIERS_LABEL,
    CHURN_RISK_BANDS,
    CLV_SEGMENT_TITLE,
    CLV_TIER_LABELS,
    RFM_SEGMENT_NAMES,
    RFM_SEGMENT_TITLE,
    SCORE_RANGE,
    STAGE_CHANGE_CAUSES,
    STAGE_LABELS,
    STAGE_NAMES,
    STAGE_SEGMENT_TITLE,
    THIRDS_GROUP_SUMS,
)

log = logging.getLogger(__name__)

SYNC_KIND = sync_service.SYNC
NAMES_TIMEOUT_S = 4.0
NAMES_TOKEN_UNREADABLE = (
    "Names are not shown: the app cannot read the access token it stored for this store "
    "(it was encrypted with a key that is not in TOKEN_ENCRYPTION_KEYS). "
    "Put that key back in TOKEN_ENCRYPTION_KEYS, or reinstall the app."
)
CLV_TIER_FILTERS: Final = {**CLV_TIER_LABELS, repo.NO_CLV_TIER: BELOW_CLV_TIERS_LABEL}
"""The customers page's CLV filter: value → label."""

# Rows on screen only; `displayName` and `defaultEmailAddress` need protected customer data access
# (https://shopify.dev/docs/apps/launch/protected-customer-data): without it Shopify redacts them or
# refuses the query, and the page shows ids.
CUSTOMER_NAMES_QUERY = """
query CustomerNames($ids: [ID!]!) {
  nodes(ids: $ids) {
    ... on Customer {
      id
      displayName
      defaultEmailAddress {
        emailAddress
      }
    }
  }
}
"""


# -- the app's segments in Shopify ------------------------------------------------------------

SHOPIFY_SEGMENT_URL: Final = "shopify://admin/customers/segments/{id}"
"""A segment's page in the Shopify admin (from where Shopify Email campaigns and marketing
automations start), as an embedded app links to it: App Bridge opens ``shopify://admin/…`` links
with ``target="_top"`` in the admin around the app's iframe
(https://shopify.dev/docs/api/app-home/latest/apis/user-interface-and-interactions/navigation-api).
The path is the admin's segment details page (docs/act.md)."""
SHOPIFY_LINK_TARGET: Final = "_top"


@dataclass(frozen=True, slots=True)
class SegmentLink:
    """A link to one of the app's segments in Shopify, or why there is none (in plain words)."""

    title: str
    """The segment's name in Shopify ("RFM · At risk")."""
    href: str | None
    missing: str | None = None
    target: str = SHOPIFY_LINK_TARGET


@dataclass(frozen=True, slots=True)
class ShopifySegments:
    """The shop's segments the sync created (their stored ids), and whether the sync is on."""

    sync_on: bool
    ids: dict[str, tuple[str, str]]
    """{key: (segment GID, name in Shopify)}"""

    def _link(self, key: str, title: str) -> SegmentLink:
        stored = self.ids.get(key)
        if not self.sync_on:
            return SegmentLink(title, None, "Not in Shopify: writing to Shopify is off in Settings.")
        if stored is None:
            return SegmentLink(title, None, "Not in Shopify yet: the next sync creates it.")
        gid, name = stored
        tail = gid.rsplit("/", 1)[-1]
        if not tail.isdigit():
            return SegmentLink(title, None, "Not in Shopify yet: the next sync creates it.")
        return SegmentLink(name or title, SHOPIFY_SEGMENT_URL.format(id=tail))

    def rfm(self, segment: str) -> SegmentLink:
        return self._link(rfm_segment_key(segment), RFM_SEGMENT_TITLE.format(segment))

    def stage(self, stage: str) -> SegmentLink:
        return self._link(stage_segment_key(stage), STAGE_SEGMENT_TITLE.format(STAGE_LABELS[stage]))

    def clv(self, tier: str) -> SegmentLink:
        return self._link(clv_segment_key(tier), CLV_SEGMENT_TITLE.format(CLV_TIER_LABELS[tier]))


def shopify_segments(session: Session, shop_id: int, settings: ScoringSettings) -> ShopifySegments:
    sync_on = settings.sync_enabled and sync_registered()
    ids = sync_service.shopify_segment_ids(session, shop_id) if sync_on else {}
    return ShopifySegments(sync_on, ids)


# -- overview ----------------------------------------------------------------------------------


@dataclass
class Overview:
    customers_scored: int
    orders_scored: int
    rescored_at: datetime | None
    computed_at: datetime | None
    segments: list[Any]
    shop_row: Any | None
    metrics: dict[str, Any] | None
    movements: list[tuple[str | None, str, int]]
    """This week's stage changes by the customers' behaviour (an order, or time without one)."""
    reclassified: list[tuple[str | None, str, int]]
    """This week's stage changes by a new model fit: the same history read differently."""
    week_start: datetime
    settings: ScoringSettings
    received: tuple[int, int]
    shopify: ShopifySegments
    """The app's segments in Shopify, for the links beside each segment."""
    plays: dict[str, str]
    """Each segment's suggested play (the shop's own wording or the default)."""


def week_start(now: datetime, timezone: str) -> datetime:
    """Midnight six days before today in the shop's time zone: "this week" is today and the six
    days before it, by the shop's calendar (STYLE: the shop's zone for day boundaries)."""
    zone = ZoneInfo(timezone)  # validated by scoring's shop_timezone (UTC when unknown)
    first_day = now.astimezone(zone).date() - timedelta(days=6)
    return datetime.combine(first_day, time(0), zone).astimezone(UTC)


def overview(session: Session, shop_id: int, now: datetime) -> Overview:
    row = repo.metrics_row(session, shop_id)
    segments = repo.segments(session, shop_id)
    shop_row = next((s for s in segments if s.position == 0), None)
    week_start_at = week_start(now, scoring.shop_timezone(session, shop_id))
    settings = get_settings(session, shop_id)
    return Overview(
        customers_scored=row.customers_scored if row else 0,
        orders_scored=row.orders_scored if row else 0,
        rescored_at=row.rescored_at if row else None,
        computed_at=row.computed_at if row else None,
        segments=[s for s in segments if s.position > 0],
        shop_row=shop_row,
        metrics=json.loads(row.metrics) if row is not None and row.metrics else None,
        movements=repo.stage_movements(session, shop_id, week_start_at),
        reclassified=repo.stage_movements(session, shop_id, week_start_at, STAGE_CHANGE_CAUSES[1]),
        week_start=week_start_at,
        settings=settings,
        # before the first scoring, what webhooks and the import delivered so far (after it, the
        # stored counts above say the same without reading every customer on each page load)
        received=repo.received_counts(session, shop_id) if row is None else (0, 0),
        shopify=shopify_segments(session, shop_id, settings),
        plays=settings_service.segment_plays(session, shop_id),
    )


# -- customers ---------------------------------------------------------------------------------


SEARCH_MAX_CHARS = 100
NEXT_DAYS_MAX = 3660
"""The "expected to order in the next N days" filter: 1 to ten years (no date lies further)."""


def _score_param(params: Any, key: str, top: int, method: str) -> int | None:
    raw = params.get(key)
    if raw is None or raw == "":
        return None
    if not raw.isdigit() or not 1 <= int(raw) <= top:
        what = "frequency" if key == "f" else "monetary"
        raise BadRequest(f"{key}: the {what} score must be a whole number from 1 to {top} ({method} scoring)")
    return int(raw)


def parse_filter(
    params: Any, *, method: str = "quintile", today: date | None = None
) -> tuple[repo.CustomerFilter, int]:
    """Filters, sort and page from query parameters. The first ones (segment, stage, clv, sort,
    dir, page) fall back to "all" / defaults when unknown; the search, the F and M scores, the
    churn-risk band and the next-order window are refused with a 400 naming the parameter."""
    segment = params.get("segment") or None
    stage = params.get("stage") or None
    tier = params.get("clv") or None
    sort = params.get("sort") or "predicted_clv"
    direction = params.get("dir") or "desc"
    try:
        page = max(1, int(params.get("page") or 1))
    except ValueError:
        page = 1
    top = 3 if method == "thirds" else 5
    search = (params.get("q") or "").strip() or None
    if search is not None and (len(search) > SEARCH_MAX_CHARS or not search.isprintable()):
        raise BadRequest(f"q: the search must be at most {SEARCH_MAX_CHARS} printable characters")
    band = params.get("risk") or None
    if band is not None and band not in CHURN_RISK_BANDS:
        raise BadRequest(f"risk: the churn-risk band must be one of {', '.join(CHURN_RISK_BANDS)}")
    next_days, window = None, None
    raw_days = params.get("next_days")
    if raw_days:
        if not raw_days.isdigit() or not 1 <= int(raw_days) <= NEXT_DAYS_MAX:
            raise BadRequest(f"next_days: must be a whole number of days from 1 to {NEXT_DAYS_MAX}")
        next_days = int(raw_days)
        window = next_order_window(today or datetime.now(UTC).date(), next_days)
    f = repo.CustomerFilter(
        segment=segment if segment in RFM_SEGMENT_NAMES else None,
        stage=stage if stage in STAGE_NAMES else None,
        clv_tier=tier if tier in CLV_TIER_FILTERS else None,
        sort=sort if sort in repo.SORTS else "predicted_clv",
        descending=direction != "asc",
        r=_grid_score(params, "r"),
        fm=_grid_score(params, "fm"),
        frequency_score=_score_param(params, "f", top, method),
        monetary_score=_score_param(params, "m", top, method),
        churn_band=band,
        next_days=next_days,
        next_order_window=window,
        search=search,
    )
    return f, page


GRID_SCORE_WORDS: Final = {"r": "the R score", "fm": "the FM score (F + M by the thirds method)"}


def _grid_score(params: Any, name: str) -> int | None:
    """A heat-map cell's coordinate: a whole number, checked against the method's grid by
    ``for_method``; anything else is refused naming the parameter."""
    raw = params.get(name)
    if raw is None or raw == "":
        return None
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 2):
        raise BadRequest(
            f"Query parameter {name}: {GRID_SCORE_WORDS[name]} must be a whole number, got {raw[:20]!r}"
        )
    return int(raw)


def grid_ranges(method: str) -> dict[str, range]:
    """The overview grid's rows (R) and columns (FM, or F + M by the thirds method)."""
    top = SCORE_RANGE[method]
    return {
        "r": range(1, top + 1),
        "fm": range(1, top + 1) if method == "quintile" else range(2, 2 * top + 1),
    }


def for_method(f: repo.CustomerFilter, method: str) -> repo.CustomerFilter:
    """The filter read with the scoring method in use: a cell outside its grid is refused naming
    the parameter (400); by the thirds method ``fm`` is the F + M column."""
    for name, allowed in grid_ranges(method).items():
        value = getattr(f, name)
        if value is not None and value not in allowed:
            raise BadRequest(
                f"Query parameter {name}: {GRID_SCORE_WORDS[name]} must be from {allowed[0]} to "
                f"{allowed[-1]} by the {method} method, got {value}"
            )
    return replace(f, thirds=method == "thirds")


def cell_segment(settings: ScoringSettings, r: int, fm: int) -> str:
    """The RFM segment (or thirds group) of the overview grid's cell R × FM."""
    if settings.scoring_method == "quintile":
        return settings.segment_grid[(r, fm)]
    return next(name for name, (low, high) in THIRDS_GROUP_SUMS.items() if low <= r + fm <= high)


def next_order_window(today: date, days: int) -> tuple[datetime, datetime]:
    """Expected next order from today through today + ``days`` (the shop's days): the stored
    ``expected_next_order_at`` is the shop's day d at 00:00 UTC (``scoring.shop_day``)."""
    start = datetime.combine(today, time(0), UTC)
    return start, start + timedelta(days=days + 1)


def shop_today(timezone: str | None, now: datetime) -> date:
    """Today in the shop's zone (UTC while it is not known, as the scoring counts days)."""
    try:
        zone = ZoneInfo(timezone or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo("UTC")
    return now.astimezone(zone).date()


@dataclass
class CustomerPage:
    rows: list[dict[str, Any]]
    page: int
    total: int
    has_next: bool
    capped: bool
    filter: repo.CustomerFilter
    names_note: str | None = None
    names: dict[int, tuple[str | None, str | None]] = field(default_factory=dict)
    scoring_method: str = "quintile"
    shopify_link: SegmentLink | None = None
    """The app's Shopify segment matching the filter (one segment, stage or CLV tier; a grid cell's
    segment), None when no single one does."""
    cell_segment: str | None = None
    """With a grid cell (``r`` and ``fm``), the segment the cell belongs to."""
    search_note: str | None = None
    """Why the search could not run (then no customers are listed)."""
    search_capped: bool = False
    """Shopify's search found more customers than the app reads (service.SEARCH_LIMIT)."""

    @property
    def first(self) -> int:
        return (self.page - 1) * repo.PAGE_SIZE + 1 if self.rows else 0

    @property
    def last(self) -> int:
        return (self.page - 1) * repo.PAGE_SIZE + len(self.rows)

    @property
    def last_page(self) -> int:
        """The last page that lists customers (1 when none match), within the list's cap."""
        pages = max(1, -(-self.total // repo.PAGE_SIZE))
        return min(pages, repo.MAX_OFFSET // repo.PAGE_SIZE + 1)

    @property
    def out_of_range(self) -> bool:
        """A page past the end of the list: nothing on it to show."""
        return not self.rows and self.page > 1


def customers(session: Session, shop_id: int, f: repo.CustomerFilter, page: int) -> CustomerPage:
    settings = get_settings(session, shop_id)
    method = settings.scoring_method
    f = for_method(f, method)
    link, cell = _filter_link(session, shop_id, settings, f)
    extra: dict[str, Any] = {"scoring_method": method, "shopify_link": link, "cell_segment": cell}
    offset = (page - 1) * repo.PAGE_SIZE
    if offset > repo.MAX_OFFSET:
        total = repo.customers_matching(session, shop_id, f)
        return CustomerPage([], page, total, False, True, f, **extra)
    rows, matching = repo.customers_page(session, shop_id, f, offset=offset, limit=repo.PAGE_SIZE + 1)
    has_next = len(rows) > repo.PAGE_SIZE and offset + repo.PAGE_SIZE <= repo.MAX_OFFSET
    total = matching if matching is not None else repo.customers_matching(session, shop_id, f)
    capped = offset + repo.PAGE_SIZE > repo.MAX_OFFSET
    return CustomerPage(rows[: repo.PAGE_SIZE], page, total, has_next, capped, f, **extra)


def _filter_link(
    session: Session, shop_id: int, settings: ScoringSettings, f: repo.CustomerFilter
) -> tuple[SegmentLink | None, str | None]:
    """(the app's Shopify segment matching the list's filter, the grid cell's segment): a filter on
    one segment, one stage or one CLV tier has one; a grid cell links to its segment's (which holds
    the whole segment, the cell among it)."""
    cell = cell_segment(settings, f.r, f.fm) if f.r is not None and f.fm is not None else None
    chosen = [k for k, v in (("segment", f.segment), ("stage", f.stage), ("clv", f.clv_tier)) if v]
    if cell is not None and f.segment in (None, cell) and chosen in ([], ["segment"]):
        return shopify_segments(session, shop_id, settings).rfm(cell), cell
    if len(chosen) != 1 or (f.r is not None or f.fm is not None):
        return None, cell
    links = shopify_segments(session, shop_id, settings)
    if f.segment:
        return links.rfm(f.segment), cell
    if f.stage:
        return links.stage(f.stage), cell
    if f.clv_tier is not None and f.clv_tier in CLV_TIER_LABELS:
        return links.clv(f.clv_tier), cell
    return None, cell


def admin_customer_url(shop_domain: str, customer_id: int) -> str:
    """The customer's page in the Shopify admin (store handle = the myshopify subdomain)."""
    handle = shop_domain.removesuffix(".myshopify.com")
    return f"https://admin.shopify.com/store/{handle}/customers/{customer_id}"


def customer_gid(customer_id: int) -> str:
    return f"gid://shopify/Customer/{customer_id}"


def admin_client(http: httpx.AsyncClient, settings: Settings, cache: Any) -> AdminClient:
    """One client per app for the page's name lookups: one attempt, since a page must not wait
    through the worker's retries (no names is an acceptable answer)."""
    client = getattr(cache, "admin_page_client", None)
    if client is None or client.http is not http:
        client = AdminClient(http, settings, max_attempts=1)
        cache.admin_page_client = client
    return client


NAMES_TRANSIENT = (
    "Names are not shown: Shopify did not answer the app in time (a passing failure on the way to "
    "Shopify). Reload the page in a minute to try again."
)
NAMES_PROTECTED = (
    "Names are not shown: Shopify withholds customer names and emails from this app (protected "
    "customer data: the app is not approved for these fields). Scores and ids are not affected."
)
NAMES_NO_SCOPE = (
    "Names are not shown: the app was not granted access to customers (read_customers) on this "
    "store; reopen the app to grant it."
)
NAMES_NO_ACCESS = "Names are not shown: the app has no access to this store right now."
NAMES_REFUSED = "Names are not shown: Shopify refused the app's access; reopen the app."
PROTECTED_DATA_MESSAGE = "not approved to access"
"""How Shopify words a refused protected field or object
(https://shopify.dev/docs/apps/launch/protected-customer-data, "Using protected customer data")."""


def unavailable_words(exc: BaseException) -> str:
    """Why Shopify gave no names (or no search), in plain words: no protected customer data
    access, no customer scope, or a passing failure (timeout, 5xx, throttling outlasting the page)."""
    if isinstance(exc, GraphQLError):
        if any(PROTECTED_DATA_MESSAGE in str(e.get("message", "")) for e in exc.errors):
            return NAMES_PROTECTED
        if "ACCESS_DENIED" in exc.codes:
            return NAMES_NO_SCOPE
    return NAMES_TRANSIENT


async def _token(tokens: ShopTokens, shop: Shop) -> tuple[str | None, str | None]:
    try:
        return await tokens.access_token(shop.domain), None
    except (AppError, httpx.HTTPError):  # not installed, refresh refused or failed: ids only
        log.info("shop %s: no access token for customer names", shop.domain)
        return None, NAMES_NO_ACCESS
    except TokenDecryptError:
        log.warning("shop %s: stored token unreadable with the configured keys", shop.domain)
        return None, NAMES_TOKEN_UNREADABLE


async def _ask(
    client: AdminClient, tokens: ShopTokens, shop: Shop, token: str, document: str, variables: Any, cost: int
) -> tuple[dict[str, Any] | None, str | None]:
    try:
        result = await asyncio.wait_for(
            client.execute(shop.domain, token, document, variables, expected_cost=cost), NAMES_TIMEOUT_S
        )
    except Unauthorized:
        await tokens.invalidate_access_token(shop.domain, token)
        return None, NAMES_REFUSED
    except (AdminApiError, TimeoutError, httpx.HTTPError) as exc:
        log.info("shop %s: customer names unavailable (%s)", shop.domain, type(exc).__name__)
        return None, unavailable_words(exc)
    return result.data, None


async def customer_names(
    client: AdminClient, tokens: ShopTokens, shop: Shop, customer_ids: list[int]
) -> tuple[dict[int, tuple[str | None, str | None]], str | None]:
    """({customer id: (display name, email)}, a note when names could not be shown, saying why)."""
    if not customer_ids:
        return {}, None
    token, note = await _token(tokens, shop)
    if token is None:
        return {}, note
    ids = {"ids": [customer_gid(c) for c in customer_ids]}
    data, note = await _ask(client, tokens, shop, token, CUSTOMER_NAMES_QUERY, ids, len(customer_ids) + 1)
    if data is None:
        return {}, note
    names: dict[int, tuple[str | None, str | None]] = {}
    for node in data.get("nodes") or []:
        if not isinstance(node, dict) or not isinstance(node.get("id"), str):
            continue
        tail = node["id"].rsplit("/", 1)[-1]
        if not tail.isdigit():
            continue
        email = (node.get("defaultEmailAddress") or {}).get("emailAddress") or None
        names[int(tail)] = (node.get("displayName") or None, email)
    if not any(n or e for n, e in names.values()):
        return names, NAMES_PROTECTED
    return names, None


# -- search ------------------------------------------------------------------------------------

# Shopify's customer search, never stored: the ids it returns restrict the list. The default
# (unfielded) search is "a case-insensitive search of multiple fields" (name, email, ...), see
# https://shopify.dev/docs/api/admin-graphql/latest/queries/customers; each word is sent as a
# prefix query with the search syntax's special characters escaped
# (https://shopify.dev/docs/api/usage/search-syntax), so what the merchant types is text, never syntax.
CUSTOMER_SEARCH_QUERY = """
query CustomerSearch($query: String!, $after: String) {
  customers(first: 250, query: $query, after: $after) {
    nodes {
      id
    }
    pageInfo {
      hasNextPage
      endCursor
    }
  }
}
"""
SEARCH_PAGES = 4
SEARCH_LIMIT = 250 * SEARCH_PAGES
"""The most customers a search reads from Shopify (4 requests of 250); past it the page says so."""
_SPECIAL = re.compile(r"""([\\:()'"*])""")


def shopify_search_query(text: str) -> str:
    """``Ada O'Brien`` → ``Ada* O\\'Brien*``: every word a prefix term of the default search; a
    leading ``-`` (NOT) and the connectives ``AND`` / ``OR`` lose their meaning."""
    terms = []
    for word in text.split():
        word = word.lstrip("-")
        if word:
            terms.append(_SPECIAL.sub(r"\\\1", word) + "*")
    return " ".join(terms)


@dataclass(frozen=True)
class SearchResult:
    customer_ids: tuple[int, ...] | None
    """None: the search could not run (``note`` says why)."""
    note: str | None = None
    more: bool = False
    """Shopify found more than SEARCH_LIMIT customers: only the first ones restrict the list."""


async def search_customers(client: AdminClient, tokens: ShopTokens, shop: Shop, text: str) -> SearchResult:
    query = shopify_search_query(text)
    if not query:
        return SearchResult(())
    token, note = await _token(tokens, shop)
    if token is None:
        return SearchResult(None, note and note.replace("Names are not shown", "The search could not run"))
    found: list[int] = []
    after: str | None = None
    for _ in range(SEARCH_PAGES):
        variables = {"query": query, "after": after}
        data, note = await _ask(client, tokens, shop, token, CUSTOMER_SEARCH_QUERY, variables, 252)
        if data is None:
            return SearchResult(None, (note or "").replace("Names are not shown", "The search could not run"))
        connection = data.get("customers") or {}
        for node in connection.get("nodes") or []:
            tail = str((node or {}).get("id", "")).rsplit("/", 1)[-1]
            if tail.isdigit():
                found.append(int(tail))
        info = connection.get("pageInfo") or {}
        if not info.get("hasNextPage"):
            return SearchResult(tuple(found))
        after = info.get("endCursor")
    return SearchResult(tuple(found), more=True)


# -- accuracy ----------------------------------------------------------------------------------


@dataclass
class Accuracy:
    backtest: Any
    fit: Any
    """The fit the predictions come from (None: the segment formula)."""
    newest_fit: Any
    """The newest fit, which may have failed (and then not replaced ``fit``)."""
    rows: list[dict[str, Any]]
    method: str = "segment_formula"
    """What the predictions come from: "model_with_prior", "model" or "segment_formula"."""
    prior_share: float | None = None
    """How much the prior contributed to the fit in use, in [0, 1] (docs/predictions.md)."""


def accuracy(session: Session, shop_id: int) -> Accuracy:
    backtest = scoring.latest_backtest(session, shop_id)
    rows = json.loads(backtest.by_frequency) if backtest is not None and backtest.by_frequency else []
    in_use, newest = scoring.fit_in_use(session, shop_id), scoring.latest_fit(session, shop_id)
    method, share = scoring.fit_method(in_use)
    return Accuracy(backtest, in_use, newest, rows, method, share)


# -- status ------------------------------------------------------------------------------------


@dataclass
class Status:
    progress: ImportProgress | None
    last_webhook_at: datetime | None
    sync_available: bool
    sync: SyncStatus | None
    """The sync's own account; None where there is no sync in this version."""
    sync_running: Job | None
    failed_jobs: list[Job]
    rescored_at: datetime | None
    cleanup: sync_cleanup.CleanupStatus | None = None
    """The merchant's "remove everything this app wrote to Shopify", once asked for."""


def sync_registered() -> bool:
    """Whether a `sync` job kind exists (`app.tasks`, imported by `create_app`, registers the kinds)."""
    return registry.kind(SYNC_KIND) is not None


def status(session: Session, shop: Shop, pending: Callable[[Session, int], int] | None = None) -> Status:
    """``pending`` counts the customers waiting to be written (the status page keeps the count
    between requests: app.admin.status_page.PendingCounts); without it they are counted here."""
    row = repo.metrics_row(session, shop.shop_id)
    available = sync_registered()
    waiting = pending(session, shop.shop_id) if available and pending is not None else None
    return Status(
        progress=imports_service.import_progress(session, shop.shop_id),
        last_webhook_at=shop.last_webhook_at,
        sync_available=available,
        sync=sync_service.sync_status(session, shop.shop_id, waiting) if available else None,
        sync_running=repo.active_job(session, shop.shop_id, SYNC_KIND),
        failed_jobs=repo.failed_jobs(session, shop.shop_id),
        rescored_at=row.rescored_at if row else None,
        cleanup=sync_cleanup.cleanup_status(session, shop.shop_id),
    )


def progress_json(progress: ImportProgress | None) -> dict[str, Any]:
    if progress is None:
        return {"state": "none", "orders_done": 0, "orders_expected": None, "percent": None, "error": None}
    return {
        "state": progress.state.value,
        "orders_done": progress.orders_done,
        "orders_expected": progress.orders_expected,
        "percent": None if progress.percent is None else round(progress.percent, 1),
        "started_at": progress.started_at.isoformat() if progress.started_at else None,
        "finished_at": progress.finished_at.isoformat() if progress.finished_at else None,
        "error": progress.error,
        "attempts": progress.attempts,
    }


def request_import(session: Session, shop_id: int, now: datetime) -> ImportProgress:
    """The re-import button: queue the history import and its worker job (joins one under way)."""
    return imports_service.queue_import(session, shop_id, now)


def save_settings(session: Session, shop_id: int, changes: Any, now: datetime) -> SettingsChange:
    """The settings form: validate and save the merchant's changes (raises SettingsError, saving
    nothing); a change that affects the scores queues a full rescore."""
    change = settings_service.update_settings(session, shop_id, changes, now)
    if change.affects_scores:
        scoring.enqueue_rescore(session, shop_id, now, full=True)
    return change


def save_plays(session: Session, shop_id: int, plays: dict[str, str], now: datetime) -> None:
    """The plays form: every play checked, then saved (raises SettingsError, saving nothing)."""
    settings_service.save_segment_plays(session, shop_id, plays, now)


def request_sync(session: Session, shop_id: int, now: datetime) -> bool:
    """The resync button: queue a sync that first compares the app's record with what Shopify holds
    (coalesces with a queued one); False without a sync."""
    if not sync_registered():
        return False
    sync_service.request_repair(session, shop_id, now)
    return True


@dataclass(frozen=True, slots=True)
class CleanupOffer:
    """The settings page's "remove everything this app wrote to Shopify": what it would remove
    now (from the app's record of what it wrote), and the one under way or last run."""

    counts: sync_cleanup.Counts
    last: sync_cleanup.CleanupStatus | None


def cleanup_offer(session: Session, shop_id: int) -> CleanupOffer:
    return CleanupOffer(
        sync_cleanup.what_would_be_removed(session, shop_id), sync_cleanup.cleanup_status(session, shop_id)
    )


def request_cleanup(session: Session, shop_id: int, now: datetime) -> None:
    """The confirmed settings action: turn the sync off and queue the removal."""
    sync_cleanup.request_cleanup(session, shop_id, now)


JOB_WORDS = {
    "rescore": "Scoring the customers",
    "fit": "Fitting the lifetime-value model",
    "import": "Importing the order history",
    "sync": "Writing scores back to Shopify",
    sync_cleanup.CLEANUP: "Removing what the app wrote to Shopify",
}


def job_words(job: Job) -> str:
    what = JOB_WORDS.get(job.kind, f"The {job.kind} task")
    reason = (job.last_error or "no reason recorded").strip().splitlines()[-1][:300]
    return f"{what} failed after {job.attempts} attempt(s): {reason}"
