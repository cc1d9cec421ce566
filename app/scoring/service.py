"""Rescoring a shop and fitting its CLV models: the rules that turn the ledger and the customer
aggregates into stored scores, stages, CLV predictions, segments and metrics (PRODUCT §2–§5).

A rescore loads the shop's buyers as arrays (one query), computes with the pure rules of
``app.scoring.rules`` / ``metrics`` and ``app.clv``, and writes back only the customers whose stored
values changed. Two modes:

* full — every customer from the ledger: windowed F/M, CLV inputs, predictions from the newest fit,
  stages (time passes: recency and P(alive) move), behaviour flags, metrics and the cohort table.
  Run daily, after a settings change, after a new fit, and on a shop's first scoring.
* incremental — after webhooks marked customers "to score": those customers get new inputs,
  predictions and stages; every customer's relative scores (quintiles, top 10%) are recomputed from
  what is stored, since one new order can move a boundary. Metrics wait for the next full rescore.

Services take the session first and never commit: the worker's job transaction does.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import datetime as dt
import decimal
import functools
import logging
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, is_dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.clv import backtest as clv_backtest
from app.clv import clv
from app.clv.bgnbd import BetaGeoParams
from app.clv.gamma_gamma import GammaGammaParams
from app.jobs import repository as jobs_repo
from app.kit.money import SUM_LIMIT
from app.kit.pgcopy import NULL_TIME, PG_EPOCH_US
from app.kit.sql import advisory_lock, lock_key
from app.models import Backtest, ClvFit, CustomerScore, ShopSegment, StageChange
from app.scoring import metrics as shop_metrics_rules
from app.scoring import repository as repo
from app.scoring import rules
from app.settings.schemas import ScoringSettings
from app.settings.service import get_settings, settings_updated_at
from app.vocabulary import ALL_CUSTOMERS

log = logging.getLogger(__name__)

Array = npt.NDArray[Any]
US_PER_DAY: Final = 86_400_000_000
_WIDE: Final = decimal.Context(prec=40)
RESCORE: Final = "rescore"
FIT: Final = "fit"
INCREMENTAL_LIMIT: Final = 0.25
"""An incremental rescore with more than this share of the shop's buyers marked does a full one."""
FULL_RESCORE_EVERY: Final = dt.timedelta(hours=24)
FIT_EVERY: Final = dt.timedelta(hours=24)
FIT_GROWTH: Final = 0.05
"""Refit when the ledger grew by more than 5 % since the last fit."""
BACKTEST_MIN_HISTORY_DAYS: Final = 90
COHORT_MONTHS: Final = 36
NEXT_ORDER_CAP_DAYS: Final = 3650
MONEY_CAP: Final = float(SUM_LIMIT - SUM_LIMIT.scaleb(-14))
"""The largest money value a rescore stores: below SUM_LIMIT also as PostgreSQL reads the float
(15 significant digits)."""


@dataclass(frozen=True, slots=True)
class RescoreResult:
    shop_id: int
    full: bool
    customers: int
    written: int
    """Rows of ``customer_scores`` inserted or rewritten."""
    changed: list[int]
    """Customers whose synced values (scores, segment, stage, CLV, churn risk, next order, tier) are
    new or changed: what the sync outbox (issue 7) has to write. Also in ``values_changed_at``."""
    removed: list[int]
    """Customers whose scores were removed (no qualifying order left, redacted, merged)."""
    stage_changes: int
    clv_source: str
    seconds: float


# --------------------------------------------------------------------------------------------
# Enqueueing


def enqueue_rescore(session: Session, shop_id: int, now: dt.datetime, *, full: bool = False) -> None:
    """Ask the worker to rescore the shop (coalesces with a pending request; ``full`` sticks)."""
    jobs_repo.enqueue(session, shop_id, RESCORE, now, payload={"full": True} if full else None)


def enqueue_fit(session: Session, shop_id: int, now: dt.datetime) -> None:
    jobs_repo.enqueue(session, shop_id, FIT, now)


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


def _cents(values: Array, places: int = 2) -> Array:
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


def _day(day_number: int) -> dt.date:
    return dt.date(1970, 1, 1) + dt.timedelta(days=int(day_number))


def _days_to_us(days: Array) -> Array:
    return (days.astype(np.int64) * US_PER_DAY - PG_EPOCH_US).astype(np.int64)


# --------------------------------------------------------------------------------------------
# CLV models from a stored fit


