"""The real Shopify Admin GraphQL schema (API 2026-10) and document validation, Shopify-style.

The schema is the introspection JSON Shopify publishes (``shopify_double/data/admin_2026-10.json.gz``), built
once per process with graphql-core's ``build_client_schema`` (≈0.8 s: 0.3 s gunzip + JSON, 0.5 s
build) and cached. ``DEVSTORE_SCHEMA_PATH`` overrides the file.

Validation runs graphql-core's standard rules; the error objects are then rewritten into the shape
Shopify's server (graphql-ruby) answers with: HTTP 200, ``{"errors": [{"message", "locations",
"path", "extensions": {"code", ...}}]}``, e.g. ``Field 'foo' doesn't exist on type 'Shop'`` with
``code: "undefinedField"``. Messages of rules we do not translate keep graphql-core's wording under
``code: "GRAPHQL_VALIDATION_FAILED"``. Syntax errors read ``Parse error on "}" (RCURLY) at [1, 17]``
with ``locations`` and no ``extensions``, as graphql-ruby answers them.
"""

from __future__ import annotations

import copy
import gzip
import json
import os
import re
import threading
from functools import lru_cache
from pathlib import Path
from typing import Any

from graphql import (
    ArgumentNode,
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    GraphQLError,
    GraphQLSchema,
    InlineFragmentNode,
    Node,
    OperationDefinitionNode,
    TypeInfo,
    TypeInfoVisitor,
    Visitor,
    build_client_schema,
    parse,
    print_ast,
    validate,
    visit,
)

API_VERSION = "2026-10"
# Package data (data/SOURCES.md says where it comes from), so the double works from any install.
DEFAULT_SCHEMA_PATH = Path(__file__).resolve().parent / "data/admin_2026-10.json.gz"

JsonDict = dict[str, Any]

_lock = threading.Lock()


def schema_path() -> Path:
    override = os.environ.get("DEVSTORE_SCHEMA_PATH")
    return Path(override) if override else DEFAULT_SCHEMA_PATH


@lru_cache(maxsize=4)
def _load(path: str) -> GraphQLSchema:
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        raw = json.load(fh)
    schema = build_client_schema(raw.get("data", raw))
    # Shopify's published schema breaks one interface-deprecation rule; we validate documents,
    # not the schema, so mark it as already validated.
    schema._validation_errors = []
    return schema


def load_schema() -> GraphQLSchema:
    """The Admin schema, built once per process (thread-safe)."""
    with _lock:
        return _load(str(schema_path()))


# ---------------------------------------------------------------------------------------------
# Parse errors
# ---------------------------------------------------------------------------------------------

_TOKEN_NAMES = {
    "{": "LCURLY",
    "}": "RCURLY",
    "(": "LPAREN",
    ")": "RPAREN",
    "[": "LBRACKET",
    "]": "RBRACKET",
    ":": "COLON",
    "!": "BANG",
    "=": "EQUALS",
    "$": "VAR_SIGN",
    "@": "DIR_SIGN",
    "|": "PIPE",
    "&": "AMP",
    ".": "ELLIPSIS",
    '"': "STRING",
}


def parse_error(error: GraphQLError, source: str) -> JsonDict:
    """A graphql-core syntax error in graphql-ruby's words."""
    pos = list(error.positions)[0] if error.positions else len(source)
    loc = error.locations[0] if error.locations else None
    line, column = (loc.line, loc.column) if loc else (1, 1)
    rest = source[pos:]
    if not rest.strip():
        message = "Unexpected end of document"
    else:
        match = re.match(r"[_A-Za-z][_0-9A-Za-z]*|-?\d+(\.\d+)?|\"[^\"]*\"?|.", rest)
        token = match.group(0) if match else rest[0]
        if token[0] == '"':
            kind = "STRING"
            token = token.strip('"')
        elif token[0].isdigit() or token[0] == "-":
            kind = "FLOAT" if "." in token else "INT"
        elif token[0].isalpha() or token[0] == "_":
            kind = "IDENTIFIER"
        else:
            kind = _TOKEN_NAMES.get(token, "UNKNOWN_CHAR")
        message = f'Parse error on "{token}" ({kind}) at [{line}, {column}]'
    return {"message": message, "locations": [{"line": line, "column": column}]}


