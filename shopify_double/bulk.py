"""Bulk query operations in the double, run for real over its state
(https://shopify.dev/docs/apps/build/apis/graphql-admin/bulk-operations/queries).

- ``bulkOperationRunQuery(query:)`` validates the inner query against the 2026-10 schema like any
  document (plus Shopify's bulk rules: at least one connection, at most five, nesting depth ≤ 2),
  executes it over the shop's state with every connection unpaginated, and writes the JSONL result:
  one line per node of the root connection; nodes of a nested connection are separate lines with
  ``"__parentId"`` (the parent's id), after their parent. The file is a snapshot taken when the
  operation starts.
- Status moves ``CREATED → RUNNING → COMPLETED``: with ``auto_complete`` (the default) an operation
  completes the first time it is read; otherwise a test calls :meth:`BulkOperations.complete`.
  :meth:`fail`, :meth:`expire` and :meth:`cancel` are test hooks for the other endings.
- Concurrency as on API ≥ 2026-01: at most ``max_concurrent`` (5) query operations per shop and
  app are CREATED/RUNNING at once; one more gets ``userErrors`` code ``LIMIT_REACHED``.
- ``bulkOperation(id:)`` and ``bulkOperations(first:, query: "status:running")`` report
  ``status, errorCode, objectCount, rootObjectCount, fileSize, url, partialDataUrl``; the ``url``
  serves the file from the double's own ASGI app (``GET /bulk/{shop}/{id}.jsonl``, with HTTP
  ``Range`` support like the storage Shopify signs URLs for); an expired file answers 403.
- :meth:`send_finish_webhook` delivers ``bulk_operations/finish`` through a ``WebhookSender``.

Bulk mutations (https://shopify.dev/docs/api/usage/bulk-operations/imports), as Shopify's CLI
drives them (``stageFile``):

- ``stagedUploadsCreate(input: [{resource: BULK_MUTATION_VARIABLES, …}])`` returns a target whose
  ``url`` is the double's own ``POST /staged-uploads`` and whose ``parameters`` (``key``,
  ``Content-Type``, ``success_action_status``, ``acl``, ``policy``) must all be sent back as form
  fields of a ``multipart/form-data`` POST, the file last (field ``file``); a wrong or missing
  ``policy`` is refused (403) like an expired signature. The upload answers 201.
- Files of at most 100 MB (https://shopify.dev/changelog/faster-bulk-operations), taken as 10^8 bytes
  (the smaller reading): ``stagedUploadsCreate`` refuses a larger ``fileSize``; the storage refuses a
  body over the limit, or over the ``fileSize`` declared, from its byte count before reading the form
  (``400 EntityTooLarge``, as a signed POST policy's ``content-length-range`` does), so a file is never
  parsed to be measured; ``bulkOperationRunMutation`` refuses an oversized file with
  ``INVALID_STAGED_UPLOAD_FILE``. ``failing_uploads`` (a test hook) makes the storage answer 503.
- ``bulkOperationRunMutation(mutation:, stagedUploadPath: <the key>)``: one mutation with exactly one
  root field (else ``INVALID_MUTATION``), a staged file that exists (else ``NO_SUCH_FILE``), at most
  ``max_concurrent_mutations`` (5 on API ≥ 2026-01, https://shopify.dev/changelog/faster-bulk-operations)
  running per shop and app (else ``LIMIT_REACHED``). When the operation
  runs (it completes like a query operation), each JSONL line's variables go through the same
  resolvers as a normal request; the result file has one line per input line,
  ``{"data": …, "__lineNumber": n}`` or ``{"errors": […], "__lineNumber": n}`` for a line whose
  variables are invalid. Lines cost nothing against the bucket (only the request that starts it).
"""

from __future__ import annotations

import itertools
import json
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from graphql import (
    ExecutionResult,
    FieldNode,
    GraphQLError,
    GraphQLResolveInfo,
    OperationDefinitionNode,
    SelectionSetNode,
    execute,
    get_named_type,
    get_operation_ast,
)
from graphql.execution.values import get_variable_values

