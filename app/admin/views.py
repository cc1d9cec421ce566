"""Shaping stored numbers for the screens: charts, plain-words sentences, JSON bodies, and the
settings form (its fields to the settings service's changes, and back)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from markupsafe import Markup

from app.admin import charts
from app.admin.outcomes import GroupOutcome, Outcomes
from app.admin.rendering import Formatter
from app.admin.service import (
    CLV_TIER_FILTERS,
    SEARCH_LIMIT,
    CustomerPage,
    Overview,
    SegmentLink,
    Status,
    admin_customer_url,
)
from app.admin.service import progress_json as _progress_json
from app.admin.settings_page import plain_number
from app.models import Shop
from app.scoring.service import shop_day
from app.settings.schemas import (
    PLAY_FIELDS,
    ScoringSettings,
    SettingsError,
)
from app.vocabulary import (
    BEHAVIOUR_LABELS,
    CHURN_RISK_BANDS,
    CLV_TIER_LABELS,
    SEGMENTS_OF_METHOD,
    STAGE_LABELS,
    STAGE_NAMES,
    THIRDS_GROUP_SUMS,
    churn_risk_band_words,
)

LAUNCH_FIELDS = frozenset({"shop", "host", "embedded", "id_token", "hmac", "timestamp", "locale", "session"})
"""The launch query's parameters, which a form may carry along."""
COHORT_ROWS = 12
COHORT_COLUMNS = 13


def _money(value: Decimal | float | None) -> float | None:
    return None if value is None else float(value)


def horizon_words(days: int) -> str:
    """The CLV horizon as a merchant says it: "12 months", "2 years", "90 days"."""
    if days % 365 == 0:
        return "12 months" if days == 365 else f"{days // 365} years"
    return f"{days} days"


def clv_labels(settings: ScoringSettings) -> dict[str, str]:
    """Every CLV figure's label with its period and method (one CLV story on every page)."""
    horizon = horizon_words(settings.clv_horizon_days)
    lifespan = plain_number(settings.lifespan_years)
    return {
        "horizon": horizon,
        "predicted": f"Predicted CLV (next {horizon})",
        "average_predicted": f"Avg predicted CLV (next {horizon})",
        "total": f"Total CLV (spent + next {horizon})",
        "average_total": f"Avg total CLV (spent + next {horizon})",
        "formula": f"Segment-formula CLV ({lifespan}-year lifespan)",
        "ltv_to_cac": f"LTV:CAC (predicted CLV, next {horizon})",
    }


def total_clv(historic: Decimal | float | None, predicted: Decimal | float | None) -> Decimal | None:
    """Total CLV = historic (spent so far) + predicted, as the ``total_clv`` metafield adds them."""
    if historic is None or predicted is None:
        return None
    return Decimal(str(historic)).quantize(Decimal("0.01")) + Decimal(str(predicted)).quantize(
        Decimal("0.01")
    )


# -- overview ----------------------------------------------------------------------------------


CellHref = Callable[[int, int], str]
"""(R, FM) → the customer list of that grid cell."""


def overview_charts(o: Overview, fmt: Formatter, cell_href: CellHref | None = None) -> dict[str, Markup]:
    out: dict[str, Markup] = {}
    m = o.metrics or {}
    grid = m.get("rfm_grid")
    if grid and o.customers_scored:
        out["rfm"] = rfm_heat_map(grid, cell_href)
    deciles = (m.get("predicted_clv") or {}).get("deciles") or []
    if len(deciles) == 11:
        out["clv"] = charts.bar_chart(
            f"{clv_labels(o.settings)['predicted']}: distribution by tenth of customers",
            [f"{10 * i}–{10 * (i + 1)}%" for i in range(10)],
            [float(v) for v in deciles[1:]],
            x_label=f"Highest predicted CLV in the tenth ({fmt.currency})",
            y_label="Customers",
            fmt=lambda v: fmt.money(v),
            description="each bar is one tenth of the scored customers, lowest predicted CLV first; "
            "its length is "
            "the highest predicted CLV in that tenth",
        )
    if o.segments and o.customers_scored:
        out["revenue"] = charts.bar_chart(
            "Share of revenue by RFM segment",
            [s.segment for s in o.segments],
            [float(s.revenue_share) for s in o.segments],
            x_label="Share of the shop's revenue",
            y_label="Segment",
            fmt=lambda v: fmt.percent(v),
        )
    return out


