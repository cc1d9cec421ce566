"""Engine and session factories, the write transaction, migrations and the webhook pool (the request
dependency is app.kit.web)."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

from alembic.config import Config
from psycopg_pool import AsyncConnectionPool
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def normalise_url(url: str) -> str:
    """Accept the usual `postgres://` / `postgresql://` forms and use psycopg 3."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


def make_engine(url: str, **kwargs: Any) -> Engine:
    url = normalise_url(url)
    if is_sqlite(url):
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False}, **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _: Any) -> None:
            cur = dbapi_conn.cursor()
            # WAL lets the page read while the webhook endpoint writes; the busy timeout makes
            # concurrent writers wait instead of failing (SQLite allows one writer at a time).
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()
            # Let SQLAlchemy drive transactions (pysqlite's own BEGIN handling is off) ...
            dbapi_conn.isolation_level = None

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Any) -> None:
            # ... and let writers take the write lock up front: a deferred transaction that reads
            # and then writes fails with SQLITE_BUSY instead of waiting when another writer is
            # active. Readers stay deferred so that they never block a writer (WAL).
            immediate = conn.get_execution_options().get(WRITE_OPTION)
            conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

        return engine
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 10)
    # No pre-ping (a round trip per checkout on the webhook hot path); a dropped connection fails
    # that one request with a 503, which Shopify retries, and connections are recycled hourly.
    kwargs.setdefault("pool_recycle", 3600)
    return create_engine(url, **kwargs)


WRITE_OPTION = "rfm_write_transaction"


_sqlite_writer_locks: dict[str, threading.Lock] = {}


@contextmanager
def write_transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A transaction that will write: commits on success, rolls back on error.

    On SQLite, writers of this process also queue on a lock: SQLite's own busy handler waits by
    sleeping, which under many concurrent writers wastes most of the time asleep."""
    bind = factory.kw.get("bind")
    lock = None
    if isinstance(bind, Engine) and bind.dialect.name == "sqlite":
        lock = _sqlite_writer_locks.setdefault(str(bind.url), threading.Lock())
    with lock or nullcontext(), factory.begin() as session:
        session.connection(execution_options={WRITE_OPTION: True})
        yield session


@contextmanager
def read_session(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session that only reads (the pages): closed without a commit. On PostgreSQL its
    transaction is READ ONLY, so a write slipped into a reader fails at once instead of being
    committed by a path that never takes SQLite's write lock first (write_transaction does)."""
    with factory() as session:
        session.connection(execution_options={"postgresql_readonly": True})
        yield session


def libpq_url(url: str) -> str:
    """The database URL as libpq takes it (psycopg's own connections, outside SQLAlchemy)."""
    return make_url(normalise_url(url)).set(drivername="postgresql").render_as_string(hide_password=False)


def webhook_pool(url: str, size: int, wait_seconds: float, min_size: int = 1) -> AsyncConnectionPool[Any]:
    """PostgreSQL connections for the order-webhook path, in autocommit: each delivery is one call
    of a server-side function, its own transaction (app.webhooks.endpoint). Use with `async with`.
    No check on checkout (that would be a round trip per delivery): a broken connection fails its
    one delivery with a 503, which Shopify retries, and the pool replaces it. A checkout that finds
    no connection within `wait_seconds` fails with `PoolTimeout`. `min_size` connections are kept
    open (0: none until the first order delivery)."""
    return AsyncConnectionPool(
        libpq_url(url),
        min_size=min_size,
        max_size=size,
        kwargs={"autocommit": True},
        timeout=wait_seconds,
        open=False,
        name="webhooks",
    )


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def _migrations_dir() -> Path:
    # A source checkout keeps migrations/ beside app/; the Docker image sets RFM_MIGRATIONS_DIR.
    configured = os.environ.get("RFM_MIGRATIONS_DIR")
    return Path(configured) if configured else Path(__file__).resolve().parents[2] / "migrations"


def alembic_config(url: str) -> Config:
    migrations = _migrations_dir()
    cfg = Config(str(migrations.parent / "alembic.ini"))
    cfg.set_main_option("script_location", str(migrations))
    cfg.attributes["url"] = url
    return cfg


def migrate(url: str, revision: str = "head") -> None:
    """Run the Alembic migrations up to `revision` (what the release step and the demo do). "head",
    not "heads": a second head is an error here, not a silent branch."""
    from alembic import command

    command.upgrade(alembic_config(url), revision)
