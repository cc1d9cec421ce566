"""`rfm-clv import SHOP` and `rfm-clv reconcile SHOP`: the operator's way to run an import to the
end in-process, or one reconciliation, outside the worker."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from contextlib import suppress

import httpx
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from app.config import Settings
from app.imports import pull
from app.imports.schemas import ImportProgress, ImportState
from app.kit.db import make_engine, make_sessionmaker
from app.kit.http import outbound_client
from app.shopify.admin_client import AdminClient
from app.shops import repository as shops_repo
from app.shops.tokens import ReauthorizationRequired, ShopTokens

Factory = sessionmaker[Session]


def _shop_id(settings: Settings, domain: str) -> tuple[int | None, Engine]:
    engine = make_engine(settings.database_url)
    with make_sessionmaker(engine)() as session:
        shop = shops_repo.get_by_domain(session, domain)
        return (shop.shop_id if shop is not None and shop.is_installed else None), engine


def _print(progress: ImportProgress) -> None:
    expected = progress.orders_expected if progress.orders_expected is not None else "?"
    print(f"{progress.state}: {progress.orders_done}/{expected} orders", flush=True)


def _client() -> httpx.AsyncClient:
    return outbound_client(timeout_s=60.0)


async def _fresh_token(settings: Settings, factory: Factory, http: httpx.AsyncClient, domain: str) -> None:
    """Refresh an expiring offline token first, as the worker does, through the one token owner
    (https://shopify.dev/docs/apps/build/authentication-authorization/access-tokens/offline-access-tokens);
    without a usable token the run itself says "open the app to reconnect"."""
    with suppress(ReauthorizationRequired):
        await ShopTokens(settings, factory, lambda: http).access_token(domain)


def import_command(settings: Settings, domain: str, client: Callable[[], httpx.AsyncClient] = _client) -> int:
    shop_id, engine = _shop_id(settings, domain)
    if shop_id is None:
        print(f"shop {domain} is not installed", file=sys.stderr)
        return 1

    async def go() -> ImportProgress:
        async with client() as http:
            factory = make_sessionmaker(engine)
            await _fresh_token(settings, factory, http, domain)
            admin = AdminClient(http, settings)
            return await pull.run_import(
                factory, admin, shop_id, poll_interval=settings.bulk_poll_seconds, on_progress=_print
            )

    progress = asyncio.run(go())
    engine.dispose()
    if progress.state == ImportState.failed:
        print(f"import failed: {progress.error}", file=sys.stderr)
        return 1
    return 0


def reconcile_command(
    settings: Settings, domain: str, client: Callable[[], httpx.AsyncClient] = _client
) -> int:
    shop_id, engine = _shop_id(settings, domain)
    if shop_id is None:
        print(f"shop {domain} is not installed", file=sys.stderr)
        return 1

    async def go() -> pull.ReconcileReport:
        async with client() as http:
            factory = make_sessionmaker(engine)
            await _fresh_token(settings, factory, http, domain)
            admin = AdminClient(http, settings)
            return await pull.reconcile(factory, admin, shop_id)

    report = asyncio.run(go())
    engine.dispose()
    print(
        f"examined {report.examined} orders, repaired {report.repaired}; "
        f"up to date through {report.reconciled_through:%Y-%m-%d %H:%M} UTC"
    )
    return 0
