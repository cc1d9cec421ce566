"""The embedded app: entry point and screens (server-rendered), their JSON, the CSV export, and the
form posts (settings, re-import, resync).

The App URL load is `/?embedded=1&host=…&id_token=…&shop=…&timestamp=…&hmac=…`
(https://shopify.dev/docs/apps/build/authentication-authorization/session-tokens):
1. not embedded and no `id_token`: a browser opened the URL directly → send it into the admin
   (valid `shop`), or show a plain landing page (`frame-ancestors 'none'`);
2. `shop` or `host` invalid → the App Bridge page only (App Bridge fixes the URL);
3. `id_token` missing/invalid → bounce page (`app/deps.py`);
4. the token's shop must be the `shop` parameter; token exchange when the app has no usable
   token (Shopify-managed install), then the page, framed only by that shop's admin.

Every other page and call is authenticated by `CurrentShop` (the `id_token` query parameter on a
document load or a form post, `Authorization: Bearer` on a fetch); links keep the launch query.
Pages read only what the worker stored (`app/admin/repository.py`).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response, StreamingResponse

from app.admin import outcomes, repository, service, settings_page, status_page, views
from app.admin.rendering import Formatter, launch_query, templates
from app.auth.router import session_token_bounce
from app.auth.security import set_frame_ancestors
from app.auth.service import embedded_app_url
from app.config import Settings
from app.deps import CurrentShop, install_for, session_claims
from app.jobs import repository as jobs_repo
from app.kit.db import read_session
from app.kit.errors import AppError, BadRequest, UnprocessablePayload
from app.kit.request_body import declared_length, read_body
from app.kit.web import SessionDep, read_in_thread, write_in_thread
from app.models import Shop
from app.scoring import service as scoring
from app.scoring.compute import MIN_CUSTOMERS_FOR_TENTHS
from app.settings import service as settings_service
from app.settings.schemas import PLAY_MAX, SettingsError, play_field
from app.settings.service import get_settings
from app.shopify.shop_domain import decode_host, sanitize_shop_domain
from app.vocabulary import SEGMENT_PLAYS, SEGMENTS_OF_METHOD

router = APIRouter()


class ServiceUnavailable(AppError):
    status_code = 503


# The settings form is a dozen short fields (well under 2 KB); nothing legitimate comes near this.
SETTINGS_MAX_BODY_BYTES = 64 * 1024
SETTINGS_BODY_TIMEOUT_SECONDS = 10.0

NAV = (
    ("overview", "/app", "Overview"),
    ("customers", "/app/customers", "Customers"),
    ("cohorts", "/app/cohorts", "Cohorts & metrics"),
    ("accuracy", "/app/accuracy", "Accuracy"),
    ("outcomes", "/app/outcomes", "Outcomes"),
    ("settings", "/app/settings", "Settings"),
    ("status", "/app/status", "Status"),
)


def _now() -> datetime:
    return datetime.now(UTC)


def _check_shop_param(request: Request, shop: Shop) -> None:
    param = request.query_params.get("shop")
    if param is not None and sanitize_shop_domain(param) != shop.domain:
        raise BadRequest("the shop parameter does not match the session token")


def _page(
    request: Request, name: str, shop: Shop | None, status_code: int = 200, **context: Any
) -> HTMLResponse:
    settings: Settings = request.app.state.settings
    base: dict[str, Any] = {"api_key": settings.shopify_api_key}
    if shop is not None:
        base |= {
            "shop_domain": shop.domain,
            "fmt": Formatter(shop.currency_code, shop.iana_timezone),
            "q": launch_query(request),
            "nav": [(key, path, label) for key, path, label in NAV],
            "launch": lambda **extra: launch_query(request, **extra),
        }
    response = templates.TemplateResponse(request, name, {**base, **context}, status_code=status_code)
    set_frame_ancestors(response, shop.domain if shop is not None else None)
    return response


# -- overview (the App URL) --------------------------------------------------------------------


@router.get("/", response_class=HTMLResponse)
@router.get("/app", response_class=HTMLResponse)
async def embedded_entry(request: Request) -> Response:
    settings: Settings = request.app.state.settings
    query = request.query_params
    shop_param = sanitize_shop_domain(query.get("shop"))
    if query.get("embedded") != "1" and "id_token" not in query:
        if shop_param is None:
            return _page(request, "landing.html", None)
        return RedirectResponse(embedded_app_url(settings, shop_param), status_code=302)
    if shop_param is None or decode_host(query.get("host")) is None:
        return session_token_bounce(request, shop_param)
    token, claims = session_claims(request)
    if claims.shop != shop_param:
        raise BadRequest("the shop parameter does not match the session token")
    shop = await install_for(request, token, claims)
    data = await read_in_thread(request, service.overview, shop.shop_id, _now())
    fmt = Formatter(shop.currency_code, shop.iana_timezone)
    return _page(
        request,
        "overview.html",
        shop,
        active="overview",
        o=data,
        charts=views.overview_charts(data, fmt, _cell_href(request)),
        min_for_tenths=MIN_CUSTOMERS_FOR_TENTHS,
        labels=views.clv_labels(data.settings),
        total_clv=views.total_clv,
    )


def _cell_href(request: Request) -> views.CellHref:
    """A heat-map cell's customer list, keeping the launch query."""
    return lambda r, fm: f"/app/customers?{launch_query(request, r=r, fm=fm)}"


