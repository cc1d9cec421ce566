"""The database session as a FastAPI request dependency: `SessionDep`, a read-only session
(`app.kit.db.read_session`). A handler that writes opens `app.kit.db.write_transaction`, which on
SQLite takes the write lock before the first read (docs/architecture.md, "Rules the code keeps").
Apart from app.kit.db so that the worker and the CLI, which serve no request, start without
importing FastAPI."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session, sessionmaker

from app.kit.db import read_session


def get_session(request: Request) -> Iterator[Session]:
    factory: sessionmaker[Session] = request.app.state.sessionmaker
    with read_session(factory) as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]
