"""The stage and segment histories the outcomes page reads are erased by the compliance webhooks:
customers/redact takes the customer's rows, shop/redact the shop's, and nobody else's.

https://shopify.dev/docs/apps/build/compliance/privacy-law-compliance
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.testclient import TestClient

from app.models import SegmentChange, Shop, StageChange
from tests.fixtures.factories import create_shop, order_payload
from tests.fixtures.webhooks import post_webhook

pytestmark = pytest.mark.both_dbs

SHOP = "history-shop.myshopify.com"
OTHER = "history-other.myshopify.com"
WHEN = datetime(2026, 3, 1, tzinfo=UTC)


@pytest.fixture(autouse=True)
def shops(session: Session, client: TestClient) -> None:
    for domain in (SHOP, OTHER):
        shop_id = create_shop(session, domain).shop_id
        for order_id, customer_id in ((1, 10), (2, 11)):
            response = post_webhook(client, "orders/create", order_payload(order_id, customer_id), domain)
            assert response.status_code == 200
        for customer_id in (10, 11):
            session.add(
                StageChange(
                    shop_id=shop_id,
                    customer_id=customer_id,
                    from_stage="active",
                    to_stage="at_risk",
                    changed_at=WHEN,
                    cause="behaviour",
                )
            )
            session.add(
                SegmentChange(
                    shop_id=shop_id,
                    customer_id=customer_id,
                    from_segment="Loyal",
                    to_segment="At risk",
                    changed_at=WHEN,
                    cause="behaviour",
                )
            )
    session.commit()


def history(session: Session, domain: str) -> set[tuple[str, int]]:
    session.rollback()
    shop_id = session.scalars(select(Shop.shop_id).where(Shop.domain == domain)).first()
    found: set[tuple[str, int]] = set()
    for model in (StageChange, SegmentChange):
        rows = session.scalars(select(model.customer_id).where(model.shop_id == shop_id))
        found |= {(model.__tablename__, int(c)) for c in rows}
    return found


def test_customers_redact_erases_the_customers_stage_and_segment_history(
    client: TestClient, session: Session
) -> None:
    body = {"shop_id": 1, "shop_domain": SHOP, "customer": {"id": 10}, "orders_to_redact": [1]}
    assert post_webhook(client, "customers/redact", body, SHOP).status_code == 200
    assert history(session, SHOP) == {("stage_changes", 11), ("segment_changes", 11)}
    assert len(history(session, OTHER)) == 4


def test_shop_redact_erases_the_shops_history(client: TestClient, session: Session) -> None:
    shop_id = session.scalars(select(Shop.shop_id).where(Shop.domain == SHOP)).one()
    assert (
        post_webhook(client, "app/uninstalled", {"id": 1, "myshopify_domain": SHOP}, SHOP).status_code == 200
    )
    assert post_webhook(client, "shop/redact", {"shop_id": 1, "shop_domain": SHOP}, SHOP).status_code == 200
    session.rollback()
    for model in (StageChange, SegmentChange):
        assert session.scalars(select(model.customer_id).where(model.shop_id == shop_id)).first() is None
    assert len(history(session, OTHER)) == 4
