"""Bulk query operations in the double: JSONL shape, status cycle, limits, hooks, file serving."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx

from shopify_double import DevStore, WebhookSender, create_devstore_app
from tests.shopify_double.conftest import SHOP, Gql

RUN = """mutation($q: String!) { bulkOperationRunQuery(query: $q) {
  bulkOperation { id status } userErrors { field message code } } }"""
STATUS = """query($id: ID!) { bulkOperation(id: $id) {
  id status errorCode objectCount rootObjectCount fileSize url partialDataUrl } }"""
NESTED = "{ customers { edges { node { id orders { edges { node { id } } } } } } }"


def _start(gql: Gql, query: str) -> dict[str, Any]:
    return gql(RUN, {"q": query})["data"]["bulkOperationRunQuery"]


def _fetch(store: DevStore, url: str, headers: dict[str, str] | None = None) -> httpx.Response:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=create_devstore_app(store))
        async with httpx.AsyncClient(transport=transport) as http:
            return await http.get(url, headers=headers or {})

    return asyncio.run(go())


def test_nested_connections_become_lines_with_their_parent_id(store: DevStore, gql: Gql) -> None:
    buyer = store.create_customer(SHOP)
    orders = store.create_orders(SHOP, [{"customer_id": buyer.id, "total_price": "5.00"}] * 2)
    op = _start(gql, NESTED)["bulkOperation"]

    status = gql(STATUS, {"id": op["id"]})["data"]["bulkOperation"]
    lines = [json.loads(line) for line in _fetch(store, status["url"]).text.splitlines()]

    assert (
        status["status"] == "COMPLETED" and status["objectCount"] == "3" and status["rootObjectCount"] == "1"
    )
    assert lines[0] == {"id": buyer.gid}
    assert lines[1:] == [{"id": o.gid, "__parentId": buyer.gid} for o in orders]
    assert int(status["fileSize"]) == len(_fetch(store, status["url"]).content)


def test_the_file_honours_range_requests(store: DevStore, gql: Gql) -> None:
    store.create_orders(SHOP, [{"customer_id": None, "total_price": "5.00"}] * 3)
    op = _start(gql, "{ orders { edges { node { id } } } }")["bulkOperation"]
    url = gql(STATUS, {"id": op["id"]})["data"]["bulkOperation"]["url"]
    whole = _fetch(store, url).content

    part = _fetch(store, url, {"Range": "bytes=10-"})

    assert part.status_code == 206 and part.content == whole[10:]


def test_a_query_without_a_connection_is_invalid(gql: Gql) -> None:
    payload = _start(gql, "{ shop { name } }")

    assert payload["bulkOperation"] is None and payload["userErrors"][0]["code"] == "INVALID"


def test_a_document_the_schema_rejects_is_invalid(gql: Gql) -> None:
    payload = _start(gql, "{ orders { edges { node { noSuchField } } } }")

    assert (
        payload["userErrors"][0]["code"] == "INVALID" and "noSuchField" in payload["userErrors"][0]["message"]
    )


def test_a_sixth_running_query_hits_the_limit(store: DevStore, gql: Gql) -> None:
    store.bulk.auto_complete = False
    for _ in range(5):
        assert _start(gql, NESTED)["userErrors"] == []

    payload = _start(gql, NESTED)

    assert payload["userErrors"][0]["code"] == "LIMIT_REACHED"
    running = gql('{ bulkOperations(first: 10, query: "status:running") { nodes { id } } }')
    assert len(running["data"]["bulkOperations"]["nodes"]) == 5


def test_a_failed_operation_reports_its_error_code_and_no_url(store: DevStore, gql: Gql) -> None:
    store.bulk.auto_complete = False
    op = _start(gql, NESTED)["bulkOperation"]

    store.bulk.fail(SHOP, op["id"], "ACCESS_DENIED")

    status = gql(STATUS, {"id": op["id"]})["data"]["bulkOperation"]
    assert (status["status"], status["errorCode"], status["url"]) == ("FAILED", "ACCESS_DENIED", None)


def test_an_expired_operation_has_no_url_and_its_file_is_gone(store: DevStore, gql: Gql) -> None:
    store.create_orders(SHOP, [{"customer_id": None, "total_price": "5.00"}])
    op = _start(gql, "{ orders { edges { node { id } } } }")["bulkOperation"]
    url = gql(STATUS, {"id": op["id"]})["data"]["bulkOperation"]["url"]

    store.bulk.expire(SHOP, op["id"])

    status = gql(STATUS, {"id": op["id"]})["data"]["bulkOperation"]
    assert (status["status"], status["url"]) == ("EXPIRED", None)
    assert _fetch(store, url).status_code == 403


def test_the_finish_webhook_is_sent_through_the_webhook_sender(store: DevStore, gql: Gql) -> None:
    op = _start(gql, NESTED)["bulkOperation"]
    store.bulk.complete(SHOP, op["id"])
    received: list[httpx.Request] = []

    async def go() -> None:
        def handler(request: httpx.Request) -> httpx.Response:
            received.append(request)
            return httpx.Response(200)

        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
            sender = WebhookSender(http, secret="s")
            await store.bulk.send_finish_webhook(sender, "http://app/webhooks", SHOP, op["id"])

    asyncio.run(go())

    body = json.loads(received[0].content)
    assert received[0].headers["X-Shopify-Topic"] == "bulk_operations/finish"
    assert body["admin_graphql_api_id"] == op["id"] and body["status"] == "completed"
