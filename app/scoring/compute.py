"""The rescore's computation, pure: the buyers' columns (``columns.CUSTOMER_COLUMNS``) and their
orders in, the score columns (``columns.SCORE_COLUMNS``), stage moves, segments and metrics out.
No database: ``load`` reads the arrays, ``store`` writes what this returns, ``service`` runs the
three (docs/architecture.md).

A customer at a position of ``recompute`` gets new inputs from the ledger, predictions and a
stage; the others keep what was stored. Relative scores (quintiles, thirds, tiers) are always
recomputed over everyone, since one new order can move a boundary.
"""

from __future__ import annotations

import datetime as dt
import decimal
import logging
import math
from dataclasses import dataclass, fields, is_dataclass
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import numpy.typing as npt

from app.clv import clv
from app.clv.summary import clv_summary
from app.kit.money import SUM_LIMIT
from app.scoring import metrics as shop_metrics_rules
from app.scoring import rules
from app.scoring.columns import FLAG_COLUMNS, NULL_TIME, PG_EPOCH_US, to_us
from app.vocabulary import ALL_CUSTOMERS, SEGMENTS_OF_METHOD, THIRDS_GROUP_SUMS

if TYPE_CHECKING:
    from app.models import ClvFit
    from app.settings.schemas import ScoringSettings

log = logging.getLogger(__name__)

Array = npt.NDArray[Any]
US_PER_DAY: Final = 86_400_000_000
_WIDE: Final = decimal.Context(prec=40)
INCREMENTAL_LIMIT: Final = 0.25
"""An incremental rescore with more than this share of the shop's buyers marked does a full one."""
COHORT_MONTHS: Final = 36
MIN_CUSTOMERS_FOR_TENTHS: Final = 10
"""Fewer customers than this have no tenths to show: some tenth would hold nobody."""
NEXT_ORDER_CAP_DAYS: Final = 3650
MONEY_CAP: Final = float(SUM_LIMIT - SUM_LIMIT.scaleb(-14))
"""The largest money value a rescore stores: below SUM_LIMIT also as PostgreSQL reads the float
(15 significant digits)."""
assert len(FLAG_COLUMNS) == len(rules.BEHAVIOUR_SEGMENT_NAMES)


# --------------------------------------------------------------------------------------------
# Small array helpers


def _hash(*columns: npt.ArrayLike) -> Array:
    """A 64-bit FNV-style hash per row of integer columns (floats are quantised by the caller)."""
    first = np.asarray(columns[0])
    h = np.full(first.shape[0], 0xCBF29CE484222325, dtype=np.uint64)
    prime = np.uint64(0x100000001B3)
    with np.errstate(over="ignore"):
        for column in columns:
            h ^= np.asarray(column).astype(np.int64).view(np.uint64)
            h *= prime
            h ^= h >> np.uint64(29)
    return h.view(np.int64)


def _fixed_point(values: Array, places: int = 2) -> Array:
    """Values in units of 10^-places for hashing; past int64, the float's own bits (still unique)."""
    scaled = np.round(np.nan_to_num(np.asarray(values, dtype=np.float64), nan=-1.0) * 10**places)
    small = np.abs(scaled) < 2.0**63
    return np.where(small, np.where(small, scaled, 0).astype(np.int64), scaled.view(np.int64))


def _storable_money(shop_id: int, name: str, values: Array) -> Array:
    """``values`` within what their column holds: the limits (app/kit/money.py) make a value past it
    impossible, but were one there, this buyer's value is capped (and logged), not the rescore
    of every buyer of the shop failed."""
    bad = ~(np.abs(values) < MONEY_CAP)
    if not bad.any():
        return values
    log.warning(
        "rescore of shop %s: %s of %d customers capped at %s", shop_id, name, int(bad.sum()), MONEY_CAP
    )
    return np.clip(np.nan_to_num(values, nan=0.0), -MONEY_CAP, MONEY_CAP)


def _segment_sums(codes: Array, weights: Array | None, size: int) -> Array:
    return np.bincount(codes.astype(np.intp), weights=weights, minlength=size).astype(np.float64)


def date_of(day_number: int) -> dt.date:
    return dt.date(1970, 1, 1) + dt.timedelta(days=int(day_number))


