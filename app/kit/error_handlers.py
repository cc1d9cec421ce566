"""The handlers of `app.kit.errors.AppError` and of a database that cannot be reached.

A browser opening a page gets the message as a plain HTML page (framed by the shop's admin, so it
shows inside the app); a fetch or an API client gets `{"detail": ...}`. A database that cannot be
reached is a 503 with `Retry-After`, never a bare 500.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Callable

import psycopg
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from psycopg_pool import PoolTimeout
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as SQLAlchemyPoolTimeout

from app.kit.errors import AppError

log = logging.getLogger(__name__)

DATABASE_UNAVAILABLE = "The app cannot reach its database right now. Please try again in a minute."
RETRY_AFTER_S = 30
_PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>RFM &amp; CLV</title>
</head>
<body>
  <h1>RFM &amp; CLV</h1>
  <p id="error">{message}</p>
</body>
</html>
"""


def wants_page(request: Request) -> bool:
    """A browser navigation or form post (no `Authorization`, HTML accepted), not a fetch."""
    return "authorization" not in request.headers and "text/html" in request.headers.get("accept", "")


# Sets a page's framing policy for the shop named in the request (the Shopify boundary knows which
# shop may frame it; this layer does not).
Frame = Callable[[Response, str | None], Response]


def error_response(
    request: Request, status_code: int, detail: str, frame: Frame, headers: dict[str, str] | None = None
) -> Response:
    if wants_page(request):
        page = HTMLResponse(_PAGE.format(message=html.escape(detail)), status_code, headers=headers)
        return frame(page, request.query_params.get("shop"))
    return JSONResponse({"detail": detail}, status_code, headers=headers)


def database_unavailable(exc: Exception) -> bool:
    """The database is away (refused, timed out, connection lost), as opposed to a bug in a query."""
    if isinstance(exc, DBAPIError):
        return isinstance(exc, OperationalError) or exc.connection_invalidated
    return isinstance(exc, (SQLAlchemyPoolTimeout, psycopg.OperationalError, PoolTimeout))


def install_error_handler(app: FastAPI, frame: Frame) -> None:
    @app.exception_handler(AppError)
    async def _handle(request: Request, exc: AppError) -> Response:
        return error_response(request, exc.status_code, exc.detail, frame)

    async def _database(request: Request, exc: Exception) -> Response:
        if not database_unavailable(exc):
            raise exc
        log.warning("database unavailable on %s: %s", request.url.path, type(exc).__name__)
        return error_response(request, 503, DATABASE_UNAVAILABLE, frame, {"Retry-After": str(RETRY_AFTER_S)})

    for kind in (DBAPIError, SQLAlchemyPoolTimeout, psycopg.OperationalError, PoolTimeout):
        app.add_exception_handler(kind, _database)
