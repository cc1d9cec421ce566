"""What async job handlers get from the worker: one HTTP client, one Admin API client, the shops'
tokens (`app.shops.tokens.ShopTokens`, the same owner the web and the CLI use), and what a job
kind keeps for the worker's life (`keep`: the rescore's cache).

Built inside the worker's event loop on first use and closed when the worker stops. It lives with
the jobs, below the worker, so that a domain's `tasks.py` can name it without importing the worker."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
from sqlalchemy.orm import Session, sessionmaker

from app.config import Settings
from app.kit.http import outbound_client
from app.shopify.admin_client import AdminClient
from app.shops.tokens import ShopTokens

T = TypeVar("T")


@dataclass
class WorkerServices:
    factory: sessionmaker[Session]
    settings: Settings
    http: httpx.AsyncClient
    admin: AdminClient
    tokens: ShopTokens
    owns_http: bool = True
    kept: dict[type, Any] = field(default_factory=dict)

    def keep(self, kind: type[T]) -> T:
        """The one `kind()` this worker keeps for its life (built on first use): a job kind's state
        across jobs, such as the rescore's cache, without this layer knowing the kind."""
        if kind not in self.kept:
            self.kept[kind] = kind()
        return self.kept[kind]

    async def aclose(self) -> None:
        if self.owns_http:
            await self.http.aclose()


ServicesFactory = Callable[[sessionmaker[Session]], Coroutine[Any, Any, WorkerServices]]


def services_factory(settings: Settings, http: httpx.AsyncClient | None = None) -> ServicesFactory:
    """The default: a fresh client per worker, or `http` (e.g. over the Shopify double's ASGI app)."""

    async def build(factory: sessionmaker[Session]) -> WorkerServices:
        client = http or outbound_client()
        return WorkerServices(
            factory=factory,
            settings=settings,
            http=client,
            admin=AdminClient(client, settings),
            tokens=ShopTokens(settings, factory, lambda: client),
            owns_http=http is None,
        )

    return build
