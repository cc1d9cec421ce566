"""`rfm-clv import` and `rfm-clv reconcile` refresh an expiring token first, through the same token
owner as the worker and the web (app.shops.tokens.ShopTokens), and then run on the new token."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from app.imports.cli import import_command, reconcile_command
from app.kit.db import write_transaction
from app.models import Shop
from app.shops.tokens import access_token, token_cipher
from shopify_double import create_devstore_app
from tests.imports.conftest import SCOPES, SHOP, World, seed_history


def _expired_with_a_refresh_token(world: World) -> str:
    """The stored token is past its expiry; the refresh token Shopify gave with it still works."""
    with write_transaction(world.factory) as session:
        shop = session.get(Shop, world.shop_id)
        assert shop is not None
        cipher = token_cipher(world.settings)
        old = access_token(shop, cipher)
        assert old is not None
        refresh = world.store.grants.issue_refresh_token(SHOP, frozenset(SCOPES.split(",")), old)
        shop.access_token_expires_at = datetime.now(UTC) - timedelta(minutes=1)
        shop.refresh_token_encrypted = cipher.encrypt(refresh)
        shop.refresh_token_expires_at = datetime.now(UTC) + timedelta(days=90)
        return old


def _stored(world: World) -> str | None:
    with world.factory() as session:
        shop = session.get(Shop, world.shop_id)
        assert shop is not None
        return access_token(shop, token_cipher(world.settings))


def _to_the_double(world: World) -> Callable[[], httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_devstore_app(world.store))
    return lambda: httpx.AsyncClient(transport=transport, base_url="http://devstore")


@pytest.mark.parametrize("command", [import_command, reconcile_command], ids=["import", "reconcile"])
def test_the_command_refreshes_an_expired_token_and_runs_on_the_new_one(
    world: World, command: object
) -> None:
    seed_history(world.store, 20)
    world.store.client_id = world.settings.shopify_api_key  # the app the double knows
    world.store.client_secret = world.settings.shopify_api_secret
    old = _expired_with_a_refresh_token(world)
    world.store.revoke(SHOP, old)  # an expired token: Shopify answers it with 401

    settings = world.settings.model_copy(update={"bulk_poll_seconds": 0.2})  # the double answers at once
    assert command(settings, SHOP, client=_to_the_double(world)) == 0  # type: ignore[operator]

    new = _stored(world)
    assert new is not None and new != old
