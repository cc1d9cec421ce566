from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker
from starlette.testclient import TestClient

from app.config import Settings
from app.main import create_app
from tests.fixtures.database import POSTGRES_URL, clear, fresh_postgres, fresh_sqlite
from tests.fixtures.webhooks import SECRET

BACKENDS = ("postgresql", "sqlite")


# The tests that take longest on the clock (waiting on polls, a browser, subprocesses, hypothesis
# runs), started first so that no process of `pytest -n` is left running one alone at the end
# (docs/benchmarks.md, "Test suite time"). Only the order changes; a missing entry costs nothing.
LONGEST_FIRST = (
    "tests/demo/test_demo.py",
    "tests/orders/test_ingest_function.py::test_the_function_and_the_python_rules",
    "tests/admin/test_browser.py",
    "tests/admin/test_browser_pages.py",
    "tests/admin/test_browser_cleanup.py",
    "tests/orders/test_delivery_properties.py",
    "tests/scoring/test_scoring_properties.py",
    "tests/imports/test_cli.py",
    "tests/webhooks/test_verification.py::test_database_down",
    "tests/test_packaging.py",
    "tests/worker/test_multi_host.py",
    "tests/scoring/test_properties.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        return next((i for i, p in enumerate(LONGEST_FIRST) if item.nodeid.startswith(p)), len(LONGEST_FIRST))

    items.sort(key=rank)  # stable: the collected order within each rank


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
    engine = databases.get(backend)[0]
    clear(engine)
    return engine


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    with sessionmaker(engine, expire_on_commit=False)() as s:
        yield s


@pytest.fixture
def settings(engine: Engine, database_url: str) -> Settings:
    return Settings(
        app_env="test", database_url=database_url, shopify_api_secret=SECRET, shopify_api_key="test-key"
    )


@pytest.fixture
def app(settings: Settings, engine: Engine) -> FastAPI:
    # the test database's engine: its pooled connection serves every test of the process
    return create_app(settings, engine=engine)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as c:
        yield c
