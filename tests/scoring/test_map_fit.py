"""A shop's stored fit by maximum a posteriori: a small shop gets the model with a prior and the
prior's share, and the operator's prior from the deployment's larger shops reads their parameters."""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy.orm import Session

from app.clv import prior
from app.config import get_settings
from app.scoring import fit as scoring_fit
from app.scoring import repository as scoring_repo
from app.scoring import service
from tests.fixtures.factories import create_shop
from tests.scoring.ledger import at
from tests.scoring.test_clv import NOW


@pytest.mark.both_dbs
def test_a_five_customer_shop_gets_the_model_with_a_prior(session: Session, five_customer_shop: int) -> None:
    fit = service.fit_shop(session, five_customer_shop, at("2026-06-01"))
    session.commit()
    assert fit.usable and fit.reasons is None and fit.prior_source == prior.BUILT_IN
    assert fit.purchases_prior_share is not None and 0.5 < fit.purchases_prior_share <= 1
    method, share = service.fit_method(fit)
    assert method == "model_with_prior" and share is not None and share > 0.5
    result = service.rescore_shop(session, five_customer_shop, at("2026-06-01T00:05"))
    session.commit()
    assert result.clv_source == "model"


def _other_shop_fit(session: Session, repeat_buyers: int, r: float, days_ago: int = 0) -> int:
    shop_id = create_shop(session).shop_id
    scoring_repo.add_fit(
        session,
        {
            "shop_id": shop_id,
            "fitted_at": NOW - timedelta(days=days_ago),
            "customers": 3 * repeat_buyers,
            "repeat_buyers": repeat_buyers,
            "orders": 5 * repeat_buyers,
            "usable": True,
            "r": r,
            "alpha": 40.0,
            "a": 1.0,
            "b": 4.0,
            "p": 5.0,
            "q": 3.0,
            "v": 20.0,
            "purchases_prior_share": 0.01,
            "fallback_order_value": 50.0,
            "seconds": 0.1,
        },
    )
    return shop_id


@pytest.fixture
def prior_from_shops(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("CLV_PRIOR_FROM_SHOPS", "true")
    get_settings.cache_clear()
    yield
    monkeypatch.delenv("CLV_PRIOR_FROM_SHOPS")
    get_settings.cache_clear()


def test_the_larger_shops_newest_fits_make_the_deployment_prior(
    session: Session, prior_from_shops: None
) -> None:
    larger = [
        _other_shop_fit(session, 600, r=0.5 + 0.1 * i) for i in range(prior.MIN_SHOPS_FOR_DEPLOYMENT_PRIOR)
    ]
    # an older fit of a larger shop, and a small shop, are not read
    scoring_repo.add_fit(
        session,
        {**_row_of(session, larger[0]), "fitted_at": NOW - timedelta(days=9), "r": 1000.0},
    )
    _other_shop_fit(session, 50, r=1000.0)
    shop_id = create_shop(session).shop_id
    rows = scoring_repo.larger_shop_fits(session, shop_id, prior.MIN_REPEAT_BUYERS_OF_A_PRIOR_SHOP)
    assert sorted(round(row["r"], 6) for row in rows) == [round(0.5 + 0.1 * i, 6) for i in range(10)]
    assert set(rows[0]) == {"r", "alpha", "a", "b", "p", "q", "v", "purchases_prior_share", "newest"}
    priors = scoring_fit.shop_priors(session, shop_id)
    assert priors.source == prior.DEPLOYMENT
    assert priors.purchases.centre[1] == pytest.approx(math.log(40.0))
    # the shop being fitted is never part of its own prior
    assert (
        len(scoring_repo.larger_shop_fits(session, larger[0], 500))
        == prior.MIN_SHOPS_FOR_DEPLOYMENT_PRIOR - 1
    )


def test_without_the_operator_setting_the_built_in_prior_is_used(session: Session) -> None:
    for i in range(prior.MIN_SHOPS_FOR_DEPLOYMENT_PRIOR):
        _other_shop_fit(session, 600, r=0.5 + 0.1 * i)
    assert scoring_fit.shop_priors(session, create_shop(session).shop_id) is prior.BUILT_IN_PRIORS


def _row_of(session: Session, shop_id: int) -> dict[str, object]:
    fit = scoring_repo.latest_fit(session, shop_id)
    assert fit is not None
    return {c.key: getattr(fit, c.key) for c in fit.__table__.columns if c.key != "id"}