def _cell_links(
    grid: dict[str, Any], columns: list[int], cell_href: CellHref | None
) -> list[list[str | None]] | None:
    if cell_href is None:
        return None
    return [[cell_href(r, c) for c in columns] for r in grid["rows_r"]]


def rfm_heat_map(grid: dict[str, Any], cell_href: CellHref | None = None) -> Markup:
    """The R × FM grid (quintiles) or the R × (F + M) grid (thirds), each cell's segment in its
    tooltip; with ``cell_href`` each cell links to its customers."""
    if grid.get("method", "quintile") == "thirds":
        sums = ", ".join(f"{low}–{high} {name}" for name, (low, high) in THIRDS_GROUP_SUMS.items())
        return charts.heat_map(
            "Customers by recency (R) and frequency + monetary (F + M) score, thirds method",
            [f"R {r}" for r in grid["rows_r"]],
            [f"F+M {c}" for c in grid["columns_f_plus_m"]],
            grid["customers"],
            x_label="F + M (2 = lowest, 6 = highest)",
            y_label="R score (3 = ordered in the last 4 months)",
            description=f"number of customers in each R and F + M cell; by R + F + M: {sums}",
            notes=grid.get("segments"),
            links=_cell_links(grid, grid["columns_f_plus_m"], cell_href),
            link_words="list these customers",
        )
    return charts.heat_map(
        "Customers by recency (R) and frequency-monetary (FM) score",
        [f"R {r}" for r in grid["rows_r"]],
        [f"FM {c}" for c in grid["columns_fm"]],
        grid["customers"],
        x_label="FM score (1 = lowest, 5 = highest)",
        y_label="R score",
        description="number of customers in each R and FM score cell; 5 is best",
        notes=grid.get("segments"),
        links=_cell_links(grid, grid["columns_fm"], cell_href),
        link_words="list these customers",
    )


def overview_json(o: Overview, shop: Shop) -> dict[str, Any]:
    def segment(s: Any) -> dict[str, Any]:
        return {
            "segment": s.segment,
            "customers": s.customers,
            "customer_share": s.customer_share,
            "revenue": _money(s.revenue),
            "revenue_share": s.revenue_share,
            "average_order_value": _money(s.average_order_value),
            "average_predicted_clv": _money(s.average_predicted_clv),
            "average_total_clv": _money(total_clv(s.average_historic_clv, s.average_predicted_clv)),
            "formula_clv": _money(s.formula_clv),
            "ltv_to_cac": s.ltv_to_cac,
            "max_cpc": _money(s.max_cpc),
        }

    def act(s: Any) -> dict[str, Any]:
        link = o.shopify.rfm(s.segment)
        return segment(s) | {"play": o.plays.get(s.segment), "shopify_segment": link_json(link)}

    metrics = o.metrics or {}
    fmt = Formatter(shop.currency_code, shop.iana_timezone)
    return {
        "shop": shop.domain,
        "currency": fmt.currency,
        "timezone": fmt.timezone,
        "customers_scored": o.customers_scored,
        "orders_scored": o.orders_scored,
        "rescored_at": o.rescored_at.isoformat() if o.rescored_at else None,
        "clv_horizon_days": o.settings.clv_horizon_days,
        "lifespan_years": o.settings.lifespan_years,
        "ltv_to_cac_uses": "average predicted CLV over the horizon",
        "segments": [act(s) for s in o.segments],
        "all_customers": segment(o.shop_row) if o.shop_row else None,
        "rfm_grid": metrics.get("rfm_grid"),
        "predicted_clv": metrics.get("predicted_clv"),
        "stage_movements": [{"from": a, "to": b, "customers": n} for a, b, n in o.movements],
        "stage_reclassifications": [{"from": a, "to": b, "customers": n} for a, b, n in o.reclassified],
        "stages": metrics.get("stages"),
        "behaviour": metrics.get("behaviour"),
    }


