"""The CPU priority of the PostgreSQL server processes that serve a background process.

`os.nice` lowers a worker's own priority, but most of a rescore's CPU is spent by the PostgreSQL
backend that serves the worker's connection, a process of the database server. Where that server
runs on the same machine and the worker may change its processes' priority (the same user, or
root), the worker lowers its own backends' priority as well, so that the web tier's backends get
the CPU first (docs/deployment.md, "Capacity of one machine"). PostgreSQL itself has no per-session
priority: a backend is an ordinary process (https://www.postgresql.org/docs/15/connect-estab.html),
named by `pg_backend_pid()` and titled with its client's address and port
(https://www.postgresql.org/docs/15/monitoring-ps.html).

A backend is changed only when it is certainly this connection's: the server answers on a loopback
address and the process with the backend's id is titled with this connection's own client port.
Anything else (a server on another machine or in a container, a title turned off) leaves the
priority alone and says so once."""

from __future__ import annotations

import logging
import os
import re
import socket
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, event

log = logging.getLogger(__name__)

LOOPBACK = {"127.0.0.1", "::1", "localhost"}


def own_backend(dbapi_connection: Any, proc: Path = Path("/proc")) -> int | None:
    """The process id of the PostgreSQL backend serving `dbapi_connection` (psycopg), when it runs
    on this machine and is certainly this connection's; else None."""
    with dbapi_connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid(), inet_server_addr()::text")
        pid, server = cursor.fetchone()
    dbapi_connection.rollback()  # the pool hands the connection out with no transaction open
    if server is None or server.split("/")[0] not in LOOPBACK:
        return None  # a Unix socket (no client port to match) or another machine
    with socket.socket(fileno=os.dup(dbapi_connection.fileno())) as sock:
        client_port = sock.getsockname()[1]
    try:
        title = (proc / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return None
    # "postgres: 15/main: user database 127.0.0.1(54012) idle"
    if not title.startswith("postgres") or not re.search(rf"\({client_port}\)", title):
        return None
    return int(pid)


def lower_own_backend(dbapi_connection: Any, nice: int) -> str | None:
    """Give the backend serving `dbapi_connection` the niceness `nice` unless it is lower already;
    None when done, else why not."""
    pid = own_backend(dbapi_connection)
    if pid is None:
        return "the server is not on this machine, or its process could not be identified"
    try:
        os.setpriority(os.PRIO_PROCESS, pid, max(nice, os.getpriority(os.PRIO_PROCESS, pid)))
    except PermissionError:
        return "this process may not change the server's processes (run as their user or root)"
    return None


def lower_backend_priority(engine: Engine, nice: int) -> None:
    """Give every PostgreSQL backend that `engine` connects to the niceness `nice` (0 to 19), as
    the worker gives itself; a backend that cannot be identified or changed keeps its priority
    (logged once per engine)."""
    warned: list[str] = []

    @event.listens_for(engine, "connect")
    def _lower(dbapi_connection: Any, _record: Any) -> None:
        reason = lower_own_backend(dbapi_connection, nice)
        if reason is not None and not warned:
            warned.append(reason)
            log.warning("the database backends keep their CPU priority: %s", reason)
