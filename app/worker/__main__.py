"""`python -m app.worker`: run one worker until SIGTERM."""

from __future__ import annotations

import sys

from prometheus_client import start_http_server

from app.config import get_settings
from app.db import make_engine, make_sessionmaker
from app.observability import configure_logging
from app.worker import Worker, load_job_modules
from app.worker.services import services_factory


def main() -> int:
    settings = get_settings()
    configure_logging(settings.log_level, json_logs=settings.json_logs)
    if settings.worker_metrics_port:
        start_http_server(
            settings.worker_metrics_port, addr="127.0.0.1" if settings.app_env != "production" else ""
        )
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
