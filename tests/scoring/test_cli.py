from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from app.cli import main
from app.config import Settings
from app.scoring import repository as scoring_repo
from tests.fixtures.factories import create_shop
from tests.scoring.ledger import add_order


@pytest.mark.both_dbs
def test_rescore_command_scores_the_named_shop(
    session: Session, settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    shop = create_shop(session, "cli-shop.myshopify.com")
    add_order(session, shop.shop_id, 1, "2026-05-01")
    monkeypatch.setenv("DATABASE_URL", settings.database_url)
    monkeypatch.setattr("app.cli.get_settings", lambda: settings)
    assert main(["rescore", "cli-shop.myshopify.com"]) == 0
    assert "cli-shop.myshopify.com: 1 customers scored" in capsys.readouterr().out
    session.rollback()
    assert [s.customer_id for s in scoring_repo.customer_scores(session, shop.shop_id, [1])] == [1]


def test_rescore_command_refuses_an_unknown_shop(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("app.cli.get_settings", lambda: settings)
    assert main(["rescore", "nobody.myshopify.com"]) == 1
    assert "nobody.myshopify.com is not installed" in capsys.readouterr().err