def _days_to_us(days: Array) -> Array:
    return (days.astype(np.int64) * US_PER_DAY - PG_EPOCH_US).astype(np.int64)


def _next_order_us(today: int, horizon: float, predicted_orders: Array, likely: Array) -> Array:
    """The expected next order date (``rules.days_to_next_order``) as µs, NULL_TIME where none."""
    days = rules.days_to_next_order(predicted_orders, likely, horizon, NEXT_ORDER_CAP_DAYS)
    known = ~np.isnan(days)
    return np.where(known, _days_to_us(today + np.where(known, days, 0).astype(np.int64)), NULL_TIME)


# --------------------------------------------------------------------------------------------
# Which customers, and their inputs from the ledger


def rows_to_recompute(cust: dict[str, Array], full: bool) -> tuple[Array, bool]:
    """(positions to recompute, full): every customer in a full rescore; else the marked and the
    never scored, unless they are more than ``INCREMENTAL_LIMIT`` of the shop (then a full one)."""
    n = int(cust["customer_id"].size)
    new_or_marked = cust["pending"] | ~cust["scored"]
    if not full and n and np.count_nonzero(new_or_marked) > INCREMENTAL_LIMIT * n:
        full = True
    return (np.arange(n) if full else np.flatnonzero(new_or_marked)), full


@dataclass
class LedgerInputs:
    """Per-customer inputs of the customers being (re)computed from the ledger."""

    frequency: Array
    monetary: Array
    orders_last_year: Array
    spent_last_year: Array
    x: Array
    t_x: Array
    T: Array
    m: Array


def order_metrics(
    ords: dict[str, Array], today: int, buyers: Array | None = None
) -> shop_metrics_rules.ShopMetrics:
    """The shop's metrics (``app.scoring.metrics``) from the orders alone (customers as dense
    indexes of their ids).

    The dense index of a customer is the rank of its id among the orders' customers. ``buyers``
    (sorted ids): when they are exactly the orders' customers, ranks among them are the same
    numbers, found without sorting millions of order rows."""
    dense: Array | None = None
    customer = ords["customer_id"]
    if buyers is not None and buyers.size and customer.size:
        position = np.minimum(np.searchsorted(buyers, customer), buyers.size - 1)
        has_orders = np.zeros(buyers.size, dtype=np.bool_)
        has_orders[position] = True
        if has_orders.all() and np.array_equal(buyers[position], customer):
            dense = position
        del has_orders
    if dense is None:
        _, dense = np.unique(customer, return_inverse=True)
    return shop_metrics_rules.shop_metrics(
        dense.astype(np.int64, copy=False),
        ords["day"],
        ords["value"],
        as_of=today,
        max_months_after=COHORT_MONTHS,
    )


def align_orders(ids: Array, ords: dict[str, Array]) -> tuple[Array, Array, Array]:
    """Orders as (customer position in ``ids``, day, value), dropping orders of customers not in
    ``ids`` (their aggregates changed between the two reads; they are marked and come next time)."""
    customer = ords["customer_id"]
    if ids.size == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty.astype(np.int32), empty.astype(np.float64)
    position = np.searchsorted(ids, customer)
    np.minimum(position, ids.size - 1, out=position)
    known = ids[position] == customer
    if known.all():
        return position, ords["day"], ords["value"]
    return position[known], ords["day"][known], ords["value"][known]


