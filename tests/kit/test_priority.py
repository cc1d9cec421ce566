"""The worker's PostgreSQL backends at the worker's priority (``WORKER_NICE_DATABASE``): changed only
when the backend is certainly the connection's own, on this machine."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text

from app.kit.db import make_engine
from app.kit.priority import lower_backend_priority, lower_own_backend, own_backend
from tests.fixtures.database import POSTGRES_URL


@pytest.fixture
def fresh_engine(databases: Any) -> Any:
    databases.get("postgresql")  # the worker's database exists and is migrated
    engine = make_engine(POSTGRES_URL, pool_size=2, max_overflow=0)
    yield engine
    engine.dispose()


def _server_niceness(backend: int) -> int:
    """The niceness of the server's main process, which its backends start with."""
    parent = int((Path("/proc") / str(backend) / "stat").read_text().rsplit(")", 1)[1].split()[1])
    return os.getpriority(os.PRIO_PROCESS, parent)


def test_each_backend_of_the_engine_gets_the_niceness(fresh_engine: Engine) -> None:
    lower_backend_priority(fresh_engine, 13)
    with fresh_engine.connect() as connection:
        # handed out with no transaction open: the first statement starts the caller's own
        assert connection.connection.dbapi_connection.info.transaction_status == 0  # IDLE
        pid = connection.scalar(text("SELECT pg_backend_pid()"))
    assert os.getpriority(os.PRIO_PROCESS, pid) == 13


def test_a_backend_already_lower_is_not_raised(fresh_engine: Engine) -> None:
    with fresh_engine.connect() as connection:
        raw = connection.connection.dbapi_connection
        pid = own_backend(raw)
        assert pid is not None
        os.setpriority(os.PRIO_PROCESS, pid, 15)
        assert lower_own_backend(raw, 5) is None
        assert os.getpriority(os.PRIO_PROCESS, pid) == 15


def test_another_connections_backend_is_never_taken_for_this_one(
    fresh_engine: Engine, tmp_path: Path
) -> None:
    with fresh_engine.connect() as connection:
        raw = connection.connection.dbapi_connection
        pid = own_backend(raw)
        assert pid == connection.scalar(text("SELECT pg_backend_pid()"))
        # the same process id titled with another client's port (a server in a container, say,
        # whose process ids mean something else here)
        title = (Path("/proc") / str(pid) / "cmdline").read_bytes()
        fake = tmp_path / str(pid)
        fake.mkdir()
        (fake / "cmdline").write_bytes(title.replace(b"(", b"(9").replace(b")", b"9)", 1))
        assert own_backend(raw, proc=tmp_path) is None
        (fake / "cmdline").write_bytes(b"bash\0")
        assert own_backend(raw, proc=tmp_path) is None


def test_a_backend_it_may_not_change_keeps_its_priority_and_says_so_once(
    fresh_engine: Engine, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def refuse(*_: Any) -> None:
        raise PermissionError("not permitted")

    monkeypatch.setattr(os, "setpriority", refuse)
    lower_backend_priority(fresh_engine, 13)
    with (
        caplog.at_level(logging.WARNING, logger="app.kit.priority"),
        fresh_engine.connect() as first,
        fresh_engine.connect() as second,
    ):
        pids = {c.scalar(text("SELECT pg_backend_pid()")) for c in (first, second)}
    assert len(pids) == 2
    assert all(os.getpriority(os.PRIO_PROCESS, pid) == _server_niceness(pid) for pid in pids)
    assert [r.getMessage() for r in caplog.records] == [
        "the database backends keep their CPU priority: this process may not change the server's "
        "processes (run as their user or root)"
    ]
