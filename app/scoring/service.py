"""Rescoring a shop and fitting its CLV models: the ledger and the customer aggregates become
stored scores, stages, CLV predictions, segments and metrics.

A rescore loads the shop's buyers as arrays (``load``), computes with pure functions
(``compute``: the rules of ``rules`` / ``metrics`` and ``app.clv``), and writes back only the
customers whose stored values changed (``store``). Two modes:

* full — every customer from the ledger: windowed F/M, CLV inputs, predictions from the newest
  usable fit, stages (time passes: recency and P(alive) move), behaviour flags, metrics and the cohort table.
  Run daily, after a settings change, after a new fit, and on a shop's first scoring.
* incremental — after webhooks marked customers "to score": those customers get new inputs,
  predictions and stages; every customer's relative scores (quintiles, top 10%) are recomputed from
  what is stored, since one new order can move a boundary. So are the counts over the scores (the
  segments table, the R × FM grid, stages, behaviour, the CLV distribution, repeat rate, days
  between orders): every page shows one run. Only the order-history metrics (cohorts, retention)
  wait for the next full rescore, and say so with their own time (``shop_metrics.computed_at``).

A stage change is recorded with its cause: the customer's behaviour, or a reclassification when
the stored stages were decided by other models than this run's (a new fit, or a switch between the
model and the segment formula; ``compute.RefitFrom``). So is a change of RFM segment: the
customer's behaviour (an order, time passing, the other buyers moving the score boundaries), or
"settings" in the first rescore after the merchant changed the scoring settings.

Services take the session first and never commit: the worker's job transaction does.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
from sqlalchemy.orm import Session

from app.jobs import repository as jobs_repo
from app.kit import memory
from app.kit.sql import advisory_lock, lock_key
from app.models import ClvFit
from app.models.job import FAILED
from app.scoring import compute, fit, flow_events, load, store
from app.scoring import repository as repo
from app.scoring.cache import RescoreCache
from app.scoring.columns import STORED_STATE_COLUMNS, STORED_VALUE_COLUMNS, shop_day
from app.scoring.compute import MONEY_CAP
from app.scoring.fit import fit_method
from app.scoring.load import shop_timezone
from app.scoring.repository import fit_in_use, latest_backtest, latest_fit
from app.scoring.store import erase_customer, lock_scores
from app.settings.schemas import ScoringSettings, grid_to_json
from app.settings.service import get_settings, settings_updated_at
from app.vocabulary import ALL_CUSTOMERS

log = logging.getLogger(__name__)

RESCORE: Final = "rescore"
FIT: Final = "fit"
FULL_RESCORE_EVERY: Final = dt.timedelta(hours=24)
FIT_EVERY: Final = dt.timedelta(hours=24)
FIT_GROWTH: Final = 0.05
"""Refit when the ledger grew by more than 5 % since the last fit."""


@dataclass(frozen=True, slots=True)
class RescoreResult:
    shop_id: int
    full: bool
    customers: int
    written: int
    """Rows of ``customer_scores`` inserted or rewritten."""
    changed: list[int]
    """Customers whose synced values (scores, segment, stage, CLV, churn risk, next order, tier) are
    new or changed: what the sync outbox has to write. Also in ``values_changed_at``."""
    removed: list[int]
    """Customers whose scores were removed (no qualifying order left, redacted, merged)."""
    stage_changes: int
    clv_source: str
    seconds: float


# --------------------------------------------------------------------------------------------
# Enqueueing


# A job's expected run time orders the worker's claims: among jobs due together the shortest goes
# first, so small shops never queue behind big ones (docs/operations.md, "Fairness between shops").
# Rough per-customer costs from docs/benchmarks.md ("Rescore", "CLV fit", "Fleet"); off by a factor
# of two they still order a 300-customer shop before a 100,000-customer one.
JOB_OVERHEAD_S: Final = 0.05
FULL_RESCORE_S_PER_CUSTOMER: Final = 2e-5
INCREMENTAL_RESCORE_S_PER_CUSTOMER: Final = 5e-6
FIT_S_PER_CUSTOMER: Final = 2e-5


def expected_seconds(
    session: Session, shop_id: int, kind: str, now: dt.datetime, *, full: bool = False
) -> float:
    """The expected run time of a rescore (full or incremental) or a fit of the shop, from the
    customers it scored last (a shop never scored counts as small: its first rescore comes once).
    A rescore asked for as incremental whose shop is due its daily full one runs as full."""
    row = repo.metrics_row(session, shop_id)
    customers = row.customers_scored if row is not None else 0
    if row is not None and (row.computed_at is None or row.computed_at <= now - FULL_RESCORE_EVERY):
        full = True
    if kind == FIT:
        per_customer = FIT_S_PER_CUSTOMER
    else:
        per_customer = FULL_RESCORE_S_PER_CUSTOMER if full else INCREMENTAL_RESCORE_S_PER_CUSTOMER
    return JOB_OVERHEAD_S + customers * per_customer


def enqueue_rescore(
    session: Session,
    shop_id: int,
    now: dt.datetime,
    *,
    full: bool = False,
    run_after: dt.datetime | None = None,
) -> None:
    """Ask the worker to rescore the shop (coalesces with a pending request; ``full`` sticks).
    ``run_after``: due earlier than ``now`` (the daily rescore after a fit keeps the fit's place)."""
    jobs_repo.enqueue(
        session,
        shop_id,
        RESCORE,
        now,
        payload={"full": True} if full else None,
        run_after=run_after,
        cost=expected_seconds(session, shop_id, RESCORE, now, full=full),
    )


def timezone_changed(session: Session, shop_id: int, now: dt.datetime) -> None:
    """The shop's days now begin elsewhere: what is stored was counted in the old days (recency,
    stages, cohorts, weeks), so a full rescore recounts it. A shop not scored yet has nothing to
    recount (its import queues the first rescore)."""
    if repo.metrics_row(session, shop_id) is not None:
        enqueue_rescore(session, shop_id, now, full=True)


def enqueue_fit(session: Session, shop_id: int, now: dt.datetime) -> None:
    jobs_repo.enqueue(session, shop_id, FIT, now, cost=expected_seconds(session, shop_id, FIT, now))


# --------------------------------------------------------------------------------------------
# Rescore


def rescore_shop(
    session: Session,
    shop_id: int,
    now: dt.datetime,
    *,
    full: bool | None = None,
    cache: RescoreCache | None = None,
) -> RescoreResult:
    """Rescore one shop and store the result; ``full`` None decides by what is due (see module doc).
    ``cache``: the worker's, whose arrays of the shop's last rescore spare an incremental rescore
    the read of every buyer (PostgreSQL); None reads them.

    Call it in a transaction that has not itself written this shop's scores yet: on PostgreSQL the
    stored scores are read on a second connection (the worker runs each job in its own transaction)."""
    memory.large_arrays_outside_the_heap()
    try:
        return _rescore_shop(session, shop_id, now, full, cache)
    finally:
        memory.give_back_freed_memory()  # the arrays are garbage once the rescore's frame is gone


def _needs_full(session: Session, shop_id: int, now: dt.datetime, last: Any) -> bool:
    if last is None or last.computed_at is None:
        return True
    if last.computed_at <= now - FULL_RESCORE_EVERY:
        # The day is over. When the shop's fit is queued, the full rescore it brings is the day's
        # one: marked customers are rescored incrementally meanwhile, not in a second full rescore.
        return not jobs_repo.active(session, shop_id, FIT)
    changed = settings_updated_at(session, shop_id)
    if changed is not None and changed >= last.computed_at:
        return True
    newest = repo.latest_fit(session, shop_id)
    return newest is not None and newest.fitted_at >= last.computed_at


def _rescore_shop(
    session: Session, shop_id: int, now: dt.datetime, full: bool | None, cache: RescoreCache | None
) -> RescoreResult:
    started = time.perf_counter()
    # One rescore of a shop at a time, worker or `rfm-clv rescore` (PostgreSQL; SQLite has one writer).
    advisory_lock(session, [lock_key("rescore", shop_id)])
    settings = get_settings(session, shop_id)
    tz = load.shop_timezone(session, shop_id)
    today = load.day_number(now, tz)
    last = repo.metrics_row(session, shop_id)
    if full is None:
        full = _needs_full(session, shop_id, now, last)
    removed_seen = load.customers_removed(session, shop_id)  # before the buyers are read
    postgres = load.is_postgres(session)
    if cache is not None and not postgres:
        cache = None

    # Load. A full rescore reads the orders and the customers at the same time, then computes the
    # order-level metrics (at 5M orders the step that needs the most memory).
    ords: dict[str, compute.Array] | None = None
    shop_level = None
    if full:
        if cache is not None:
            cache.forget()  # its memory is better spent on the orders
        ords, loaded = load.load_orders_and_customers(
            session, shop_id, tz, with_predictions=False, expected_orders=_orders_scored(last)
        )
        shop_level = compute.order_metrics(ords, today, loaded.columns["customer_id"])
    else:
        remembered = cache.customers(session, shop_id, tz, last) if cache is not None else None
        loaded = remembered or load.load_customers(session, shop_id, tz, with_predictions=True)
    cust = loaded.columns
    ids = cust["customer_id"]
    n = int(ids.size)
    recompute, full = compute.rows_to_recompute(cust, full)
    removed = _remove_buyers_no_more(session, shop_id, loaded.stale)

    if not full and recompute.size == 0 and not removed:
        # Nothing marked, nobody gone: nothing moved (time is the daily full rescore's business).
        token = store.save_metrics(session, shop_id, now, n, int(cust["orders_count"].sum()), None)
        if cache is not None:
            cache.remember_as_read(shop_id, tz, token, cust)
        return RescoreResult(shop_id, False, n, 0, [], removed, 0, "unchanged", time.perf_counter() - started)
    if ords is None and full:  # too many customers marked for an incremental one
        ords = load.load_orders(session, shop_id, tz, expected_orders=_orders_scored(last))
        shop_level = compute.order_metrics(ords, today, ids)
    elif ords is None:
        ords = load.load_orders(session, shop_id, tz, ids[recompute].tolist())

    # Compute. The orders go as soon as they are summed (peak memory).
    position, day, value = compute.align_orders(ids, ords)
    del ords
    inputs = compute.ledger_inputs(cust, recompute, position, day, value, today, settings.window_days)
    del position, day, value
    newest_fit = repo.latest_fit(session, shop_id)
    used_fit = repo.fit_in_use(session, shop_id)
    models = fit.models_from_fit(used_fit)
    stored_metrics = _stored_metrics(last)
    refit_from = _refit_from(session, shop_id, stored_metrics, used_fit if models is not None else None)
    scores = compute.score_customers(
        shop_id,
        cust,
        recompute,
        inputs,
        today=today,
        now=now,
        settings=settings,
        models=models,
        fit=used_fit,
        newest_fit=newest_fit,
        shop_level=shop_level,
        refit_from=refit_from,
    )
    del inputs
    if shop_level is None:  # the order-history metrics of the last full rescore stay, with its time
        scores.metrics["shop"] = (stored_metrics or {}).get("shop")
    scores.metrics[SEGMENT_BASIS] = _segment_basis(settings)
    # one answer, for the segment history's cause and the Flow segment triggers alike
    segments_reclassified = _segments_reclassified(session, shop_id, last, stored_metrics, settings)

    # Store. The Flow triggers first: they compare with the stored rows.
    removed_meanwhile = store.lock_scores(session, shop_id) != removed_seen
    basis = flow_events.basis_of(settings)
    scores.metrics[flow_events.BASIS_KEY] = basis
    triggers = flow_events.trigger_events(
        session,
        shop_id,
        cust,
        scores.columns,
        scores.synced_changed,
        scores.stage_moves,
        enabled=flow_events.enabled_triggers(session, shop_id),
        why=flow_events.reclassified(
            stored_metrics,
            basis,
            models_changed=refit_from is not None,
            segments_changed=segments_reclassified,
        ),
        stamp_us=load.to_us(now),
    )
    written = store.write_scores(session, shop_id, scores.columns, scores.rows)
    moves = scores.stage_moves
    stage_changes = store.insert_stage_changes(
        session, shop_id, moves.customer_id, moves.from_stage, moves.to_stage, now, moves.cause
    )
    segment_moves = scores.segment_moves
    store.insert_segment_changes(
        session,
        shop_id,
        segment_moves.customer_id,
        segment_moves.from_segment,
        segment_moves.to_segment,
        now,
        "settings" if segments_reclassified else "behaviour",
    )
    flow_events.queue(session, triggers, now)
    if removed_meanwhile:  # a redaction or a merge committed after the buyers were read
        removed = sorted(set(removed) | set(store.drop_removed_customers(session, shop_id)))
    marked = recompute[cust["pending"][recompute]]
    store.clear_pending(session, shop_id, ids[marked], cust["aggregates_updated_at"][marked])
    store.replace_segments(session, shop_id, scores.segments)
    token = store.save_metrics(
        session, shop_id, now, n, int(cust["orders_count"].sum()), scores.metrics, full=shop_level is not None
    )
    if cache is not None and not removed_meanwhile:
        kept = {name: scores.columns[name] for name, _ in (*STORED_STATE_COLUMNS, *STORED_VALUE_COLUMNS)}
        cache.remember(shop_id, tz, token, cust, kept)
    elif cache is not None:
        cache.forget()

    changed = sorted(set(ids[scores.synced_changed].tolist()) | set(removed))
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
        shop_id, full, n, written, changed, removed, stage_changes, scores.clv_source, seconds
    )


