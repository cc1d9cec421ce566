"""/healthz (the process answers), /readyz (database reachable, migrations at head), /metrics."""

from __future__ import annotations

from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy import Engine

from app.db import alembic_config
from app.observability import metrics_payload

router = APIRouter(include_in_schema=False)


@router.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


def migration_state(engine: Engine) -> tuple[set[str], set[str]]:
    """(revisions the database is at, revisions the code's migrations end at)."""
    heads = set(ScriptDirectory.from_config(alembic_config(str(engine.url))).get_heads())
    with engine.connect() as conn:
        current = set(MigrationContext.configure(conn).get_current_heads())
    return current, heads


@router.get("/readyz")
def readyz(request: Request) -> JSONResponse:
    try:
        current, heads = migration_state(request.app.state.engine)
    except Exception as exc:
        return JSONResponse(
            {"status": "unavailable", "reason": f"database: {type(exc).__name__}"}, status_code=503
        )
    if current != heads:
        return JSONResponse(
            {
                "status": "unavailable",
                "reason": "migrations not at head",
                "database": sorted(current),
                "code": sorted(heads),
            },
            status_code=503,
        )
    return JSONResponse({"status": "ready"})


@router.get("/metrics")
def metrics(request: Request) -> Response:
    return Response(metrics_payload(request.app.state.sessionmaker), media_type=CONTENT_TYPE_LATEST)
