"""Health, readiness, metrics and structured logs."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlalchemy import event
from sqlalchemy.orm import Session
from starlette.testclient import TestClient

from app.config import Settings
from app.kit.observability import JsonFormatter, request_id_var, shop_var
from app.main import create_app
from tests.fixtures.factories import create_shop, order_payload
from tests.fixtures.webhooks import post_webhook

SHOP = "ops-shop.myshopify.com"


def test_healthz_answers_without_the_database(settings: Settings) -> None:
    down = settings.model_copy(update={"database_url": "postgresql://postgres@127.0.0.1:1/none"})
    with TestClient(create_app(down)) as client:
        assert client.get("/healthz").json() == {"status": "ok"}


@pytest.mark.both_dbs
def test_readyz_is_ready_on_a_migrated_database(client: TestClient) -> None:
    response = client.get("/readyz")
    assert (response.status_code, response.json()["status"]) == (200, "ready")


def test_readyz_is_not_ready_when_the_database_is_down(settings: Settings) -> None:
    down = settings.model_copy(update={"database_url": "postgresql://postgres@127.0.0.1:1/none"})
    with TestClient(create_app(down)) as client:
        response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["reason"].startswith("database")


def test_readyz_is_not_ready_before_the_migrations_ran(settings: Settings, tmp_path: Path) -> None:
    empty = settings.model_copy(update={"database_url": f"sqlite:///{tmp_path / 'empty.db'}"})
    with TestClient(create_app(empty)) as client:
        response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["reason"] == "migrations not at head"


METRICS_TOKEN = "scrape-token-0123456789abcdef"
SCRAPE = {"Authorization": f"Bearer {METRICS_TOKEN}"}


@pytest.fixture
def scraped(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings.model_copy(update={"metrics_token": SecretStr(METRICS_TOKEN)}))) as c:
        yield c


def test_metrics_count_webhooks_and_show_queue_depth(scraped: TestClient, session: Session) -> None:
    create_shop(session, SHOP)
    before = _sample(
        scraped.get("/metrics", headers=SCRAPE).text, 'rfm_webhooks_received_total{topic="orders/create"}'
    )
    assert post_webhook(scraped, "orders/create", order_payload(1, 2), SHOP).status_code == 200
    assert (
        post_webhook(scraped, "orders/create", order_payload(1, 2), SHOP, secret="wrong").status_code == 401
    )
    text = scraped.get("/metrics", headers=SCRAPE).text
    assert _sample(text, 'rfm_webhooks_received_total{topic="orders/create"}') == before + 1
    assert _sample(text, 'rfm_webhooks_rejected_total{status="401"}') >= 1
    assert "rfm_webhook_ingest_seconds_bucket" in text
    assert "# TYPE rfm_jobs gauge" in text


def test_scrapes_in_quick_succession_query_the_queue_depth_once(scraped: TestClient) -> None:
    engine = scraped.app.state.engine
    statements: list[str] = []

    def record(conn: object, cursor: object, statement: str, *args: object) -> None:
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        for _ in range(3):
            assert "# TYPE rfm_jobs gauge" in scraped.get("/metrics", headers=SCRAPE).text
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert len([s for s in statements if "FROM jobs" in s]) == 1


def _sample(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_responses_carry_a_request_id(client: TestClient) -> None:
    assert len(client.get("/healthz").headers["x-request-id"]) == 32
    assert client.get("/healthz", headers={"X-Request-Id": "abc-123"}).headers["x-request-id"] == "abc-123"
    assert client.get("/healthz", headers={"X-Request-Id": "bad id\n"}).headers["x-request-id"] != "bad id\n"


def test_json_log_lines_name_shop_and_request_and_mask_tokens() -> None:
    record = logging.LogRecord(
        "app.x", logging.INFO, __file__, 1, "token shpat_abc123 and %s", ("eyJa.eyJb.c",), None
    )
    record.payload = {"email": "jane@example.com"}  # not an allowed extra: dropped
    record.topic = "orders/create"
    rid, shop = request_id_var.set("r1"), shop_var.set("a.myshopify.com")
    try:
        line = json.loads(JsonFormatter().format(record))
    finally:
        request_id_var.reset(rid)
        shop_var.reset(shop)
    assert (
        line["request_id"] == "r1" and line["shop"] == "a.myshopify.com" and line["topic"] == "orders/create"
    )
    assert "shpat_abc123" not in line["message"] and "eyJa.eyJb.c" not in line["message"]
    assert "payload" not in line and "jane@example.com" not in json.dumps(line)
