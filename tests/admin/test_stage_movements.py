"""Stage movements are behaviour, not model refits: a new fit (the fallback replaced by the model,
or new parameters) or a settings change moves no customer in "Stage movements this week"; what a
refit reclassifies is shown apart, labelled, and a lapsed customer leaves lapsed only by ordering."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, inspect, select
from sqlalchemy.orm import Session
from starlette.testclient import TestClient

from app.models import ClvFit, CustomerScore, StageChange
from app.scoring import service as scoring
from app.settings.service import update_settings
from tests.admin.conftest import bearer, launch
from tests.admin.seed import NOW, SeededShop

REFIT_AT = NOW + timedelta(minutes=2)
RESCORED_AT = NOW + timedelta(minutes=3)


def _stages(session: Session, shop_id: int) -> dict[int, str]:
    rows = session.execute(
        select(CustomerScore.customer_id, CustomerScore.stage).where(CustomerScore.shop_id == shop_id)
    )
    return {int(c): s for c, s in rows}


def _changes(session: Session, shop_id: int, at: object, cause: str) -> list[tuple[str | None, str]]:
    rows = session.execute(
        select(StageChange.from_stage, StageChange.to_stage).where(
            StageChange.shop_id == shop_id, StageChange.changed_at == at, StageChange.cause == cause
        )
    )
    return [(a, b) for a, b in rows]


def _refit(session: Session, shop_id: int, **changes: float) -> None:
    """A new fit of the same ledger with other parameters, as the nightly fit would store it."""
    latest = session.scalar(
        select(ClvFit).where(ClvFit.shop_id == shop_id).order_by(ClvFit.fitted_at.desc()).limit(1)
    )
    assert latest is not None and latest.usable
    values = {c.key: getattr(latest, c.key) for c in inspect(ClvFit).column_attrs if c.key != "id"}
    values |= {"fitted_at": REFIT_AT} | {k: getattr(latest, k) * v for k, v in changes.items()}
    session.add(ClvFit(**values))
    session.commit()


def test_the_model_replacing_the_fallback_moves_nobody_this_week(
    page: TestClient, seeded: SeededShop, session: Session
) -> None:
    # the seeded shop was scored on the segment formula, then fitted and scored with the model, on
    # the same day, with no order in between
    overview = page.get("/api/overview", headers=bearer()).json()
    reclassified = session.scalar(
        select(func.count()).where(StageChange.shop_id == seeded.shop_id, StageChange.cause == "refit")
    )
    assert overview["stage_movements"] == []
    assert reclassified and sum(m["customers"] for m in overview["stage_reclassifications"]) == reclassified
    html = page.get(f"/app?{launch()}").text
    assert "No customer changed stage this week." in html
    assert "Reclassified by a new model fit this week" in html
    assert not [m for m in overview["stage_reclassifications"] if m["from"] == "lapsed"]


@pytest.mark.parametrize("parameters", [{"a": 0.1}, {"a": 10.0}], ids=["fewer-drop-outs", "more-drop-outs"])
def test_new_model_parameters_move_nobody_and_keep_the_lapsed_lapsed(
    page: TestClient, seeded: SeededShop, session: Session, parameters: dict[str, float]
) -> None:
    before = _stages(session, seeded.shop_id)
    _refit(session, seeded.shop_id, **parameters)

    result = scoring.rescore_shop(session, seeded.shop_id, RESCORED_AT)
    session.commit()

    assert result.full  # a new fit rescores everyone
    after = _stages(session, seeded.shop_id)
    assert {c for c, s in before.items() if s == "lapsed"} <= {c for c, s in after.items() if s == "lapsed"}
    assert _changes(session, seeded.shop_id, RESCORED_AT, "behaviour") == []
    assert page.get("/api/overview", headers=bearer()).json()["stage_movements"] == []
    refits = _changes(session, seeded.shop_id, RESCORED_AT, "refit")
    assert refits and not [move for move in refits if move[0] == "lapsed"]
    assert len(refits) == sum(before[c] != after[c] for c in before)  # each shown once, labelled
    reclassified = page.get("/api/overview", headers=bearer()).json()["stage_reclassifications"]
    assert sum(m["customers"] for m in reclassified) >= len(refits)


def test_a_settings_change_moves_nobody(page: TestClient, seeded: SeededShop, session: Session) -> None:
    before = _stages(session, seeded.shop_id)
    changes = {
        "scoring_method": "thirds",
        "window_days": "365",
        "clv_horizon_days": "730",
        "lifespan_years": "2",
    }
    update_settings(session, seeded.shop_id, changes, REFIT_AT)
    session.commit()

    result = scoring.rescore_shop(session, seeded.shop_id, RESCORED_AT)
    session.commit()

    assert result.full  # a settings change rescores everyone
    assert _stages(session, seeded.shop_id) == before
    assert (
        session.scalar(
            select(func.count()).where(
                StageChange.shop_id == seeded.shop_id, StageChange.changed_at == RESCORED_AT
            )
        )
        == 0
    )
    assert page.get("/api/overview", headers=bearer()).json()["stage_movements"] == []