# ---------------------------------------------------------------------------------------------
# Validation errors, rewritten as graphql-ruby words them
# ---------------------------------------------------------------------------------------------


class _Context:
    """Per-node ancestry and argument context, computed once for a document with errors."""

    def __init__(self, schema: GraphQLSchema, document: DocumentNode) -> None:
        self.ancestors: dict[int, list[Node]] = {}
        self.arguments: list[tuple[ArgumentNode, FieldNode | None, str]] = []
        type_info = TypeInfo(schema)
        outer = self

        class Collect(Visitor):
            def enter(self, node: Any, key: Any, parent: Any, path: Any, ancestors: Any) -> None:
                if isinstance(node, Node):
                    outer.ancestors[id(node)] = [a for a in ancestors if isinstance(a, Node)]
                if isinstance(node, ArgumentNode):
                    arg = type_info.get_argument()
                    field = next((a for a in reversed(ancestors) if isinstance(a, FieldNode)), None)
                    outer.arguments.append((node, field, str(arg.type) if arg else "?"))

        visit(document, TypeInfoVisitor(type_info, Collect()))

    def path(self, node: Node) -> list[str]:
        out: list[str] = []
        for anc in [*self.ancestors.get(id(node), []), node]:
            if isinstance(anc, OperationDefinitionNode):
                label = anc.operation.value
                out.append(f"{label} {anc.name.value}" if anc.name else label)
            elif isinstance(anc, FragmentDefinitionNode):
                out.append(f"fragment {anc.name.value}")
            elif isinstance(anc, InlineFragmentNode):
                out.append(f"... on {anc.type_condition.name.value}" if anc.type_condition else "...")
            elif isinstance(anc, FieldNode):
                out.append(anc.name.value)
        return out

    def operation_label(self, node: Node) -> str:
        for anc in [*self.ancestors.get(id(node), []), node]:
            if isinstance(anc, OperationDefinitionNode):
                if anc.name:
                    return f"{anc.operation.value} {anc.name.value}"
                return f"anonymous {anc.operation.value}"
        return "anonymous query"

    def argument_containing(self, node: Node) -> tuple[ArgumentNode, FieldNode | None, str] | None:
        if node.loc is None:
            return None
        start = node.loc.start
        best = None
        for arg, field, type_str in self.arguments:
            if arg.loc and arg.value.loc and arg.value.loc.start <= start < arg.value.loc.end:
                best = (arg, field, type_str)
        return best


def _locations(error: GraphQLError) -> list[JsonDict]:
    return [{"line": loc.line, "column": loc.column} for loc in error.locations or []]


