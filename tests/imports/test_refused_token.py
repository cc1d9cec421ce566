"""A worker's 401 drops the stored token only while it is still the token that was refused."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import httpx

from app.imports import pull
from app.imports.service import request_import
from app.kit.db import write_transaction
from app.models import Shop
from app.shopify.admin_client import AdminClient
from app.shops.tokens import access_token, token_cipher
from shopify_double import create_devstore_app
from tests.imports.conftest import SCOPES, SHOP, World, no_sleep


def _stored_token(world: World) -> str | None:
    with world.factory() as session:
        shop = session.get(Shop, world.shop_id)
        assert shop is not None
        return access_token(shop, token_cipher(world.settings))


def _refresh_elsewhere(world: World) -> str:
    """What another process does when it refreshes the shop's token: Shopify revokes the old one
    and the new one is stored."""
    old = _stored_token(world)
    world.store.revoke(SHOP, old)
    new = world.store.issue_access_token(SHOP, SCOPES)
    with write_transaction(world.factory) as session:
        shop = session.get(Shop, world.shop_id)
        assert shop is not None
        shop.access_token_encrypted = token_cipher(world.settings).encrypt(new)
    return new


def test_an_import_refused_for_an_old_token_keeps_the_refreshed_one(world: World) -> None:
    with write_transaction(world.factory) as session:
        request_import(session, world.shop_id, datetime.now(UTC))
    double = create_devstore_app(world.store)
    refreshed: list[str] = []

    async def refreshed_while_in_flight(scope: Any, receive: Any, send: Any) -> None:
        # the step read the old token before this request; the refresh lands while it is in flight
        if not refreshed:
            refreshed.append(_refresh_elsewhere(world))
        await double(scope, receive, send)

    async def step() -> pull.ImportProgress:
        transport = httpx.ASGITransport(app=refreshed_while_in_flight)
        async with httpx.AsyncClient(transport=transport, base_url="http://devstore") as http:
            admin = AdminClient(http, world.settings, sleep=no_sleep)
            return await pull.advance_import(world.factory, admin, world.shop_id)

    progress = asyncio.run(step())

    assert progress.state == "failed"
    assert _stored_token(world) == refreshed[0]


def test_an_import_refused_for_the_stored_token_forgets_it(world: World) -> None:
    with write_transaction(world.factory) as session:
        request_import(session, world.shop_id, datetime.now(UTC))
    world.store.revoke(SHOP)

    world.run(lambda admin: pull.advance_import(world.factory, admin, world.shop_id))

    assert _stored_token(world) is None