SEGMENT_BASIS: Final = "segment_basis"
"""The metrics JSON key of the settings a run's segments were decided by."""


def _segment_basis(settings: ScoringSettings) -> dict[str, Any]:
    return {
        "method": settings.scoring_method,
        "window_days": settings.window_days,
        "grid": grid_to_json(settings.segment_grid),
    }


def _segments_reclassified(
    session: Session,
    shop_id: int,
    last: Any,
    stored_metrics: dict[str, Any] | None,
    settings: ScoringSettings,
) -> bool:
    """The stored segments were decided under other segment settings (method, window, grid) than
    this run's: its segment changes are the merchant's reclassification, not the customers'
    behaviour. Scores stored before the basis was recorded: any settings saved since them."""
    if stored_metrics is not None and SEGMENT_BASIS in stored_metrics:
        return bool(stored_metrics[SEGMENT_BASIS] != _segment_basis(settings))
    changed = settings_updated_at(session, shop_id)
    return last is not None and changed is not None and changed >= last.rescored_at


def _orders_scored(last: Any) -> int | None:
    """The orders the shop's last rescore counted (None: never rescored), which says how to read
    its ledger (``load.load_orders``)."""
    return None if last is None else int(last.orders_scored)


def _stored_metrics(last: Any) -> dict[str, Any] | None:
    return json.loads(last.metrics) if last is not None and last.metrics else None


