"""Shop settings: defaults, validation in plain words, and a change that rescores the shop."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.kit.db import make_sessionmaker
from app.models import Job
from app.scoring import repository as scoring_repo
from app.scoring import service
from app.scoring.rules import DEFAULT_GRID
from app.scoring.settings import DEFAULTS, SettingsError, get_settings, update_settings, validate
from app.worker import Worker, load_job_modules
from tests.fixtures.factories import create_shop
from tests.scoring_service.ledger import at

NOW = at("2026-06-01")


def test_a_shop_that_never_saved_settings_gets_the_defaults(session: Session) -> None:
    settings = get_settings(session, create_shop(session).shop_id)
    assert settings == DEFAULTS
    assert (settings.scoring_method, settings.window_days, settings.clv_horizon_days) == (
        "quintile",
        None,
        365,
    )
    assert (settings.lifespan_years, settings.rfm_tag_prefix, settings.sync_enabled) == (3.0, "rfm:", True)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"scoring_method": "deciles"}, "scoring method must be 'quintile' or 'thirds'"),
        ({"window_days": 0}, "window must be a whole number of days between 1 and 3660"),
        ({"window_days": 12.5}, "window must be a whole number of days"),
        ({"clv_horizon_days": -3}, "CLV horizon must be a whole number of days"),
        ({"lifespan_years": 0}, "average lifespan (years) must be more than 0"),
        ({"cac": "abc"}, "customer acquisition cost must be a number"),
        ({"conversion_rate": 1.5}, "conversion rate must be more than 0 and at most 1"),
        ({"rfm_tag_prefix": " "}, "rfm tag prefix must not be empty"),
        ({"clv_tag_prefix": "rfm:"}, "the three tag prefixes must differ"),
        ({"segment_grid": {"5,5": "Champions"}}, "segment grid cell R=5, FM=1 is missing"),
        (
            {
                "segment_grid": {
                    **{f"{r},{f}": "New" for r in range(1, 6) for f in range(1, 6)},
                    "1,1": "Gone",
                }
            },
            "names unknown segment 'Gone'",
        ),
        ({"sync_enabled": "yes"}, "sync on/off must be true or false"),
        ({"colour": "blue"}, "unknown setting(s): colour"),
    ],
)
def test_invalid_settings_are_refused_in_plain_words(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(SettingsError) as refused:
        validate(changes)
    assert message in refused.value.detail
    assert refused.value.status_code == 422


@pytest.mark.both_dbs
def test_saved_settings_read_back_including_an_edited_grid(session: Session) -> None:
    shop_id = create_shop(session).shop_id
    grid = {f"{r},{fm}": name for (r, fm), name in DEFAULT_GRID.items()} | {"5,5": "Loyal"}
    update_settings(
        session,
        shop_id,
        {"segment_grid": grid, "cac": "25.50", "conversion_rate": 0.02, "window_days": "365"},
        NOW,
    )
    session.commit()
    settings = get_settings(session, shop_id)
    assert settings.segment_grid[(5, 5)] == "Loyal" and settings.segment_grid[(5, 4)] == "Champions"
    assert (settings.cac, settings.conversion_rate, settings.window_days) == (Decimal("25.5"), 0.02, 365)


def pending_jobs(session: Session) -> list[tuple[str, str | None]]:
    session.expire_all()
    return [(j.kind, j.payload) for j in session.scalars(select(Job).where(Job.state == "pending"))]


@pytest.mark.both_dbs
def test_a_change_that_affects_scores_enqueues_a_full_rescore(session: Session) -> None:
    shop_id = create_shop(session).shop_id
    update_settings(session, shop_id, {"scoring_method": "thirds"}, NOW)
    session.commit()
    assert pending_jobs(session) == [("rescore", '{"full": true}')]


@pytest.mark.both_dbs
def test_a_tag_prefix_change_does_not_rescore(session: Session) -> None:
    shop_id = create_shop(session).shop_id
    update_settings(session, shop_id, {"rfm_tag_prefix": "score:", "sync_enabled": False}, NOW)
    session.commit()
    assert pending_jobs(session) == []


@pytest.mark.both_dbs
def test_the_worker_applies_a_settings_change_to_the_stored_scores(
    session: Session, five_customer_shop: int, engine: Any
) -> None:
    service.rescore_shop(session, five_customer_shop, NOW)
    session.commit()
    update_settings(session, five_customer_shop, {"scoring_method": "thirds"}, at("2026-06-01T12:10"))
    session.commit()
    load_job_modules()
    factory: sessionmaker[Session] = make_sessionmaker(engine)
    Worker(factory, clock=lambda: at("2026-06-01T12:11"), run_schedules=False).run_pending()
    session.expire_all()
    codes = {
        s.customer_id: s.rfm_code
        for s in scoring_repo.customer_scores(session, five_customer_shop, range(1, 6))
    }
    assert codes == {1: "311", 2: "321", 3: "113", 4: "331", 5: "211"}