from shopify_double.graphql_api import (
    JsonDict,
    RequestContext,
    _cmp,
    _invalid_gid,
    _time_matches,
    connection,
    field_resolver,
    never_awaitable,
    parse_search,
    resolver,
    type_resolver,
)
from shopify_double.schema import check_document, load_schema
from shopify_double.state import iso, parse_gid

if TYPE_CHECKING:
    from shopify_double.state import DevStore
    from shopify_double.webhooks import Delivery, WebhookSender

MAX_CONCURRENT_QUERIES = 5  # per shop and app, API ≥ 2026-01
MAX_CONCURRENT_MUTATIONS = 5  # per shop and app, API ≥ 2026-01
MAX_UPLOAD_BYTES = 100_000_000  # "100MB" per staged JSONL, the smaller reading
FORM_OVERHEAD_BYTES = 64 * 1024  # the policy fields and multipart framing around the file
MAX_CONNECTIONS = 5
MAX_NESTING = 2
RUNNING = ("CREATED", "RUNNING")


@dataclass
class BulkOperation:
    id: int
    shop: str
    query: str
    created_at: datetime
    status: str = "CREATED"
    type: str = "QUERY"
    error_code: str | None = None
    completed_at: datetime | None = None
    content: bytes = b""
    object_count: int = 0
    root_object_count: int = 0
    partial: bool = False
    variables: bytes = b""  # a mutation operation's staged JSONL
    context: RequestContext | None = None  # whose scopes a mutation operation runs with

    @property
    def gid(self) -> str:
        return f"gid://shopify/BulkOperation/{self.id}"


@dataclass
class StagedUpload:
    key: str
    shop: str
    policy: str
    filename: str
    content: bytes | None = None
    declared_size: int | None = None  # the fileSize given to stagedUploadsCreate


@dataclass
class BulkContext(RequestContext):
    """Execution context of a bulk query: connections are read whole, without `first`."""

    bulk: bool = True