def models_from_fit(fit: ClvFit | None) -> clv.ShopModels | None:
    """The usable models of a stored fit, or None (no fit, or it failed soft)."""
    if fit is None or not fit.usable or fit.r is None or fit.alpha is None or fit.a is None or fit.b is None:
        return None
    spend = None
    if fit.p is not None and fit.q is not None and fit.v is not None:
        spend = GammaGammaParams(fit.p, fit.q, fit.v, converged=bool(fit.spend_converged))
        if not spend.usable:
            spend = None
    return clv.ShopModels(
        purchases=BetaGeoParams(fit.r, fit.alpha, fit.a, fit.b),
        spend=spend,
        reasons=tuple((fit.reasons or "").splitlines()),
        n_customers=fit.customers,
        n_repeat_buyers=fit.repeat_buyers,
        n_excluded=0,
        fallback_order_value=fit.fallback_order_value,
    )


_M_MMAP_THRESHOLD: Final = -3
LARGE_ALLOCATION: Final = 1 << 20


@functools.cache
def _glibc() -> Any | None:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
        return (
            libc if libc is not None and hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None
        )
    except OSError:
        return None


def _large_arrays_outside_the_heap() -> None:
    """Allocate every block of 1 MiB or more with its own mmap, given back to the OS when freed.

    glibc raises its mmap threshold (up to 32 MiB) after the first large block is freed; from then
    on a rescore's many mid-sized arrays and the fetched column buffers come from the heap, whose
    freed pages it keeps, and the long-lived worker's memory only grows (one rescore of a 1M-buyer
    shop leaves hundreds of MB behind for the next)."""
    libc = _glibc()
    if libc is not None:
        libc.mallopt(_M_MMAP_THRESHOLD, LARGE_ALLOCATION)


def _give_back_freed_memory() -> None:
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)


# --------------------------------------------------------------------------------------------
# The arrays of the last rescore this process committed (PostgreSQL)


@dataclass(frozen=True, slots=True)
class _Remembered:
    """Every buyer of one shop as ``repo.load_customers`` would read them right after the rescore
    that stored them (token ``token``): the aggregates it read, the values it stored."""

    shop_id: int
    tz: str
    token: int
    columns: dict[str, Array]


_remembered: _Remembered | None = None
"""One shop's: an incremental rescore of the shop this worker rescored last (webhooks arrive in
bursts per shop) reads only the marked customers. Dropped before a full rescore reads everything."""


def _forget() -> None:
    global _remembered
    _remembered = None


def _exact_sum(values: Array) -> int:
    """Sum of int64 values without overflow (ids and µs timestamps of a million customers)."""
    v = np.asarray(values, dtype=np.int64)
    return int((v >> 32).sum(dtype=np.int64)) * 2**32 + int((v & 0xFFFFFFFF).sum(dtype=np.int64))


def _remembered_customers(session: Session, shop_id: int, tz: str, last: Any) -> repo.LoadedCustomers | None:
    """The shop's buyers from the remembered arrays and a read of the marked ones, when nothing but
    marked customers changed since: no other rescore (the token), and the unmarked buyers are the
    remembered ones with the same ``aggregates_updated_at`` (a count and two sums in one scan: a
    merge, a redaction, a change that did not mark its customer shows). Else None: read them all."""
    kept = _remembered
    if (
        kept is None
        or kept.shop_id != shop_id
        or kept.tz != tz
        or last is None
        or last.rescore_token is None
        or last.rescore_token != kept.token
    ):
        return None
    fresh = repo.load_pending_buyers(session, shop_id, tz)
    order = np.argsort(fresh["customer_id"], kind="stable")
    fresh = {name: values[order] for name, values in fresh.items()}
    cached = kept.columns
    ids = cached["customer_id"]
    fresh_ids = fresh["customer_id"]
    if ids.size:
        position = np.minimum(np.searchsorted(ids, fresh_ids), ids.size - 1)
        was_scored = ids[position] == fresh_ids
    else:
        position = np.zeros(fresh_ids.size, dtype=np.intp)
        was_scored = np.zeros(fresh_ids.size, dtype=np.bool_)
    unmarked = np.ones(ids.size, dtype=np.bool_)
    unmarked[position[was_scored]] = False
    expected = (
        int(np.count_nonzero(unmarked)),
        _exact_sum(ids[unmarked]),
        _exact_sum(cached["aggregates_updated_at"][unmarked]),
    )
    if repo.unmarked_buyers_checksum(session, shop_id) != expected:
        return None
    columns: dict[str, Array] = {}
    for name, _ in repo.CUSTOMER_COLUMNS:
        if name in fresh:
            added = fresh[name].astype(cached[name].dtype, copy=False)
        elif name == "scored":
            added = was_scored
        else:
            added = np.full(fresh_ids.size, repo.STORED_DEFAULTS.get(name, 0), dtype=cached[name].dtype)
            added[was_scored] = cached[name][position[was_scored]]
        columns[name] = np.concatenate([cached[name][unmarked], added])
    order = np.argsort(columns["customer_id"], kind="stable")
    return repo.LoadedCustomers({name: values[order] for name, values in columns.items()}, [])