def ledger_inputs(
    cust: dict[str, Array],
    rows: Array,
    position: Array,
    day: Array,
    value: Array,
    today: int,
    window: int | None,
) -> LedgerInputs:
    """Inputs for the customers at positions ``rows`` (sorted) from their qualifying orders
    (``position`` = each order's customer position in ``cust``)."""
    n = rows.size
    if n == cust["customer_id"].size:
        index = position  # every customer: positions are the local indexes (no copy at 5M orders)
    else:
        local = np.full(cust["customer_id"].size, -1, dtype=np.int64)
        local[rows] = np.arange(n)
        index = local[position]
        inside = index >= 0
        index, day, value = index[inside], day[inside], value[inside]

    if window is None:
        frequency: Array = cust["orders_count"][rows].astype(np.int64)
        monetary: Array = cust["total_spent"][rows].astype(np.float64)
    else:
        recent = day > today - window
        frequency = np.bincount(index[recent], minlength=n).astype(np.int64)
        monetary = np.bincount(index[recent], weights=value[recent], minlength=n)
    last_year = day > today - 365
    orders_last_year = np.bincount(index[last_year], minlength=n).astype(np.int64)
    spent_last_year = np.bincount(index[last_year], weights=value[last_year], minlength=n)

    # from the aggregates (a customer whose orders changed between the two reads), then the ledger
    orders_count = cust["orders_count"][rows].astype(np.float64)
    first, last = cust["first_day"][rows].astype(np.float64), cust["last_day"][rows].astype(np.float64)
    x = np.maximum(orders_count - 1, 0)
    t_x = np.where(x > 0, last - first, 0.0)
    T = np.maximum(today - first, t_x)
    m = np.where(x > 0, cust["total_spent"][rows] / np.maximum(orders_count, 1), 0.0)
    has, sx, st_x, sT, sm = clv_summary(index, day, value, n, today)
    x[has], t_x[has], T[has], m[has] = sx[has], st_x[has], sT[has], sm[has]
    return LedgerInputs(frequency, monetary, orders_last_year, spent_last_year, x, t_x, T, m)


# --------------------------------------------------------------------------------------------
# Scores


@dataclass(frozen=True, slots=True)
class StageMoves:
    """Customers whose stage changed from a stage they had (a first stage is not a change), and
    why: ``cause`` codes into ``STAGE_CHANGE_CAUSES`` (0 behaviour, 1 refit)."""

    customer_id: Array
    from_stage: Array
    to_stage: Array
    cause: Array


@dataclass(frozen=True, slots=True)
class SegmentMoves:
    """Customers whose RFM segment differs from the one stored for them (a first segment is not a
    change), as segment codes."""

    customer_id: Array
    from_segment: Array
    to_segment: Array


@dataclass(frozen=True, slots=True)
class Scores:
    columns: dict[str, Array]
    """Every buyer's ``SCORE_COLUMNS``, and ``is_new``: no stored row yet."""
    rows: Array
    """Positions whose stored row is new or differs: the rows to write."""
    synced_changed: Array
    """True where the synced values (what Shopify holds) are new or changed."""
    stage_moves: StageMoves
    segment_moves: SegmentMoves
    segments: list[dict[str, Any]]
    metrics: dict[str, Any]
    """The metrics JSON of this run: the counts over the scores (grid, stages, behaviour, CLV
    distribution), and under "shop" the order-history metrics when ``shop_level`` was given
    (a full rescore), else None (the caller keeps the last full rescore's)."""
    clv_source: str


