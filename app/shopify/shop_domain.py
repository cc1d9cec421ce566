"""Validation of the `shop` and `host` values Shopify puts in URLs.

https://shopify.dev/docs/apps/build/authentication-authorization/access-tokens/authorization-code-grant

Never put a `shop` into a redirect, a CSP header or an outbound URL before it has been through
`sanitize_shop_domain`.
"""

from __future__ import annotations

import base64
import binascii
import re
from urllib.parse import urlsplit

from shopify.utils.shop_url import sanitize_shop_domain as _shopify_sanitize_shop_domain

# The host alone (optionally with a scheme and trailing slashes, as the JS lib allows); anything
# carrying a path, query, credentials or port is refused outright rather than trimmed.
_BARE_HOST = re.compile(r"^(?:https?://)?([A-Za-z0-9._-]+)/*$")
# The unified admin URL the JS lib converts to the legacy domain (`shopAdminUrlToLegacyUrl`).
_ADMIN_STORE_URL = re.compile(
    r"^(?:https?://)?admin\.shopify\.com/store/([A-Za-z0-9][A-Za-z0-9_-]*)/*$", re.IGNORECASE
)

_BASE64 = re.compile(r"^[0-9a-zA-Z+/]+={0,2}$")
# What a decoded `host` may look like: a hostname and a plain path (`admin.shopify.com/store/demo`).
_DECODED_HOST = re.compile(r"^[A-Za-z0-9.-]+(?:/[A-Za-z0-9._~-]+)*/?$")
_HOST_ORIGINS = (".myshopify.com", ".shopify.com", ".myshopify.io", ".spin.dev", ".shop.dev")


def sanitize_shop_domain(value: str | None) -> str | None:
    """Return the lowercase `<name>.myshopify.com` for `value`, or None when it is not one.

    Accepts `x.myshopify.com` (any case, optional scheme / trailing slash) and the unified admin
    URL `admin.shopify.com/store/x`. The final pattern check is ShopifyAPI's own, which only
    admits `[a-z0-9][a-z0-9-]*[a-z0-9].myshopify.com`.
    """
    if not value:
        return None
    candidate = value.strip()
    admin = _ADMIN_STORE_URL.match(candidate)
    if admin:
        candidate = f"{admin.group(1)}.myshopify.com"
    else:
        bare = _BARE_HOST.match(candidate)
        if bare is None:
            return None
        candidate = bare.group(1)
    # ShopifyAPI appends `.myshopify.com` to a dot-less name; a query parameter from Shopify always
    # carries the full domain, so a bare name is refused rather than completed.
    if "." not in candidate:
        return None
    result: str | None = _shopify_sanitize_shop_domain(candidate)
    return result


def decode_host(host: str | None) -> str | None:
    """Decode the base64 `host` parameter (often unpadded) into e.g. `admin.shopify.com/store/demo`.

    Returns None unless it is base64 and names a host under one of Shopify's admin origins.
    """
    if not host or not _BASE64.match(host):
        return None
    padded = host.rstrip("=")
    padded += "=" * (-len(padded) % 4)
    try:
        decoded = base64.b64decode(padded, validate=True).decode("ascii")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    if not _DECODED_HOST.match(decoded):
        return None
    hostname = urlsplit(f"https://{decoded}").hostname or ""
    if not hostname.endswith(_HOST_ORIGINS):
        return None
    return decoded
