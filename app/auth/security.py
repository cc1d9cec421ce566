"""Response and log hygiene for the embedded app.

- `Content-Security-Policy: frame-ancestors …` on every HTML response (PLATFORM §7): the shop's
  admin and admin.shopify.com on embedded pages, `'none'` on everything else (the middleware
  fills in `'none'` wherever a route did not name a shop).
- A logging filter that masks what must never sit in a log line: access, refresh and session
  tokens (e.g. `id_token=` in an access-log URL, which Shopify puts in the App URL).
"""

from __future__ import annotations

import logging
import re

from starlette.datastructures import MutableHeaders
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.shopify.shop_domain import sanitize_shop_domain

CSP = "Content-Security-Policy"
NO_FRAMING = "frame-ancestors 'none';"


def frame_ancestors(shop: str | None) -> str:
    """The CSP for a page of `shop` (validated again here: it goes into a header)."""
    valid = sanitize_shop_domain(shop)
    if valid is None:
        return NO_FRAMING
    return f"frame-ancestors https://{valid} https://admin.shopify.com;"


def set_frame_ancestors(response: Response, shop: str | None) -> Response:
    response.headers[CSP] = frame_ancestors(shop)
    return response


class FrameAncestorsMiddleware:
    """Adds `frame-ancestors 'none';` to HTML responses that carry no CSP of their own."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_csp(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                if headers.get("content-type", "").startswith("text/html") and CSP not in headers:
                    headers[CSP] = NO_FRAMING
            await send(message)

        await self.app(scope, receive, send_with_csp)


_SECRET_PARAMS = re.compile(
    r"(?i)\b(id_token|code|access_token|refresh_token|subject_token|client_secret)=([^&\s\"']+)"
)
_SHOPIFY_TOKEN = re.compile(r"\bshp(?:at|ua|ca|pa|ss|rt)_[A-Za-z0-9]+")
_JWT = re.compile(r"\beyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")


def redact(text: str) -> str:
    text = _SECRET_PARAMS.sub(lambda m: f"{m.group(1)}=[redacted]", text)
    text = _SHOPIFY_TOKEN.sub("[redacted]", text)
    return _JWT.sub("[redacted]", text)


class RedactTokensFilter(logging.Filter):
    """Masks tokens in a record's final message (URLs logged by httpx and uvicorn included)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg = cleaned
            record.args = None
        return True


# Loggers that print request URLs; the app's own code never passes a token to a logger.
REDACTED_LOGGERS = ("httpx", "httpcore", "uvicorn.access", "uvicorn.error", "fastapi")


def install_token_redaction(names: tuple[str, ...] = REDACTED_LOGGERS) -> None:
    for name in names:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactTokensFilter) for f in logger.filters):
            logger.addFilter(RedactTokensFilter())