@router.get("/api/shop")
def shop_summary(shop: CurrentShop, session: SessionDep) -> dict[str, object]:
    """The authenticated shop's domain and counts (a fetch from the page, session token in the header)."""
    return {
        "shop": shop.domain,
        "customers": repository.customer_count(session, shop.shop_id),
        "orders": repository.qualifying_order_count(session, shop.shop_id),
    }


@router.get("/api/overview")
def overview_json(shop: CurrentShop, session: SessionDep) -> dict[str, Any]:
    return views.overview_json(service.overview(session, shop.shop_id, _now()), shop)


# -- customers ---------------------------------------------------------------------------------


async def _filter(request: Request, shop: Shop) -> tuple[service.CustomerPage | None, Any, int, Any]:
    """(the page when a search could not run or found more than the app reads, the filter, the
    page number, the shop's settings):
    the parameters checked against the shop's scoring method and day, a search run through
    Shopify's customer search, its ids restricting the list."""
    settings = await read_in_thread(request, service.get_settings, shop.shop_id)
    today = service.shop_today(shop.iana_timezone, _now())
    f, page = service.parse_filter(request.query_params, method=settings.scoring_method, today=today)
    f = service.for_method(f, settings.scoring_method)  # a grid cell outside the method's grid: 400
    if f.search is None:
        return None, f, page, settings
    client = service.admin_client(request.app.state.http, request.app.state.settings, request.app.state)
    found = await service.search_customers(client, request.app.state.auth.tokens, shop, f.search)
    if found.customer_ids is None:
        failed = service.CustomerPage([], page, 0, False, False, f, scoring_method=settings.scoring_method)
        failed.search_note = found.note
        return failed, f, page, settings
    f = replace(f, customer_ids=found.customer_ids)
    if found.more:
        capped = service.CustomerPage([], page, 0, False, False, f, scoring_method=settings.scoring_method)
        capped.search_capped = True
        return capped, f, page, settings
    return None, f, page, settings


async def _customers(request: Request, shop: Shop) -> tuple[service.CustomerPage, Any]:
    early, f, page, settings = await _filter(request, shop)
    if early is not None and early.search_note is not None:
        return early, settings
    data = await read_in_thread(request, service.customers, shop.shop_id, f, page)
    client = service.admin_client(request.app.state.http, request.app.state.settings, request.app.state)
    data.names, data.names_note = await service.customer_names(
        client, request.app.state.auth.tokens, shop, [r["customer_id"] for r in data.rows]
    )
    data.search_capped = early is not None and early.search_capped
    return data, settings


@router.get("/app/customers", response_class=HTMLResponse)
async def customers_page(request: Request, shop: CurrentShop) -> Response:
    _check_shop_param(request, shop)
    data, settings = await _customers(request, shop)
    if data.out_of_range:
        # a page past the end (an old link, a list that shrank): the last page that has customers
        query = launch_query(request, **data.filter.params(), page=data.last_page)
        return RedirectResponse(f"/app/customers?{query}", status_code=303)
    return _page(
        request,
        "customers.html",
        shop,
        active="customers",
        c=data,
        labels=views.clv_labels(settings),
        total_clv=views.total_clv,
        **views.customer_choices(data.scoring_method),
    )


