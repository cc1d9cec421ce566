"""The rescore records every RFM segment change (segment_changes): the customer's stored segment
before and the new one, dated by the rescore; a first segment is not a change; after the merchant
changes the scoring settings the changes are labelled "settings", not behaviour; a redacted
customer's history goes with them."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import CustomerScore, SegmentChange
from app.scoring import service
from app.scoring.store import erase_customer
from app.settings.service import update_settings
from tests.scoring.ledger import add_order, at

pytestmark = pytest.mark.both_dbs

NOW = at("2026-06-01")


def segments(session: Session, shop_id: int) -> dict[int, str]:
    session.expire_all()
    rows = session.execute(
        select(CustomerScore.customer_id, CustomerScore.segment).where(CustomerScore.shop_id == shop_id)
    )
    return {int(c): s for c, s in rows}


def changes(session: Session, shop_id: int) -> list[tuple[int, str, str, object, str]]:
    session.expire_all()
    rows = session.execute(
        select(
            SegmentChange.customer_id,
            SegmentChange.from_segment,
            SegmentChange.to_segment,
            SegmentChange.changed_at,
            SegmentChange.cause,
        )
        .where(SegmentChange.shop_id == shop_id)
        .order_by(SegmentChange.changed_at, SegmentChange.customer_id)
    )
    return [tuple(r) for r in rows]  # type: ignore[misc]


def test_a_first_scoring_records_no_segment_change(session: Session, five_customer_shop: int) -> None:
    service.rescore_shop(session, five_customer_shop, NOW, full=True)
    session.commit()
    assert changes(session, five_customer_shop) == []


def test_an_order_records_the_segment_moves_it_causes(session: Session, five_customer_shop: int) -> None:
    service.rescore_shop(session, five_customer_shop, NOW, full=True)
    session.commit()
    before = segments(session, five_customer_shop)
    later = at("2026-06-02")
    add_order(session, five_customer_shop, 3, "2026-06-02T08:00", "900.00")  # the old big spender is back
    service.rescore_shop(session, five_customer_shop, later)
    session.commit()
    after = segments(session, five_customer_shop)
    moved = {c for c in after if after[c] != before[c]}
    assert 3 in moved
    assert changes(session, five_customer_shop) == [
        (c, before[c], after[c], later, "behaviour") for c in sorted(moved)
    ]


def test_a_settings_change_is_recorded_as_settings_not_behaviour(
    session: Session, five_customer_shop: int
) -> None:
    service.rescore_shop(session, five_customer_shop, NOW, full=True)
    session.commit()
    update_settings(session, five_customer_shop, {"scoring_method": "thirds"}, at("2026-06-01T12:10"))
    session.commit()
    service.rescore_shop(session, five_customer_shop, at("2026-06-01T12:11"))
    session.commit()
    recorded = changes(session, five_customer_shop)
    assert len(recorded) == 5  # every quintile segment becomes a thirds group
    assert {cause for *_, cause in recorded} == {"settings"}
    # the next rescore under the same settings records nothing new
    service.rescore_shop(session, five_customer_shop, at("2026-06-01T12:20"), full=True)
    session.commit()
    assert changes(session, five_customer_shop) == recorded


def test_erasing_a_customer_erases_their_segment_history(session: Session, five_customer_shop: int) -> None:
    service.rescore_shop(session, five_customer_shop, NOW, full=True)
    session.commit()
    update_settings(session, five_customer_shop, {"scoring_method": "thirds"}, at("2026-06-01T12:10"))
    service.rescore_shop(session, five_customer_shop, at("2026-06-01T12:11"))
    session.commit()
    erase_customer(session, five_customer_shop, 3)
    session.commit()
    assert sorted({c for c, *_ in changes(session, five_customer_shop)}) == [1, 2, 4, 5]


def test_a_tag_prefix_change_leaves_segment_moves_to_behaviour(
    session: Session, five_customer_shop: int
) -> None:
    service.rescore_shop(session, five_customer_shop, NOW, full=True)
    session.commit()
    before = segments(session, five_customer_shop)
    update_settings(session, five_customer_shop, {"rfm_tag_prefix": "score:"}, at("2026-06-01T12:10"))
    add_order(session, five_customer_shop, 3, "2026-06-02T08:00", "900.00")
    service.rescore_shop(session, five_customer_shop, at("2026-06-02"))
    session.commit()
    recorded = changes(session, five_customer_shop)
    assert recorded and {cause for *_, cause in recorded} == {"behaviour"}
    assert {c for c, *_ in recorded} == {
        c for c, s in segments(session, five_customer_shop).items() if s != before[c]
    }
