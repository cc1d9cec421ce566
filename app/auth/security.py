"""Response and log hygiene for the embedded app.

- `Content-Security-Policy: frame-ancestors …` on every HTML response
  (https://shopify.dev/docs/apps/build/security/app-server/set-up-iframe-protection): the shop's
  admin and admin.shopify.com on embedded pages, `'none'` on everything else (the middleware
  fills in `'none'` wherever a route did not name a shop).
- `X-Content-Type-Options`, `Referrer-Policy` and, on https, `Strict-Transport-Security` on every
  response (`SecurityHeadersMiddleware`, the outermost layer, so webhooks and errors carry them).
"""

from __future__ import annotations

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


# strict-origin-when-cross-origin rather than no-referrer: Shopify's admin and CDN still see which
# app origin a request or link comes from, while the path and query, where the launch URL carries
# `id_token`, `hmac` and `host`, never leave the app's origin (and nothing at all goes to plain http).
REFERRER_POLICY = "strict-origin-when-cross-origin"
HSTS = "max-age=31536000"


class SecurityHeadersMiddleware:
    """Headers every response gets: `frame-ancestors 'none';` on HTML that carries no CSP of its
    own (a page framed by the admin sets its shop's), nosniff, the referrer policy, and HSTS only
    when the request arrived over https: uvicorn sets the scheme from its own TLS, or from
    `X-Forwarded-Proto` when the proxy is one it trusts (`--proxy-headers`, `FORWARDED_ALLOW_IPS`;
    docs/deployment.md)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        https = scope.get("scheme") == "https"

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                headers = MutableHeaders(scope=message)
                if headers.get("content-type", "").startswith("text/html"):
                    headers.setdefault(CSP, NO_FRAMING)
                headers.setdefault("X-Content-Type-Options", "nosniff")
                headers.setdefault("Referrer-Policy", REFERRER_POLICY)
                if https:
                    headers.setdefault("Strict-Transport-Security", HSTS)
            await send(message)

        await self.app(scope, receive, send_with_headers)
