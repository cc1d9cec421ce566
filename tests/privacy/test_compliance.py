"""The compliance topics do what Shopify requires: erasure really erases.

https://shopify.dev/docs/apps/build/compliance/privacy-law-compliance
"""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.testclient import TestClient

from app.models import Customer, DataRequest, DeletedOrder, Order, OrderRefund, Shop
from tests.fixtures.factories import create_shop, order_payload, refund_payload, row_counts
from tests.fixtures.webhooks import post_webhook

pytestmark = pytest.mark.both_dbs

SHOP = "erase-shop.myshopify.com"
OTHER = "other-shop.myshopify.com"


@pytest.fixture(autouse=True)
def shops(session: Session, client: TestClient) -> None:
    for domain in (SHOP, OTHER):
        create_shop(session, domain)
        for order_id, customer_id in ((1, 10), (2, 10), (3, 11)):
            assert (
                post_webhook(
                    client, "orders/create", order_payload(order_id, customer_id), domain
                ).status_code
                == 200
            )
        refund = refund_payload(7, 1, "10.00", "2026-02-01T00:00:00Z")
        assert post_webhook(client, "refunds/create", refund, domain).status_code == 200
    session.rollback()


def ok(client: TestClient, topic: str, payload: object, shop: str = SHOP) -> None:
    response = post_webhook(client, topic, payload, shop)
    assert response.status_code == 200, response.text


def shop_id(session: Session, domain: str) -> int:
    return session.scalars(select(Shop.shop_id).where(Shop.domain == domain)).one()


def test_customer_redact_leaves_no_row_for_the_customer(client: TestClient, session: Session) -> None:
    request = {
        "shop_id": 1,
        "shop_domain": SHOP,
        "customer": {"id": 10},
        "orders_requested": [1],
        "data_request": {"id": 5},
    }
    ok(client, "customers/data_request", request)
    ok(
        client,
        "customers/redact",
        {"shop_id": 1, "shop_domain": SHOP, "customer": {"id": 10}, "orders_to_redact": [1, 2]},
    )
    session.rollback()
    sid = shop_id(session, SHOP)
    assert (
        session.scalars(select(Customer).where(Customer.shop_id == sid, Customer.customer_id == 10)).first()
        is None
    )
    assert session.scalars(select(Order).where(Order.shop_id == sid, Order.customer_id == 10)).first() is None
    assert session.scalars(select(OrderRefund).where(OrderRefund.shop_id == sid)).first() is None
    assert session.scalars(select(DataRequest).where(DataRequest.shop_id == sid)).first() is None
    from app.models import Base

    for table in Base.metadata.sorted_tables:
        if "customer_id" in table.c:
            leftover = select(table.c.customer_id).where(table.c.shop_id == sid, table.c.customer_id == 10)
            assert session.execute(leftover).first() is None, table.name
    # the other buyer and the other shop are untouched
    assert session.scalars(select(Order.order_id).where(Order.shop_id == sid)).all() == [3]
    other = shop_id(session, OTHER)
    assert len(session.scalars(select(Order).where(Order.shop_id == other)).all()) == 3


def test_redacted_orders_cannot_come_back_through_a_late_delivery(
    client: TestClient, session: Session
) -> None:
    ok(
        client,
        "customers/redact",
        {"shop_id": 1, "shop_domain": SHOP, "customer": {"id": 10}, "orders_to_redact": [1, 2]},
    )
    late = order_payload(1, 10, updated_at="2026-06-01T00:00:00Z")
    assert post_webhook(client, "orders/updated", late, SHOP).json()["outcome"] == "deleted"
    session.rollback()
    sid = shop_id(session, SHOP)
    assert (
        session.scalars(select(Customer).where(Customer.shop_id == sid, Customer.customer_id == 10)).first()
        is None
    )
    # only the ids remain, so that the late delivery is refused
    assert set(session.scalars(select(DeletedOrder.order_id).where(DeletedOrder.shop_id == sid))) == {1, 2}


def test_shop_redact_leaves_no_row_for_the_shop(client: TestClient, session: Session) -> None:
    sid = shop_id(session, SHOP)
    ok(client, "app/uninstalled", {"id": 1, "myshopify_domain": SHOP})
    ok(client, "shop/redact", {"shop_id": 1, "shop_domain": SHOP})
    session.rollback()
    from app.models import Base

    for table in Base.metadata.sorted_tables:
        column = table.c.shop_id
        assert session.execute(select(column).where(column == sid)).first() is None, table.name
    assert row_counts(session)["orders"] == 3  # the other shop's


def test_shop_redact_for_an_erased_shop_is_still_answered(client: TestClient) -> None:
    ok(client, "shop/redact", {"shop_id": 1, "shop_domain": "gone.myshopify.com"}, shop="gone.myshopify.com")


def test_data_request_is_recorded_for_the_store_owner(client: TestClient, session: Session) -> None:
    request = {
        "shop_id": 1,
        "shop_domain": SHOP,
        "customer": {"id": 11},
        "orders_requested": [3],
        "data_request": {"id": 77},
    }
    ok(client, "customers/data_request", request)
    session.rollback()
    row = session.scalars(select(DataRequest)).one()
    assert (row.data_request_id, row.customer_id, row.orders_requested) == (77, 11, "3")


def test_uninstall_forgets_the_token_and_keeps_the_data_until_shop_redact(
    client: TestClient, session: Session
) -> None:
    sid = shop_id(session, SHOP)
    session.execute(Shop.__table__.update().where(Shop.shop_id == sid).values(access_token_encrypted="x"))
    session.commit()
    ok(client, "app/uninstalled", {"id": 1, "myshopify_domain": SHOP})
    session.rollback()
    shop = session.get(Shop, sid)
    assert shop is not None
    session.refresh(shop)
    assert shop.uninstalled_at is not None and shop.access_token_encrypted is None
    assert len(session.scalars(select(Order).where(Order.shop_id == sid)).all()) == 3
