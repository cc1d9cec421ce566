"""Bulk mutations in the double: staged upload target, bulkOperationRunMutation, result JSONL."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest

from shopify_double import DevStore, create_devstore_app

SHOP = "bulkmut.myshopify.com"
STAGE = """mutation($input: [StagedUploadInput!]!) { stagedUploadsCreate(input: $input) {
  stagedTargets { url resourceUrl parameters { name value } } userErrors { field message } } }"""
RUN = """mutation($m: String!, $p: String!) { bulkOperationRunMutation(mutation: $m, stagedUploadPath: $p) {
  bulkOperation { id status type } userErrors { field message code } } }"""
POLL = "query($id: ID!) { bulkOperation(id: $id) { id status type objectCount url } }"
TAGS_ADD = (
    "mutation($id: ID!, $tags: [String!]!) { tagsAdd(id: $id, tags: $tags) { userErrors { field message } } }"
)


class Double:
    def __init__(self) -> None:
        self.store = DevStore()
        self.store.create_shop(SHOP)
        self.token = self.store.issue_access_token(SHOP, "read_customers,write_customers")
        self.http = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=create_devstore_app(self.store)), base_url="http://devstore"
        )

    async def gql(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        response = await self.http.post(
            f"/shops/{SHOP}/admin/api/2026-10/graphql.json",
            json={"query": query, "variables": variables or {}},
            headers={"X-Shopify-Access-Token": self.token},
        )
        body: dict[str, Any] = response.json()
        assert "errors" not in body, body
        return body["data"]

    async def stage(self, lines: list[dict[str, Any]]) -> tuple[str, httpx.Response]:
        data = await self.gql(
            STAGE,
            {
                "input": [
                    {
                        "resource": "BULK_MUTATION_VARIABLES",
                        "filename": "vars.jsonl",
                        "mimeType": "text/jsonl",
                        "httpMethod": "POST",
                    }
                ]
            },
        )
        target = data["stagedUploadsCreate"]["stagedTargets"][0]
        params = {p["name"]: p["value"] for p in target["parameters"]}
        body = "".join(json.dumps(line) + "\n" for line in lines).encode()
        response = await self.http.post(
            target["url"], data=params, files={"file": ("vars.jsonl", body, "text/jsonl")}
        )
        return params["key"], response


def run(fn: Any) -> Any:
    return asyncio.run(fn())


def test_a_bulk_mutation_runs_every_line_and_reports_one_result_line_each() -> None:
    double = Double()
    people = double.store.create_customers(SHOP, 3, tags=["vip"])

    async def go() -> list[dict[str, Any]]:
        lines = [{"id": c.gid, "tags": ["rfm:loyal"]} for c in people]
        lines.append({"id": "gid://shopify/Customer/1", "tags": ["rfm:loyal"]})
        lines.append({"id": people[0].gid})  # missing $tags
        path, upload = await double.stage(lines)
        assert upload.status_code == 201
        started = await double.gql(RUN, {"m": TAGS_ADD, "p": path})
        assert started["bulkOperationRunMutation"]["userErrors"] == []
        op = started["bulkOperationRunMutation"]["bulkOperation"]
        assert op["type"] == "MUTATION"
        done = (await double.gql(POLL, {"id": op["id"]}))["bulkOperation"]
        assert done["status"] == "COMPLETED" and done["objectCount"] == "5"
        result = await double.http.get(done["url"])
        return [json.loads(line) for line in result.text.splitlines()]

    rows = run(go)
    assert [r["__lineNumber"] for r in rows] == [0, 1, 2, 3, 4]
    assert all(r["data"]["tagsAdd"]["userErrors"] == [] for r in rows[:3])
    assert rows[3]["data"]["tagsAdd"]["userErrors"][0]["message"] == "Resource does not exist"
    assert "errors" in rows[4]
    assert all(c.tags == ["vip", "rfm:loyal"] for c in people)


def test_the_upload_needs_the_signed_policy_and_the_file_last() -> None:
    double = Double()

    async def go() -> tuple[int, int]:
        data = await double.gql(
            STAGE,
            {
                "input": [
                    {"resource": "BULK_MUTATION_VARIABLES", "filename": "v.jsonl", "mimeType": "text/jsonl"}
                ]
            },
        )
        target = data["stagedUploadsCreate"]["stagedTargets"][0]
        params = {p["name"]: p["value"] for p in target["parameters"]}
        forged = await double.http.post(
            target["url"], data=params | {"policy": "forged"}, files={"file": ("v.jsonl", b"{}\n")}
        )
        no_file = await double.http.post(target["url"], data=params)
        return forged.status_code, no_file.status_code

    assert run(go) == (403, 400)


@pytest.mark.parametrize(
    ("mutation", "code"),
    [
        (TAGS_ADD, "NO_SUCH_FILE"),
        (
            'mutation { a: tagsAdd(id: "gid://shopify/Customer/1", tags: ["x"]) { userErrors { message } } '
            'b: tagsRemove(id: "gid://shopify/Customer/1", tags: ["x"]) { userErrors { message } } }',
            "INVALID_MUTATION",
        ),
        ("query { shop { name } }", "INVALID_MUTATION"),
    ],
)
def test_a_bad_mutation_or_missing_file_is_refused(mutation: str, code: str) -> None:
    double = Double()

    async def go() -> list[dict[str, Any]]:
        path = "tmp/nothing/here.jsonl"
        if code == "INVALID_MUTATION":
            path, _ = await double.stage([{}])
        data = await double.gql(RUN, {"m": mutation, "p": path})
        errors: list[dict[str, Any]] = data["bulkOperationRunMutation"]["userErrors"]
        return errors

    assert [e["code"] for e in run(go)] == [code]


def test_five_bulk_mutations_at_a_time_per_shop_then_limit_reached() -> None:
    """API ≥ 2026-01: up to five bulk operations per app and shop
    (https://shopify.dev/changelog/faster-bulk-operations); a sixth start is refused."""
    double = Double()
    double.store.bulk.auto_complete = False
    (person,) = double.store.create_customers(SHOP, 1)

    async def go() -> list[list[dict[str, Any]]]:
        path, _ = await double.stage([{"id": person.gid, "tags": ["a"]}])
        out = []
        for _ in range(6):
            started = await double.gql(RUN, {"m": TAGS_ADD, "p": path})
            out.append(started["bulkOperationRunMutation"]["userErrors"])
        return out

    answers = run(go)
    assert answers[:5] == [[]] * 5
    assert [e["code"] for e in answers[5]] == ["LIMIT_REACHED"]
    assert person.tags == []  # nothing runs before the operation does


def test_a_file_over_100_mb_is_refused_by_its_size() -> None:
    """Declared too large: stagedUploadsCreate refuses; uploaded too large (or larger than declared):
    the storage answers 400 EntityTooLarge from the byte count."""
    double = Double()

    async def go() -> tuple[list[dict[str, Any]], int, int]:
        big = await double.gql(
            STAGE,
            {
                "input": [
                    {
                        "resource": "BULK_MUTATION_VARIABLES",
                        "filename": "v.jsonl",
                        "mimeType": "text/jsonl",
                        "fileSize": str(100_000_001),
                    }
                ]
            },
        )
        declared = await double.gql(
            STAGE,
            {
                "input": [
                    {
                        "resource": "BULK_MUTATION_VARIABLES",
                        "filename": "v.jsonl",
                        "mimeType": "text/jsonl",
                        "fileSize": "10",
                    }
                ]
            },
        )
        target = declared["stagedUploadsCreate"]["stagedTargets"][0]
        params = {p["name"]: p["value"] for p in target["parameters"]}
        over_declared = await double.http.post(
            target["url"], data=params, files={"file": ("v.jsonl", b'{"id":"x"}\n{"id":"y"}\n')}
        )
        over_limit = await double.http.post(
            target["url"], data=params, files={"file": ("v.jsonl", b"{}\n" * 33_400_000)}
        )
        return big["stagedUploadsCreate"]["userErrors"], over_declared.status_code, over_limit.status_code

    errors, over_declared, over_limit = run(go)
    assert [e["message"] for e in errors] == ["File size is too large."]
    assert (over_declared, over_limit) == (400, 400)
