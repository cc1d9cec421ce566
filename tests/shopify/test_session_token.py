"""App Bridge session tokens, checked with real JWTs."""

import base64
import json

import jwt
import pytest

from app.shopify.session_token import InvalidSessionToken, SessionTokenClaims, decode_session_token
from shopify_double.signing import make_session_token

SHOP = "demo.myshopify.com"
API_KEY = "4b7c2f0e9d1a3c5e7f9b2d4a6c8e0f13"
SECRET = "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"
OLD_SECRET = "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"
OTHER_APP_SECRET = "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"
NOW = 1_800_000_000


def token(**overrides) -> str:
    overrides.setdefault("now", NOW)
    return make_session_token(SHOP, API_KEY, overrides.pop("secret", SECRET), **overrides)


def decode(tok: str, secrets=(SECRET,), now: float = NOW) -> SessionTokenClaims:
    return decode_session_token(tok, API_KEY, list(secrets), now=now)


def test_valid_token_yields_the_shop_from_dest():
    claims = decode(token(sub="42", sid="session-1"))
    assert claims.shop == SHOP
    assert (claims.sub, claims.sid, claims.aud) == ("42", "session-1", API_KEY)
    assert (claims.exp, claims.nbf, claims.iat) == (NOW + 60, NOW, NOW)
    assert claims.iss == f"https://{SHOP}/admin"
    assert claims.dest == f"https://{SHOP}"


def test_token_without_now_uses_the_clock():
    assert decode_session_token(make_session_token(SHOP, API_KEY, SECRET), API_KEY, [SECRET]).shop == SHOP


def test_expired_token_is_rejected():
    with pytest.raises(InvalidSessionToken, match="expired"):
        decode(token(exp_in=-11))


def test_token_expired_within_leeway_is_accepted():
    assert decode(token(exp_in=-9)).shop == SHOP


def test_token_with_nbf_beyond_leeway_is_rejected():
    with pytest.raises(InvalidSessionToken, match="not valid yet"):
        decode(token(nbf_offset=11))


def test_token_with_nbf_within_leeway_is_accepted():
    assert decode(token(nbf_offset=10)).shop == SHOP


def test_token_for_another_app_is_rejected():
    with pytest.raises(InvalidSessionToken, match="aud"):
        decode(token(aud="another-apps-client-id"))


def test_token_with_iss_and_dest_on_different_shops_is_rejected():
    with pytest.raises(InvalidSessionToken, match="different hosts"):
        decode(token(dest="https://other-shop.myshopify.com"))


def test_token_naming_a_non_shop_host_is_rejected():
    with pytest.raises(InvalidSessionToken, match="shop domain"):
        decode(token(iss="https://evil.com/admin", dest="https://evil.com"))


def test_token_with_plain_http_dest_is_rejected():
    with pytest.raises(InvalidSessionToken):
        decode(token(iss=f"http://{SHOP}/admin", dest=f"http://{SHOP}"))


def test_token_signed_with_another_apps_secret_is_rejected():
    with pytest.raises(InvalidSessionToken, match="signature"):
        decode(token(secret=OTHER_APP_SECRET))


def test_token_signed_with_previous_secret_is_accepted_during_rotation():
    assert decode(token(secret=OLD_SECRET), secrets=(SECRET, OLD_SECRET)).shop == SHOP


def test_unsigned_alg_none_token_is_rejected():
    with pytest.raises(InvalidSessionToken, match="HS256"):
        decode(token(alg="none"))


def test_token_signed_with_another_hmac_algorithm_is_rejected():
    with pytest.raises(InvalidSessionToken, match="HS256"):
        decode(token(alg="HS512", secret=SECRET * 2))  # 64+ bytes, as HS512 wants


def test_header_claiming_hs256_over_a_none_signature_is_rejected():
    unsigned = token(alg="none")
    _, payload, _ = unsigned.split(".")
    header = base64.urlsafe_b64encode(json.dumps({"alg": "HS256", "typ": "JWT"}).encode()).rstrip(b"=")
    with pytest.raises(InvalidSessionToken, match="signature"):
        decode(f"{header.decode()}.{payload}.")


@pytest.mark.parametrize("garbage", ["not-a-jwt", "a.b.c", "", "Bearer x.y.z"])
def test_garbage_is_rejected(garbage):
    with pytest.raises(InvalidSessionToken):
        decode(garbage)


@pytest.mark.parametrize("claim", ["sid", "sub", "jti", "iss", "dest", "aud", "exp", "nbf"])
def test_token_missing_a_required_claim_is_rejected(claim):
    with pytest.raises(InvalidSessionToken, match=claim):
        decode(token(omit=[claim]))


def test_token_with_non_numeric_exp_is_rejected():
    with pytest.raises(InvalidSessionToken, match="exp"):
        decode(token(extra={"exp": "tomorrow"}))


def test_invalid_session_token_carries_its_reason_and_401():
    with pytest.raises(InvalidSessionToken) as caught:
        decode(token(exp_in=-60))
    assert caught.value.reason == "token has expired"
    assert caught.value.status_code == 401


def test_token_made_by_pyjwt_directly_matches_the_documented_shape():
    payload = jwt.decode(
        token(),
        SECRET,
        algorithms=["HS256"],
        audience=API_KEY,
        options={"verify_exp": False, "verify_nbf": False, "verify_iat": False},
    )
    assert set(payload) == {"iss", "dest", "aud", "sub", "exp", "nbf", "iat", "jti", "sid"}