def link_json(link: SegmentLink | None) -> dict[str, Any] | None:
    """A link to one of the app's Shopify segments as the JSON bodies carry it."""
    if link is None:
        return None
    return {
        "name": link.title,
        "href": link.href,
        "target": link.target if link.href else None,
        "missing": link.missing,
    }


def stage_label(stage: str | None) -> str:
    return "first scored" if stage is None else STAGE_LABELS.get(stage, stage)


# -- cohorts -----------------------------------------------------------------------------------


def cohort_labels() -> dict[str, Any]:
    return {"stage_labels": STAGE_LABELS, "behaviour_labels": BEHAVIOUR_LABELS}


def month_under_way(metrics: dict[str, Any] | None) -> date | None:
    """The first day of the calendar month the metrics were computed in, when that month was not
    over yet (its figures are partial), else None."""
    retention = ((metrics or {}).get("shop") or {}).get("retention") or {}
    starts, complete = retention.get("period_starts") or [], retention.get("complete") or []
    if starts and complete and not complete[-1]:
        return date.fromisoformat(starts[-1])
    return None


def _months_between(earlier: date, later: date) -> int:
    return (later.year - earlier.year) * 12 + later.month - earlier.month


def recent_cohorts(metrics: dict[str, Any] | None) -> dict[str, Any] | None:
    """The last COHORT_ROWS cohorts × the first COHORT_COLUMNS months after (the table on screen).

    The cells of the month under way are left out (None): a month not over yet would read as a
    collapse in buying. Its cohort's row stays, its customers so far counted."""
    cohorts = ((metrics or {}).get("shop") or {}).get("cohorts")
    if not cohorts or not cohorts.get("cohorts"):
        return None
    start = max(0, len(cohorts["cohorts"]) - COHORT_ROWS)
    columns = cohorts["months_after"][:COHORT_COLUMNS]
    months = [date.fromisoformat(d) for d in cohorts["cohorts"][start:]]
    partial = month_under_way(metrics)

    def complete_cells(rows: list[list[Any]]) -> list[list[Any]]:
        out = []
        for cohort, row in zip(months, rows, strict=True):
            cut = _months_between(cohort, partial) if partial is not None else None
            out.append([None if k == cut else v for k, v in zip(columns, row[: len(columns)], strict=True)])
        return out

    return {
        "cohorts": months,
        "customers": cohorts["customers"][start:],
        "months_after": columns,
        "active_share": complete_cells(cohorts["active_share"][start:]),
        "revenue": complete_cells(cohorts["cumulative_revenue_per_customer"][start:]),
        "month_under_way": partial,
    }


def cohort_charts(o: Overview, fmt: Formatter) -> dict[str, Markup]:
    out: dict[str, Markup] = {}
    table = recent_cohorts(o.metrics)
    if table:
        out["cohorts"] = charts.heat_map(
            "Share of each cohort still buying, by months since the first order",
            [d.strftime("%b %Y") for d in table["cohorts"]],
            [str(k) for k in table["months_after"]],
            [[None if v is None else 100 * v for v in row] for row in table["active_share"]],
            x_label="Months after the first order",
            y_label="Cohort (month of first order)",
            fmt=lambda v: f"{v:.0f}%",
            cell_width=46,
            cell_height=26,
            description="percentage of each monthly cohort's customers who ordered in each later month",
        )
    retention = ((o.metrics or {}).get("shop") or {}).get("retention")
    if retention and retention.get("period_starts"):
        keep = [
            i
            for i, rate in enumerate(retention["retention_rate"])
            if rate is not None and retention["complete"][i]
        ]
        keep = keep[-12:]
        if keep:
            out["retention"] = charts.bar_chart(
                "Retention rate per month",
                [date.fromisoformat(retention["period_starts"][i]).strftime("%b %Y") for i in keep],
                [float(retention["retention_rate"][i]) for i in keep],
                x_label="Share of the previous month's buyers who ordered again",
                y_label="Month",
                fmt=lambda v: fmt.percent(v),
            )
    return out


