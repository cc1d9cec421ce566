"""`python -m app.worker`: run one worker until SIGTERM.

This entry point is the worker process's composition: it imports `app.tasks` (every domain's job
kinds), which the rest of `app.worker` never does (the one exception in the import contracts)."""

from __future__ import annotations

import os
import sys
from wsgiref.simple_server import WSGIServer

from prometheus_client import start_http_server

from app import tasks  # noqa: F401 - registers every job kind
from app.config import Settings, get_settings
from app.jobs.services import services_factory
from app.kit.db import make_engine, make_sessionmaker
from app.kit.observability import configure_logging
from app.worker import Worker


def serve_metrics(settings: Settings) -> WSGIServer | None:
    """The worker's Prometheus endpoint, when a port is set. It has no token, so it listens where
    the operator says (loopback by default)."""
    if settings.worker_metrics_port is None:
        return None
    server, _ = start_http_server(settings.worker_metrics_port, addr=settings.worker_metrics_addr)
    return server


def lower_priority(settings: Settings) -> int:
    """Lower the worker's CPU priority by ``WORKER_NICE`` (a background process yields the CPU
    to the web processes beside it); returns the niceness now in force."""
    return os.nice(settings.worker_nice)


def main() -> int:
    settings = get_settings()
    configure_logging(settings.log_level, json_logs=settings.json_logs)
    lower_priority(settings)
    serve_metrics(settings)
    engine = make_engine(settings.database_url)
    worker = Worker(
        make_sessionmaker(engine),
        services=services_factory(settings),
        heartbeat_seconds=settings.worker_heartbeat_seconds,
        heartbeat_expiry_seconds=settings.worker_heartbeat_expiry_seconds,
        duty=settings.worker_duty,
    )
    worker.install_signal_handlers()
    try:
        worker.run()
    finally:
        worker.close()
        engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
