"""Money columns are written from whole units where that stores exactly what PostgreSQL's rounding
of the float would: checked on PostgreSQL over values of every size, rounded and not."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from app.scoring import pgcopy
from app.scoring import repository as repo


def _values(places: int) -> np.ndarray:
    rng = np.random.default_rng(11)
    magnitudes = 10.0 ** rng.uniform(-5, 16, 20_000)
    raw = magnitudes * rng.choice([-1.0, 1.0], magnitudes.size)
    halves = (np.arange(-500, 500) + 0.5) / 10.0**places  # ties: PostgreSQL rounds them away from zero
    special = np.asarray([0.0, -0.0, 1e-9, 99_999_999_999.9999, 1e11, 1e12, 1e13, 9.9e15])
    return np.concatenate([raw, np.round(raw, places), halves, np.round(halves, places), special])


@pytest.mark.parametrize("places", [2, 4])
def test_money_written_from_units_is_what_rounding_the_float_stores(session: Session, places: int) -> None:
    if not repo.is_postgres(session):
        pytest.skip("the units path is PostgreSQL's")
    values = _values(places)
    units = repo.money_units(values, places)
    session.execute(text("CREATE TEMP TABLE money (x float8, x_units int8)"))
    pgcopy.copy_in(session, "money", [("x", "float8"), ("x_units", "int8")], {"x": values, "x_units": units})
    expression = repo._money("predicted_clv" if places == 2 else "monetary").replace(
        "t.predicted_clv" if places == 2 else "t.monetary", "t.x"
    )
    differing = session.scalar(
        text(
            f"SELECT count(*) FROM money t WHERE ({expression})::numeric(30, 4)::text "
            f"IS DISTINCT FROM round(t.x::numeric, {places})::numeric(30, 4)::text"
        )
    )
    exact = int(np.count_nonzero(units != np.iinfo(np.int64).min))

    assert differing == 0
    assert exact > values.size // 3  # the rounded values below the limit take the cheap path