def translate_validation_error(error: GraphQLError, ctx: _Context) -> JsonDict:
    msg = error.message
    nodes = error.nodes or []
    node = nodes[0] if nodes else None
    out: JsonDict = {"message": msg, "locations": _locations(error)}
    if node is not None:
        out["path"] = ctx.path(node)
    ext: JsonDict = {"code": "GRAPHQL_VALIDATION_FAILED"}

    if m := re.match(r"Cannot query field '(\w+)' on type '(\w+)'\.", msg):
        out["message"] = f"Field '{m[1]}' doesn't exist on type '{m[2]}'"
        ext = {"code": "undefinedField", "typeName": m[2], "fieldName": m[1]}
    elif m := re.match(r"Unknown argument '(\w+)' on field '\w+\.(\w+)'\.", msg):
        out["message"] = f"Field '{m[2]}' doesn't accept argument '{m[1]}'"
        ext = {"code": "argumentNotAccepted", "name": m[2], "typeName": "Field", "argumentName": m[1]}
        if node is not None:
            out["path"] = [*ctx.path(node), m[1]]
    elif m := re.match(r"Argument '\w+\.(\w+)\((\w+):\)' of type '[^']+' is required", msg):
        out["message"] = f"Field '{m[1]}' is missing required arguments: {m[2]}"
        ext = {"code": "missingRequiredArguments", "className": "Field", "name": m[1], "arguments": m[2]}
    elif m := re.match(r"Variable '\$(\w+)' is never used", msg):
        label = ctx.operation_label(node) if node else "anonymous query"
        out["message"] = f"Variable ${m[1]} is declared by {label} but not used"
        ext = {"code": "variableNotUsed", "variableName": m[1]}
    elif m := re.match(r"Variable '\$(\w+)' is not defined", msg):
        label = ctx.operation_label(node) if node else "anonymous query"
        out["message"] = f"Variable ${m[1]} is used by {label} but not declared"
        ext = {"code": "variableNotDefined", "variableName": m[1]}
    elif m := re.match(
        r"Variable '\$(\w+)' of type '([^']+)' used in position expecting type '([^']+)'", msg
    ):
        arg_name = "?"
        if len(nodes) > 1 and (found := ctx.argument_containing(nodes[1])):
            arg_name = found[0].name.value
        out["message"] = f"Type mismatch on variable ${m[1]} and argument {arg_name} ({m[2]} / {m[3]})"
        ext = {
            "code": "variableMismatch",
            "variableName": m[1],
            "typeName": m[2],
            "argumentName": arg_name,
            "errorMessage": "Type mismatch",
        }
    elif m := re.match(r"Field '(\w+)' of type '([^']+)' must have a selection of subfields", msg):
        type_name = m[2].strip("[]!")
        out["message"] = (
            f"Field must have selections (field '{m[1]}' returns {type_name} but has no selections. "
            f"Did you mean '{m[1]} {{ ... }}'?)"
        )
        ext = {"code": "selectionMismatch", "nodeName": f"field '{m[1]}'", "typeName": type_name}
    elif m := re.match(r"Field '(\w+)' must not have a selection since type '([^']+)' has no subfields", msg):
        type_name = m[2].strip("[]!")
        out["message"] = (
            f"Selections can't be made on scalars (field '{m[1]}' returns {type_name} but has selections)"
        )
        ext = {"code": "selectionMismatch", "nodeName": f"field '{m[1]}'", "typeName": type_name}
    elif m := re.match(r"Unknown type '(\w+)'", msg):
        out["message"] = f"No such type {m[1]}, so it can't be a fragment condition"
        ext = {"code": "undefinedType", "typeName": m[1]}
    elif node is not None and (found := ctx.argument_containing(node)):
        # Literal of the wrong type somewhere inside an argument value.
        arg, field, type_str = found
        field_name = field.name.value if field else "?"
        out["message"] = (
            f"Argument '{arg.name.value}' on Field '{field_name}' has an invalid value "
            f"({print_ast(arg.value)}). Expected type '{type_str}'."
        )
        ext = {"code": "argumentLiteralsIncompatible", "typeName": "Field", "argumentName": arg.name.value}
        out["path"] = [*ctx.path(field), arg.name.value] if field else out.get("path", [])
    out["extensions"] = ext
    return out


def check_document(query: str) -> tuple[DocumentNode | None, list[JsonDict]]:
    """Parse and validate ``query`` against the Admin schema.

    Returns the document and no errors, or ``None`` and the Shopify-shaped error objects (a copy
    the caller may change). A document's validity depends on its text alone, not on its
    variables, so each distinct text is checked once per process: the app sends the same few
    documents thousands of times, and graphql-core's validation of one costs milliseconds."""
    document, errors = _checked(query)
    return document, copy.deepcopy(list(errors))


@lru_cache(maxsize=512)
def _checked(query: str) -> tuple[DocumentNode | None, tuple[JsonDict, ...]]:
    try:
        document = parse(query)
    except GraphQLError as exc:
        return None, (parse_error(exc, query),)
    schema = load_schema()
    errors = validate(schema, document)
    if not errors:
        return document, ()
    ctx = _Context(schema, document)
    return None, tuple(translate_validation_error(e, ctx) for e in errors)