class BulkOperations:
    """Every shop's bulk operations in one :class:`DevStore` (``store.bulk``)."""

    def __init__(self, store: DevStore) -> None:
        self.store = store
        self.ops: dict[str, dict[int, BulkOperation]] = {}
        self.max_concurrent = MAX_CONCURRENT_QUERIES
        self.max_concurrent_mutations = MAX_CONCURRENT_MUTATIONS
        self.uploads: dict[str, StagedUpload] = {}  # key -> upload
        self.failing_uploads = 0  # test hook: the storage answers 503 to this many uploads
        self.auto_complete = True
        # where the double is reachable; the HTTP layer sets it from each request
        self.base_url = "http://devstore"
        self._ids = itertools.count(7_000_000_001)

    # -- lifecycle ----------------------------------------------------------------------------
    def run_query(self, ctx: RequestContext, query: str) -> JsonDict:
        shop = ctx.shop
        problem = _bulk_query_problem(query)
        if problem:
            return {
                "bulkOperation": None,
                "userErrors": [{"field": ["query"], "message": problem, "code": "INVALID"}],
            }
        with shop.lock:
            mine = self.ops.setdefault(shop.domain, {})
            if (
                sum(1 for op in mine.values() if op.type == "QUERY" and op.status in RUNNING)
                >= self.max_concurrent
            ):
                return {
                    "bulkOperation": None,
                    "userErrors": [
                        {
                            "field": None,
                            "message": "Bulk operations limit reached. Please try again later.",
                            "code": "LIMIT_REACHED",
                        }
                    ],
                }
            op = BulkOperation(id=next(self._ids), shop=shop.domain, query=query, created_at=self.store.now())
            self._snapshot(ctx, op)
            mine[op.id] = op
        return {"bulkOperation": self.view(op), "userErrors": []}

    def _snapshot(self, ctx: RequestContext, op: BulkOperation) -> None:
        schema = load_schema()
        document, _ = check_document(op.query)
        assert document is not None
        result = execute(
            schema,
            document,
            context_value=BulkContext(ctx.store, ctx.shop, ctx.scopes),
            field_resolver=field_resolver,
            type_resolver=type_resolver,
            is_awaitable=never_awaitable,
        )
        assert isinstance(result, ExecutionResult)
        if result.errors:
            codes = {(e.extensions or {}).get("code") for e in result.errors}
            op.error_code = "ACCESS_DENIED" if "ACCESS_DENIED" in codes else "INTERNAL_SERVER_ERROR"
        lines: list[str] = []
        roots = 0
        for value in (result.data or {}).values():
            for node in _connection_nodes(value):
                roots += 1
                _emit(node, None, lines)
        op.content = "".join(line + "\n" for line in lines).encode()
        op.object_count, op.root_object_count = len(lines), roots

    def _advance(self, op: BulkOperation) -> None:
        """What time does on Shopify: a read moves a fresh operation along."""
        if op.status not in RUNNING:
            return
        if op.error_code is not None:
            self._finish(op, "FAILED")
        elif self.auto_complete:
            self._finish(op, "COMPLETED")
        else:
            op.status = "RUNNING"

    def _finish(self, op: BulkOperation, status: str) -> None:
        if op.type == "MUTATION" and status == "COMPLETED" and op.context is not None:
            self._run_lines(op)
        op.status = status
        op.completed_at = self.store.now()

    def get(self, shop: str, op_id: int) -> BulkOperation:
        return self.ops[shop][op_id]

    def all(self, shop: str) -> list[BulkOperation]:
        return list(self.ops.get(shop, {}).values())

    def complete(self, shop: str, op_id: int | str) -> BulkOperation:
        op = self.get(shop, _op_id(op_id))
        self._finish(op, "FAILED" if op.error_code else "COMPLETED")
        return op

    def fail(self, shop: str, op_id: int | str, error_code: str = "INTERNAL_SERVER_ERROR") -> BulkOperation:
        """Test hook: the operation fails on Shopify's side (TIMEOUT/ISE keep a partial file)."""
        op = self.get(shop, _op_id(op_id))
        op.error_code = error_code
        op.partial = error_code in ("TIMEOUT", "INTERNAL_SERVER_ERROR")
        self._finish(op, "FAILED")
        return op

    def expire(self, shop: str, op_id: int | str) -> BulkOperation:
        """Test hook: the result file's 7 days are over; its URL stops working."""
        op = self.get(shop, _op_id(op_id))
        op.status = "EXPIRED"
        op.completed_at = op.completed_at or self.store.now()
        return op

    def cancel(self, shop: str, op_id: int | str) -> BulkOperation:
        op = self.get(shop, _op_id(op_id))
        if op.status in RUNNING:
            self._finish(op, "CANCELED")
        return op

    # -- bulk mutations -----------------------------------------------------------------------
    def stage(self, shop: str, filename: str, declared_size: int | None = None) -> StagedUpload:
        key = f"tmp/{self.store.app_id}/bulk/{uuid.uuid4()}/{filename}"
        upload = StagedUpload(
            key=key,
            shop=shop,
            policy=secrets.token_urlsafe(24),
            filename=filename,
            declared_size=declared_size,
        )
        self.uploads[key] = upload
        return upload

    def run_mutation(self, ctx: RequestContext, mutation: str, path: str) -> JsonDict:
        def refuse(code: str, message: str, field: list[str] | None) -> JsonDict:
            return {"bulkOperation": None, "userErrors": [{"field": field, "message": message, "code": code}]}

        problem = _bulk_mutation_problem(mutation)
        if problem:
            return refuse("INVALID_MUTATION", problem, ["mutation"])
        upload = self.uploads.get(path)
        if upload is None or upload.shop != ctx.shop.domain or upload.content is None:
            message = f"The JSONL file could not be found at {path}."
            return refuse("NO_SUCH_FILE", message, ["stagedUploadPath"])
        if len(upload.content) > MAX_UPLOAD_BYTES:  # measured, not parsed
            message = f"The JSONL file exceeds the maximum file size of {MAX_UPLOAD_BYTES} bytes."
            return refuse("INVALID_STAGED_UPLOAD_FILE", message, ["stagedUploadPath"])
        with ctx.shop.lock:
            mine = self.ops.setdefault(ctx.shop.domain, {})
            running = sum(1 for op in mine.values() if op.type == "MUTATION" and op.status in RUNNING)
            if running >= self.max_concurrent_mutations:
                return refuse(
                    "LIMIT_REACHED",
                    "A bulk mutation operation for this app and shop is already in progress.",
                    None,
                )
            op = BulkOperation(
                id=next(self._ids),
                shop=ctx.shop.domain,
                query=mutation,
                created_at=self.store.now(),
                type="MUTATION",
                variables=upload.content,
                context=RequestContext(ctx.store, ctx.shop, ctx.scopes),
            )
            mine[op.id] = op
        return {"bulkOperation": self.view(op), "userErrors": []}

    def _run_lines(self, op: BulkOperation) -> None:
        from shopify_double.graphql_api import _input_size_errors

        assert op.context is not None
        schema = load_schema()
        document, _ = check_document(op.query)
        assert document is not None
        operation = get_operation_ast(document)
        assert operation is not None
        lines: list[str] = []
        for number, raw in enumerate(op.variables.decode().splitlines()):
            out: JsonDict
            try:
                variables = json.loads(raw)
                if not isinstance(variables, dict):
                    raise ValueError("a line must be a JSON object")
            except ValueError as exc:
                out = {"errors": [{"message": f"Invalid JSONL on line {number}: {exc}"}]}
            else:
                coerced = get_variable_values(schema, operation.variable_definitions or [], variables)
                if isinstance(coerced, list):
                    out = {"errors": [{"message": e.message} for e in coerced]}
                elif size_errors := _input_size_errors(operation, coerced):
                    out = {"errors": size_errors}
                else:
                    result = execute(
                        schema,
                        document,
                        context_value=op.context,
                        variable_values=variables,
                        field_resolver=field_resolver,
                        type_resolver=type_resolver,
                        is_awaitable=never_awaitable,
                    )
                    assert isinstance(result, ExecutionResult)
                    out = {"data": _strip(result.data)}
                    if result.errors:
                        out["errors"] = [e.formatted for e in result.errors]
            out["__lineNumber"] = number
            lines.append(json.dumps(out, separators=(",", ":")))
        op.content = "".join(line + "\n" for line in lines).encode()
        op.object_count = op.root_object_count = len(lines)

    # -- views --------------------------------------------------------------------------------
    def url(self, op: BulkOperation) -> str:
        return f"{self.base_url}/bulk/{op.shop}/{op.id}.jsonl"

    def view(self, op: BulkOperation) -> JsonDict:
        has_file = op.status == "COMPLETED" and op.object_count > 0
        return {
            "__typename": "BulkOperation",
            "id": op.gid,
            "status": op.status,
            "type": op.type,
            "errorCode": op.error_code,
            "objectCount": str(op.object_count if op.status == "COMPLETED" else 0),
            "rootObjectCount": str(op.root_object_count if op.status == "COMPLETED" else 0),
            "fileSize": str(len(op.content)) if has_file else None,
            "url": self.url(op) if has_file else None,
            "partialDataUrl": self.url(op) if op.status == "FAILED" and op.partial and op.content else None,
            "query": op.query,
            "createdAt": iso(op.created_at),
            "completedAt": iso(op.completed_at),
        }

    def file(self, shop: str, op_id: int) -> bytes | None:
        """The file behind `url` (None when there is none, or it expired)."""
        op = self.ops.get(shop, {}).get(op_id)
        if (
            op is None
            or op.status not in ("COMPLETED", "FAILED")
            or (op.status == "FAILED" and not op.partial)
        ):
            return None
        return op.content

    async def send_finish_webhook(
        self, sender: WebhookSender, url: str, shop: str, op_id: int | str
    ) -> Delivery:
        op = self.get(shop, _op_id(op_id))
        payload = {
            "admin_graphql_api_id": op.gid,
            "completed_at": iso(op.completed_at),
            "created_at": iso(op.created_at),
            "error_code": op.error_code.lower() if op.error_code else None,
            "status": op.status.lower(),
            "type": op.type.lower(),
        }
        return await sender.send(url, "bulk_operations/finish", shop, payload)


