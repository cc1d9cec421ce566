"""The import's and reconciliation's job kinds and schedules (registered through ``app.tasks``).

Both talk to Shopify, so they are async kinds: each run is one resumable step that commits its own
batches (an import may take many steps: the export on Shopify's side, then the download in
bounded slices); the worker runs the step again after the delay the step asks for."""

from __future__ import annotations

from contextlib import suppress
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.imports import pull, service
from app.jobs import JobContext, register_async_kind, register_schedule
from app.jobs import repository as jobs_repo
from app.jobs.services import WorkerServices
from app.models import Shop
from app.models.shop_sync_state import ShopSyncState
from app.shops.tokens import ReauthorizationRequired

IMPORT = service.IMPORT_JOB
RECONCILE = "reconcile"
STEP_BUDGET_S = 60.0
RECONCILE_EVERY = timedelta(hours=1)


async def _fresh_token(services: WorkerServices, shop_id: int) -> None:
    # Refresh an expiring offline token before the step reads it
    # (https://shopify.dev/docs/apps/build/authentication-authorization/access-tokens/offline-access-tokens);
    # with no usable token the step itself reports "open the app to reconnect".
    with services.factory() as session:
        domain = session.scalar(select(Shop.domain).where(Shop.shop_id == shop_id))
    if domain is None:
        return
    with suppress(ReauthorizationRequired):
        await services.tokens.access_token(domain)


async def run_import_step(services: WorkerServices, job: JobContext) -> float | None:
    await _fresh_token(services, job.shop_id)
    progress = await pull.advance_import(
        services.factory, services.admin, job.shop_id, budget_s=STEP_BUDGET_S
    )
    return service.next_step_delay(progress, services.settings.bulk_poll_seconds)


async def run_reconcile(services: WorkerServices, job: JobContext) -> float | None:
    await _fresh_token(services, job.shop_id)
    await pull.reconcile(services.factory, services.admin, job.shop_id)
    return None


def enqueue_active_imports(session: Session, now: datetime) -> None:
    """Level-triggered: every import not finished has a job (after a crash or a finish webhook)."""
    for shop_id in service.shops_with_active_imports(session):
        jobs_repo.enqueue(session, shop_id, IMPORT, now)


def enqueue_due_reconciliations(session: Session, now: datetime) -> None:
    """Hourly per installed shop with a token, once its history import finished."""
    active = set(service.shops_with_active_imports(session))
    rows = session.execute(
        select(Shop.shop_id, ShopSyncState.last_reconciled_at)
        .outerjoin(ShopSyncState, ShopSyncState.shop_id == Shop.shop_id)
        .where(Shop.uninstalled_at.is_(None), Shop.access_token_encrypted.is_not(None))
    ).all()
    for shop_id, last_run in rows:
        if shop_id in active or service.import_progress(session, shop_id) is None:
            continue
        if last_run is None or last_run <= now - RECONCILE_EVERY:
            jobs_repo.enqueue(session, shop_id, RECONCILE, now)


register_async_kind(IMPORT, run_import_step, max_attempts=10, backoff_seconds=30, lease_seconds=900)
register_async_kind(RECONCILE, run_reconcile, max_attempts=3, backoff_seconds=300, lease_seconds=900)
register_schedule("imports_active", enqueue_active_imports, every_seconds=30.0)
register_schedule("reconcile_hourly", enqueue_due_reconciliations, every_seconds=300.0)