def score_customers(
    shop_id: int,
    cust: dict[str, Array],
    recompute: Array,
    inputs: LedgerInputs,
    *,
    today: int,
    now: dt.datetime,
    settings: ScoringSettings,
    models: clv.ShopModels | None,
    fit: ClvFit | None,
    newest_fit: ClvFit | None = None,
    shop_level: shop_metrics_rules.ShopMetrics | None,
    refit_from: RefitFrom | None = None,
) -> Scores:
    """Score every buyer of ``cust`` (sorted by id): the customers at ``recompute`` from
    ``inputs``, the others from what was stored; CLV from ``models`` (the shop's newest usable
    fit), else the segment formula. ``shop_id`` only names the shop in logs.

    ``refit_from``: the stored stages were decided by other models than ``models`` (a new fit, or
    a switch between the model and the segment formula). The stage each customer would have under
    those models today is their behaviour; what the new models change on top of it is recorded
    as a reclassification (cause "refit"), not as a movement."""
    n = int(cust["customer_id"].size)
    now_us = to_us(now)

    # Windowed F and M, last year's orders: fresh where recomputed, stored elsewhere.
    frequency = cust["frequency"].astype(np.int64)
    monetary = cust["monetary"].astype(np.float64)
    orders_last_year = cust["orders_last_year"].astype(np.int64)
    spent_last_year = cust["spent_last_year"].astype(np.float64)
    frequency[recompute], monetary[recompute] = inputs.frequency, inputs.monetary
    orders_last_year[recompute], spent_last_year[recompute] = inputs.orders_last_year, inputs.spent_last_year
    if settings.window_days is None:
        frequency, monetary = cust["orders_count"].astype(np.int64), cust["total_spent"].astype(np.float64)
    monetary = _storable_money(shop_id, "monetary", np.round(monetary, 4))
    spent_last_year = _storable_money(shop_id, "spent_last_year", np.round(spent_last_year, 4))

    days_since = np.maximum(today - cust["last_day"].astype(np.int64), 0)
    population = rules.window_population(frequency, settings.window_days)
    quintile = rules.score_quintile(days_since, frequency, monetary, settings.segment_grid, population)
    thirds = rules.score_thirds(days_since, frequency, monetary, population=population)
    chosen = quintile if settings.scoring_method == "quintile" else thirds
    segment = quintile.segment if settings.scoring_method == "quintile" else thirds.segment

    horizon = float(settings.clv_horizon_days)
    median_gap = shop_metrics_rules.median_days_between_orders(cust["average_days_between_orders"])
    thresholds = rules.StageThresholds()
    interval = rules.typical_interval(median_gap, thresholds)

    predicted_clv: Array = cust["predicted_clv"].astype(np.float64)
    predicted_orders: Array = cust["predicted_orders"].astype(np.float64)
    churn_risk: Array = np.nan_to_num(cust["churn_risk"].astype(np.float64), nan=0.0)
    next_order_us = cust["expected_next_order_at"].astype(np.int64)
    clv_source = cust["clv_source"].astype(np.int16)
    p_alive = np.full(n, np.nan)
    if models is not None:
        predictions = clv.score_customers(models, inputs.x, inputs.t_x, inputs.T, inputs.m, horizon)
        predicted_clv[recompute] = predictions.predicted_clv
        predicted_orders[recompute] = predictions.predicted_orders
        churn_risk[recompute] = predictions.churn_risk
        p_alive[recompute] = predictions.probability_alive
        clv_source[recompute] = 1
        dated = recompute
    else:
        # The fallback, for every buyer on every rescore: one order moves its segment's rates and
        # other customers' segments. Each customer is worth their segment's yearly value over the
        # horizon, times the chance they are still buying (1 - churn risk, from the days since their
        # last order against the shop's typical interval), so churn and predictions agree.
        predicted_clv, predicted_orders, churn_risk = fallback_predictions(
            segment, spent_last_year, orders_last_year, days_since, interval, horizon, thresholds
        )
        clv_source = np.zeros(n, dtype=np.int16)
        dated = np.arange(n)
    predicted_clv = np.round(np.clip(np.nan_to_num(predicted_clv), 0, clv.MAX_MONEY), 2)
    predicted_orders = np.round(np.clip(np.nan_to_num(predicted_orders), 0, clv.MAX_ORDERS), 2)
    churn_risk = np.round(np.clip(churn_risk, 0, 1), 2)
    next_order_us[dated] = _next_order_us(
        today,
        horizon,
        predicted_orders[dated],
        rules.likely_to_return(
            cust["orders_count"][dated],
            days_since[dated],
            churn_risk[dated] if models is not None else None,
            interval,
            thresholds,
        ),
    )

    # Stages: recomputed customers move; the others keep theirs until the next full rescore.
    previous = cust["stage"].astype(np.int64)
    stage_since_us = cust["stage_since"].astype(np.int64)
    since_change = np.where(previous >= 0, (now_us - stage_since_us) / US_PER_DAY, np.nan)
    orders_changed = cust["aggregates_updated_at"] > stage_since_us  # an order delivered since
    staged = rules.lifecycle_stages(
        cust["orders_count"][recompute],
        days_since[recompute],
        p_alive[recompute] if models is not None else None,
        median_gap,
        previous[recompute],
        since_change[recompute],
        thresholds,
        orders_changed[recompute],
    )
    stage = previous.copy()
    stage[recompute] = staged.stage
    moved = recompute[staged.changed]
    stage_since_us[moved] = now_us
    # A customer's first stage is dated by stage_since, not logged as a change: a shop's first
    # scoring (after the history import) would otherwise show every buyer as having "entered" a
    # stage that day.
    logged = moved[previous[moved] != rules.NO_STAGE]
    by_behaviour = previous.copy()
    if refit_from is not None and logged.size:
        old_alive = None
        if refit_from.models is not None:
            at = np.searchsorted(recompute, logged)  # their rows of ``inputs``
            old_alive = clv.score_customers(
                refit_from.models, inputs.x[at], inputs.t_x[at], inputs.T[at], inputs.m[at], horizon
            ).probability_alive
        by_behaviour[logged] = rules.lifecycle_stages(
            cust["orders_count"][logged],
            days_since[logged],
            old_alive,
            median_gap,
            previous[logged],
            since_change[logged],
            thresholds,
            orders_changed[logged],
        ).stage
    else:
        by_behaviour[logged] = stage[logged]
    stage_moves = _stage_moves(cust["customer_id"], logged, previous, by_behaviour, stage)

    behaviour = rules.behaviour_segments(
        cust["orders_count"],
        cust["total_spent"],
        cust["discounted_orders_count"],
        segment,
        predicted_clv if models is not None else None,
    )
    # CLV tiers by top_share's rule (10·worse >= 9·n for the top 10 %), one ranking for both
    worse = rules.strictly_worse_counts(predicted_clv) if n else np.zeros(0, dtype=np.int64)
    top10, top25 = worse * 10 >= n * 9, worse * 4 >= n * 3
    clv_tier = np.where(top10, 1, np.where(top25, 2, 0)).astype(np.int16)
    historic = _storable_money(shop_id, "historic_clv", np.round(cust["total_spent"].astype(np.float64), 4))
    average_days = cust["average_days_between_orders"].astype(np.float64)

    flags = [getattr(behaviour, name) for name in rules.BEHAVIOUR_SEGMENT_NAMES]
    synced_hash = _hash(
        chosen.recency,
        chosen.frequency,
        chosen.monetary,
        segment,
        stage,
        _fixed_point(predicted_clv),
        _fixed_point(historic),
        _fixed_point(churn_risk),
        next_order_us,
        clv_tier,
    )
    row_hash = _hash(
        synced_hash,
        frequency,
        _fixed_point(monetary, 4),
        orders_last_year,
        _fixed_point(spent_last_year, 4),
        quintile.fm,
        thirds.group,
        stage_since_us,
        *flags,
        _fixed_point(predicted_orders),
        _fixed_point(average_days, 4),
        clv_source,
    )
    write = ~cust["scored"] | (row_hash != cust["row_hash"])
    synced_changed = ~cust["scored"] | (synced_hash != cust["synced_hash"])
    values_changed_at = np.where(synced_changed, now_us, cust["values_changed_at"])
    columns: dict[str, Array] = {
        "customer_id": cust["customer_id"],
        "frequency": frequency,
        "monetary": monetary,
        "orders_last_year": orders_last_year,
        "spent_last_year": spent_last_year,
        "recency_score": chosen.recency,
        "frequency_score": chosen.frequency,
        "monetary_score": chosen.monetary,
        "fm_score": quintile.fm,
        "segment": segment,
        "thirds_group": thirds.group,
        "stage": stage,
        "stage_since": stage_since_us,
        **{name: flag for name, flag in zip(FLAG_COLUMNS, flags, strict=True)},
        "historic_clv": historic,
        "predicted_clv": predicted_clv,
        "predicted_orders": predicted_orders,
        "churn_risk": churn_risk,
        "expected_next_order_at": next_order_us,
        "average_days_between_orders": average_days,
        "clv_tier": clv_tier,
        "clv_source": clv_source,
        "row_hash": row_hash,
        "synced_hash": synced_hash,
        "values_changed_at": values_changed_at,
        "is_new": ~cust["scored"],
    }
    metrics = _metrics_json(
        shop_level,
        today,
        rfm_grid(settings, quintile, thirds),
        stage,
        behaviour,
        cust["orders_count"],
        average_days,
        predicted_clv,
        interval,
        models,
        fit,
    )
    metrics["clv"]["reasons"] = clv_reasons(fit, newest_fit)
    segments = segment_table(
        settings,
        segment,
        cust["orders_count"],
        cust["total_spent"],
        orders_last_year,
        spent_last_year,
        predicted_clv,
        now,
    )
    return Scores(
        columns=columns,
        rows=np.flatnonzero(write),
        synced_changed=synced_changed,
        stage_moves=stage_moves,
        segment_moves=_segment_moves(cust["customer_id"], cust["segment"], segment),
        segments=segments,
        metrics=metrics,
        clv_source="model" if models is not None else "segment_formula",
    )