def _op_id(value: int | str) -> int:
    if isinstance(value, int):
        return value
    parsed = parse_gid(value)
    if parsed is None or parsed[0] != "BulkOperation":
        raise KeyError(value)
    return parsed[1]


def bulk_operations(store: DevStore) -> BulkOperations:
    return store.bulk


# -- the bulk query's rules and the JSONL shape ----------------------------------------------------


def _bulk_query_problem(query: str) -> str | None:
    document, errors = check_document(query)
    if errors or document is None:
        return "Invalid bulk query: " + "; ".join(str(e.get("message")) for e in errors or [])
    ops = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if len(ops) != 1 or ops[0].operation.value != "query":
        return "Invalid bulk query: a bulk operation runs exactly one query."
    schema = load_schema()
    assert schema.query_type is not None
    found: list[int] = []

    def walk(selection_set: SelectionSetNode | None, parent: Any, depth: int) -> None:
        if selection_set is None:
            return
        for sel in selection_set.selections:
            if not isinstance(sel, FieldNode):
                walk(getattr(sel, "selection_set", None), parent, depth)
                continue
            fields = getattr(parent, "fields", {})
            field_def = fields.get(sel.name.value)
            if field_def is None:
                continue
            named = get_named_type(field_def.type)
            is_conn = named.name.endswith("Connection") and "edges" in getattr(named, "fields", {})
            if is_conn:
                found.append(depth + 1)
            walk(sel.selection_set, named, depth + (1 if is_conn else 0))

    walk(ops[0].selection_set, schema.query_type, 0)
    if not found:
        return "Invalid bulk query: Bulk queries must contain at least one connection."
    if len(found) > MAX_CONNECTIONS:
        return f"Invalid bulk query: Bulk queries cannot contain more than {MAX_CONNECTIONS} connections."
    if max(found) > MAX_NESTING:
        return (
            "Invalid bulk query: Bulk queries cannot contain connections with a nesting depth "
            f"greater than {MAX_NESTING}."
        )
    return None


