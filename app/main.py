"""create_app(): the ASGI application, its lifespan (engine, sessionmaker, one shared httpx client)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI

from app.config import Settings, get_settings
from app.db import make_engine, make_sessionmaker
from app.errors import install_error_handler
from app.webhooks.router import router as webhooks_router


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with httpx.AsyncClient(timeout=httpx.Timeout(30.0, connect=5.0)) as client:
            app.state.http = client
            yield
        app.state.engine.dispose()

    app = FastAPI(title="RFM & CLV for Shopify", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.settings = settings
    app.state.engine = make_engine(settings.database_url)
    app.state.sessionmaker = make_sessionmaker(app.state.engine)
    install_error_handler(app)
    app.include_router(webhooks_router)
    return app


def __getattr__(name: str) -> object:
    # `uvicorn app.main:app` builds the app on first use, not at import time (tests import this module).
    if name == "app":
        return create_app()
    raise AttributeError(name)