@dataclass(frozen=True, slots=True)
class RefitFrom:
    """The models the stored stages were decided by, when they are not the models of this run:
    a fit's (``models``), or None for the segment formula (days since the last order)."""

    models: clv.ShopModels | None


BEHAVIOUR: Final = 0
REFIT: Final = 1


def _stage_moves(ids: Array, logged: Array, previous: Array, by_behaviour: Array, stage: Array) -> StageMoves:
    """The stage changes of the customers at ``logged``: previous → stage by behaviour (cause
    behaviour), then → the stage the new models give (cause refit), each step only where it
    changes something. A customer whose behaviour and refit cancel out has not moved."""
    before, middle, after = previous[logged], by_behaviour[logged], stage[logged]
    one_step = (middle == before) | (middle == after)
    cause = np.where(middle == after, BEHAVIOUR, REFIT)[one_step]
    two = logged[~one_step]
    return StageMoves(
        customer_id=np.r_[ids[logged[one_step]], ids[two], ids[two]],
        from_stage=np.r_[before[one_step], previous[two], by_behaviour[two]],
        to_stage=np.r_[after[one_step], by_behaviour[two], stage[two]],
        cause=np.r_[cause, np.full(two.size, BEHAVIOUR), np.full(two.size, REFIT)].astype(np.int16),
    )


