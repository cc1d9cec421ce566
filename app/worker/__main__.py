"""`python -m app.worker`: run one worker until SIGTERM."""

from __future__ import annotations

import sys
from wsgiref.simple_server import WSGIServer

from prometheus_client import start_http_server

from app.config import Settings, get_settings
from app.kit.db import make_engine, make_sessionmaker
from app.kit.observability import configure_logging
from app.worker import Worker, load_job_modules
from app.worker.services import services_factory


def serve_metrics(settings: Settings) -> WSGIServer | None:
    """The worker's Prometheus endpoint, when a port is set. It has no token, so it listens where
    the operator says (loopback by default)."""
    if settings.worker_metrics_port is None:
        return None
    server, _ = start_http_server(settings.worker_metrics_port, addr=settings.worker_metrics_addr)
    return server


def main() -> int:
    settings = get_settings()
    configure_logging(settings.log_level, json_logs=settings.json_logs)
    serve_metrics(settings)
    engine = make_engine(settings.database_url)
    load_job_modules()
    worker = Worker(make_sessionmaker(engine), services=services_factory(settings))
    worker.install_signal_handlers()
    try:
        worker.run()
    finally:
        worker.close()
        engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