# -- customers ---------------------------------------------------------------------------------


def customer_choices(scoring_method: str = "quintile") -> dict[str, Any]:
    return {
        "segment_names": SEGMENTS_OF_METHOD[scoring_method],
        "stages": [(s, STAGE_LABELS[s]) for s in STAGE_NAMES],
        "tiers": list(CLV_TIER_FILTERS.items()),
        "tier_labels": CLV_TIER_LABELS,
        "sorts": [
            ("predicted_clv", "Predicted CLV"),
            ("total_clv", "Total CLV"),
            ("historic_clv", "Total spent"),
            ("churn_risk", "Churn risk"),
            ("orders", "Orders"),
            ("last_order", "Last order"),
            ("next_order", "Next order expected"),
            ("customer_id", "Customer id"),
        ],
        "stage_labels": STAGE_LABELS,
        "score_values": list(range(1, (3 if scoring_method == "thirds" else 5) + 1)),
        "churn_bands": [(band, churn_risk_band_words(band)) for band in CHURN_RISK_BANDS],
        "one_day": timedelta(days=1),
        "search_limit": SEARCH_LIMIT,
    }


def customers_json(c: CustomerPage, shop: Shop, horizon_days: int) -> dict[str, Any]:
    return {
        "shop": shop.domain,
        "clv_horizon_days": horizon_days,
        "page": c.page,
        "last_page": c.last_page,
        "total": c.total,
        "has_next": c.has_next,
        "names_note": c.names_note,
        "shopify_segment": link_json(c.shopify_link),
        "search": c.filter.search,
        "search_note": c.search_note,
        "search_capped": c.search_capped,
        "customers": [
            {
                "customer_id": str(r["customer_id"]),  # ids exceed 2^53: a string for JavaScript
                "name": c.names.get(r["customer_id"], (None, None))[0],
                "email": c.names.get(r["customer_id"], (None, None))[1],
                "admin_url": admin_customer_url(shop.domain, r["customer_id"]),
                "segment": r["segment"],
                "rfm_code": r["rfm_code"],
                "stage": r["stage"],
                "orders": r["frequency"],
                "total_spent": _money(r["historic_clv"]),
                "predicted_clv": _money(r["predicted_clv"]),
                "total_clv": _money(total_clv(r["historic_clv"], r["predicted_clv"])),
                "churn_risk": r["churn_risk"],
                "clv_tier": r["clv_tier"],
                "last_order_at": r["last_order_at"].isoformat() if r.get("last_order_at") else None,
                # a day of the shop (the metafield's `next_order_date`), not an instant
                "expected_next_order_at": shop_day(r["expected_next_order_at"]).isoformat()
                if r["expected_next_order_at"]
                else None,
            }
            for r in c.rows
        ],
    }


# -- accuracy ----------------------------------------------------------------------------------


METHOD_LABELS = {
    "model_with_prior": "the model with a prior",
    "model": "the model",
    "segment_formula": "the segment formula",
}
METHOD_NAMES = {
    "model_with_prior": "model with prior",
    "model": "model",
    "segment_formula": "fallback (the segment formula)",
}
METHOD_WORDS = {
    "model_with_prior": "the model fitted to your orders together with typical store behaviour (BG/NBD "
    "for how often each customer buys and whether they are still buying, Gamma-Gamma for how much "
    "they spend per order, each steadied by a prior)",
    "model": "the model fitted to your orders (BG/NBD for how often each customer buys and whether "
    "they are still buying, Gamma-Gamma for how much they spend per order)",
    "segment_formula": "the segment formula (each customer is worth their RFM segment's spend of the "
    "last 12 months per customer, scaled to the period and to the customer's chance of still buying)",
}
NAIVE = "the naive forecast (“each customer keeps ordering at the same rate as before”)"


