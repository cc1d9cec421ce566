"""The `hmac` query parameter Shopify signs the App URL load and the OAuth callback with.

https://shopify.dev/docs/apps/build/authentication-authorization/access-tokens/authorization-code-grant

Mirrors `validateHmac` in Shopify's JS library: drop `hmac`/`signature`, join repeated keys with
`,`, sort by key, form-encode like `URLSearchParams` (space as `%20`), HMAC-SHA256 with the client
secret as lowercase hex, constant-time compare, and a timestamp within 90 s of now either way.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping, Sequence
from urllib.parse import parse_qsl, quote

MAX_AGE_SECONDS = 90
_UNSIGNED = frozenset({"hmac", "signature"})


def _encode(text: str) -> str:
    # URLSearchParams leaves `*-._` and alphanumerics alone and escapes everything else, `~`
    # included; `quote` differs only on `*` and `~`.
    return quote(text, safe="*").replace("~", "%7E")


def _message(params: Mapping[str, str]) -> str:
    return "&".join(
        f"{_encode(key)}={_encode(value)}" for key, value in sorted(params.items()) if key not in _UNSIGNED
    )


def compute_query_hmac(params: Mapping[str, str], secret: str) -> str:
    """Lowercase hex HMAC-SHA256 of `params` (without `hmac`/`signature`) under `secret`."""
    return hmac.new(secret.encode(), _message(params).encode(), hashlib.sha256).hexdigest()


def sign_query(params: Mapping[str, str], secret: str) -> str:
    """Return the query string for `params` with Shopify's `hmac` appended, as Shopify would send it."""
    signed = {key: value for key, value in params.items() if key not in _UNSIGNED}
    signed["hmac"] = compute_query_hmac(signed, secret)
    return "&".join(f"{_encode(key)}={_encode(value)}" for key, value in signed.items())


def _parse(raw_query: str) -> dict[str, str] | None:
    params: dict[str, str] = {}
    for key, value in parse_qsl(raw_query.lstrip("?"), keep_blank_values=True):
        if key not in params:
            params[key] = value
        elif key in ("hmac", "timestamp"):
            return None  # a second hmac or timestamp is never Shopify's doing
        else:
            params[key] = f"{params[key]},{value}"
    return params


def _require_secrets(secrets: Sequence[str]) -> None:
    # An empty secret would let anyone sign; refuse the configuration instead of the request.
    if isinstance(secrets, str) or not secrets or not all(secrets):
        raise ValueError("at least one non-empty client secret is required")


def verify_query_hmac(
    raw_query: str, secrets: Sequence[str], now: float, max_age: float = MAX_AGE_SECONDS
) -> bool:
    """True when `raw_query` carries a valid Shopify `hmac` under any of `secrets` and a fresh `timestamp`.

    `secrets` lists the current client secret first and, during a rotation, the previous one.
    """
    _require_secrets(secrets)
    params = _parse(raw_query)
    if params is None:
        return False
    given = params.get("hmac", "")
    timestamp = params.get("timestamp", "")
    if not given or not timestamp.isascii() or not timestamp.isdigit():
        return False
    if abs(now - int(timestamp)) > max_age:
        return False
    given_bytes = given.encode()
    valid = False
    for secret in secrets:
        # Every secret is tried, so the time taken does not tell which one matched.
        valid |= hmac.compare_digest(compute_query_hmac(params, secret).encode(), given_bytes)
    return valid
