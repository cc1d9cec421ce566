"""`shop` and `host` query values."""

import base64

import pytest

from app.shopify.shop_domain import decode_host, sanitize_shop_domain


def test_myshopify_domain_is_accepted():
    assert sanitize_shop_domain("demo-shop.myshopify.com") == "demo-shop.myshopify.com"


def test_uppercase_domain_is_lowercased():
    assert sanitize_shop_domain("Demo-Shop.MyShopify.com") == "demo-shop.myshopify.com"


def test_surrounding_whitespace_is_ignored():
    assert sanitize_shop_domain("  demo.myshopify.com\n") == "demo.myshopify.com"


def test_https_url_of_the_shop_is_accepted():
    assert sanitize_shop_domain("https://demo.myshopify.com/") == "demo.myshopify.com"


def test_unified_admin_url_becomes_the_myshopify_domain():
    assert sanitize_shop_domain("admin.shopify.com/store/demo") == "demo.myshopify.com"


def test_unified_admin_url_with_scheme_becomes_the_myshopify_domain():
    assert sanitize_shop_domain("https://admin.shopify.com/store/Demo") == "demo.myshopify.com"


def test_other_domain_is_rejected():
    assert sanitize_shop_domain("evil.com") is None


def test_myshopify_domain_as_a_subdomain_of_another_is_rejected():
    assert sanitize_shop_domain("x.myshopify.com.evil.com") is None


def test_bare_shop_name_is_rejected():
    assert sanitize_shop_domain("demo") is None


@pytest.mark.parametrize("value", ["", None, "   "])
def test_empty_shop_is_rejected(value):
    assert sanitize_shop_domain(value) is None


@pytest.mark.parametrize(
    "value",
    [
        "demo.myshopify.com/../../evil.com",
        "demo.myshopify.com/admin",
        "evil.com/demo.myshopify.com",
        "demo.myshopify.com?redirect=https://evil.com",
        "demo.myshopify.com#@evil.com",
        "demo.myshopify.com@evil.com",
        "evil.com@demo.myshopify.com",
        "demo.myshopify.com:8443",
        "demo.myshopify.com\\evil.com",
        "admin.shopify.com/store/demo/../../evil",
    ],
)
def test_path_or_credential_injection_is_rejected(value):
    assert sanitize_shop_domain(value) is None


@pytest.mark.parametrize("value", ["-demo.myshopify.com", "demo-.myshopify.com", "de_mo.myshopify.com"])
def test_name_outside_shopify_pattern_is_rejected(value):
    assert sanitize_shop_domain(value) is None


def test_other_shopify_domains_are_rejected_in_production():
    assert sanitize_shop_domain("demo.shop.dev") is None


def test_unpadded_host_decodes_to_the_admin_url():
    assert decode_host("YWRtaW4uc2hvcGlmeS5jb20vc3RvcmUvZGVtbw") == "admin.shopify.com/store/demo"


def test_padded_host_decodes_to_the_admin_url():
    host = base64.b64encode(b"admin.shopify.com/store/demo").decode()
    assert host.endswith("=")
    assert decode_host(host) == "admin.shopify.com/store/demo"


def test_legacy_myshopify_admin_host_decodes():
    host = base64.b64encode(b"demo.myshopify.com/admin").decode()
    assert decode_host(host) == "demo.myshopify.com/admin"


def test_host_of_another_site_is_rejected():
    assert decode_host(base64.b64encode(b"evil.com/store/demo").decode()) is None


def test_host_ending_in_a_shopify_name_under_another_domain_is_rejected():
    assert decode_host(base64.b64encode(b"admin.shopify.com.evil.com").decode()) is None


def test_host_hiding_another_site_behind_credentials_is_rejected():
    assert decode_host(base64.b64encode(b"evil.com\\@admin.shopify.com").decode()) is None


def test_host_that_is_not_base64_is_rejected():
    assert decode_host("admin.shopify.com/store/demo") is None


def test_url_safe_base64_host_is_rejected():
    assert decode_host("YWRtaW4uc2hvcGlmeS5jb20vc3RvcmUvZGVtbz8-") is None


@pytest.mark.parametrize("value", ["", None, "A"])
def test_empty_or_truncated_host_is_rejected(value):
    assert decode_host(value) is None