def method_sentence(method: str) -> str:
    """Which method produced the shop's predictions, named as the Accuracy page names it."""
    return f"Method: {METHOD_NAMES[method]}."


def prior_words(method: str, prior_share: float | None, repeat_buyers: int, source: str | None) -> str | None:
    """How much the prior contributed to the fit in use, in plain words (docs/predictions.md: the
    prior's share of what the fit knows); None when it did not count (under 1%, or no model)."""
    if method != "model_with_prior" or prior_share is None:
        return None
    buyers = f"{repeat_buyers:,} repeat buyer{'' if repeat_buyers == 1 else 's'}"
    if prior_share < 0.2:
        lean = "rests mostly on your own orders; typical store behaviour adds a little"
    elif prior_share < 0.4:
        lean = "leans on your own orders more than on typical store behaviour"
    elif prior_share < 0.6:
        lean = "leans on typical store behaviour as much as on yours"
    elif prior_share < 0.8:
        lean = "leans on typical store behaviour more than on yours"
    else:
        lean = "comes mostly from typical store behaviour; your own orders adjust it a little"
    typical = (
        "the larger shops using this app"
        if source == "deployment"
        else "published studies of retail customers"
    )
    return (
        f"With {buyers}, the forecast {lean} (typical store behaviour, from {typical}, "
        f"makes up about {prior_share * 100:.0f}% of what the fit knows). "
        "Its weight shrinks as your shop gets more repeat buyers."
    )


def _change(predicted: float, actual: float) -> str:
    if actual == 0:
        return "nothing happened to compare with"
    diff = (predicted - actual) / actual
    if abs(diff) < 0.005:
        return "spot on"
    return f"{abs(diff) * 100:.0f}% {'too high' if diff > 0 else 'too low'}"


def _grade(error: float, naive_error: float, what: str, method: str) -> str:
    """The method against the naive forecast, in plain words, on the mean absolute error."""
    if naive_error == 0 and error == 0:
        return f"On {what}, {method} and {NAIVE} were both exact."
    if naive_error == 0:
        return f"On {what}, {NAIVE} was exact and {method} was not: the naive forecast did better."
    gain = 1 - error / naive_error
    if abs(gain) < 0.005:
        return f"On {what}, {method} was as accurate as {NAIVE}."
    if gain > 0:
        return (
            f"On {what}, {method} was off by {gain * 100:.0f}% less than {NAIVE}: "
            "better than assuming nothing changes."
        )
    return (
        f"On {what}, {method} was off by {-gain * 100:.0f}% more than {NAIVE}: "
        "on this history, assuming nothing changes would have done better."
    )


def accuracy_words(b: Any, fmt: Formatter) -> list[str]:
    if b.method is None:
        return [f"No accuracy figures yet: {b.reasons or 'not enough history'}."]
    days = (b.holdout_end - b.calibration_end).days
    method = METHOD_LABELS[b.method]
    return [
        f"This measures the method your CLV figures come from: {METHOD_WORDS[b.method]}.",
        f"We applied it to the orders up to {fmt.date(b.calibration_end)}, hid the {days} days after it, "
        f"and predicted them for the {b.customers:,} customers known by then.",
        f"Purchase days (days a customer ordered; several orders on one day count once): "
        f"predicted {b.predicted_orders:,.0f}, actual {b.actual_orders:,.0f} "
        f"({_change(b.predicted_orders, b.actual_orders)}).",
        f"Revenue: predicted {fmt.money(b.predicted_revenue)}, actual {fmt.money(b.actual_revenue)} "
        f"({_change(b.predicted_revenue, b.actual_revenue)}).",
        f"Per customer, the prediction was off by {b.orders_mae:.2f} purchase days "
        f"and {fmt.money(b.revenue_mae)} on average (mean absolute error); on average it ran "
        f"{abs(b.orders_bias):.2f} purchase days {'high' if b.orders_bias >= 0 else 'low'} (bias).",
        _grade(b.revenue_mae, b.naive_revenue_mae, "revenue per customer", method),
        _grade(b.orders_mae, b.naive_orders_mae, "purchase days per customer", method),
    ]