def _segment_moves(ids: Array, stored: Array, segment: Array) -> SegmentMoves:
    moved = np.flatnonzero((stored >= 0) & (stored != segment))
    return SegmentMoves(ids[moved], stored[moved].astype(np.int16), segment[moved].astype(np.int16))


def fallback_predictions(
    segment: Array,
    spent_last_year: Array,
    orders_last_year: Array,
    days_since: Array,
    interval: float,
    horizon: float,
    thresholds: rules.StageThresholds,
) -> tuple[Array, Array, Array]:
    """(predicted CLV, predicted orders, churn risk) of the segment formula, for every customer:
    churn risk = days since the last order / (``lapsed_intervals`` × the typical interval), capped
    at 1 and rounded to hundredths; predicted CLV = the segment's spend of the last 365 days per
    customer × horizon / 365 × (1 - churn risk); predicted orders the same with the segment's
    orders (the live fallback and its backtest both call this)."""
    per_segment = len(rules.SEGMENT_CODES)
    members = np.maximum(_segment_sums(segment, None, per_segment), 1)
    yearly_value = (
        _segment_sums(segment, np.asarray(spent_last_year, dtype=np.float64), per_segment) / members
    )
    yearly_orders = (
        _segment_sums(segment, np.asarray(orders_last_year, dtype=np.float64), per_segment) / members
    )
    churn = np.round(np.clip(days_since / (thresholds.lapsed_intervals * interval), 0, 1), 2)
    still_buying = 1.0 - churn
    codes = segment.astype(np.intp)
    return (
        yearly_value[codes] * horizon / 365.0 * still_buying,
        yearly_orders[codes] * horizon / 365.0 * still_buying,
        churn,
    )