def _bulk_mutation_problem(mutation: str) -> str | None:
    document, errors = check_document(mutation)
    if errors or document is None:
        return "Invalid mutation: " + "; ".join(str(e.get("message")) for e in errors or [])
    ops = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if len(ops) != 1 or ops[0].operation.value != "mutation":
        return "Invalid mutation: a bulk mutation operation runs exactly one mutation."
    fields = [s for s in ops[0].selection_set.selections if isinstance(s, FieldNode)]
    if len(fields) != 1 or len(ops[0].selection_set.selections) != 1:
        return "Invalid mutation: a bulk mutation must contain exactly one mutation field."
    if fields[0].name.value.startswith("bulkOperation"):
        return "Invalid mutation: bulk operations cannot be nested."
    return None


def _is_connection(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and ("edges" in value or "nodes" in value)
        and set(value)
        <= {
            "edges",
            "nodes",
            "pageInfo",
        }
    )


def _connection_nodes(value: Any) -> list[JsonDict]:
    if not _is_connection(value):
        return []
    if "edges" in value:
        return [e["node"] for e in value["edges"] if isinstance(e, dict) and e.get("node") is not None]
    return [n for n in value["nodes"] if n is not None]


def _emit(node: JsonDict, parent_id: str | None, lines: list[str]) -> None:
    own: JsonDict = {}
    children: list[JsonDict] = []
    for key, value in node.items():
        if key == "_obj":
            continue
        if _is_connection(value):
            children.extend(_connection_nodes(value))
        else:
            own[key] = _strip(value)
    if parent_id is not None:
        own["__parentId"] = parent_id
    lines.append(json.dumps(own, separators=(",", ":")))
    for child in children:
        _emit(child, own.get("id"), lines)


def _strip(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if k != "_obj"}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


# -- resolvers ------------------------------------------------------------------------------------


