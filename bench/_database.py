"""What the benchmark scripts share: a freshly migrated PostgreSQL database of their own."""

from __future__ import annotations

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from app.kit.db import migrate, normalise_url


def fresh_database(url: str) -> None:
    """Drop and create the database `url` names, then run the migrations on it."""
    target = make_url(normalise_url(url))
    admin = create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{target.database}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{target.database}"'))
    admin.dispose()
    migrate(url)