def segment_table(
    settings: ScoringSettings,
    segment: Array,
    orders_count: Array,
    total_spent: Array,
    orders_last_year: Array,
    spent_last_year: Array,
    predicted_clv: Array,
    now: dt.datetime,
) -> list[dict[str, Any]]:
    """The segments table with the segment formula and acquisition economics.

    Per segment (and for the whole shop): AOV = revenue / orders; purchase frequency = orders of the
    last 365 days per customer; customer value = AOV × frequency = last year's sales per customer;
    formula CLV = customer value × lifespan. The acquisition economics look forward, so that a
    segment is not "healthy" for what it spent in the past: LTV:CAC = average predicted CLV (over
    the horizon) / CAC; max CPC = average predicted CLV × conversion rate (None without CAC /
    conversion rate)."""
    from decimal import Decimal

    def money(value: float | None, places: int = 2) -> Decimal | None:
        if value is None or not np.isfinite(value):
            return None
        value = min(max(float(value), -MONEY_CAP), MONEY_CAP)  # as _storable_money
        return Decimal(repr(round(value, places))).quantize(Decimal(1).scaleb(-places), context=_WIDE)

    size = len(rules.SEGMENT_CODES)
    codes = segment.astype(np.intp)
    count = np.bincount(codes, minlength=size)
    total_customers = int(codes.size)
    total_revenue = float(np.sum(total_spent))
    cac = float(settings.cac) if settings.cac is not None else None
    rows = []

    names = SEGMENTS_OF_METHOD[settings.scoring_method]
    shown = np.array([rules.SEGMENT_CODES[name] for name in names], dtype=np.intp)

    def sums(values: Array) -> Array:
        by_segment = np.bincount(codes, weights=np.asarray(values, dtype=np.float64), minlength=size)
        return np.r_[by_segment.sum(), by_segment[shown]]

    members = np.r_[codes.size, count[shown]]
    order_sums, revenue_sums = sums(orders_count), sums(total_spent)
    last_year_orders, last_year_sales, clv_sums = (
        sums(orders_last_year),
        sums(spent_last_year),
        sums(predicted_clv),
    )
    for position, name in enumerate([ALL_CUSTOMERS, *names]):
        customers = int(members[position])
        orders = int(round(order_sums[position]))
        revenue = float(revenue_sums[position])
        frequency = float(last_year_orders[position]) / customers if customers else None
        value = float(last_year_sales[position]) / customers if customers else None
        formula = value * settings.lifespan_years if value is not None else None
        forward = float(clv_sums[position]) / customers if customers else None
        rows.append(
            {
                "segment": name,
                "position": position,
                "customers": customers,
                "customer_share": customers / total_customers if total_customers else 0.0,
                "orders": orders,
                "revenue": money(revenue, 4),
                "revenue_share": revenue / total_revenue if total_revenue else 0.0,
                "average_order_value": money(revenue / orders) if orders else None,
                "average_predicted_clv": money(float(clv_sums[position]) / customers) if customers else None,
                "average_historic_clv": money(revenue / customers) if customers else None,
                "purchase_frequency": frequency,
                "customer_value": money(value),
                "formula_clv": money(formula),
                "ltv_to_cac": forward / cac if forward is not None and cac else None,
                "max_cpc": money(forward * settings.conversion_rate)
                if forward is not None and settings.conversion_rate is not None
                else None,
                "computed_at": now,
            }
        )
    return rows


def to_jsonable(value: Any) -> Any:
    """``value`` as JSON holds it: dataclasses as dicts, dates as ISO text, NaN/inf as None.

    Walks the value once, a dataclass field by field (``dataclasses.asdict`` would deep-copy it
    first: with a full rescore's cohort tables, about a third of a small shop's rescore CPU)."""
    if isinstance(value, bool | int | str) or value is None:
        return value
    if isinstance(value, float):  # numpy's float64 too
        return float(value) if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, np.generic):
        return to_jsonable(value.item())
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in fields(value)}
    return value


def tenths(values: Array) -> list[float]:
    """The lowest value, then the highest value of each tenth of the customers (lowest first):
    every edge is one customer's own value, never one interpolated between two customers."""
    ordered = np.sort(values)
    n = ordered.size
    tops = np.ceil(np.arange(1, 11) * n / 10).astype(np.intp) - 1
    return [float(ordered[0]), *(float(v) for v in ordered[tops])]


