"""app.kit.db's sessions: a reader cannot write."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, func, insert, select
from sqlalchemy.exc import DBAPIError

from app.kit.db import make_engine, make_sessionmaker, read_session, write_transaction
from app.models import Shop
from app.shops.service import register_shop


def test_a_read_session_refuses_to_write_and_leaves_its_connection_writable(
    engine: Engine, database_url: str
) -> None:
    one = make_engine(database_url, pool_size=1, max_overflow=0)  # every session on one connection
    try:
        factory = make_sessionmaker(one)
        with read_session(factory) as session:
            assert session.scalar(select(func.count()).select_from(Shop)) == 0
            with pytest.raises(DBAPIError, match="read-only transaction"):
                session.execute(insert(Shop).values(domain="reader.myshopify.com"))
        with factory() as session:
            assert session.scalar(select(func.count()).select_from(Shop)) == 0
        # the pool's connection is writable again (READ ONLY was the reader's transaction's only)
        with write_transaction(factory) as session:
            register_shop(session, "writer.myshopify.com", datetime.now(UTC))
        with factory() as session:
            assert session.scalar(select(Shop.domain)) == "writer.myshopify.com"
    finally:
        one.dispose()