def accuracy_charts(b: Any, rows: list[dict[str, Any]], fmt: Formatter) -> dict[str, Markup]:
    out: dict[str, Markup] = {}
    method = METHOD_LABELS.get(b.method, "the method in use")
    if rows:
        out["by_frequency"] = charts.grouped_bars(
            "Purchase days per customer in the held-out period: predicted vs actual",
            [r["repeat_orders"] for r in rows],
            [
                charts.Series(f"Predicted by {method}", [r["predicted"] for r in rows]),
                charts.Series("Actual", [r["actual"] for r in rows]),
                charts.Series("Naive", [r["naive"] for r in rows]),
            ],
            x_label="Repeat purchase days before the cut-off",
            y_label="Purchase days per customer",
        )
    out["totals"] = charts.bar_chart(
        "Revenue in the held-out period: predicted vs actual",
        [f"Predicted by {method}", "Actual", "Naive forecast"],
        [b.predicted_revenue, b.actual_revenue, b.naive_revenue],
        x_label=f"Revenue ({fmt.currency})",
        y_label="Forecast",
        fmt=lambda v: fmt.money(v, whole=True),
    )
    return out


def accuracy_json(
    b: Any,
    fit: Any,
    newest: Any,
    rows: list[dict[str, Any]],
    shop: Shop,
    method: str = "segment_formula",
    prior_share: float | None = None,
) -> dict[str, Any]:
    backtest = None
    if b is not None:
        keys = (
            "customers",
            "method",
            "model_used",
            "reasons",
            "predicted_orders",
            "actual_orders",
            "naive_orders",
            "orders_mae",
            "orders_bias",
            "naive_orders_mae",
            "naive_orders_bias",
            "predicted_revenue",
            "actual_revenue",
            "naive_revenue",
            "revenue_mae",
            "revenue_bias",
            "naive_revenue_mae",
            "naive_revenue_bias",
        )
        backtest = {k: getattr(b, k) for k in keys} | {
            "orders_are": "purchase days (days with an order)",
            "calibration_end": b.calibration_end.isoformat(),
            "holdout_end": b.holdout_end.isoformat(),
            "by_repeat_orders": rows,
        }
    model = None
    if newest is not None:
        model = {
            "usable": newest.usable,
            "reasons": (newest.reasons or "").splitlines(),
            "fitted_at": newest.fitted_at.isoformat(),
            "in_use_fitted_at": fit.fitted_at.isoformat() if fit is not None else None,
        }
    return {
        "shop": shop.domain,
        "clv_source": "model" if fit is not None else "segment_formula",
        "clv_method": method,
        "prior_share": prior_share,
        "backtest": backtest,
        "model": model,
    }


# -- settings ----------------------------------------------------------------------------------


class FieldError(str):
    """A problem in plain words, shown in the banner and next to the field it names (the plays
    form; the settings form's are `app.admin.settings_page.FieldError`)."""

    field: str | None = None


# -- status ------------------------------------------------------------------------------------


