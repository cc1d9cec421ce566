"""A sync's 401 drops the stored token only while it is still the token that was refused."""

from __future__ import annotations

from app.kit.db import write_transaction
from app.models import Shop
from app.shops.tokens import access_token, token_cipher
from tests.sync.conftest import SCOPES, SHOP, World, seed


def _stored_token(world: World) -> str | None:
    with world.factory() as session:
        shop = session.get(Shop, world.shop_id)
        assert shop is not None
        return access_token(shop, token_cipher(world.settings))


def test_a_sync_refused_for_an_old_token_keeps_the_refreshed_one(world: World) -> None:
    seed(world, 2)
    # the job read `world.token`; another process then refreshed it (Shopify revokes the old one)
    world.store.revoke(SHOP, world.token)
    new = world.store.issue_access_token(SHOP, SCOPES)
    with write_transaction(world.factory) as session:
        shop = session.get(Shop, world.shop_id)
        assert shop is not None
        shop.access_token_encrypted = token_cipher(world.settings).encrypt(new)

    assert world.sync() is None

    assert _stored_token(world) == new