def _remember(shop_id: int, tz: str, token: int, cust: dict[str, Array], stored: dict[str, Array]) -> None:
    """Keep what a read right after this rescore's commit would return. Not when a money value
    took the float path (``repo.money_units``): only the units path stores exactly the rounded float."""
    global _remembered
    for name, places in (("monetary", 4), ("spent_last_year", 4), ("predicted_clv", 2)):
        if np.any(repo.money_units(stored[name], places) == repo.NOT_EXACT):
            _remembered = None
            return
    columns: dict[str, Array] = {}
    for name, _ in repo.CUSTOMER_COLUMNS:
        dtype = cust[name].dtype
        if name == "pending":
            columns[name] = np.zeros(cust[name].size, dtype=dtype)
        elif name == "scored":
            columns[name] = np.ones(cust[name].size, dtype=dtype)
        else:
            columns[name] = np.asarray(stored.get(name, cust[name])).astype(dtype, copy=False)
    _remembered = _Remembered(shop_id, tz, token, columns)


def _remember_as_read(shop_id: int, tz: str, token: int, cust: dict[str, Array]) -> None:
    """A rescore that stored nothing: what it read is what is stored."""
    global _remembered
    _remembered = _Remembered(shop_id, tz, token, cust)


# --------------------------------------------------------------------------------------------
# Rescore


def _needs_full(session: Session, shop_id: int, now: dt.datetime, last: Any) -> bool:
    if last is None or last.computed_at is None or last.computed_at <= now - FULL_RESCORE_EVERY:
        return True
    changed = settings_updated_at(session, shop_id)
    if changed is not None and changed >= last.computed_at:
        return True
    fit = repo.latest_fit(session, shop_id)
    return fit is not None and fit.fitted_at >= last.computed_at


@dataclass
class _Inputs:
    """Per-customer inputs of the customers being (re)computed from the ledger."""

    frequency: Array
    monetary: Array
    orders_last_year: Array
    spent_last_year: Array
    x: Array
    t_x: Array
    T: Array
    m: Array


def clv_summary(
    customer_index: Array, day: Array, value: Array, customers: int, today: int
) -> tuple[Array, Array, Array, Array, Array]:
    """Per-customer (has orders, x, t_x, T, m) in days, as ``app.clv.backtest.summarise_transactions``
    computes them with ``period=1`` and ``calibration_end=today`` (same-day orders are one purchase,
    their values summed; m = mean of the purchases after the first), for dense customer indexes
    0..customers-1 and whole day numbers. One integer sort instead of a float lexsort: 3x faster."""
    index = np.asarray(customer_index, dtype=np.int64)
    days = np.asarray(day)
    values = np.asarray(value, dtype=np.float64)
    if days.size and days.max() > today:
        keep = days <= today
        index, days, values = index[keep], days[keep], values[keep]
    has = np.zeros(customers, dtype=np.bool_)
    x, t_x, T, m = (np.zeros(customers) for _ in range(4))
    if index.size == 0:
        return has, x, t_x, T, m
    low = int(days.min())
    span = today - low + 1
    # At 5M orders each full-size temporary is 40 MB: made in place and dropped as soon as done.
    key = index * span
    key += days
    key -= low
    order = np.argsort(key, kind="stable")
    key = key[order]
    values = values[order]
    del order
    boundary = np.empty(key.size, dtype=np.bool_)
    boundary[0] = True
    np.not_equal(key[1:], key[:-1], out=boundary[1:])
    starts = np.flatnonzero(boundary)
    del boundary
    spent = np.add.reduceat(values, starts)
    del values
    purchase_day = key[starts]
    del key, starts
    purchase_customer = purchase_day // span
    purchase_day -= purchase_customer * span
    purchase_day += low
    first = np.flatnonzero(np.r_[True, purchase_customer[1:] != purchase_customer[:-1]])
    owner = purchase_customer[first]
    count = np.diff(np.r_[first, purchase_customer.size])
    last = first + count - 1
    has[owner] = True
    x[owner] = count - 1
    t_x[owner] = purchase_day[last] - purchase_day[first]
    T[owner] = today - purchase_day[first]
    total = np.add.reduceat(spent, first)
    with np.errstate(invalid="ignore", divide="ignore"):
        m[owner] = np.where(count > 1, (total - spent[first]) / np.maximum(count - 1, 1), 0.0)
    return has, x, t_x, T, m