@resolver("Mutation", "bulkOperationRunQuery")
def _run_query(_: Any, info: GraphQLResolveInfo, query: str, groupObjects: bool = False) -> JsonDict:
    ctx: RequestContext = info.context
    return ctx.store.bulk.run_query(ctx, query)


@resolver("Mutation", "stagedUploadsCreate")
def _staged_uploads_create(_: Any, info: GraphQLResolveInfo, input: list[JsonDict]) -> JsonDict:
    ctx: RequestContext = info.context
    bulk = ctx.store.bulk
    targets: list[JsonDict] = []
    errors: list[JsonDict] = []
    for i, item in enumerate(input):
        if item["resource"] != "BULK_MUTATION_VARIABLES":
            errors.append(
                {"field": ["input", str(i), "resource"], "message": "The double stages bulk variables only."}
            )
            continue
        if item.get("fileSize") is not None and int(item["fileSize"]) > MAX_UPLOAD_BYTES:
            errors.append({"field": ["input", str(i), "fileSize"], "message": "File size is too large."})
            continue
        declared = int(item["fileSize"]) if item.get("fileSize") is not None else None
        upload = bulk.stage(ctx.shop.domain, item["filename"], declared)
        params = [
            ("key", upload.key),
            ("Content-Type", item["mimeType"]),
            ("success_action_status", "201"),
            ("acl", "private"),
            ("policy", upload.policy),
        ]
        targets.append(
            {
                "__typename": "StagedMediaUploadTarget",
                "url": f"{bulk.base_url}/staged-uploads/",
                "resourceUrl": f"{bulk.base_url}/staged-uploads/{upload.key}",
                "parameters": [{"name": n, "value": v} for n, v in params],
            }
        )
    return {"stagedTargets": targets if not errors else None, "userErrors": errors}


@resolver("Mutation", "bulkOperationRunMutation")
def _run_mutation(
    _: Any,
    info: GraphQLResolveInfo,
    mutation: str,
    stagedUploadPath: str,
    clientIdentifier: str | None = None,
    groupObjects: bool | None = None,
) -> JsonDict:
    ctx: RequestContext = info.context
    return ctx.store.bulk.run_mutation(ctx, mutation, stagedUploadPath)


@resolver("Mutation", "bulkOperationCancel")
def _cancel(_: Any, info: GraphQLResolveInfo, id: str) -> JsonDict:
    ctx: RequestContext = info.context
    bulk = ctx.store.bulk
    parsed = parse_gid(id)
    if parsed is None:
        raise _invalid_gid(id)
    op = bulk.ops.get(ctx.shop.domain, {}).get(parsed[1])
    if op is None:
        return {
            "bulkOperation": None,
            "userErrors": [{"field": ["id"], "message": "Bulk operation does not exist"}],
        }
    if op.status not in RUNNING:
        return {
            "bulkOperation": bulk.view(op),
            "userErrors": [
                {
                    "field": ["id"],
                    "message": f"A bulk operation cannot be canceled when it is {op.status.lower()}",
                }
            ],
        }
    bulk.cancel(ctx.shop.domain, op.id)
    return {"bulkOperation": bulk.view(op), "userErrors": []}


@resolver("QueryRoot", "bulkOperation")
def _bulk_operation(_: Any, info: GraphQLResolveInfo, id: str) -> JsonDict | None:
    ctx: RequestContext = info.context
    parsed = parse_gid(id)
    if parsed is None:
        raise _invalid_gid(id)
    bulk = ctx.store.bulk
    with ctx.shop.lock:
        op = bulk.ops.get(ctx.shop.domain, {}).get(parsed[1]) if parsed[0] == "BulkOperation" else None
        if op is None:
            return None
        bulk._advance(op)
        return bulk.view(op)


def _op_matches(op: BulkOperation, terms: list[tuple[str, str, str, bool]]) -> bool:
    for field_name, op_, value, negated in terms:
        if field_name == "status":
            ok = op.status.lower() == value.lower()
        elif field_name == "operation_type":
            ok = op.type.lower() == value.lower()
        elif field_name == "id":
            ok = _cmp(op.id, op_, int(value)) if value.isdigit() else False
        elif field_name == "created_at":
            ok = _time_matches(op.created_at, op_, value)
        else:
            continue
        if ok == negated:
            return False
    return True


