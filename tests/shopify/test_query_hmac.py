"""The `hmac` query signature on the App URL load and the OAuth callback."""

import hashlib
import hmac

import pytest

from app.shopify.query_hmac import verify_query_hmac
from shopify_double.signing import sign_query

SECRET = "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"
OLD_SECRET = "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"
NOW = 1_800_000_000


def launch_params(timestamp: int = NOW) -> dict[str, str]:
    return {
        "embedded": "1",
        "host": "YWRtaW4uc2hvcGlmeS5jb20vc3RvcmUvZGVtbw",
        "id_token": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl",
        "locale": "en",
        "session": "8f2c1e0d9b7a6c5e4d3b2a1f0e9d8c7b",
        "shop": "demo.myshopify.com",
        "timestamp": str(timestamp),
    }


def test_signed_launch_query_verifies():
    assert verify_query_hmac(sign_query(launch_params(), SECRET), [SECRET], now=NOW)


def test_shopify_documentation_vector_verifies():
    query = (
        "code=0907a61c0c8d55e99db179b68161bc00&shop=some-shop.myshopify.com&timestamp=1337178173"
        "&hmac=4712bf92ffc2917d15a2f5a273e39f0116667419aa4b6ac0b3baaf26fa3c4d20"
    )
    assert verify_query_hmac(query, ["hush"], now=1337178173)


def test_hmac_position_in_the_query_does_not_matter():
    query = sign_query(launch_params(), SECRET)
    hmac_pair = next(pair for pair in query.split("&") if pair.startswith("hmac="))
    rest = [pair for pair in query.split("&") if pair != hmac_pair]
    assert verify_query_hmac("&".join([hmac_pair, *reversed(rest)]), [SECRET], now=NOW)


def test_tampered_value_is_rejected():
    query = sign_query(launch_params(), SECRET).replace("shop=demo.", "shop=other.")
    assert not verify_query_hmac(query, [SECRET], now=NOW)


def test_wrong_hmac_is_rejected():
    query = sign_query(launch_params(), SECRET)
    forged = query[: query.index("hmac=") + 5] + "0" * 64
    assert not verify_query_hmac(forged, [SECRET], now=NOW)


def test_missing_hmac_is_rejected():
    query = sign_query(launch_params(), SECRET)
    unsigned = "&".join(pair for pair in query.split("&") if not pair.startswith("hmac="))
    assert not verify_query_hmac(unsigned, [SECRET], now=NOW)


def test_other_secret_is_rejected():
    assert not verify_query_hmac(sign_query(launch_params(), OLD_SECRET), [SECRET], now=NOW)


def test_timestamp_90_seconds_old_is_accepted():
    assert verify_query_hmac(sign_query(launch_params(NOW - 90), SECRET), [SECRET], now=NOW)


def test_stale_timestamp_is_rejected():
    assert not verify_query_hmac(sign_query(launch_params(NOW - 91), SECRET), [SECRET], now=NOW)


def test_future_timestamp_is_rejected():
    assert not verify_query_hmac(sign_query(launch_params(NOW + 91), SECRET), [SECRET], now=NOW)


def test_missing_timestamp_is_rejected():
    params = launch_params()
    del params["timestamp"]
    assert not verify_query_hmac(sign_query(params, SECRET), [SECRET], now=NOW)


def test_non_numeric_timestamp_is_rejected():
    params = launch_params()
    params["timestamp"] = "1.8e9"
    assert not verify_query_hmac(sign_query(params, SECRET), [SECRET], now=NOW)


def test_repeated_timestamp_is_rejected():
    query = sign_query(launch_params(), SECRET) + f"&timestamp={NOW}"
    assert not verify_query_hmac(query, [SECRET], now=NOW)


def test_previous_secret_is_accepted_during_rotation():
    assert verify_query_hmac(sign_query(launch_params(), OLD_SECRET), [SECRET, OLD_SECRET], now=NOW)


def test_previous_secret_is_rejected_once_rotation_ends():
    assert not verify_query_hmac(sign_query(launch_params(), OLD_SECRET), [SECRET], now=NOW)


def test_repeated_keys_are_signed_joined_with_commas():
    # As the JS lib does: values joined with "," and then form-encoded like any other value.
    message = f"ids%5B%5D=1%2C2&shop=demo.myshopify.com&timestamp={NOW}"
    digest = hmac.new(SECRET.encode(), message.encode(), hashlib.sha256).hexdigest()
    query = f"shop=demo.myshopify.com&ids[]=1&ids[]=2&timestamp={NOW}&hmac={digest}"
    assert verify_query_hmac(query, [SECRET], now=NOW)


def test_spaces_are_signed_as_percent_20():
    message = f"shop=demo.myshopify.com&state=a%20b&timestamp={NOW}"
    digest = hmac.new(SECRET.encode(), message.encode(), hashlib.sha256).hexdigest()
    query = f"shop=demo.myshopify.com&state=a+b&timestamp={NOW}&hmac={digest}"
    assert verify_query_hmac(query, [SECRET], now=NOW)


def test_signature_parameter_is_left_out_of_the_message():
    query = sign_query(launch_params(), SECRET) + "&signature=anything"
    assert verify_query_hmac(query, [SECRET], now=NOW)


@pytest.mark.parametrize("secrets", [[], [""], "a-single-string"])
def test_missing_secret_is_a_configuration_error(secrets):
    with pytest.raises(ValueError):
        verify_query_hmac(sign_query(launch_params(), SECRET), secrets, now=NOW)
