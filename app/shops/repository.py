"""SQL for installed shops and for erasing what the app holds."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam, delete, or_, select, update
from sqlalchemy.orm import Session

from app.kit.sql import advisory_lock, fetch_one, lock_key
from app.models import Base, Shop
from app.models.base import table_of

shops = table_of(Shop)


def get_by_domain(session: Session, domain: str) -> Shop | None:
    return session.scalars(select(Shop).where(Shop.domain == domain)).first()


@dataclass(frozen=True, slots=True)
class ShopRef:
    """What a webhook needs to know about its shop (read without the ORM: a hot path)."""

    shop_id: int
    domain: str
    uninstalled_at: datetime | None

    @property
    def is_installed(self) -> bool:
        return self.uninstalled_at is None


_ref_by_domain = select(shops.c.shop_id, shops.c.domain, shops.c.uninstalled_at).where(
    shops.c.domain == bindparam("domain")
)


def ref_by_domain(session: Session, domain: str) -> ShopRef | None:
    row = fetch_one(session, _ref_by_domain, {"domain": domain}, allow_none=True)
    return ShopRef(row.shop_id, row.domain, row.uninstalled_at) if row is not None else None


def create(session: Session, domain: str, now: datetime, **fields: object) -> Shop:
    shop = Shop(domain=domain, installed_at=now, **fields)
    session.add(shop)
    session.flush()
    return shop


_when = shops.c.last_webhook_at.type
_touch = (
    update(shops)
    .where(
        shops.c.shop_id == bindparam("b_shop_id"),
        or_(
            shops.c.last_webhook_at.is_(None),
            shops.c.last_webhook_at < bindparam("a_minute_ago", type_=_when),
        ),
    )
    .values(last_webhook_at=bindparam("now", type_=_when))
)


_last_touch: dict[object, float] = {}


def touch_due(shop: object) -> bool:
    """Whether this process should write the shop's `last_webhook_at` now: at most once a minute
    (a per-delivery write to the shop row would serialise every delivery of a busy shop on that
    one row lock, and the statement itself is skipped while this process's last write is recent).
    `shop` is the shop's id or, on the one-round-trip path, its domain."""
    tick = time.monotonic()
    if tick - _last_touch.get(shop, -1e9) < 60:
        return False
    _last_touch[shop] = tick
    return True


def touch_last_webhook(session: Session, shop_id: int, now: datetime) -> None:
    if not touch_due(shop_id):
        return
    session.connection().execute(
        _touch, {"b_shop_id": shop_id, "now": now, "a_minute_ago": now - timedelta(minutes=1)}
    )


_hold = select(shops.c.shop_id).where(shops.c.shop_id == bindparam("shop_id"))
_hold_postgresql = _hold.with_for_update(read=True, key_share=True)  # FOR KEY SHARE


def hold_shop(session: Session, shop_id: int) -> None:
    """Lock the shop's row until the transaction ends, as a foreign key check would lock it
    (`FOR KEY SHARE`): the ledger and the customers have no key to shops (migration 0027), so
    whoever inserts (or upserts) their rows holds the shop first, before its first write to them
    (updates and deletes alone cannot leave a row without its shop). Erasing the shop
    (:func:`erase_shop`) waits for the holders; a holder after it finds no shop. LookupError: the
    shop is gone. SQLite: a plain read (its write transactions run one at a time)."""
    query = _hold_postgresql if session.get_bind().dialect.name == "postgresql" else _hold
    if session.execute(query, {"shop_id": shop_id}).first() is None:
        raise LookupError(f"shop {shop_id} does not exist: nothing of it may be written")


def erase_shop(session: Session, shop_id: int) -> None:
    """Every row of every table that belongs to the shop, then the shop itself. First the scores
    lock: a rescore writing the shop's scores finishes before they are deleted (the lock alone:
    ``app.scoring.repository.lock_scores`` also wants the shop, and a retried erasure finds none)."""
    advisory_lock(session, [lock_key("scores", shop_id)])
    owned = [t for t in reversed(Base.metadata.sorted_tables) if t.name != "shops" and "shop_id" in t.c]
    for table in owned:
        session.execute(delete(table).where(table.c.shop_id == shop_id))
    session.execute(delete(shops).where(shops.c.shop_id == shop_id))
    # A table without a foreign key to shops (the ledger, the customers: migration 0027) gets no
    # check here of rows written since its delete: their writers hold the shop's row instead
    # (hold_shop), so the shop's delete waited for them to commit, and a writer after it finds no
    # shop. What they committed in between is deleted now.
    for table in owned:
        if not any(key.column.table is shops for key in table.foreign_keys):
            session.execute(delete(table).where(table.c.shop_id == shop_id))


def stored_access_token(session: Session, shop_id: int) -> str | None:
    """The shop's access token as stored (encrypted), or None."""
    return session.scalar(select(shops.c.access_token_encrypted).where(shops.c.shop_id == shop_id))


def forget_tokens(session: Session, shop_id: int, expected_access_encrypted: str) -> bool:
    """Drop the shop's tokens in one statement, only if the row still holds `expected` (another
    path may have stored a new token meanwhile). False: it had been replaced, and is kept."""
    result = session.execute(
        update(shops)
        .where(shops.c.shop_id == shop_id, shops.c.access_token_encrypted == expected_access_encrypted)
        .values(
            access_token_encrypted=None,
            access_token_expires_at=None,
            refresh_token_encrypted=None,
            refresh_token_expires_at=None,
        )
    )
    return bool(getattr(result, "rowcount", 0))


def replace_rotated_tokens(
    session: Session,
    shop_id: int,
    expected_refresh_encrypted: str,
    *,
    access_token_encrypted: str,
    access_token_expires_at: datetime | None,
    refresh_token_encrypted: str | None,
    refresh_token_expires_at: datetime | None,
    scope: str,
) -> bool:
    """Store a refreshed pair in one statement, only if the row still holds the refresh token that
    was spent (compare-and-set). False: another worker rotated first; its pair is the one to use."""
    result = session.execute(
        update(shops)
        .where(
            shops.c.shop_id == shop_id,
            shops.c.refresh_token_encrypted == expected_refresh_encrypted,
            shops.c.uninstalled_at.is_(None),
        )
        .values(
            access_token_encrypted=access_token_encrypted,
            access_token_expires_at=access_token_expires_at,
            refresh_token_encrypted=refresh_token_encrypted,
            refresh_token_expires_at=refresh_token_expires_at,
            scope=scope,
        )
    )
    return bool(getattr(result, "rowcount", 0))
