"""A settings change saved from the settings page rescores the shop: a change that affects the
scores queues a full rescore, which the worker applies; a tag or sync change queues nothing."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

import app.tasks  # noqa: F401 - registers every job kind
from app.admin.service import save_settings
from app.kit.db import make_sessionmaker
from app.models import Job
from app.scoring import repository as scoring_repo
from app.scoring import service
from app.worker import Worker
from tests.fixtures.factories import create_shop
from tests.scoring.ledger import at

NOW = at("2026-06-01")


def pending_jobs(session: Session) -> list[tuple[str, str | None]]:
    session.expire_all()
    return [(j.kind, j.payload) for j in session.scalars(select(Job).where(Job.state == "pending"))]


@pytest.mark.both_dbs
def test_a_change_that_affects_scores_enqueues_a_full_rescore(session: Session) -> None:
    shop_id = create_shop(session).shop_id
    save_settings(session, shop_id, {"scoring_method": "thirds"}, NOW)
    session.commit()
    assert pending_jobs(session) == [("rescore", '{"full": true}')]


@pytest.mark.both_dbs
def test_a_tag_prefix_change_does_not_rescore(session: Session) -> None:
    shop_id = create_shop(session).shop_id
    save_settings(session, shop_id, {"rfm_tag_prefix": "score:", "sync_enabled": False}, NOW)
    session.commit()
    assert pending_jobs(session) == []


@pytest.mark.both_dbs
def test_the_worker_applies_a_settings_change_to_the_stored_scores(
    session: Session, five_customer_shop: int, engine: Any
) -> None:
    service.rescore_shop(session, five_customer_shop, NOW)
    session.commit()
    save_settings(session, five_customer_shop, {"scoring_method": "thirds"}, at("2026-06-01T12:10"))
    session.commit()
    factory: sessionmaker[Session] = make_sessionmaker(engine)
    Worker(factory, clock=lambda: at("2026-06-01T12:11"), run_schedules=False).run_pending()
    session.expire_all()
    codes = {
        s.customer_id: s.rfm_code
        for s in scoring_repo.customer_scores(session, five_customer_shop, range(1, 6))
    }
    assert codes == {1: "311", 2: "321", 3: "113", 4: "331", 5: "211"}