@router.get("/api/customers")
async def customers_json(request: Request, shop: CurrentShop) -> dict[str, Any]:
    data, settings = await _customers(request, shop)
    return views.customers_json(data, shop, settings.clv_horizon_days)


CSV_COLUMNS = (
    "customer_id",
    "shopify_admin_url",
    "segment",
    "rfm_code",
    "recency_score",
    "frequency_score",
    "monetary_score",
    "stage",
    "orders",
    "first_order_date",
    "last_order_date",
    "time_zone",
    "currency",
    "total_spent",
    "predicted_clv",
    "total_clv",
    "clv_horizon_days",
    "predicted_orders",
    "churn_risk",
    "expected_next_order_date",
    "clv_tier",
)
"""Dates are the shop's calendar days in the zone named in ``time_zone``; amounts are plain numbers
with the currency's own decimals (JPY 0, EUR 2, KWD 3) in the currency named in ``currency``."""


@router.get("/app/customers.csv")
async def customers_csv(request: Request, shop: CurrentShop) -> StreamingResponse:
    """The filtered list as CSV, streamed from a server-side cursor (ids and scores; names are
    never stored, so they are not exported). A search runs through Shopify first, as on the page."""
    early, f, _, settings = await _filter(request, shop)
    if early is not None and early.search_note is not None:
        raise ServiceUnavailable(early.search_note)
    factory = request.app.state.sessionmaker
    fmt = Formatter(shop.currency_code, shop.iana_timezone)
    shop_id, domain = shop.shop_id, shop.domain
    horizon_days = settings.clv_horizon_days

    def day(value: datetime | None) -> str:
        return value.astimezone(fmt.zone).date().isoformat() if value is not None else ""

    def rows() -> Iterator[str]:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(CSV_COLUMNS)
        with read_session(factory) as session:
            for n, r in enumerate(repository.stream_customers(session, shop_id, f), 1):
                writer.writerow(
                    (
                        r.customer_id,
                        service.admin_customer_url(domain, r.customer_id),
                        r.segment,
                        r.rfm_code,
                        r.recency_score,
                        r.frequency_score,
                        r.monetary_score,
                        r.stage,
                        r.frequency,
                        day(r.first_order_at),
                        day(r.last_order_at),
                        fmt.timezone,
                        fmt.currency,
                        fmt.amount(r.historic_clv),
                        fmt.amount(r.predicted_clv),
                        fmt.amount(views.total_clv(r.historic_clv, r.predicted_clv)),
                        horizon_days,
                        f"{r.predicted_orders:.3f}",
                        f"{r.churn_risk:.4f}",
                        scoring.shop_day(r.expected_next_order_at).isoformat()
                        if r.expected_next_order_at
                        else "",
                        r.clv_tier or "",
                    )
                )
                if n % 500 == 0:
                    yield buffer.getvalue()
                    buffer.seek(0)
                    buffer.truncate()
        yield buffer.getvalue()

    stamp = _now().astimezone(fmt.zone).strftime("%Y%m%d")
    name = f"customers-{domain.removesuffix('.myshopify.com')}-{stamp}.csv"
    return StreamingResponse(
        rows(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


# -- cohorts and metrics -----------------------------------------------------------------------


@router.get("/app/cohorts", response_class=HTMLResponse)
async def cohorts_page(request: Request, shop: CurrentShop) -> Response:
    _check_shop_param(request, shop)
    data = await read_in_thread(request, service.overview, shop.shop_id, _now())
    fmt = Formatter(shop.currency_code, shop.iana_timezone)
    return _page(
        request,
        "cohorts.html",
        shop,
        active="cohorts",
        o=data,
        recent=views.recent_cohorts(data.metrics),
        charts=views.cohort_charts(data, fmt),
        **views.cohort_labels(),
    )


@router.get("/api/metrics")
def metrics_json(shop: CurrentShop, session: SessionDep) -> dict[str, Any]:
    """The last scoring's metrics; "shop" (the order history: cohorts, retention) is as of the last
    full scoring, ``order_history_as_of``."""
    row = repository.metrics_row(session, shop.shop_id)
    return {
        "shop": shop.domain,
        "rescored_at": row.rescored_at.isoformat() if row is not None else None,
        "order_history_as_of": row.computed_at.isoformat() if row is not None and row.computed_at else None,
        "metrics": repository.metrics(session, shop.shop_id),
    }


# -- accuracy ----------------------------------------------------------------------------------


@router.get("/app/accuracy", response_class=HTMLResponse)
async def accuracy_page(request: Request, shop: CurrentShop) -> Response:
    _check_shop_param(request, shop)
    a = await read_in_thread(request, service.accuracy, shop.shop_id)
    fmt = Formatter(shop.currency_code, shop.iana_timezone)
    measured = a.backtest is not None and a.backtest.method is not None
    return _page(
        request,
        "accuracy.html",
        shop,
        active="accuracy",
        b=a.backtest,
        fit=a.fit,
        newest_fit=a.newest_fit,
        method_label=views.METHOD_LABELS.get(a.backtest.method) if measured else None,
        clv_method=views.method_sentence(a.method),
        prior_words=views.prior_words(
            a.method,
            a.prior_share,
            a.fit.repeat_buyers if a.fit else 0,
            a.fit.prior_source if a.fit else None,
        ),
        words=views.accuracy_words(a.backtest, fmt) if a.backtest else [],
        charts=views.accuracy_charts(a.backtest, a.rows, fmt) if measured else {},
    )


@router.get("/api/accuracy")
def accuracy_json(shop: CurrentShop, session: SessionDep) -> dict[str, Any]:
    a = service.accuracy(session, shop.shop_id)
    return views.accuracy_json(a.backtest, a.fit, a.newest_fit, a.rows, shop, a.method, a.prior_share)


# -- outcomes ("came back") ---------------------------------------------------------------------


def _outcome_choice(request: Request, name: str, allowed: Any, default: str) -> str:
    value = request.query_params.get(name, default)
    if value not in allowed:
        raise BadRequest(f"{name}: must be one of {', '.join(allowed)}, not {value[:40]!r}")
    return value


def _outcomes(session: Any, shop: Shop, kind: str, period: str, now: datetime) -> dict[str, Any]:
    method = get_settings(session, shop.shop_id).scoring_method
    row = repository.metrics_row(session, shop.shop_id)
    return {
        "o": outcomes.outcomes(
            session, shop.shop_id, kind, period, now, scoring.shop_timezone(session, shop.shop_id), method
        ),
        "rescored_at": row.rescored_at if row is not None else None,
    }


@router.get("/app/outcomes", response_class=HTMLResponse)
async def outcomes_page(request: Request, shop: CurrentShop) -> Response:
    _check_shop_param(request, shop)
    kind = _outcome_choice(request, "view", outcomes.KINDS, "stage")
    period = _outcome_choice(request, "period", tuple(outcomes.PERIODS), "month")
    data = await read_in_thread(request, _outcomes, shop, kind, period, _now())
    return _page(
        request,
        "outcomes.html",
        shop,
        active="outcomes",
        charts=views.outcome_charts(data["o"]),
        kinds=views.OUTCOME_KIND_LABELS,
        periods=views.OUTCOME_PERIOD_LABELS,
        **data,
    )


# -- settings ----------------------------------------------------------------------------------


def _settings_context(session: Any, shop_id: int) -> dict[str, Any]:
    return {
        "current": get_settings(session, shop_id),
        "rescore_pending": jobs_repo.active(session, shop_id, scoring.RESCORE),
        "leave": service.cleanup_offer(session, shop_id),
    }


def _settings_page(
    request: Request, shop: Shop, values: dict[str, Any], status_code: int = 200, **context: Any
) -> HTMLResponse:
    errors: list[settings_page.FieldError] = context.pop("errors", [])
    return _page(
        request,
        "settings.html",
        shop,
        status_code=status_code,
        active="settings",
        values=values,
        errors=errors,
        error_of={e.field: e.message for e in errors if e.field},
        **{"saved": False, "rescore_pending": False, "rewrite": None, **context},
        **settings_page.choices(),
    )


@router.get("/app/settings", response_class=HTMLResponse)
async def settings_view(request: Request, shop: CurrentShop) -> Response:
    _check_shop_param(request, shop)
    context = await read_in_thread(request, _settings_context, shop.shop_id)
    return _settings_page(
        request,
        shop,
        settings_page.form_values(context["current"]),
        saved=request.query_params.get("saved") == "1",
        rescore_pending=context["rescore_pending"],
        leave=context["leave"],
    )


@router.post("/app/settings", response_class=HTMLResponse)
async def save_settings(request: Request, shop: CurrentShop) -> Response:
    """Every problem at its field (422, nothing saved); a change that rewrites tags or metafields in
    Shopify is shown with how many customers it rewrites and saved only once the form comes back
    with that change's confirmation; the "reset to Shopify's default grid" form goes the same way."""
    _check_shop_param(request, shop)
    form = await _read_form(request)
    errors: list[settings_page.FieldError] = []
    if settings_page.RESET_GRID in form:
        changes = settings_page.reset_grid_changes(form)  # a wrong value: 422, nothing saved
    else:
        changes, errors = settings_page.parse(form)
    proposal = None
    if not errors:
        try:
            proposal = await read_in_thread(request, settings_page.propose, shop.shop_id, changes)
        except SettingsError as exc:
            errors.append(settings_page.FieldError.of(exc))
    if proposal is None:
        leave = await read_in_thread(request, service.cleanup_offer, shop.shop_id)
        typed = settings_page.form_echo(form)
        return _settings_page(request, shop, typed, status_code=422, errors=errors, leave=leave)
    rewrite = proposal.rewrite
    if rewrite is not None and form.get(settings_page.CONFIRM) != rewrite.token:
        leave = await read_in_thread(request, service.cleanup_offer, shop.shop_id)
        values = settings_page.form_values(proposal.after)
        return _settings_page(request, shop, values, rewrite=rewrite, leave=leave)
    await write_in_thread(request, service.save_settings, shop.shop_id, changes, _now())
    return RedirectResponse(f"/app/settings?{launch_query(request, saved=1)}", status_code=303)


async def _read_form(request: Request) -> dict[str, str]:
    """A form post's fields, its body bounded in size and time like every form of the app."""
    raw = await read_body(
        request.receive,
        limit=SETTINGS_MAX_BODY_BYTES,
        declared=declared_length(request.scope["headers"], SETTINGS_MAX_BODY_BYTES),
        timeout=SETTINGS_BODY_TIMEOUT_SECONDS,
    )
    return dict(parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True))


CLEANUP_CONFIRMATION = "remove"


@router.post("/app/settings/cleanup")
async def remove_app_data(request: Request, shop: CurrentShop) -> Response:
    """ "Remove everything this app wrote to Shopify": the form must name the session's shop and
    carry the confirmation box; then the sync is turned off and the removal queued (app.sync.cleanup).
    Like every form post, it is authenticated by the session token (the launch query's id_token), which
    a page of another site cannot forge."""
    _check_shop_param(request, shop)
    form = await _read_form(request)
    named = form.get("shop")
    if named is None or sanitize_shop_domain(named) != shop.domain:
        raise UnprocessablePayload(
            f"shop: the form must name the shop you are signed in to ({shop.domain}); nothing was removed"
        )
    if form.get("confirm") != CLEANUP_CONFIRMATION:
        raise UnprocessablePayload(
            "confirm: tick the box to confirm that everything this app wrote to Shopify is to be "
            "removed; nothing was removed"
        )
    await write_in_thread(request, service.request_cleanup, shop.shop_id, _now())
    return _after_post(request, "cleanup-queued")


# -- suggested plays ---------------------------------------------------------------------------


def _plays_context(session: Any, shop_id: int) -> dict[str, Any]:
    settings = get_settings(session, shop_id)
    return {
        "segments": SEGMENTS_OF_METHOD[settings.scoring_method],
        "plays": settings_service.segment_plays(session, shop_id),
    }


def _plays_page(
    request: Request, shop: Shop, context: dict[str, Any], status_code: int = 200, **extra: Any
) -> HTMLResponse:
    return _page(
        request,
        "plays.html",
        shop,
        status_code=status_code,
        active="overview",
        segments=context["segments"],
        defaults=SEGMENT_PLAYS,
        field_of=play_field,
        max_length=PLAY_MAX,
        **{"values": context["plays"], "errors": [], "saved": False, **extra},
    )


@router.get("/app/plays", response_class=HTMLResponse)
async def plays_page(request: Request, shop: CurrentShop) -> Response:
    _check_shop_param(request, shop)
    context = await read_in_thread(request, _plays_context, shop.shop_id)
    return _plays_page(request, shop, context, saved=request.query_params.get("saved") == "1")


@router.post("/app/plays", response_class=HTMLResponse)
async def save_plays(request: Request, shop: CurrentShop) -> Response:
    """Each segment's suggested play in the shop's own words: all saved, or none (422 naming the
    field, with what the merchant typed)."""
    _check_shop_param(request, shop)
    form = await _read_form(request)
    context = await read_in_thread(request, _plays_context, shop.shop_id)
    plays, errors = views.plays_form(form, context["segments"])
    if not errors:
        try:
            await write_in_thread(request, service.save_plays, shop.shop_id, plays, _now())
        except SettingsError as exc:
            errors.append(views.play_error(exc))
    if errors:
        typed = {**context["plays"], **plays}
        return _plays_page(request, shop, context, status_code=422, values=typed, errors=errors)
    return RedirectResponse(f"/app/plays?{launch_query(request, saved=1)}", status_code=303)


# -- status ------------------------------------------------------------------------------------


def _pending_counts(request: Request) -> status_page.PendingCounts:
    counts: status_page.PendingCounts | None = getattr(request.app.state, "pending_counts", None)
    if counts is None:
        counts = request.app.state.pending_counts = status_page.PendingCounts()
    return counts


def _status(session: Any, shop: Shop, pending: status_page.PendingCounts) -> dict[str, Any]:
    return {
        "s": service.status(session, shop, pending),
        "retry": status_page.import_retry(session, shop.shop_id),
    }


def _retry_json(retry: status_page.ImportRetry | None, fmt: Formatter) -> dict[str, Any] | None:
    if retry is None:
        return None
    return {
        "attempts": retry.attempts,
        "next_try_at": retry.next_try_at.isoformat(),
        "next_try_local": fmt.datetime(retry.next_try_at),
        "shopify_unreachable": retry.unreachable,
        "words": retry.words,
    }


@router.get("/app/status", response_class=HTMLResponse)
async def status_view(request: Request, shop: CurrentShop) -> Response:
    _check_shop_param(request, shop)
    data = await read_in_thread(request, _status, shop, _pending_counts(request))
    s = data["s"]
    return _page(
        request,
        "status.html",
        shop,
        active="status",
        s=s,
        retry=data["retry"],
        progress=service.progress_json(s.progress),
        under_way=status_page.under_way(s.progress),
        failures=[service.job_words(j) for j in s.failed_jobs],
        notice=request.query_params.get("notice"),
    )


@router.get("/api/status")
def status_json(request: Request, shop: CurrentShop, session: SessionDep) -> dict[str, Any]:
    data = _status(session, shop, _pending_counts(request))
    body = views.status_json(data["s"], shop)
    body["import"]["retry"] = _retry_json(data["retry"], Formatter(shop.currency_code, shop.iana_timezone))
    body["import"]["under_way"] = status_page.under_way(data["s"].progress)
    return body


@router.post("/app/status/import")
async def reimport(request: Request, shop: CurrentShop) -> Response:
    """Import the order history (again): not while one runs (409); a repeat only with the form's
    confirmation (422); nothing is queued otherwise."""
    _check_shop_param(request, shop)
    form = await _read_form(request)
    await write_in_thread(request, status_page.request_reimport, shop.shop_id, _now(), form.get("confirm"))
    return _after_post(request, "import-queued")


@router.post("/app/status/sync")
async def resync(request: Request, shop: CurrentShop) -> Response:
    _check_shop_param(request, shop)
    queued = await write_in_thread(request, service.request_sync, shop.shop_id, _now())
    return _after_post(request, "sync-queued" if queued else "sync-unavailable")


def _after_post(request: Request, notice: str) -> Response:
    """A fetch (Authorization header) gets JSON; a form post goes back to the status page."""
    if "authorization" in request.headers:
        return JSONResponse({"notice": notice}, status_code=202)
    return RedirectResponse(f"/app/status?{launch_query(request, notice=notice)}", status_code=303)
