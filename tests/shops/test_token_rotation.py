"""Rotating the token encryption key re-encrypts every stored token with the new key."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy.orm import Session

from app.shopify.oauth import AccessToken
from app.shopify.token_crypto import TokenCipher, TokenDecryptError, generate_key
from app.shops.service import rotate_token_encryption
from app.shops.tokens import access_token, refresh_token, store_token
from tests.fixtures.factories import create_shop


def test_rotation_leaves_tokens_readable_with_the_new_key_alone(session: Session) -> None:
    old, new = generate_key(), generate_key()
    shop = create_shop(session, "rotate.myshopify.com")
    token = AccessToken.from_response(
        {
            "access_token": "shpat_secret",
            "scope": "read_orders",
            "expires_in": 3600,
            "refresh_token": "shprt_x",
        },
        datetime.now(UTC),
    )
    store_token(shop, token, TokenCipher.from_keys([old]))
    session.commit()

    assert rotate_token_encryption(session, TokenCipher.from_keys([new, old])) == 1
    session.commit()

    only_new = TokenCipher.from_keys([new])
    assert access_token(shop, only_new) == "shpat_secret"
    assert refresh_token(shop, only_new) == "shprt_x"
    with pytest.raises(TokenDecryptError):
        access_token(shop, TokenCipher.from_keys([old]))
