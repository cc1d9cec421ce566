"""What job handlers get from the worker: one HTTP client, one Admin API client, token access,
and the rescore's cache (``app.scoring.service.RescoreCache``).

Built inside the worker's event loop on first use and closed when the worker stops."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy.orm import Session, sessionmaker

from app.auth.service import ShopAuth
from app.config import Settings
from app.scoring.service import RescoreCache
from app.shopify.admin_client import AdminClient


@dataclass
class WorkerServices:
    factory: sessionmaker[Session]
    settings: Settings
    http: httpx.AsyncClient
    admin: AdminClient
    auth: ShopAuth
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
            auth=ShopAuth(settings, factory, lambda: client),
            rescore_cache=RescoreCache(),
            owns_http=http is None,
        )

    return build
