"""The database session as a FastAPI request dependency: `SessionDep`, a read-only session
(`app.kit.db.read_session`). A handler that writes opens `app.kit.db.write_transaction`, which on
SQLite takes the write lock before the first read (docs/architecture.md, "Rules the code keeps").
Apart from app.kit.db so that the worker and the CLI, which serve no request, start without
importing FastAPI."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from sqlalchemy.orm import Session, sessionmaker

from app.kit.db import read_session, write_transaction

T = TypeVar("T")


def get_session(request: Request) -> Iterator[Session]:
    factory: sessionmaker[Session] = request.app.state.sessionmaker
    with read_session(factory) as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]


async def read_in_thread(request: Request, fn: Callable[..., T], *args: Any) -> T:
    """``fn(session, *args)`` with a read session of its own, in the thread pool (for an async
    endpoint, which must not block the event loop on the database)."""

    def run() -> T:
        with read_session(request.app.state.sessionmaker) as session:
            return fn(session, *args)

    return await run_in_threadpool(run)


async def write_in_thread(request: Request, fn: Callable[..., T], *args: Any) -> T:
    """``fn(session, *args)`` in a write transaction of its own, in the thread pool."""

    def run() -> T:
        with write_transaction(request.app.state.sessionmaker) as session:
            return fn(session, *args)

    return await run_in_threadpool(run)
