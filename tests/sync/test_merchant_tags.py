"""The app's tags are exactly the tags it wrote: on every path that removes tags (a sync, a prefix
change, customers/redact) a merchant's own tags stay, even when they share the prefix's first
letters; the app removes only what it recorded as written."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import update
from starlette.testclient import TestClient

from app.kit.db import write_transaction
from app.models import ShopSettings
from tests.fixtures.webhooks import post_webhook
from tests.sync.conftest import SHOP, World, seed

MERCHANT = ("vip", "vegan", "v-merchant-own", "V-Loyal-Fans", "wholesale")
"""A merchant's tags with the first letters of the prefixes below (none is a tag the app writes)."""
V_PREFIXES = {"rfm_tag_prefix": "v-", "stage_tag_prefix": "vs_", "clv_tag_prefix": "vc:"}


def _app_tags(world: World, customer_id: int) -> set[str]:
    return set(world.tags(customer_id)) - set(MERCHANT)


def _redact(world: World, app: Any, customer_id: int) -> None:
    with TestClient(app) as client:
        payload = {"shop_id": 1, "shop_domain": SHOP, "customer": {"id": customer_id}, "orders_to_redact": []}
        assert post_webhook(client, "customers/redact", payload, SHOP).status_code == 200
    world.run_sync_jobs()


def _legacy_prefix(world: World, **prefixes: str) -> None:
    """A prefix saved before prefixes had to end in a separator (written past the validation)."""
    world.settings_change(sync_enabled=True)
    with write_transaction(world.factory) as session:
        session.execute(
            update(ShopSettings)
            .where(ShopSettings.shop_id == world.shop_id)
            .values(**prefixes, updated_at=datetime(2026, 3, 2, tzinfo=UTC))
        )


@pytest.mark.both_dbs
def test_a_sync_keeps_merchant_tags_sharing_the_prefixes_first_letters(world: World) -> None:
    world.settings_change(**V_PREFIXES)
    (customer,) = seed(world, 1, merchant_tags=MERCHANT)
    world.score(customer, segment="Loyal", stage="active", clv_tier="top-10")
    world.sync()

    world.score(customer, segment="Dormant", stage="lapsed", clv_tier=None)
    world.sync()

    assert sorted(world.tags(customer)) == sorted([*MERCHANT, "v-dormant", "vs_lapsed"])


def test_a_prefix_change_removes_exactly_the_old_app_tags(world: World) -> None:
    (customer,) = seed(world, 1, merchant_tags=(*MERCHANT, "rfm:mine", "stage-manual"))
    world.score(customer, segment="Loyal", stage="active", clv_tier="top-25")
    world.sync()
    assert _app_tags(world, customer) == {
        "rfm:loyal",
        "stage:active",
        "clv:top-25",
        "rfm:mine",
        "stage-manual",
    }

    world.settings_change(**V_PREFIXES)
    world.sync()

    assert sorted(world.tags(customer)) == sorted(
        [*MERCHANT, "rfm:mine", "stage-manual", "v-loyal", "vs_active", "vc:top-25"]
    )

    world.settings_change(rfm_tag_prefix="rfm:", stage_tag_prefix="stage:", clv_tag_prefix="clv:")
    world.sync()

    assert sorted(world.tags(customer)) == sorted(
        [*MERCHANT, "rfm:mine", "stage-manual", "rfm:loyal", "stage:active", "clv:top-25"]
    )


def test_customers_redact_removes_only_the_tags_the_app_wrote(world: World, app: Any) -> None:
    world.settings_change(**V_PREFIXES)
    first, second = seed(world, 2, merchant_tags=MERCHANT)
    world.sync()
    assert _app_tags(world, first)

    _redact(world, app, first)

    assert sorted(world.tags(first)) == sorted(MERCHANT)
    assert world.metafields(first) == {}
    assert _app_tags(world, second)


def test_customers_redact_with_a_one_letter_prefix_keeps_vip_and_vegan(world: World, app: Any) -> None:
    _legacy_prefix(world, stage_tag_prefix="v")
    (customer,) = seed(world, 1, merchant_tags=("vip", "vegan", "wholesale"))
    world.score(customer, stage="active")
    world.sync()
    assert "vactive" in world.tags(customer)

    _redact(world, app, customer)

    assert sorted(world.tags(customer)) == ["vegan", "vip", "wholesale"]


def test_customers_redact_during_a_prefix_change_removes_the_old_app_tags_too(world: World, app: Any) -> None:
    (customer,) = seed(world, 1, merchant_tags=MERCHANT)
    world.sync()
    world.settings_change(**V_PREFIXES)  # the customer still carries the "rfm:" tags

    _redact(world, app, customer)

    assert sorted(world.tags(customer)) == sorted(MERCHANT)
