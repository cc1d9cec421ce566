"""The job queue's depth as a Prometheus gauge, for the web process's /metrics."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from app.models import Job

QUEUE_DEPTH_TTL_S = 10.0


class QueueDepthCollector(Collector):
    """Jobs by kind and state, read from the database at most once per `ttl` seconds: scrapes
    (several Prometheus replicas, or anyone holding the token) share one query, and a database
    that is away is not asked again on every scrape."""

    def __init__(
        self,
        factory: sessionmaker[Session],
        ttl: float = QUEUE_DEPTH_TTL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.factory = factory
        self.ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()  # one query at a time; concurrent scrapes wait for its rows
        self._rows: list[tuple[str, str, int]] = []
        self._read_at: float | None = None

    def _read(self) -> list[tuple[str, str, int]]:
        try:
            with self.factory() as session:
                rows = session.execute(
                    select(Job.kind, Job.state, func.count()).group_by(Job.kind, Job.state)
                ).all()
        except Exception:  # a scrape must not fail because the database is away; /readyz says so
            return []
        return [(kind, state, count) for kind, state, count in rows]

    def rows(self) -> list[tuple[str, str, int]]:
        with self._lock:
            now = self._clock()
            if self._read_at is None or now - self._read_at >= self.ttl:
                self._rows = self._read()
                self._read_at = now
            return self._rows

    def collect(self) -> Any:
        family = GaugeMetricFamily(
            "rfm_jobs", "Jobs in the queue by kind and state", labels=["kind", "state"]
        )
        for kind, state, count in self.rows():
            family.add_metric([kind, state], count)
        yield family
