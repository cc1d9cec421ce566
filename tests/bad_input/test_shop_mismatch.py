"""The shop fields a signed body carries (`shop_domain`, `shop_id`, `myshopify_domain`, the Shop
resource's `id`) must name the shop of X-Shopify-Shop-Domain and the installed shop: Shopify's
HMAC covers the body only, so a body signed for one shop could arrive with another's header."""

from __future__ import annotations

import pytest

from tests.bad_input.bodies import OTHER, OTHER_SHOPIFY_ID, body, spoil
from tests.bad_input.conftest import Refuse

# (topic, the field naming the shop's domain or, failing that, its id)
SHOP_FIELD = {
    "shop/redact": "shop_domain",
    "customers/redact": "shop_domain",
    "customers/data_request": "shop_domain",
    "app/uninstalled": "myshopify_domain",
    "shop/update": "myshopify_domain",
    "app/scopes_update": "shop_id",
}
# (topic, where the body carries the shop's Shopify id, the value naming the other shop)
SHOP_ID_FIELD = {
    "shop/redact": (("shop_id",), OTHER_SHOPIFY_ID),
    "customers/redact": (("shop_id",), OTHER_SHOPIFY_ID),
    "customers/data_request": (("shop_id",), OTHER_SHOPIFY_ID),
    "app/uninstalled": (("id",), OTHER_SHOPIFY_ID),
    "shop/update": (("id",), OTHER_SHOPIFY_ID),
    "app/scopes_update": (("shop_id",), f"gid://shopify/Shop/{OTHER_SHOPIFY_ID}"),
}


@pytest.mark.both_dbs
@pytest.mark.parametrize("topic", sorted(SHOP_FIELD))
def test_another_shops_body_under_this_shops_header_is_a_403(refused: Refuse, topic: str) -> None:
    refused(topic, body(topic, OTHER), status=403, field=SHOP_FIELD[topic])


@pytest.mark.parametrize("topic", sorted(SHOP_ID_FIELD))
def test_shop_id_of_another_shop_is_a_403(refused: Refuse, topic: str) -> None:
    path, other = SHOP_ID_FIELD[topic]
    refused(topic, spoil(body(topic), path, other), status=403, field=path[0])


@pytest.mark.parametrize("topic", ["shop/redact", "customers/redact", "customers/data_request"])
def test_compliance_body_for_an_installed_shop_under_an_unknown_shops_header_is_a_403(
    refused: Refuse, topic: str
) -> None:
    refused(topic, body(topic), status=403, field="shop_domain", shop="stranger.myshopify.com")


def test_header_and_body_domains_compare_without_case(refused: Refuse) -> None:
    refused(
        "customers/redact",
        spoil(body("customers/redact"), ("shop_domain",), "Other-Shop.myshopify.com"),
        status=403,
        field="shop_domain",
    )