def status_json(s: Status, shop: Shop) -> dict[str, Any]:
    def when(value: Any) -> str | None:
        return value.isoformat() if value is not None else None

    return {
        "shop": shop.domain,
        "import": _progress_json(s.progress),
        "last_webhook_at": when(s.last_webhook_at),
        "rescored_at": when(s.rescored_at),
        "sync": {
            "available": s.sync_available,
            "enabled": s.sync.enabled if s.sync else None,
            "last_synced_at": when(s.sync.last_sync_at) if s.sync else None,
            "customers_pending": s.sync.customers_pending if s.sync else None,
            "customers_refused": s.sync.customers_refused if s.sync else None,
            "errors": s.sync.errors if s.sync else [],
            "running": s.sync_running is not None,
        },
        "errors": [f"{j.kind}: {j.last_error}" for j in s.failed_jobs],
        "cleanup": cleanup_json(s.cleanup),
    }


def cleanup_json(c: Any) -> dict[str, Any] | None:
    """The removal of what the app wrote to Shopify (``app.sync.cleanup.CleanupStatus``)."""
    if c is None:
        return None

    def counts(n: Any) -> dict[str, int]:
        return {
            "customers_with_app_tags": n.customers,
            "metafield_values": n.metafields,
            "segments": n.segments,
        }

    return {
        "state": c.state,
        "planned": counts(c.planned),
        "removed": counts(c.removed),
        "refused_customers": c.refused_customers,
        "percent": c.percent,
        "requested_at": c.requested_at.isoformat(),
        "started_at": c.started_at.isoformat() if c.started_at else None,
        "finished_at": c.finished_at.isoformat() if c.finished_at else None,
        "error": c.error,
    }


# -- suggested plays ---------------------------------------------------------------------------


def plays_form(form: dict[str, str], segments: tuple[str, ...]) -> tuple[dict[str, str], list[FieldError]]:
    """The plays form's fields (``play_<segment slug>``) to {segment: text}; a field for no segment
    of the method in use is refused naming it."""
    plays: dict[str, str] = {}
    errors: list[FieldError] = []
    for key, value in form.items():
        if key in LAUNCH_FIELDS:
            continue
        segment = PLAY_FIELDS.get(key)
        if segment is None or segment not in segments:
            error = FieldError(f"{key}: there is no segment of the scoring method in use with this field.")
            error.field = key
            errors.append(error)
            continue
        plays[segment] = value
    return plays, errors


def play_error(exc: SettingsError) -> FieldError:
    error = FieldError(
        f"{exc.field}: {exc.detail[:1].upper()}{exc.detail[1:]}." if exc.field else f"{exc.detail}."
    )
    error.field = exc.field
    return error


# -- outcomes ("came back") ------------------------------------------------------------------

OUTCOME_KIND_LABELS = {"stage": "Lifecycle stages", "segment": "RFM segments"}
OUTCOME_PERIOD_LABELS = {"month": "By month", "week": "By week"}


def outcome_chart(group: GroupOutcome, period: str) -> Markup:
    """One group's "came back" chart: per period, the share of its entrants who ordered again
    within 30, 60 and 90 days; periods not complete for a window are drawn as such."""
    days = [w.days for w in group.periods[0].windows] if group.periods else []
    return charts.came_back_chart(
        f"{group.label}: came back after entering",
        [p.label.removeprefix("Week of ") for p in group.periods],
        [
            charts.PartialSeries(
                f"{n} days",
                [None if (v := p.windows[k].share(p.entered)) is None else 100 * v for p in group.periods],
            )
            for k, n in enumerate(days)
        ],
        x_label=f"{'Month' if period == 'month' else 'Week (from Monday)'} of entering {group.label}",
        y_label="Ordered again",
        missing="not complete yet",
        fmt=lambda v: f"{v:.0f}%",
        notes=[f"of {p.entered} entered" for p in group.periods],
        description=(
            f"percentage of the customers who entered {group.label} in each "
            f"{period} who placed an order within 30, 60 and 90 days"
        ),
    )


def outcome_charts(o: Outcomes) -> dict[str, Markup]:
    return {g.name: outcome_chart(g, o.period) for g in o.groups if g.entered}
