"""Tokens at rest are encrypted, never logged, and production refuses to run without a key."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pytest
from pydantic import ValidationError
from sqlalchemy import text, update
from sqlalchemy.orm import Session
from starlette.testclient import TestClient

from app.config import Settings
from app.kit.observability import redact
from app.models import Shop
from app.shopify.token_crypto import generate_key
from app.shops.tokens import access_token, token_cipher
from shopify_double import DevStore
from tests.fixtures.factories import order_payload
from tests.fixtures.webhooks import post_webhook

from .conftest import OTHER_SHOP, SHOP, bearer, launch_query

pytestmark = pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")


def install_by_code_grant(browser: TestClient, shopify: TestClient, shop: str) -> None:
    authorize = urlsplit(browser.get("/auth", params={"shop": shop}).headers["location"])
    approved = shopify.get(f"{authorize.path}?{authorize.query}", follow_redirects=False)
    callback = urlsplit(approved.headers["location"])
    assert browser.get(f"/auth/callback?{callback.query}").status_code == 302


def test_stored_tokens_are_ciphertext_that_decrypts_to_the_issued_token(
    browser: TestClient, store: DevStore, session: Session, app_settings: Settings
) -> None:
    browser.get("/api/shop", headers=bearer(store))
    raw = session.execute(
        text("SELECT access_token_encrypted, refresh_token_encrypted FROM shops WHERE domain = :d"),
        {"d": SHOP},
    ).one()
    issued = set(store._tokens)  # noqa: SLF001 - what the double handed out
    assert not any(token in raw[0] or token in raw[1] for token in issued)
    shop = session.query(Shop).filter_by(domain=SHOP).one()
    assert access_token(shop, token_cipher(app_settings)) in issued


def test_tokens_written_under_one_key_are_read_after_a_key_rotation(
    browser: TestClient, store: DevStore, session: Session, settings: Settings
) -> None:
    old_key, new_key = generate_key(), generate_key()
    before = settings.model_copy(update={"token_encryption_keys": [old_key]})
    shop = Shop(domain=SHOP, installed_at=datetime.now(UTC))
    shop.access_token_encrypted = token_cipher(before).encrypt("shpat_rotated")
    after = settings.model_copy(update={"token_encryption_keys": [new_key, old_key]})
    assert access_token(shop, token_cipher(after)) == "shpat_rotated"


def test_production_refuses_to_start_without_token_encryption_keys() -> None:
    with pytest.raises(ValidationError, match="TOKEN_ENCRYPTION_KEYS"):
        Settings(
            app_env="production",
            shopify_api_key="prod-key",
            shopify_api_secret="prod-secret",
            database_url="postgresql://db/prod",
            token_encryption_keys=[],
        )


def test_no_token_reaches_any_log_over_a_full_install(
    browser: TestClient,
    shopify: TestClient,
    store: DevStore,
    session: Session,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    session_tokens = [store.session_token(OTHER_SHOP) for _ in range(2)]
    install_by_code_grant(browser, shopify, SHOP)  # legacy path
    assert browser.get(f"/?{launch_query(store, OTHER_SHOP, id_token=session_tokens[0])}").status_code == 200
    session.execute(update(Shop).values(access_token_expires_at=datetime.now(UTC) + timedelta(minutes=1)))
    session.commit()
    headers = {"Authorization": f"Bearer {session_tokens[1]}"}
    assert browser.get("/api/shop", headers=headers).status_code == 200  # refresh
    assert post_webhook(browser, "orders/create", order_payload(1, 2), OTHER_SHOP).status_code == 200
    assert browser.get("/api/shop", headers={"Authorization": "Bearer garbage"}).status_code == 401

    secrets = [*store._tokens, *store.grants._refresh, *session_tokens]  # noqa: SLF001
    secrets += [code for code in store.grants._codes]  # noqa: SLF001
    assert len(store.grants._refresh) >= 3  # noqa: SLF001 - the flow really issued and rotated
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "auth/callback" in logged and "id_token=[redacted]" in logged  # the logs were captured
    leaked = [secret for secret in secrets if secret in logged]
    assert leaked == []


def test_redact_masks_tokens_in_urls_and_free_text() -> None:
    line = (
        "GET /?embedded=1&id_token=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig&shop=x.myshopify.com "
        "token shpat_0123abcd refresh shprt_99ff code=abc123"
    )
    cleaned = redact(line)
    assert "eyJ" not in cleaned and "shpat_0123abcd" not in cleaned and "shprt_99ff" not in cleaned
    assert "abc123" not in cleaned and "shop=x.myshopify.com" in cleaned
