"""`python -m app.worker`: run one worker until SIGTERM."""

from __future__ import annotations

import logging
import sys

from app.config import get_settings
from app.db import make_engine, make_sessionmaker
from app.worker import Worker, load_job_modules
from app.worker.services import services_factory


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = get_settings()
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
