"""The sync's job kind and schedule (registered through ``app.tasks``).

``sync`` is an async kind: each run is one resumable step of :func:`app.sync.push.sync_shop`
(committing after every document), or, with a ``redact_customer`` payload, the removal of one
customer's app metafields and tags (customers/redact). ``cleanup`` removes everything the app
wrote, on the merchant's request (``app.sync.cleanup``). The schedule queues a sync for every
installed shop whose scores were rescored or settings saved since the sync last looked:
level-triggered, so a rescore that changed values is in Shopify a few seconds later."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select

from app.jobs import JobContext, register_async_kind, register_schedule
from app.jobs.services import WorkerServices
from app.kit.db import write_transaction
from app.models import Shop
from app.shops.tokens import ReauthorizationRequired
from app.sync import cleanup, push, service

SCHEDULE_EVERY_S = 5.0


def _now() -> datetime:
    return datetime.now(UTC)


async def run_sync(services: WorkerServices, job: JobContext) -> float | None:
    with services.factory() as session:
        shop = session.scalar(select(Shop).where(Shop.shop_id == job.shop_id))
        domain = shop.domain if shop is not None and shop.is_installed else None
    if domain is None:
        return None  # uninstalled: nothing may be written, nothing is retried
    try:
        token = await services.tokens.access_token(domain)
    except ReauthorizationRequired:
        with write_transaction(services.factory) as session:
            service.record_shop_error(session, job.shop_id, push.NO_TOKEN, _now())
        return None
    redact = job.payload.get("redact_customer")
    if redact is not None:
        await push.redact_customer(
            services.factory,
            services.admin,
            job.shop_id,
            domain,
            token,
            int(redact),
            job.payload.get("app_tags"),
        )
        return None
    return await push.sync_shop(services.factory, services.admin, job.shop_id, token, _now)


async def run_cleanup(services: WorkerServices, job: JobContext) -> float | None:
    """The merchant's "remove everything this app wrote to Shopify" (``app.sync.cleanup``)."""
    with services.factory() as session:
        shop = session.scalar(select(Shop).where(Shop.shop_id == job.shop_id))
        domain = shop.domain if shop is not None and shop.is_installed else None
    if domain is None:  # uninstalled: Shopify no longer takes the app's calls; the step records why
        return await cleanup.clean_up_shop(services.factory, services.admin, job.shop_id, "", _now)
    try:
        token = await services.tokens.access_token(domain)
    except ReauthorizationRequired:
        with write_transaction(services.factory) as session:
            cleanup.stop_for_token(session, job.shop_id, _now())
        return None
    try:
        return await cleanup.clean_up_shop(services.factory, services.admin, job.shop_id, token, _now)
    except Exception as exc:
        if job.attempt >= CLEANUP_ATTEMPTS:  # the worker gives up on it: say so, free the sync
            with write_transaction(services.factory) as session:
                cleanup.give_up(session, job.shop_id, str(exc), _now())
        raise


CLEANUP_ATTEMPTS = 5
register_async_kind(
    cleanup.CLEANUP, run_cleanup, max_attempts=CLEANUP_ATTEMPTS, backoff_seconds=30, lease_seconds=900
)
register_async_kind(service.SYNC, run_sync, max_attempts=5, backoff_seconds=30, lease_seconds=900)
register_schedule("sync_due", service.enqueue_due_syncs, every_seconds=SCHEDULE_EVERY_S)