def _refit_from(
    session: Session, shop_id: int, stored_metrics: dict[str, Any] | None, model_fit: ClvFit | None
) -> compute.RefitFrom | None:
    """The models the stored stages were decided by, when this run's differ (``model_fit``: the fit
    whose models this run uses, None for the segment formula); None when they are the same or
    nothing was scored yet."""
    if stored_metrics is None:
        return None
    basis = stored_metrics.get("clv") or {}
    before = basis.get("fit_id") if basis.get("source") == "model" else None
    if before == (model_fit.id if model_fit is not None else None):
        return None
    return compute.RefitFrom(
        fit.models_from_fit(repo.fit_by_id(session, shop_id, before)) if before else None
    )


def _remove_buyers_no_more(session: Session, shop_id: int, stale: list[int]) -> list[int]:
    """Buyers no more (every order cancelled, redacted, merged away): their scores go, and the
    marks of those marked go with them."""
    gone_pending = load.pending_without_orders(session, shop_id)
    removed = store.delete_scores(session, shop_id, sorted(set(stale) | {c for c, _ in gone_pending}))
    store.clear_pending(
        session,
        shop_id,
        np.asarray([c for c, _ in gone_pending], dtype=np.int64),
        np.asarray([load.to_us(t) for _, t in gone_pending], dtype=np.int64),
    )
    return removed


