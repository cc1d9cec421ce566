"""The signing helpers tests and the local double rely on produce what Shopify sends."""

import base64
import hashlib
import hmac

import jwt

from shopify_double.signing import make_session_token, sign_webhook_body

SHOP = "demo.myshopify.com"
API_KEY = "4b7c2f0e9d1a3c5e7f9b2d4a6c8e0f13"
SECRET = "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"


def test_webhook_signature_is_base64_hmac_sha256_of_the_raw_body():
    body = b'{"id":820982911946154508,"total_price":"199.65"}'
    expected = base64.b64encode(hmac.new(SECRET.encode(), body, hashlib.sha256).digest()).decode()
    assert sign_webhook_body(body, SECRET) == expected


def test_webhook_signature_matches_openssl():
    # printf '{}' | openssl dgst -sha256 -hmac hush -binary | base64
    assert sign_webhook_body(b"{}", "hush") == "UFwgrGBPZilFtmKh8TqcovA78LGYb1BdWu9I4Q2oyRg="


def test_session_token_has_app_bridge_claims():
    token = make_session_token(SHOP, API_KEY, SECRET, sub="42", now=1_800_000_000)
    header = jwt.get_unverified_header(token)
    claims = jwt.decode(token, options={"verify_signature": False})
    assert header["alg"] == "HS256"
    assert claims["iss"] == f"https://{SHOP}/admin"
    assert claims["dest"] == f"https://{SHOP}"
    assert claims["aud"] == API_KEY
    assert claims["sub"] == "42"
    assert claims["exp"] - claims["nbf"] == 60
    assert claims["jti"] and claims["sid"]


def test_session_tokens_get_distinct_jti():
    first, second = (make_session_token(SHOP, API_KEY, SECRET, now=1_800_000_000) for _ in range(2))
    jti = [jwt.decode(tok, options={"verify_signature": False})["jti"] for tok in (first, second)]
    assert jti[0] != jti[1]
