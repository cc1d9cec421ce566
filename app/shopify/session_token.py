"""App Bridge session tokens (ID tokens), validated as Shopify's libraries do.

https://shopify.dev/docs/apps/build/authentication-authorization/session-tokens

ShopifyAPI ships `shopify.session_token.decode_from_header`, but it does not fit here, so PyJWT is
called directly with the same rules:
- it reads the clock itself, so a caller (the tests, a replayed request) cannot pass `now`;
- it requires `iss, dest, sub, jti, sid` but not `exp`/`nbf`, so a token without an expiry passes;
- it takes one secret, so the previous secret cannot be accepted during a rotation;
- it raises several unrelated exception types, where callers here want one.
Its shop-domain rule is reused through `sanitize_shop_domain`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import jwt

from app.shopify.shop_domain import sanitize_shop_domain

if TYPE_CHECKING:
    from jwt.types import Options

ALGORITHM = "HS256"
LEEWAY_SECONDS = 10  # App Bridge often sends an `nbf` slightly in the future
REQUIRED_CLAIMS = ("iss", "dest", "aud", "sub", "jti", "sid", "exp", "nbf")


class InvalidSessionToken(Exception):
    """The session token cannot be trusted; answer 401 with `X-Shopify-Retry-Invalid-Session-Request: 1`."""

    status_code = 401

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class SessionTokenClaims:
    shop: str  # `<name>.myshopify.com`, from `dest`
    iss: str
    dest: str
    aud: str
    sub: str  # the staff member's user id
    sid: str
    jti: str
    exp: int
    nbf: int
    iat: int | None


def _shop_from(claims: Mapping[str, Any]) -> str:
    iss, dest = claims["iss"], claims["dest"]
    if not isinstance(iss, str) or not isinstance(dest, str):
        raise InvalidSessionToken("iss and dest must be strings")
    iss_url, dest_url = urlsplit(iss), urlsplit(dest)
    if (iss_url.scheme, iss_url.netloc) != (dest_url.scheme, dest_url.netloc):
        raise InvalidSessionToken("iss and dest name different hosts")
    if dest_url.scheme != "https":
        raise InvalidSessionToken("dest is not an https URL")
    shop = sanitize_shop_domain(dest_url.netloc)
    if shop is None or shop != dest_url.netloc.lower():
        raise InvalidSessionToken("dest is not a shop domain")
    return shop


def _epoch(claims: Mapping[str, Any], name: str) -> int:
    value = claims[name]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidSessionToken(f"{name} is not a number")
    return int(value)


def _decode_verified(token: str, api_key: str, secrets: Sequence[str]) -> dict[str, Any]:
    options: Options = {
        "require": list(REQUIRED_CLAIMS),
        "strict_aud": True,
        # Time claims are checked against the caller's `now` below; PyJWT only reads the clock.
        "verify_exp": False,
        "verify_nbf": False,
        "verify_iat": False,
    }
    for secret in secrets:
        try:
            payload: dict[str, Any] = jwt.decode(
                token, secret, algorithms=[ALGORITHM], audience=api_key, options=options
            )
            return payload
        except jwt.InvalidSignatureError:
            continue  # maybe signed with the previous secret
        except jwt.MissingRequiredClaimError as exc:
            raise InvalidSessionToken(f"missing claim {exc.claim}") from None
        except jwt.InvalidAudienceError:
            raise InvalidSessionToken("token is for another app (aud)") from None
        except jwt.InvalidAlgorithmError:
            raise InvalidSessionToken("algorithm is not HS256") from None
        except jwt.PyJWTError as exc:
            raise InvalidSessionToken(f"malformed token: {exc}") from None
    raise InvalidSessionToken("signature does not match the client secret")


def decode_session_token(
    token: str, api_key: str, secrets: Sequence[str], now: float | None = None
) -> SessionTokenClaims:
    """Verify an App Bridge session token and return its claims.

    `secrets` lists the current client secret first and, during a rotation, the previous one.
    Raises `InvalidSessionToken` for anything that is not a valid, current token for this app.
    """
    if isinstance(secrets, str) or not secrets or not all(secrets):
        raise ValueError("at least one non-empty client secret is required")
    if not isinstance(token, str) or not token:
        raise InvalidSessionToken("no token")
    claims = _decode_verified(token, api_key, secrets)
    current = time.time() if now is None else now
    exp, nbf = _epoch(claims, "exp"), _epoch(claims, "nbf")
    iat = _epoch(claims, "iat") if claims.get("iat") is not None else None
    if exp <= current - LEEWAY_SECONDS:
        raise InvalidSessionToken("token has expired")
    if nbf > current + LEEWAY_SECONDS:
        raise InvalidSessionToken("token is not valid yet (nbf)")
    shop = _shop_from(claims)
    for name in ("aud", "sub", "sid", "jti"):
        if not isinstance(claims[name], str) or not claims[name]:
            raise InvalidSessionToken(f"{name} is not a non-empty string")
    return SessionTokenClaims(
        shop=shop,
        iss=claims["iss"],
        dest=claims["dest"],
        aud=claims["aud"],
        sub=claims["sub"],
        sid=claims["sid"],
        jti=claims["jti"],
        exp=exp,
        nbf=nbf,
        iat=iat,
    )
