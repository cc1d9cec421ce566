"""Shop settings: defaults, validation in plain words, saving and reading back, and what a change
says about the scores."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import Job
from app.settings.schemas import DEFAULTS, SettingsError, validate
from app.settings.service import get_settings, update_settings
from app.vocabulary import DEFAULT_GRID
from tests.fixtures.factories import create_shop
from tests.scoring.ledger import at

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
    ("changes", "field", "message"),
    [
        ({"scoring_method": "deciles"}, "scoring_method", "must be 'quintile' or 'thirds'"),
        ({"window_days": 0}, "window_days", "must be a whole number of days from 1 to 3660"),
        ({"window_days": 12.5}, "window_days", "must be a whole number of days"),
        ({"window_days": "NaN"}, "window_days", "must be a whole number of days"),
        ({"clv_horizon_days": -3}, "clv_horizon_days", "must be a whole number of days"),
        ({"lifespan_years": 0}, "lifespan_years", "must be a number of years above 0"),
        ({"cac": "abc"}, "cac", "must be an amount above 0, or empty"),
        ({"conversion_rate": 1.5}, "conversion_rate", "must be a share above 0 and at most 1 (0.02)"),
        ({"conversion_rate": "150%"}, "conversion_rate", "or a percentage above 0 and at most 100 (2%)"),
        ({"conversion_rate": "%"}, "conversion_rate", "or a percentage above 0 and at most 100 (2%)"),
        ({"conversion_rate": "2%%"}, "conversion_rate", "or a percentage above 0 and at most 100 (2%)"),
        ({"rfm_tag_prefix": " "}, "rfm_tag_prefix", "must not be empty"),
        ({"clv_tag_prefix": "rfm:"}, "clv_tag_prefix", "the three tag prefixes must differ"),
        ({"segment_grid": {"5,5": "Champions"}}, "segment_grid", "cell R=5, FM=1 is missing"),
        (
            {
                "segment_grid": {
                    **{f"{r},{f}": "New" for r in range(1, 6) for f in range(1, 6)},
                    "1,1": "Gone",
                }
            },
            "segment_grid",
            "names unknown segment 'Gone'",
        ),
        ({"sync_enabled": "yes"}, "sync_enabled", "must be true or false"),
        ({"colour": "blue"}, None, "unknown setting(s): colour"),
    ],
)
def test_invalid_settings_are_refused_in_plain_words_at_their_field(
    changes: dict[str, Any], field: str | None, message: str
) -> None:
    with pytest.raises(SettingsError) as refused:
        validate(changes)
    assert message in refused.value.detail
    assert refused.value.field == field
    assert refused.value.status_code == 422


@pytest.mark.parametrize(
    ("typed", "rate"), [("2%", 0.02), ("2 %", 0.02), (" 0.5% ", 0.005), ("100%", 1.0), ("0.02", 0.02)]
)
def test_a_conversion_rate_may_be_typed_as_a_percentage(typed: str, rate: float) -> None:
    assert validate({"conversion_rate": typed}).conversion_rate == pytest.approx(rate, abs=1e-12)


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


@pytest.mark.both_dbs
def test_saving_tells_whether_the_change_affects_the_scores(session: Session) -> None:
    shop_id = create_shop(session).shop_id
    assert update_settings(session, shop_id, {"scoring_method": "thirds"}, NOW).affects_scores
    assert not update_settings(
        session, shop_id, {"rfm_tag_prefix": "score:", "sync_enabled": False}, NOW
    ).affects_scores
    assert update_settings(
        session, shop_id, {"segment_grid": {**_grid(), "5,5": "Loyal"}}, NOW
    ).affects_scores


@pytest.mark.both_dbs
def test_saving_settings_queues_no_job_of_its_own(session: Session) -> None:
    """Settings never reach into scoring: the caller that saves asks for the rescore."""
    shop_id = create_shop(session).shop_id
    update_settings(session, shop_id, {"scoring_method": "thirds"}, NOW)
    session.commit()
    assert session.scalars(select(Job).where(Job.shop_id == shop_id)).all() == []


@pytest.mark.both_dbs
def test_a_refused_change_saves_nothing(session: Session) -> None:
    shop_id = create_shop(session).shop_id
    with pytest.raises(SettingsError):
        update_settings(session, shop_id, {"scoring_method": "thirds", "window_days": 0}, NOW)
    assert get_settings(session, shop_id) == DEFAULTS


def _grid() -> dict[str, str]:
    return {f"{r},{fm}": name for (r, fm), name in DEFAULT_GRID.items()}