def rfm_grid(
    settings: ScoringSettings, quintile: rules.QuintileRfm, thirds: rules.ThirdsRfm
) -> dict[str, Any]:
    """The overview's heat map of the method in use: customers per cell, and each cell's segment.

    Quintiles: R (5..1) × FM (1..5), each cell named by the segment grid. Thirds: R (3..1) × F + M
    (2..6): R + F + M decides the group, so each cell holds the customers of one group."""
    if settings.scoring_method == "quintile":
        rows, columns, axis = [5, 4, 3, 2, 1], [1, 2, 3, 4, 5], "fm"
        r, column = quintile.recency, quintile.fm.astype(np.int64)
        names = [[settings.segment_grid[(row, c)] for c in columns] for row in rows]
    else:
        rows, columns, axis = [3, 2, 1], [2, 3, 4, 5, 6], "f_plus_m"
        r, column = thirds.recency, thirds.frequency.astype(np.int64) + thirds.monetary
        names = [[_thirds_group_of_sum(row + c) for c in columns] for row in rows]
    heat = np.zeros((len(rows), len(columns)), dtype=np.int64)
    if r.size:
        np.add.at(heat, (rows[0] - r.astype(np.intp), column.astype(np.intp) - columns[0]), 1)
    return {
        "method": settings.scoring_method,
        "rows_r": rows,
        "columns": axis,
        f"columns_{axis}": columns,
        "customers": heat.tolist(),
        "segments": names,
    }


def _thirds_group_of_sum(total: int) -> str:
    return next(name for name, (low, high) in THIRDS_GROUP_SUMS.items() if low <= total <= high)


def clv_reasons(used: ClvFit | None, newest: ClvFit | None) -> list[str]:
    """Why the CLV comes from where it does, in plain words: the newest fit's reasons when no fit
    is usable; when the newest failed but an older one is kept, that it is kept and why."""
    if newest is None:
        return ["no model fitted yet"]
    reasons = (newest.reasons or "").splitlines()
    if used is None or used.id == newest.id:
        return reasons
    kept = f"the newest fit ({newest.fitted_at:%Y-%m-%d}) could not be used"
    return [
        f"{kept}: {'; '.join(reasons)}" if reasons else kept,
        f"the fit of {used.fitted_at:%Y-%m-%d} is kept",
    ]


def _metrics_json(
    computed: shop_metrics_rules.ShopMetrics | None,
    today: int,
    grid: dict[str, Any],
    stage: Array,
    behaviour: rules.BehaviourSegments,
    orders_count: Array,
    average_days: Array,
    predicted_clv: Array,
    interval: float,
    models: clv.ShopModels | None,
    fit: ClvFit | None,
) -> dict[str, Any]:
    """The metrics of one run. Everything but "shop" counts this run's scores (the same rows as
    the segments table and the customers list); "shop" (the order history: cohorts, retention)
    only with ``computed`` (a full rescore)."""
    customers = int(predicted_clv.size)
    repeat_buyers = int(np.count_nonzero(orders_count >= 2))
    gaps = average_days[np.isfinite(average_days)]
    distribution: dict[str, Any] = {"customers": customers}
    if predicted_clv.size:
        distribution["mean"] = float(predicted_clv.mean())
    if predicted_clv.size >= MIN_CUSTOMERS_FOR_TENTHS:
        distribution["deciles"] = tenths(predicted_clv)
    return to_jsonable(
        {
            "as_of": date_of(today),
            "scored": {
                "customers": customers,
                "orders": int(orders_count.sum()),
                "repeat_buyers": repeat_buyers,
                "repeat_purchase_rate": repeat_buyers / customers if customers else None,
                "average_days_between_orders": float(gaps.mean()) if gaps.size else None,
                "median_days_between_orders": shop_metrics_rules.median_days_between_orders(gaps),
            },
            "shop": computed,
            "typical_interval_days": interval,
            "stages": dict(
                zip(rules.STAGE_NAMES, np.bincount(stage.astype(np.intp), minlength=5).tolist(), strict=True)
            )
            if stage.size
            else {},
            "behaviour": {
                name: int(np.count_nonzero(getattr(behaviour, name)))
                for name in rules.BEHAVIOUR_SEGMENT_NAMES
            },
            "rfm_grid": grid,
            "predicted_clv": distribution,
            "clv": {
                "source": "model" if models is not None else "segment_formula",
                "fit_id": fit.id if fit is not None else None,
                "reasons": (fit.reasons or "").splitlines() if fit is not None else ["no model fitted yet"],
            },
        }
    )