@resolver("QueryRoot", "bulkOperations")
def _bulk_operations(
    _: Any,
    info: GraphQLResolveInfo,
    query: str | None = None,
    sortKey: str = "CREATED_AT",
    reverse: bool = False,
    **args: Any,
) -> JsonDict:
    ctx: RequestContext = info.context
    bulk = ctx.store.bulk
    terms = parse_search(query)
    with ctx.shop.lock:
        for op in bulk.all(ctx.shop.domain):
            bulk._advance(op)
        items = [op for op in bulk.all(ctx.shop.domain) if _op_matches(op, terms)]

    def key(op: BulkOperation) -> tuple[Any, ...]:
        when = op.completed_at if sortKey == "COMPLETED_AT" else op.created_at
        return ((when.timestamp() if when else 0.0), op.id)

    # newest first unless `reverse`
    return connection(info, items, key=key, node=bulk.view, reverse=not reverse, **args)


# -- the file, served like Shopify's storage serves a signed URL -----------------------------------

router = APIRouter()
_TOO_LARGE = "EntityTooLarge: Your proposed upload exceeds the maximum allowed size"
_RANGE = re.compile(r"^bytes=(\d+)-(\d*)$")


@router.get("/bulk/{shop_domain}/{op_id}.jsonl")
async def download(request: Request, shop_domain: str, op_id: int) -> Response:
    store: DevStore = request.app.state.store
    op = store.bulk.ops.get(shop_domain, {}).get(op_id)
    if op is None:
        return Response("NoSuchKey", status_code=404)
    content = store.bulk.file(shop_domain, op_id)
    if content is None:
        return Response("Request has expired", status_code=403)
    headers = {"Accept-Ranges": "bytes", "Content-Type": "application/jsonl"}
    wanted = _RANGE.match(request.headers.get("range", ""))
    if wanted:
        start = int(wanted[1])
        end = int(wanted[2]) if wanted[2] else len(content) - 1
        if start >= len(content):
            return Response(status_code=416, headers={"Content-Range": f"bytes */{len(content)}"})
        end = min(end, len(content) - 1)
        headers["Content-Range"] = f"bytes {start}-{end}/{len(content)}"
        return Response(content[start : end + 1], status_code=206, headers=headers)
    return Response(content, headers=headers)


@router.post("/staged-uploads/")
async def staged_upload(request: Request) -> Response:
    """The storage a staged target points at: a form POST with every parameter, the file last."""
    store: DevStore = request.app.state.store
    if store.bulk.failing_uploads > 0:
        store.bulk.failing_uploads -= 1
        return Response("ServiceUnavailable: Please reduce your request rate.", status_code=503)
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > MAX_UPLOAD_BYTES + FORM_OVERHEAD_BYTES:
        return Response(_TOO_LARGE, status_code=400)  # refused by its size, before reading the form
    form = await request.form(max_part_size=MAX_UPLOAD_BYTES)
    names = list(form.keys())
    key = form.get("key")
    upload = store.bulk.uploads.get(key) if isinstance(key, str) else None
    if upload is None:
        return Response("InvalidArgument: unknown key", status_code=400)
    if form.get("policy") != upload.policy:
        return Response("AccessDenied: invalid policy signature", status_code=403)
    file = form.get("file")
    if isinstance(file, str) or file is None or names[-1] != "file":
        return Response("InvalidArgument: the file must be the last form field", status_code=400)
    content = await file.read()
    allowed = min(MAX_UPLOAD_BYTES, upload.declared_size or MAX_UPLOAD_BYTES)
    if len(content) > allowed:
        return Response(_TOO_LARGE, status_code=400)
    upload.content = content
    return Response(status_code=int(str(form.get("success_action_status") or "204")))


__all__ = ["BulkOperation", "BulkOperations", "GraphQLError", "StagedUpload", "router"]
