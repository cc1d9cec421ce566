"""/healthz (the process answers), /readyz (database reachable, migrations at head), /metrics
(behind a bearer token; without one, development only)."""

from __future__ import annotations

import hmac

from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy import Engine

from app.config import Settings
from app.kit.db import alembic_config
from app.kit.observability import metrics_payload

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


def _metrics_allowed(request: Request, settings: Settings) -> bool | None:
    """True: serve; False: wrong or missing token (401); None: metrics are off here (404)."""
    expected = settings.metrics_token.get_secret_value() if settings.metrics_token else ""
    if not expected:
        return True if settings.app_env == "development" else None
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), expected.encode())


@router.get("/metrics")
def metrics(request: Request) -> Response:
    allowed = _metrics_allowed(request, request.app.state.settings)
    if allowed is None:
        return JSONResponse({"detail": "Not Found"}, status_code=404)
    if not allowed:
        return JSONResponse(
            {"detail": "metrics need Authorization: Bearer <METRICS_TOKEN>"},
            status_code=401,
            headers={"WWW-Authenticate": "Bearer"},
        )
    return Response(metrics_payload(request.app.state.queue_depth), media_type=CONTENT_TYPE_LATEST)
