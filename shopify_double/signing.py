"""Real signing helpers for tests and the local Shopify double: what Shopify would send, signed for real."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

import jwt

from app.shopify.query_hmac import compute_query_hmac, sign_query

__all__ = ["compute_query_hmac", "make_session_token", "sign_query", "sign_webhook_body"]


def make_session_token(
    shop: str,
    api_key: str,
    secret: str,
    *,
    sub: str = "1",
    exp_in: int = 60,
    nbf_offset: int = 0,
    aud: str | None = None,
    iss: str | None = None,
    dest: str | None = None,
    alg: str = "HS256",
    sid: str | None = None,
    jti: str | None = None,
    now: float | None = None,
    omit: Iterable[str] = (),
    extra: Mapping[str, Any] | None = None,
) -> str:
    """A session token as App Bridge sends it for `shop` (lifetime 1 minute by default).

    `nbf_offset` moves `nbf` relative to `now`; `omit` drops claims; `alg="none"` yields an
    unsigned token.
    """
    issued = int(time.time() if now is None else now)
    claims: dict[str, Any] = {
        "iss": iss if iss is not None else f"https://{shop}/admin",
        "dest": dest if dest is not None else f"https://{shop}",
        "aud": aud if aud is not None else api_key,
        "sub": sub,
        "exp": issued + exp_in,
        "nbf": issued + nbf_offset,
        "iat": issued,
        "jti": jti if jti is not None else str(uuid.uuid4()),
        "sid": sid if sid is not None else uuid.uuid4().hex,
    }
    claims.update(extra or {})
    for name in omit:
        claims.pop(name, None)
    key = "" if alg == "none" else secret  # PyJWT insists on an empty key for "none"
    return jwt.encode(claims, key, algorithm=alg)


def sign_webhook_body(body: bytes, secret: str) -> str:
    """The `X-Shopify-Hmac-Sha256` header value for `body`: base64 HMAC-SHA256 of the raw bytes."""
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode("ascii")
