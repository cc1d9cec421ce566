"""Money columns are copied in as binary NUMERICs built from the floats (``pgcopy.numeric``): each
must be exactly what PostgreSQL's ``round(value::numeric, places)`` stores in a numeric(28, 4),
checked on PostgreSQL over values of every size, rounded and not, and the ties."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from app.kit import pgcopy
from app.scoring import load


def _values(places: int) -> np.ndarray:
    rng = np.random.default_rng(11)
    # mostly amounts below 10^16, and some sums up to the widest column's 10^24 (app/kit/money.py)
    magnitudes = np.r_[10.0 ** rng.uniform(-5, 16, 20_000), 10.0 ** rng.uniform(16, 24, 2_000)]
    raw = magnitudes * rng.choice([-1.0, 1.0], magnitudes.size)
    halves = (np.arange(-500, 500) + 0.5) / 10.0**places  # ties: PostgreSQL rounds them away from zero
    special = np.asarray(
        [0.0, -0.0, 1e-9, 99_999_999_999.9999, 1e11, 1e12, 1e13, 9.9e15, -9.99e15, 1e16, 9.9999999999999e23]
    )
    return np.concatenate([raw, np.round(raw, places), halves, np.round(halves, places), special])


def _fits(value: float, places: int) -> bool:
    return abs(Decimal(format(value, ".15g"))) < 10**24


@pytest.mark.parametrize("places", [2, 4])
def test_money_copied_in_is_what_rounding_the_float_stores(session: Session, places: int) -> None:
    if not load.is_postgres(session):
        pytest.skip("binary COPY is PostgreSQL's")
    values = _values(places)
    values = values[[_fits(float(v), places) for v in values]]
    session.execute(text("CREATE TEMP TABLE money (x float8, n numeric(28, 4))"))
    pgcopy.copy_in(
        session,
        "money",
        [("x", "float8"), ("n", f"numeric({places})")],
        {"x": values, "n": values},
    )
    differing = session.execute(
        text(
            "SELECT x, n::text, round(x::numeric, :places)::numeric(28, 4)::text FROM money "
            "WHERE n::text IS DISTINCT FROM round(x::numeric, :places)::numeric(28, 4)::text LIMIT 5"
        ),
        {"places": places},
    ).all()
    exact = int(np.count_nonzero(pgcopy.money_units(values, places) != pgcopy.NOT_EXACT))

    assert session.scalar(text("SELECT count(*) FROM money")) == values.size
    assert differing == []
    assert exact > values.size // 3  # the rounded values below the limit take the integer path


@pytest.mark.parametrize("value", [1e24, -2e25, 9.999999999999999e23, float("nan"), float("inf")])
def test_money_that_numeric_28_4_cannot_hold_is_refused(value: float) -> None:
    with pytest.raises(ValueError):
        pgcopy.numeric(np.asarray([12.5, value]), 4)


def test_labels_outside_their_names_are_refused(session: Session) -> None:
    if not load.is_postgres(session):
        pytest.skip("binary COPY is PostgreSQL's")
    session.execute(text("CREATE TEMP TABLE labelled (t text)"))
    with pytest.raises(ValueError):
        pgcopy.copy_in(
            session, "labelled", [("t", "text")], {"t": pgcopy.Labels(np.asarray([0, 2]), ("a", "b"))}
        )


def test_copy_in_writes_text_nulls_and_fixed_values_row_by_row(session: Session) -> None:
    if not load.is_postgres(session):
        pytest.skip("binary COPY is PostgreSQL's")
    session.execute(
        text(
            "CREATE TEMP TABLE mixed (i int8, label varchar(16), at timestamptz, f float8, m numeric(20, 4))"
        )
    )
    size = 70_000  # more than one chunk
    i = np.arange(size, dtype=np.int64)
    at = np.where(i % 3 == 0, pgcopy.NULL_TIME, i * 1_000_000)
    f = np.where(i % 5 == 0, np.nan, i / 8)
    names = (None, "", "Champions", "Needs attention", "é")
    pgcopy.copy_in(
        session,
        "mixed",
        [("label", "text"), ("i", "int8"), ("at", "timestamptz?"), ("f", "float8?"), ("m", "numeric(2)")],
        {
            "i": i,
            "label": pgcopy.Labels(i % len(names), names),
            "at": at,
            "f": f,
            "m": -i / 100,
        },
        selection=np.arange(1, size, 2),
    )
    rows = session.execute(
        text(
            "SELECT i, label, EXTRACT(EPOCH FROM at - TIMESTAMPTZ '2000-01-01 00:00:00+00') * 1000000, f, m "
            "FROM mixed ORDER BY i"
        )
    ).all()

    assert len(rows) == size // 2
    for k, label, at_us, value, money in rows[:1000] + rows[-1000:]:
        assert k % 2 == 1
        assert label == names[k % len(names)]
        assert (at_us is None) == (k % 3 == 0) and (at_us is None or int(at_us) == k * 1_000_000)
        assert (value is None) == (k % 5 == 0) and (value is None or value == k / 8)
        assert money == -Decimal(k) / 100
