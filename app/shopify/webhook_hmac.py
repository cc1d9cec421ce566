"""Webhook signatures: base64 HMAC-SHA256 of the raw body with the app's client secret."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable


def webhook_digest(body: bytes, secret: str) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def verify_webhook_hmac(body: bytes, given: str, secrets: Iterable[str]) -> bool:
    """True when `given` is the signature of `body` under any of `secrets` (two during a rotation).

    Every secret is tried, so the time taken does not depend on which one matched."""
    ok = False
    for secret in secrets:
        ok |= hmac.compare_digest(webhook_digest(body, secret).encode(), given.encode())
    return ok