# --------------------------------------------------------------------------------------------
# CLV fit


def fit_shop(session: Session, shop_id: int, now: dt.datetime, *, due: dt.datetime | None = None) -> ClvFit:
    """Fit the shop's CLV models and backtest them (``fit``), then ask for a full rescore so every
    customer gets the new predictions. ``due``: when the fit was due; the rescore, the second half
    of the shop's daily work, keeps that place in the worker's queue."""
    fitted = fit.fit_and_backtest(session, shop_id, now)
    enqueue_rescore(
        session, shop_id, now, full=True, run_after=due if due is not None and due < now else None
    )
    log.info("fitted shop %s: usable=%s (%s)", shop_id, fitted.usable, fitted.reasons or "ok")
    return fitted


# --------------------------------------------------------------------------------------------
# Schedules (level-triggered: what is due is read from the tables)


def enqueue_due_rescores(session: Session, now: dt.datetime) -> list[int]:
    """Shops with customers marked to score (and no rescore already queued or running), and shops
    whose last full rescore is a day old. A shop whose fit is due too gets its daily full rescore
    from the fit (``fit_shop``), not a second one before it: the daily work of a shop is one fit,
    its backtest, and one full rescore. Runs every second on every worker: a few set queries,
    however many shops there are (and one enqueue per shop that is due)."""
    rescoring = jobs_repo.shops_with_jobs(session, RESCORE)
    due = [s for s in repo.shops_with_pending_customers(session) if s not in rescoring]
    for shop_id in due:
        enqueue_rescore(session, shop_id, now)
    daily = [s for s in repo.shops_due_full_rescore(session, now - FULL_RESCORE_EVERY) if s not in rescoring]
    if not daily:
        return due
    fitting = jobs_repo.shops_with_jobs(session, FIT)
    fit_due = set(repo.shops_due_fit(session, now - FIT_EVERY, FIT_GROWTH)) - jobs_repo.shops_with_jobs(
        session, FIT, [FAILED], key=None
    )
    queued = set(due)
    for shop_id in daily:
        if shop_id in fitting or shop_id in fit_due:
            continue  # the fit (queued now or within a minute by ``enqueue_due_fits``) brings it
        if shop_id not in queued:
            enqueue_rescore(session, shop_id, now, full=True)
            due.append(shop_id)
    return due


def enqueue_due_fits(session: Session, now: dt.datetime) -> list[int]:
    """Shops whose last fit is a day old (nightly) or whose ledger grew by more than FIT_GROWTH."""
    fitting = jobs_repo.shops_with_jobs(session, FIT)
    due = [s for s in repo.shops_due_fit(session, now - FIT_EVERY, FIT_GROWTH) if s not in fitting]
    for shop_id in due:
        enqueue_fit(session, shop_id, now)
    return due


__all__ = [
    "ALL_CUSTOMERS",
    "MONEY_CAP",
    "RescoreCache",
    "RescoreResult",
    "enqueue_fit",
    "enqueue_rescore",
    "erase_customer",
    "fit_shop",
    "latest_backtest",
    "fit_in_use",
    "fit_method",
    "latest_fit",
    "lock_scores",
    "rescore_shop",
    "shop_day",
    "shop_timezone",
    "timezone_changed",
]
