"""What async job handlers get from the worker: one HTTP client, one Admin API client, the shops'
tokens (`app.shops.tokens.ShopTokens`, the same owner the web and the CLI use), and the rescore's
cache (`app.scoring.cache.RescoreCache`, kept for the worker's life).

Built inside the worker's event loop on first use and closed when the worker stops. It lives with
the jobs, below the worker, so that a domain's `tasks.py` can name it without importing the worker."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy.orm import Session, sessionmaker

from app.config import Settings
from app.scoring.cache import RescoreCache
from app.shopify.admin_client import AdminClient
from app.shops.tokens import ShopTokens


@dataclass
class WorkerServices:
    factory: sessionmaker[Session]
    settings: Settings
    http: httpx.AsyncClient
    admin: AdminClient
    tokens: ShopTokens
    rescore_cache: RescoreCache
    owns_http: bool = True

    async def aclose(self) -> None:
        if self.owns_http:
            await self.http.aclose()


ServicesFactory = Callable[[sessionmaker[Session]], Coroutine[Any, Any, WorkerServices]]


def services_factory(settings: Settings, http: httpx.AsyncClient | None = None) -> ServicesFactory:
    """The default: a fresh client per worker, or `http` (e.g. over the Shopify double's ASGI app)."""

    async def build(factory: sessionmaker[Session]) -> WorkerServices:
        client = http or httpx.AsyncClient(timeout=httpx.Timeout(30.0, connect=5.0))
        return WorkerServices(
            factory=factory,
            settings=settings,
            http=client,
            admin=AdminClient(client, settings),
            tokens=ShopTokens(settings, factory, lambda: client),
            rescore_cache=RescoreCache(),
            owns_http=http is None,
        )

    return build
