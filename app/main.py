"""create_app(): the ASGI application, its lifespan (engine, sessionmaker, one shared httpx client).

The outbound httpx client (OAuth and Admin API calls) is `app.state.http`. Pass
`create_app(settings, http_client=client)` to inject one, e.g. an `httpx.AsyncClient` over
`httpx.ASGITransport(create_devstore_app(store))` with
`settings.shopify_admin_base_url_template = "http://devstore/shops/{shop}"`; an injected client is
set at once (so the app works under a transport that runs no lifespan) and never closed by the app.
Likewise `create_app(settings, engine=engine)` uses the caller's SQLAlchemy engine (its pool, its
connections) and leaves it open; without one the app makes its own and disposes of it on shutdown.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

import httpx
from fastapi import FastAPI
from sqlalchemy import Engine
from starlette.middleware.gzip import GZipMiddleware
from starlette.types import ASGIApp

from app import tasks  # noqa: F401 - every job kind: enqueueing reads its kind's retry policy
from app.admin.rendering import static_files as admin_static_files
from app.admin.router import router as admin_router
from app.auth.dev import router as dev_router
from app.auth.router import router as auth_router
from app.auth.security import SecurityHeadersMiddleware, set_frame_ancestors
from app.auth.service import ShopAuth
from app.config import Settings, get_settings
from app.deps import install_session_token_handler
from app.health import router as health_router
from app.jobs.metrics import QueueDepthCollector
from app.kit.db import is_sqlite, make_engine, make_sessionmaker, webhook_pool
from app.kit.error_handlers import install_error_handler
from app.kit.http import outbound_client
from app.kit.observability import RequestContextMiddleware, configure_logging, install_token_redaction
from app.webhooks.endpoint import WebhookEndpoint
from app.webhooks.flow_lifecycle import router as flow_lifecycle_router
from app.webhooks.handlers import TOPICS as WEBHOOK_TOPICS

GZIP_MIN_BYTES = 1000


class RfmApp(FastAPI):
    def build_middleware_stack(self) -> ASGIApp:
        # Outside Starlette's own error middleware too, so that even a bare 500 carries the headers.
        return SecurityHeadersMiddleware(super().build_middleware_stack())


def create_app(
    settings: Settings | None = None,
    http_client: httpx.AsyncClient | None = None,
    engine: Engine | None = None,
) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            if not is_sqlite(settings.database_url):
                # order webhooks on PostgreSQL: one function call per delivery (app.webhooks.endpoint)
                app.state.webhook_pool = await stack.enter_async_context(
                    webhook_pool(
                        settings.database_url,
                        settings.webhook_pool_size,
                        settings.webhook_connection_wait_seconds,
                        settings.webhook_pool_min_size,
                    )
                )
            if http_client is None:
                app.state.http = await stack.enter_async_context(outbound_client())
            yield
        if engine is None:
            app.state.engine.dispose()

    app = RfmApp(
        title="RFM & CLV for Shopify",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        # the schema maps every route for whoever asks; only a developer needs it
        openapi_url="/openapi.json" if settings.app_env == "development" else None,
    )
    app.state.settings = settings
    app.state.engine = engine if engine is not None else make_engine(settings.database_url)
    app.state.sessionmaker = make_sessionmaker(app.state.engine)
    app.state.queue_depth = QueueDepthCollector(app.state.sessionmaker)
    if http_client is not None:
        app.state.http = http_client
    app.state.auth = ShopAuth(settings, app.state.sessionmaker, lambda: app.state.http)
    install_error_handler(app, set_frame_ancestors)
    install_session_token_handler(app)
    install_token_redaction()
    app.add_middleware(
        WebhookEndpoint, topics=WEBHOOK_TOPICS
    )  # POST /webhooks, inside the request id middleware
    app.add_middleware(RequestContextMiddleware)
    # Pages, JSON and the CSV compress 5-8x; bodies under GZIP_MIN_BYTES are not worth it.
    app.add_middleware(GZipMiddleware, minimum_size=GZIP_MIN_BYTES)
    app.include_router(health_router)
    app.include_router(auth_router)
    if settings.dev_login:
        app.include_router(dev_router)
    app.include_router(admin_router)
    app.include_router(
        flow_lifecycle_router
    )  # POST /flow/lifecycle: Shopify Flow's trigger lifecycle callback
    app.mount("/admin/static", admin_static_files, name="admin-static")
    return app


def __getattr__(name: str) -> object:
    # `uvicorn app.main:app` builds the app on first use, not at import time (tests import this module).
    if name == "app":
        settings = get_settings()
        configure_logging(settings.log_level, json_logs=settings.json_logs)
        return create_app(settings)
    raise AttributeError(name)
