"""One error base class that carries its HTTP status, and its handlers.

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


class AppError(Exception):
    status_code = 400

    def __init__(self, detail: str, *, status_code: int | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        if status_code is not None:
            self.status_code = status_code


class BadRequest(AppError):
    status_code = 400


class Unauthorized(AppError):
    status_code = 401


class NotFound(AppError):
    status_code = 404


class RequestTimeout(AppError):
    status_code = 408


class Gone(AppError):
    status_code = 410


class LengthRequired(AppError):
    status_code = 411


class PayloadTooLarge(AppError):
    status_code = 413


class UnprocessablePayload(AppError):
    status_code = 422


class ServiceUnavailable(AppError):
    status_code = 503


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
