"""Properties of the persisted rescore over any small shop."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from app.scoring import repository as scoring_repo
from app.scoring import service
from tests.fixtures.database import clear
from tests.fixtures.factories import create_shop
from tests.scoring.ledger import at, bulk_orders

NOW = at("2026-06-01")
orders = st.lists(
    st.tuples(st.integers(1, 12), st.integers(0, 700), st.integers(1, 500)), min_size=1, max_size=30
)


def snapshot(session: Session, shop_id: int, staged: set[int]) -> dict[int, tuple[object, ...]]:
    """The relative scores of every customer, and the stage of ``staged`` ones (the others keep
    theirs until the daily full rescore, even when the shop's typical interval moved)."""
    session.expire_all()
    return {
        s.customer_id: (
            s.rfm_code,
            s.segment,
            s.thirds_group,
            s.frequency,
            s.monetary,
            s.big_spender,
            s.high_aov,
            s.stage if s.customer_id in staged else None,
        )
        for s in scoring_repo.customer_scores(session, shop_id, range(1, 20))
    }


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(before=orders, after=orders)
def test_an_incremental_rescore_stores_what_a_full_rescore_would(
    engine: Engine, session: Session, before: list[tuple[int, int, int]], after: list[tuple[int, int, int]]
) -> None:
    session.rollback()  # end the last example's read, or the TRUNCATE below waits for it
    clear(engine)
    shop_id = create_shop(session).shop_id
    bulk_orders(session, shop_id, [(c, NOW - timedelta(days=d), v) for c, d, v in before], NOW)
    service.rescore_shop(session, shop_id, NOW)
    session.commit()
    later = NOW + timedelta(hours=1)
    bulk_orders(session, shop_id, [(c, later - timedelta(minutes=d % 60), v) for c, d, v in after], later)
    incremental = service.rescore_shop(session, shop_id, later + timedelta(minutes=1))
    session.commit()
    marked = {c for c, _, _ in after}
    kept = snapshot(session, shop_id, marked)
    full = service.rescore_shop(session, shop_id, later + timedelta(minutes=1), full=True)
    session.commit()
    assert incremental.full is False or len({c for c, _, _ in after}) * 4 > len(
        {c for c, _, _ in before + after}
    )
    assert full.full
    assert snapshot(session, shop_id, marked) == kept


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(history=orders)
def test_rescoring_again_at_the_same_moment_changes_nothing(
    engine: Engine, session: Session, history: list[tuple[int, int, int]]
) -> None:
    session.rollback()  # end the last example's read, or the TRUNCATE below waits for it
    clear(engine)
    shop_id = create_shop(session).shop_id
    bulk_orders(session, shop_id, [(c, NOW - timedelta(days=d), v) for c, d, v in history], NOW)
    first = service.rescore_shop(session, shop_id, NOW)
    session.commit()
    again = service.rescore_shop(session, shop_id, NOW, full=True)
    session.commit()
    assert first.written == len({c for c, _, _ in history})
    assert (again.written, again.changed, again.stage_changes) == (0, [], 0)
