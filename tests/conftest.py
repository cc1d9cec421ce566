from __future__ import annotations

import gc
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

# pytest-xdist's controller process loads this file too, but runs no test: the app and the
# libraries the fixtures need are imported where they are used, so that the controller starts the
# test processes at once instead of first importing the app (about 1.5 s of CPU, docs/benchmarks.md,
# "Test suite time"). Each test process imports them when it collects the tests.
if TYPE_CHECKING:
    from fastapi import FastAPI
    from sqlalchemy import Engine
    from sqlalchemy.orm import Session
    from starlette.testclient import TestClient

    from app.config import Settings

# Fewer young collections from the start: importing the app, its libraries and the Shopify
# double's schema allocates millions of objects that all survive (pytest_collection_finish below).
gc.set_threshold(50_000, 20, 20)

BACKENDS = ("postgresql", "sqlite")


# The tests that take longest on the clock (a browser, subprocesses, polls, hypothesis runs), each
# group with its seconds on the clock (one process, quiet machine), so that they are spread over
# the processes of `pytest -n` instead of queueing in one of them while the others run out of
# work (docs/benchmarks.md, "Test suite time"). Only the order changes; a missing entry costs
# nothing. The browser modules are one group: they share one Chromium per process. A group that
# mostly waits (its CPU a fraction of its clock) is named in WAITING: those all go to one process,
# so that no two processes wait at once while a core stands idle.
LONGEST_FIRST = {
    "tests/admin/test_browser": 21.0,
    "tests/worker/test_multi_host.py": 12.5,
    "tests/demo/test_demo.py": 10.7,
    "tests/admin/test_customer_list.py": 4.9,
    "tests/bad_input/test_ids.py": 4.5,
    "tests/admin/test_pages.py": 4.4,
    "tests/test_shop_scoped_sql.py": 3.8,
    "tests/orders/test_delivery_properties.py": 3.8,
    "tests/demo/test_empty_demo.py": 3.7,
    "tests/scoring/test_scoring_properties.py": 2.4,
    "tests/scoring/test_properties.py": 2.2,
}
# the worker test: two 4 s heartbeat expiries, three processes; the demos: the worker's polls
WAITING = {
    "tests/worker/test_multi_host.py",
    "tests/demo/test_demo.py",
    "tests/demo/test_empty_demo.py",
    "tests/test_shop_scoped_sql.py",
}


def _xdist_chunks(total: int, workers: int) -> list[int]:
    """The sizes of the consecutive runs of the collection that `--dist worksteal` first hands to
    each process (xdist's WorkStealingScheduling.check_schedule: an even split, in order)."""
    sizes: list[int] = []
    for i in range(workers):
        sizes.append((total - sum(sizes)) // (workers - i))
    return sizes


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    groups: dict[str, list[pytest.Item]] = {prefix: [] for prefix in LONGEST_FIRST}
    rest: list[pytest.Item] = []
    for item in items:
        prefix = next((p for p in LONGEST_FIRST if item.nodeid.startswith(p)), None)
        (groups[prefix] if prefix is not None else rest).append(item)
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    # the longest groups first, each to the process with the fewest seconds of them so far; each
    # process's run starts with its long tests (a process that runs dry steals from the end)
    heads: list[list[pytest.Item]] = [[] for _ in range(workers)]
    load = [0.0] * workers
    for prefix in sorted(LONGEST_FIRST, key=lambda p: (p not in WAITING, -LONGEST_FIRST[p])):
        least = workers - 1 if prefix in WAITING else load.index(min(load))
        heads[least] += groups[prefix]
        load[least] += LONGEST_FIRST[prefix] if groups[prefix] else 0.0
    ordered: list[pytest.Item] = []
    for head, size in zip(heads, _xdist_chunks(len(items), workers), strict=True):
        take = max(size - len(head), 0)
        ordered += head + rest[:take]
        del rest[:take]
    items[:] = ordered + rest


def pytest_collection_finish(session: pytest.Session) -> None:
    """The objects alive after collection live for the whole run (modules, the Shopify double's
    schema, hypothesis's strategies): the cyclic garbage collector stops scanning them
    (`gc.freeze`); with young collections every 50,000 allocations instead of 700 (above), the
    tests' time in the collector halves (about 4.3 s to 2.0 s of CPU for 700 of them;
    docs/benchmarks.md, "Test suite time"). No test relies on when a cycle is collected."""
    gc.collect()
    gc.freeze()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend" in metafunc.fixturenames:
        both = metafunc.definition.get_closest_marker("both_dbs") is not None
        metafunc.parametrize("backend", BACKENDS if both else BACKENDS[:1], scope="session")


class Databases:
    """The migrated test databases, made on first use and kept for the session."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.engines: dict[str, tuple[Engine, str]] = {}

    def get(self, backend: str) -> tuple[Engine, str]:
        from tests.fixtures.database import POSTGRES_URL, fresh_postgres, fresh_sqlite

        if backend not in self.engines:
            if backend == "postgresql":
                self.engines[backend] = (fresh_postgres(), POSTGRES_URL)
            else:
                path = self.tmp / "test.db"
                self.engines[backend] = (fresh_sqlite(path), f"sqlite:///{path}")
        return self.engines[backend]


@pytest.fixture(scope="session")
def databases(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Databases]:
    dbs = Databases(tmp_path_factory.mktemp("db"))
    yield dbs
    for engine, _ in dbs.engines.values():
        engine.dispose()


@pytest.fixture
def database_url(databases: Databases, backend: str) -> str:
    return databases.get(backend)[1]


@pytest.fixture
def engine(databases: Databases, backend: str) -> Engine:
    from tests.fixtures.database import clear

    engine = databases.get(backend)[0]
    clear(engine)
    return engine


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    from sqlalchemy.orm import sessionmaker

    with sessionmaker(engine, expire_on_commit=False)() as s:
        yield s


# Settings read the environment and validate every field (about 0.9 ms of CPU): each test gets a
# deep copy of the one made for its database and the environment as it is. pytest names the running
# test in the environment (PYTEST_CURRENT_TEST, a new value at every test), which no setting reads.
_settings_made: dict[tuple[str, frozenset[tuple[str, str]]], Settings] = {}


@pytest.fixture
def settings(engine: Engine, database_url: str) -> Settings:
    from app.config import Settings
    from tests.fixtures.webhooks import SECRET

    key = (database_url, frozenset(i for i in os.environ.items() if i[0] != "PYTEST_CURRENT_TEST"))
    if key not in _settings_made:
        # No idle webhook connection per test's app (a new PostgreSQL backend each, about 4.5 ms of
        # the server's CPU): a test that posts an order opens one (tests/webhooks cover both sizes).
        _settings_made[key] = Settings(
            app_env="test",
            database_url=database_url,
            shopify_api_secret=SECRET,
            shopify_api_key="test-key",
            webhook_pool_min_size=0,
        )
    return _settings_made[key].model_copy(deep=True)


@pytest.fixture
def app(settings: Settings, engine: Engine) -> FastAPI:
    from app.main import create_app

    # the test database's engine: its pooled connection serves every test of the process
    return create_app(settings, engine=engine)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    from starlette.testclient import TestClient

    with TestClient(app) as c:
        yield c
