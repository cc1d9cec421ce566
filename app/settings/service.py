"""A shop's settings: reading them (the defaults where the merchant never saved any), and
validating and saving the merchant's changes. Services take the session first and never commit.

Saving does not rescore: the caller that saves (the settings page) asks scoring for a rescore when
``SettingsChange.affects_scores``, so that settings never import scoring, which reads them."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from app.settings import repository as repo
from app.settings.schemas import (
    DEFAULTS,
    ScoringSettings,
    SettingsChange,
    grid_from_json,
    grid_to_json,
    validate,
    validate_play,
)
from app.vocabulary import DEFAULT_GRID, SEGMENT_PLAYS


def get_settings(session: Session, shop_id: int) -> ScoringSettings:
    """The shop's settings, the defaults where the merchant never saved any."""
    row = repo.settings_row(session, shop_id)
    if row is None:
        return DEFAULTS
    return ScoringSettings(
        scoring_method=row.scoring_method,
        window_days=row.window_days,
        segment_grid=DEFAULT_GRID if row.segment_grid is None else grid_from_json(row.segment_grid),
        clv_horizon_days=row.clv_horizon_days,
        lifespan_years=row.lifespan_years,
        cac=row.cac,
        conversion_rate=row.conversion_rate,
        rfm_tag_prefix=row.rfm_tag_prefix,
        stage_tag_prefix=row.stage_tag_prefix,
        clv_tag_prefix=row.clv_tag_prefix,
        sync_enabled=row.sync_enabled,
    )


def settings_updated_at(session: Session, shop_id: int) -> datetime | None:
    return repo.updated_at(session, shop_id)


def update_settings(
    session: Session, shop_id: int, changes: Mapping[str, Any], now: datetime
) -> SettingsChange:
    """Validate and save the merchant's changes (raises SettingsError, saving nothing)."""
    current = get_settings(session, shop_id)
    new = validate(changes, current)
    repo.save_row(
        session,
        {
            "shop_id": shop_id,
            "scoring_method": new.scoring_method,
            "window_days": new.window_days,
            "segment_grid": None
            if dict(new.segment_grid) == dict(DEFAULT_GRID)
            else grid_to_json(new.segment_grid),
            "clv_horizon_days": new.clv_horizon_days,
            "lifespan_years": new.lifespan_years,
            "cac": new.cac,
            "conversion_rate": new.conversion_rate,
            "rfm_tag_prefix": new.rfm_tag_prefix,
            "stage_tag_prefix": new.stage_tag_prefix,
            "clv_tag_prefix": new.clv_tag_prefix,
            "sync_enabled": new.sync_enabled,
            "updated_at": now,
        },
    )
    return SettingsChange(current, new)


def segment_plays(session: Session, shop_id: int) -> dict[str, str]:
    """Every segment's suggested play: the shop's own wording where it saved one, else the default."""
    return {**SEGMENT_PLAYS, **repo.plays(session, shop_id)}


def save_segment_plays(session: Session, shop_id: int, plays: Mapping[str, Any], now: datetime) -> None:
    """Validate every play first (raises SettingsError naming the field, saving nothing), then store
    them; an empty play, or the default word for word, restores the default."""
    clean = {segment: validate_play(segment, text) for segment, text in plays.items()}
    for segment, play in clean.items():
        repo.save_play(session, shop_id, segment, play, now)
