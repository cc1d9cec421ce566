"""What each screen shows, shaped from the stored tables (session first, never commits), and the
customer names fetched live from Shopify for the rows on screen (never stored, docs/privacy.md)."""

from __future__ import annotations

import asyncio
import json
import logging
import re
from dataclasses import dataclass, field
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
from app.sync import service as sync_service
from app.sync.service import SyncStatus
from app.vocabulary import (
    BELOW_CLV_TIERS_LABEL,
    CHURN_RISK_BANDS,
    CLV_TIER_LABELS,
    RFM_SEGMENT_NAMES,
    STAGE_CHANGE_CAUSES,
    STAGE_NAMES,
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
        settings=get_settings(session, shop_id),
        # before the first scoring, what webhooks and the import delivered so far (after it, the
        # stored counts above say the same without reading every customer on each page load)
        received=repo.received_counts(session, shop_id) if row is None else (0, 0),
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
        frequency_score=_score_param(params, "f", top, method),
        monetary_score=_score_param(params, "m", top, method),
        churn_band=band,
        next_days=next_days,
        next_order_window=window,
        search=search,
    )
    return f, page


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
    method = get_settings(session, shop_id).scoring_method
    offset = (page - 1) * repo.PAGE_SIZE
    if offset > repo.MAX_OFFSET:
        total = repo.customers_matching(session, shop_id, f)
        return CustomerPage([], page, total, False, True, f, scoring_method=method)
    rows, matching = repo.customers_page(session, shop_id, f, offset=offset, limit=repo.PAGE_SIZE + 1)
    has_next = len(rows) > repo.PAGE_SIZE and offset + repo.PAGE_SIZE <= repo.MAX_OFFSET
    total = matching if matching is not None else repo.customers_matching(session, shop_id, f)
    capped = offset + repo.PAGE_SIZE > repo.MAX_OFFSET
    return CustomerPage(rows[: repo.PAGE_SIZE], page, total, has_next, capped, f, scoring_method=method)


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


def accuracy(session: Session, shop_id: int) -> Accuracy:
    backtest = scoring.latest_backtest(session, shop_id)
    rows = json.loads(backtest.by_frequency) if backtest is not None and backtest.by_frequency else []
    in_use, newest = scoring.fit_in_use(session, shop_id), scoring.latest_fit(session, shop_id)
    return Accuracy(backtest, in_use, newest, rows)


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


def sync_registered() -> bool:
    """Whether a `sync` job kind exists (`app.tasks`, imported by `create_app`, registers the kinds)."""
    return registry.kind(SYNC_KIND) is not None


def status(session: Session, shop: Shop) -> Status:
    row = repo.metrics_row(session, shop.shop_id)
    available = sync_registered()
    return Status(
        progress=imports_service.import_progress(session, shop.shop_id),
        last_webhook_at=shop.last_webhook_at,
        sync_available=available,
        sync=sync_service.sync_status(session, shop.shop_id) if available else None,
        sync_running=repo.active_job(session, shop.shop_id, SYNC_KIND),
        failed_jobs=repo.failed_jobs(session, shop.shop_id),
        rescored_at=row.rescored_at if row else None,
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


def request_sync(session: Session, shop_id: int, now: datetime) -> bool:
    """The resync button: queue a sync that first compares the app's record with what Shopify holds
    (coalesces with a queued one); False without a sync."""
    if not sync_registered():
        return False
    sync_service.request_repair(session, shop_id, now)
    return True


JOB_WORDS = {
    "rescore": "Scoring the customers",
    "fit": "Fitting the lifetime-value model",
    "import": "Importing the order history",
    "sync": "Writing scores back to Shopify",
}


def job_words(job: Job) -> str:
    what = JOB_WORDS.get(job.kind, f"The {job.kind} task")
    reason = (job.last_error or "no reason recorded").strip().splitlines()[-1][:300]
    return f"{what} failed after {job.attempts} attempt(s): {reason}"