def _order_metrics(
    ords: dict[str, Array], today: int, buyers: Array | None = None
) -> shop_metrics_rules.ShopMetrics:
    """PRODUCT §5 from the orders alone (customers as dense indexes of their ids).

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


def _align_orders(ids: Array, ords: dict[str, Array]) -> tuple[Array, Array, Array]:
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


def _ledger_inputs(
    cust: dict[str, Array],
    rows: Array,
    position: Array,
    day: Array,
    value: Array,
    today: int,
    window: int | None,
) -> _Inputs:
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
    return _Inputs(frequency, monetary, orders_last_year, spent_last_year, x, t_x, T, m)


def rescore_shop(
    session: Session, shop_id: int, now: dt.datetime, *, full: bool | None = None
) -> RescoreResult:
    """Rescore one shop and store the result; ``full`` None decides by what is due (see module doc).

    Call it in a transaction that has not itself written this shop's scores yet: on PostgreSQL the
    stored scores are read on a second connection (the worker runs each job in its own transaction)."""
    _large_arrays_outside_the_heap()
    try:
        return _rescore_shop(session, shop_id, now, full=full)
    finally:
        _give_back_freed_memory()  # the arrays are garbage once the rescore's frame is gone


def _rescore_shop(session: Session, shop_id: int, now: dt.datetime, *, full: bool | None) -> RescoreResult:
    started = time.perf_counter()
    # One rescore of a shop at a time, worker or `rfm-clv rescore` (PostgreSQL; SQLite has one writer).
    advisory_lock(session, [lock_key("rescore", shop_id)])
    settings = get_settings(session, shop_id)
    tz = repo.shop_timezone(session, shop_id)
    today = repo.day_number(now, tz)
    now_us = repo.to_us(now)
    last = repo.metrics_row(session, shop_id)
    if full is None:
        full = _needs_full(session, shop_id, now, last)
    removed_seen = repo.customers_removed(session, shop_id)  # before the buyers are read

    # A full rescore reads the orders and the customers at the same time, then computes the
    # order-level metrics (at 5M orders the step that needs the most memory).
    ords: dict[str, Array] | None = None
    shop_level: shop_metrics_rules.ShopMetrics | None = None
    postgres = repo.is_postgres(session)
    if full:
        _forget()  # its memory is better spent on the orders
        ords, loaded = repo.load_orders_and_customers(session, shop_id, tz, with_predictions=False)
        shop_level = _order_metrics(ords, today, loaded.columns["customer_id"])
    else:
        remembered = _remembered_customers(session, shop_id, tz, last) if postgres else None
        loaded = remembered or repo.load_customers(session, shop_id, tz, with_predictions=True)
    cust = loaded.columns
    n = int(cust["customer_id"].size)
    new_or_marked = cust["pending"] | ~cust["scored"]
    if not full and n and np.count_nonzero(new_or_marked) > INCREMENTAL_LIMIT * n:
        full = True
    recompute = np.arange(n) if full else np.flatnonzero(new_or_marked)

    # Buyers no more (every order cancelled, redacted, merged away): their scores go.
    gone_pending = repo.pending_without_orders(session, shop_id)
    removed = repo.delete_scores(session, shop_id, sorted(set(loaded.stale) | {c for c, _ in gone_pending}))
    repo.clear_pending(
        session,
        shop_id,
        np.asarray([c for c, _ in gone_pending], dtype=np.int64),
        np.asarray([repo.to_us(t) for _, t in gone_pending], dtype=np.int64),
    )

    if not full and recompute.size == 0 and not removed:
        # Nothing marked, nobody gone: nothing moved (time is the daily full rescore's business).
        orders_total = int(cust["orders_count"].sum())
        token = repo.save_metrics(session, shop_id, now, n, orders_total, None)
        if postgres:
            _remember_as_read(shop_id, tz, token, cust)
        return RescoreResult(shop_id, False, n, 0, [], removed, 0, "unchanged", time.perf_counter() - started)

    if full and ords is None:  # became full: too many customers marked for an incremental one
        ords = repo.load_orders(session, shop_id, tz)
        shop_level = _order_metrics(ords, today, cust["customer_id"])
    elif ords is None:
        ords = repo.load_orders(session, shop_id, tz, cust["customer_id"][recompute].tolist())
    position, order_day, order_value = _align_orders(cust["customer_id"], ords)
    del ords
    inputs = _ledger_inputs(cust, recompute, position, order_day, order_value, today, settings.window_days)
    del position, order_day, order_value

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
    quintile = rules.score_quintile(days_since, frequency, monetary, settings.segment_grid)
    thirds = rules.score_thirds(days_since, frequency, monetary)
    chosen = quintile if settings.scoring_method == "quintile" else thirds
    segment = quintile.segment

    # CLV: the model of the newest usable fit, else the segment formula (PRODUCT §4).
    fit = repo.latest_fit(session, shop_id)
    models = models_from_fit(fit)
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
        wait = np.ceil(predictions.time_to_next_order)
        next_order_us[recompute] = np.where(
            wait <= NEXT_ORDER_CAP_DAYS, _days_to_us(today + wait.astype(np.int64)), NULL_TIME
        )
        clv_source[recompute] = 1
    else:
        # Segment formula: each customer is worth their segment's yearly value over the horizon.
        per_segment = len(rules.SEGMENT_NAMES)
        members = np.maximum(_segment_sums(segment, None, per_segment), 1)
        yearly_value = _segment_sums(segment, spent_last_year, per_segment) / members
        yearly_orders = _segment_sums(segment, orders_last_year.astype(np.float64), per_segment) / members
        rows_segment = segment[recompute].astype(np.intp)
        predicted_clv[recompute] = yearly_value[rows_segment] * horizon / 365.0
        predicted_orders[recompute] = yearly_orders[rows_segment] * horizon / 365.0
        churn_risk[recompute] = np.clip(
            days_since[recompute] / (thresholds.lapsed_intervals * interval), 0, 1
        )
        gap = cust["average_days_between_orders"][recompute]
        gap = np.where(np.isfinite(gap) & (gap > 0), gap, interval)
        due = np.maximum(cust["last_day"][recompute] + np.ceil(gap).astype(np.int64), today)
        next_order_us[recompute] = _days_to_us(due)
        clv_source[recompute] = 0
    predicted_clv = np.round(np.clip(np.nan_to_num(predicted_clv), 0, clv.MAX_MONEY), 2)
    predicted_orders = np.round(np.clip(np.nan_to_num(predicted_orders), 0, clv.MAX_ORDERS), 2)
    churn_risk = np.round(np.clip(churn_risk, 0, 1), 2)

    # Stages: recomputed customers move; the others keep theirs until the next full rescore.
    previous = cust["stage"].astype(np.int64)
    stage_since_us = cust["stage_since"].astype(np.int64)
    since_change = np.where(previous >= 0, (now_us - stage_since_us) / US_PER_DAY, np.nan)
    staged = rules.lifecycle_stages(
        cust["orders_count"][recompute],
        days_since[recompute],
        p_alive[recompute] if models is not None else None,
        median_gap,
        previous[recompute],
        since_change[recompute],
        thresholds,
    )
    stage = previous.copy()
    stage[recompute] = staged.stage
    moved = recompute[staged.changed]
    stage_since_us[moved] = now_us

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
        _cents(predicted_clv),
        _cents(historic),
        _cents(churn_risk),
        next_order_us,
        clv_tier,
    )
    row_hash = _hash(
        synced_hash,
        frequency,
        _cents(monetary, 4),
        orders_last_year,
        _cents(spent_last_year, 4),
        quintile.fm,
        thirds.group,
        stage_since_us,
        *flags,
        _cents(predicted_orders),
        _cents(average_days, 4),
        clv_source,
    )
    write = ~cust["scored"] | (row_hash != cust["row_hash"])
    synced_changed = ~cust["scored"] | (synced_hash != cust["synced_hash"])
    values_changed_at = np.where(synced_changed, now_us, cust["values_changed_at"])
    rows = np.flatnonzero(write)
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
        **{repo_name: flag for repo_name, flag in zip(_FLAG_COLUMNS, flags, strict=True)},
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
    # The orders are done with: free them before the write buffers are built (peak memory).
    metrics = None
    if shop_level is not None:
        metrics = _metrics_json(
            shop_level, today, segment, quintile, stage, behaviour, predicted_clv, interval, models, fit
        )
    del inputs
    removed_meanwhile = repo.lock_scores(session, shop_id) != removed_seen
    written = repo.write_scores(session, shop_id, columns, rows)
    # A customer's first stage is dated by stage_since, not logged as a change: a shop's first
    # scoring (after the history import) would otherwise show every buyer as having "entered" a
    # stage that day.
    logged = moved[previous[moved] != rules.NO_STAGE]
    stage_changes = repo.insert_stage_changes(
        session, shop_id, cust["customer_id"][logged], previous[logged], stage[logged], now
    )
    if removed_meanwhile:  # a redaction or a merge committed after the buyers were read
        removed = sorted(set(removed) | set(repo.drop_removed_customers(session, shop_id)))
    marked = recompute[cust["pending"][recompute]]
    repo.clear_pending(session, shop_id, cust["customer_id"][marked], cust["aggregates_updated_at"][marked])

    repo.replace_segments(
        session,
        shop_id,
        segment_table(
            settings,
            segment,
            cust["orders_count"],
            cust["total_spent"],
            orders_last_year,
            spent_last_year,
            predicted_clv,
            now,
        ),
    )
    orders_total = int(cust["orders_count"].sum())
    token = repo.save_metrics(session, shop_id, now, n, orders_total, metrics)
    if postgres and not removed_meanwhile:
        _remember(
            shop_id,
            tz,
            token,
            cust,
            {
                "row_hash": row_hash,
                "synced_hash": synced_hash,
                "stage": stage,
                "stage_since": stage_since_us,
                "values_changed_at": values_changed_at,
                "frequency": frequency,
                "monetary": monetary,
                "orders_last_year": orders_last_year,
                "spent_last_year": spent_last_year,
                "predicted_clv": predicted_clv,
                "predicted_orders": predicted_orders,
                "churn_risk": churn_risk,
                "expected_next_order_at": next_order_us,
                "clv_source": clv_source,
            },
        )
    elif postgres:
        _forget()
    changed = sorted(set(cust["customer_id"][synced_changed].tolist()) | set(removed))
    seconds = time.perf_counter() - started
    log.info(
        "rescored shop %s (%s): %d customers, %d rows written, %d changed, %d stage changes in %.2fs",
        shop_id,
        "full" if full else "incremental",
        n,
        written,
        len(changed),
        stage_changes,
        seconds,
    )
    return RescoreResult(
        shop_id,
        full,
        n,
        written,
        changed,
        removed,
        stage_changes,
        "model" if models is not None else "segment_formula",
        seconds,
    )


_FLAG_COLUMNS: Final = (
    "first_time_buyer",
    "repeat_buyer",
    "big_spender",
    "high_aov",
    "discount_shopper",
    "full_price_buyer",
    "vip",
)
assert len(_FLAG_COLUMNS) == len(rules.BEHAVIOUR_SEGMENT_NAMES)


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
    """The segments table with the segment formula (PRODUCT §4) and acquisition economics.

    Per segment (and for the whole shop): AOV = revenue / orders; purchase frequency = orders of the
    last 365 days per customer; customer value = AOV × frequency = last year's sales per customer;
    formula CLV = customer value × lifespan; LTV:CAC = formula CLV / CAC; max CPC = formula CLV ×
    conversion rate (None without CAC / conversion rate)."""
    from decimal import Decimal

    def money(value: float | None, places: int = 2) -> Decimal | None:
        if value is None or not np.isfinite(value):
            return None
        value = min(max(float(value), -MONEY_CAP), MONEY_CAP)  # as _storable_money
        return Decimal(repr(round(value, places))).quantize(Decimal(1).scaleb(-places), context=_WIDE)

    size = len(rules.SEGMENT_NAMES)
    codes = segment.astype(np.intp)
    count = np.bincount(codes, minlength=size)
    total_customers = int(codes.size)
    total_revenue = float(np.sum(total_spent))
    cac = float(settings.cac) if settings.cac is not None else None
    rows = []

    def sums(values: Array) -> Array:
        by_segment = np.bincount(codes, weights=np.asarray(values, dtype=np.float64), minlength=size)
        return np.r_[by_segment.sum(), by_segment]

    members = np.r_[codes.size, count]
    order_sums, revenue_sums = sums(orders_count), sums(total_spent)
    last_year_orders, last_year_sales, clv_sums = (
        sums(orders_last_year),
        sums(spent_last_year),
        sums(predicted_clv),
    )
    for position, name in enumerate([ALL_CUSTOMERS, *rules.SEGMENT_NAMES]):
        customers = int(members[position])
        orders = int(round(order_sums[position]))
        revenue = float(revenue_sums[position])
        frequency = float(last_year_orders[position]) / customers if customers else None
        value = float(last_year_sales[position]) / customers if customers else None
        formula = value * settings.lifespan_years if value is not None else None
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
                "ltv_to_cac": formula / cac if formula is not None and cac else None,
                "max_cpc": money(formula * settings.conversion_rate)
                if formula is not None and settings.conversion_rate is not None
                else None,
                "computed_at": now,
            }
        )
    return rows


def _plain(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return _plain(asdict(value))
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    if isinstance(value, np.generic):
        return _plain(value.item())
    return value


def _metrics_json(
    computed: shop_metrics_rules.ShopMetrics,
    today: int,
    segment: Array,
    quintile: rules.QuintileRfm,
    stage: Array,
    behaviour: rules.BehaviourSegments,
    predicted_clv: Array,
    interval: float,
    models: clv.ShopModels | None,
    fit: ClvFit | None,
) -> dict[str, Any]:
    heat = np.zeros((5, 5), dtype=np.int64)
    if segment.size:
        np.add.at(heat, (5 - quintile.recency.astype(np.intp), quintile.fm.astype(np.intp) - 1), 1)
    distribution: dict[str, Any] = {}
    if predicted_clv.size:
        edges = np.quantile(predicted_clv, np.linspace(0, 1, 11))
        distribution = {"deciles": [float(e) for e in edges], "mean": float(predicted_clv.mean())}
    return _plain(
        {
            "as_of": _day(today),
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
            "rfm_grid": {
                "rows_r": [5, 4, 3, 2, 1],
                "columns_fm": [1, 2, 3, 4, 5],
                "customers": heat.tolist(),
            },
            "predicted_clv": distribution,
            "clv": {
                "source": "model" if models is not None else "segment_formula",
                "fit_id": fit.id if fit is not None else None,
                "reasons": (fit.reasons or "").splitlines() if fit is not None else ["no model fitted yet"],
            },
        }
    )


# --------------------------------------------------------------------------------------------
# CLV fit and backtest


def fit_shop(session: Session, shop_id: int, now: dt.datetime) -> ClvFit:
    """Fit the shop's CLV models on its whole ledger (days as the time unit), store the fit and a
    backtest, and ask for a full rescore so every customer gets the new predictions. Fails soft:
    a shop the models cannot describe gets a fit row with ``usable`` false and the reasons."""
    started = time.perf_counter()
    tz = repo.shop_timezone(session, shop_id)
    today = repo.day_number(now, tz)
    ords = repo.load_orders(session, shop_id, tz)
    customer = ords["customer_id"]
    day = ords["day"].astype(np.float64)
    value = ords["value"]
    summary = clv_backtest.summarise_transactions(customer, day, value, float(today))
    models = clv.fit_shop_models(summary.x, summary.t_x, summary.T, summary.m)
    purchases, spend = models.purchases, models.spend
    row: dict[str, Any] = {
        "shop_id": shop_id,
        "fitted_at": now,
        "customers": models.n_customers,
        "repeat_buyers": models.n_repeat_buyers,
        "orders": int(customer.size),
        "usable": models.usable,
        "reasons": "\n".join(models.reasons) or None,
        "fallback_order_value": float(models.fallback_order_value),
        "seconds": 0.0,
    }
    if purchases is not None:
        row |= {
            "r": purchases.r,
            "alpha": purchases.alpha,
            "a": purchases.a,
            "b": purchases.b,
            "purchases_log_likelihood": purchases.log_likelihood,
            "purchases_converged": purchases.converged,
        }
    if spend is not None:
        row |= {
            "p": spend.p,
            "q": spend.q,
            "v": spend.v,
            "spend_log_likelihood": spend.log_likelihood,
            "spend_converged": spend.converged,
        }
    row["seconds"] = time.perf_counter() - started
    fit = repo.add_fit(session, row)
    run_backtest(session, shop_id, now, customer, day, value, today)
    enqueue_rescore(session, shop_id, now, full=True)
    log.info("fitted shop %s: usable=%s (%s)", shop_id, fit.usable, fit.reasons or "ok")
    return fit


def backtest_window(first_day: int, today: int, horizon_days: int = 365) -> tuple[int, int] | None:
    """(cut-off, end) for a shop's backtest: hold out the last third of the history, at most one
    horizon and at least four weeks; None with less than ``BACKTEST_MIN_HISTORY_DAYS`` of orders."""
    span = today - first_day
    if span < BACKTEST_MIN_HISTORY_DAYS:
        return None
    holdout = int(min(max(span // 3, 28), horizon_days))
    return today - holdout, today


def run_backtest(
    session: Session,
    shop_id: int,
    now: dt.datetime,
    customer: Array,
    day: Array,
    value: Array,
    today: int,
) -> Backtest:
    settings = get_settings(session, shop_id)
    window = backtest_window(int(day.min()) if day.size else today, today, settings.clv_horizon_days)
    zero = clv_backtest.ForecastAccuracy(0.0, 0.0, 0.0, 0.0)
    result: clv_backtest.BacktestResult | None = None
    reasons: str | None
    if window is None:
        reasons = f"less than {BACKTEST_MIN_HISTORY_DAYS} days of orders; nothing to hold out yet"
        cut, end = today, today
    else:
        cut, end = window
        result = clv_backtest.backtest(customer, day, value, float(cut), float(end))
        reasons = "\n".join(result.reasons) or None
    by_frequency: list[dict[str, Any]] = []
    if result is not None:
        calibration = clv_backtest.summarise_transactions(customer, day, value, float(cut))
        bucket = np.minimum(calibration.x, 7).astype(np.intp)
        for k in range(8):
            member = bucket == k
            if np.any(member):
                by_frequency.append(
                    {
                        "repeat_orders": f"{k}+" if k == 7 else str(k),
                        "customers": int(np.count_nonzero(member)),
                        "actual": float(result.actual_orders[member].mean()),
                        "predicted": float(result.predicted_orders[member].mean()),
                        "naive": float(result.naive_orders[member].mean()),
                    }
                )
    orders_acc = result.orders if result else zero
    revenue_acc = result.revenue if result else zero
    naive_orders = result.naive_orders_accuracy if result else zero
    naive_revenue = result.naive_revenue_accuracy if result else zero
    row = {
        "shop_id": shop_id,
        "computed_at": now,
        "calibration_end": _day(cut),
        "holdout_end": _day(end),
        "customers": int(result.customer.size) if result else 0,
        "model_used": bool(result.model_used) if result else False,
        "reasons": reasons,
        "predicted_orders": orders_acc.predicted_total,
        "actual_orders": orders_acc.actual_total,
        "naive_orders": naive_orders.predicted_total,
        "orders_mae": orders_acc.mean_absolute_error,
        "orders_bias": orders_acc.bias,
        "naive_orders_mae": naive_orders.mean_absolute_error,
        "naive_orders_bias": naive_orders.bias,
        "predicted_revenue": revenue_acc.predicted_total,
        "actual_revenue": revenue_acc.actual_total,
        "naive_revenue": naive_revenue.predicted_total,
        "revenue_mae": revenue_acc.mean_absolute_error,
        "revenue_bias": revenue_acc.bias,
        "naive_revenue_mae": naive_revenue.mean_absolute_error,
        "naive_revenue_bias": naive_revenue.bias,
        "by_frequency": _json(by_frequency),
    }
    return repo.add_backtest(session, row)


def _json(value: Any) -> str:
    import json

    return json.dumps(_plain(value), separators=(",", ":"))


# --------------------------------------------------------------------------------------------
# Schedules (level-triggered: what is due is read from the tables)


def enqueue_due_rescores(session: Session, now: dt.datetime) -> list[int]:
    """Shops with customers marked to score (and no rescore already queued or running), and shops
    whose last full rescore is a day old."""
    due = []
    for shop_id in repo.shops_with_pending_customers(session):
        if not jobs_repo.active(session, shop_id, RESCORE):
            enqueue_rescore(session, shop_id, now)
            due.append(shop_id)
    for shop_id in repo.shops_due_full_rescore(session, now - FULL_RESCORE_EVERY):
        if not jobs_repo.active(session, shop_id, RESCORE):
            enqueue_rescore(session, shop_id, now, full=True)
            due.append(shop_id)
    return due


def enqueue_due_fits(session: Session, now: dt.datetime) -> list[int]:
    """Shops whose last fit is a day old (nightly) or whose ledger grew by more than FIT_GROWTH."""
    due = []
    for shop_id in repo.shops_due_fit(session, now - FIT_EVERY, FIT_GROWTH):
        if not jobs_repo.active(session, shop_id, FIT):
            enqueue_fit(session, shop_id, now)
            due.append(shop_id)
    return due


# --------------------------------------------------------------------------------------------
# Reading (pages and sync read only what the worker stored)


def customer_scores(session: Session, shop_id: int, customer_ids: Sequence[int]) -> list[CustomerScore]:
    return list(
        session.scalars(
            select(CustomerScore)
            .where(CustomerScore.shop_id == shop_id, CustomerScore.customer_id.in_(list(customer_ids)))
            .order_by(CustomerScore.customer_id)
        )
    )


def scores_changed_since(
    session: Session, shop_id: int, since: dt.datetime, limit: int = 1000
) -> list[CustomerScore]:
    """Customers whose synced values changed after ``since`` (oldest change first)."""
    return list(
        session.scalars(
            select(CustomerScore)
            .where(CustomerScore.shop_id == shop_id, CustomerScore.values_changed_at > since)
            .order_by(CustomerScore.values_changed_at, CustomerScore.customer_id)
            .limit(limit)
        )
    )


def segments(session: Session, shop_id: int) -> list[ShopSegment]:
    return list(
        session.scalars(
            select(ShopSegment).where(ShopSegment.shop_id == shop_id).order_by(ShopSegment.position)
        )
    )


def metrics(session: Session, shop_id: int) -> dict[str, Any] | None:
    import json

    row = repo.metrics_row(session, shop_id)
    return None if row is None or row.metrics is None else dict(json.loads(row.metrics))


def stage_changes_since(session: Session, shop_id: int, since: dt.datetime) -> list[StageChange]:
    return list(
        session.scalars(
            select(StageChange)
            .where(StageChange.shop_id == shop_id, StageChange.changed_at >= since)
            .order_by(StageChange.changed_at, StageChange.customer_id)
        )
    )


def latest_fit(session: Session, shop_id: int) -> ClvFit | None:
    return repo.latest_fit(session, shop_id)


def latest_backtest(session: Session, shop_id: int) -> Backtest | None:
    return repo.latest_backtest(session, shop_id)


__all__ = [
    "RescoreResult",
    "enqueue_fit",
    "enqueue_rescore",
    "fit_shop",
    "rescore_shop",
]
