"""Bulk mutations on the Admin API (https://shopify.dev/docs/api/usage/bulk-operations/imports): stage
a JSONL file of variables, start ``bulkOperationRunMutation`` on it, find it again, read its result.

- Shopify takes a staged file of at most 100 MB and runs up to five bulk operations per app and shop
  at once from API 2026-01 (https://shopify.dev/changelog/faster-bulk-operations); a sixth start is
  refused with ``LIMIT_REACHED`` (:class:`Busy`), the caller waits for one to finish.
- A refusal that repeating cannot fix (the file's size, ``INVALID_MUTATION``,
  ``INVALID_STAGED_UPLOAD_FILE``, a 4xx from the storage) raises :class:`FileRefused` with Shopify's
  words; a missing file (``NO_SUCH_FILE``: the staged upload expired) raises :class:`FileMissing`;
  anything else transient is the client's :class:`AdminApiError`.
- The staged target is Shopify's storage, not the Admin API: the access token is never sent there.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any, Final

from app.shopify.admin_client import AdminApiError, AdminClient, UserErrors

FILE_LIMIT_BYTES: Final = 100_000_000
"""Shopify's limit on one staged bulk-mutation file, "100MB"
(https://shopify.dev/changelog/faster-bulk-operations), read as 10^8 bytes, the smaller reading."""
CONCURRENT_OPERATIONS: Final = 5
"""Bulk operations an app may run per shop at once, API ≥ 2026-01
(https://shopify.dev/docs/api/usage/bulk-operations/queries, https://shopify.dev/changelog/faster-bulk-operations)."""
RUNNING: Final = frozenset({"CREATED", "RUNNING", "CANCELING"})

STAGED_UPLOAD: Final = """
mutation SyncStagedUpload($input: [StagedUploadInput!]!) {
  stagedUploadsCreate(input: $input) {
    stagedTargets { url resourceUrl parameters { name value } }
    userErrors { field message }
  }
}"""
RUN_BULK_MUTATION: Final = """
mutation SyncRunBulkMutation($mutation: String!, $path: String!) {
  bulkOperationRunMutation(mutation: $mutation, stagedUploadPath: $path, clientIdentifier: "rfm-clv-sync") {
    bulkOperation { id status }
    userErrors { field message code }
  }
}"""
BULK_OPERATION: Final = """
query SyncBulkOperation($id: ID!) {
  bulkOperation(id: $id) { id status errorCode objectCount url partialDataUrl }
}"""
RECENT_MUTATIONS: Final = """
query SyncRecentBulkMutations($query: String!, $after: String) {
  bulkOperations(first: 50, after: $after, query: $query, sortKey: CREATED_AT) {
    nodes { id status query }
    pageInfo { hasNextPage endCursor }
  }
}"""
FIND_PAGES: Final = 4
REFUSED_CODES: Final = frozenset({"INVALID_MUTATION", "INVALID_STAGED_UPLOAD_FILE"})
BUSY_CODES: Final = frozenset({"LIMIT_REACHED", "OPERATION_IN_PROGRESS"})


class FileRefused(AdminApiError):
    """Shopify refused the file or the mutation for good: sending it again changes nothing."""


class FileMissing(AdminApiError):
    """``NO_SUCH_FILE``: the staged file is gone (staged uploads expire); stage it again."""


class Busy(AdminApiError):
    """``LIMIT_REACHED``: the app's bulk operations for the shop are at Shopify's limit."""


def jsonl_line(variables: dict[str, Any]) -> bytes:
    """One line of a variables file, exactly as uploaded (its length counts against the limit)."""
    return json.dumps(variables, separators=(",", ":")).encode() + b"\n"


async def stage_file(admin: AdminClient, domain: str, token: str, filename: str, body: bytes) -> str:
    """Reserve a staged upload for ``body`` and upload it; the staged path (the ``key`` parameter)
    that ``bulkOperationRunMutation`` takes."""
    if len(body) > FILE_LIMIT_BYTES:
        raise FileRefused(f"the file is {len(body):,} bytes, over Shopify's {FILE_LIMIT_BYTES:,}")
    try:
        result = await admin.execute(
            domain,
            token,
            STAGED_UPLOAD,
            {
                "input": [
                    {
                        "resource": "BULK_MUTATION_VARIABLES",
                        "filename": filename,
                        "mimeType": "text/jsonl",
                        "httpMethod": "POST",
                        "fileSize": str(len(body)),
                    }
                ]
            },
        )
    except UserErrors as exc:
        raise FileRefused("; ".join(e.message for e in exc.errors)) from exc
    target = (result.data["stagedUploadsCreate"]["stagedTargets"] or [])[0]
    params = [(p["name"], p["value"]) for p in target["parameters"]]
    key = next(value for name, value in params if name == "key")
    response = await admin.http.post(
        target["url"], data=dict(params), files={"file": (filename, body, "text/jsonl")}
    )
    if response.status_code >= 500 or response.status_code == 429:
        raise AdminApiError(f"{domain}: the staged upload failed (HTTP {response.status_code})")
    if response.status_code >= 300:
        reason = response.text.strip()[:200] or f"HTTP {response.status_code}"
        raise FileRefused(f"the upload was refused ({reason})")
    return str(key)


async def run_mutation(admin: AdminClient, domain: str, token: str, mutation: str, path: str) -> str:
    """Start the bulk mutation on a staged file; its operation's id."""
    try:
        run = await admin.execute(domain, token, RUN_BULK_MUTATION, {"mutation": mutation, "path": path})
    except UserErrors as exc:
        words = "; ".join(e.message for e in exc.errors)
        if exc.codes & BUSY_CODES:
            raise Busy(words) from exc
        if "NO_SUCH_FILE" in exc.codes:
            raise FileMissing(words) from exc
        if exc.codes & REFUSED_CODES:
            raise FileRefused(words) from exc
        raise
    return str(run.data["bulkOperationRunMutation"]["bulkOperation"]["id"])


async def find_mutation(
    admin: AdminClient, domain: str, token: str, operation_name: str, since: datetime
) -> str | None:
    """The bulk mutation started on or after ``since`` whose mutation text names the operation
    ``operation_name`` (unique per staged file), if any: a start whose answer was lost is followed,
    not repeated (https://shopify.dev/docs/api/admin-graphql/latest/queries/bulkOperations)."""
    search = f"operation_type:mutation created_at:>='{since.strftime('%Y-%m-%dT%H:%M:%SZ')}'"
    after: str | None = None
    marker = f"mutation {operation_name}("
    for _ in range(FIND_PAGES):
        result = await admin.execute(domain, token, RECENT_MUTATIONS, {"query": search, "after": after})
        page = result.data.get("bulkOperations") or {}
        for node in page.get("nodes") or []:
            if marker in str(node.get("query") or ""):
                return str(node["id"])
        info = page.get("pageInfo") or {}
        if not info.get("hasNextPage"):
            return None
        after = info.get("endCursor")
    return None


async def operation(admin: AdminClient, domain: str, token: str, operation_id: str) -> dict[str, Any]:
    result = await admin.execute(domain, token, BULK_OPERATION, {"id": operation_id})
    return dict(result.data.get("bulkOperation") or {})


async def result_lines(admin: AdminClient, url: str) -> AsyncIterator[dict[str, Any]]:
    """The result file's rows, streamed (one per input line, ``__lineNumber`` from 0)."""
    async with admin.http.stream("GET", url) as response:
        if response.status_code != 200:
            return
        async for line in response.aiter_lines():
            if line.strip():
                yield json.loads(line)


__all__ = [
    "CONCURRENT_OPERATIONS",
    "FILE_LIMIT_BYTES",
    "Busy",
    "FileMissing",
    "FileRefused",
    "find_mutation",
    "jsonl_line",
    "operation",
    "result_lines",
    "run_mutation",
    "stage_file",
]
