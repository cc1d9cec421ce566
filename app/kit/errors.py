"""One error base class that carries its HTTP status, and its kinds. Their handlers (the page or
JSON a request gets, the database-unavailable 503) are `app.kit.error_handlers`; this module imports
nothing but the standard library, so a process that only parses (the history import's parser,
`app.imports.lines`) starts without the web stack.
"""

from __future__ import annotations


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
