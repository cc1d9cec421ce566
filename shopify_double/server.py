"""The double's HTTP face: Shopify's Admin GraphQL endpoint for every shop of a :class:`DevStore`.

Routing (all shops share one local server, so the shop is named either way):

- path:  ``POST http://127.0.0.1:PORT/shops/{shop_domain}/admin/api/2026-10/graphql.json``
- host:  ``POST http://127.0.0.1:PORT/admin/api/2026-10/graphql.json`` with ``Host: {shop}.myshopify.com``

The app should build a shop's Admin base URL from one template setting and append the usual path:
``SHOPIFY_ADMIN_BASE_URL_TEMPLATE = "https://{shop}"`` in production, and
``"http://127.0.0.1:PORT/shops/{shop}"`` (uvicorn) or ``"http://devstore/shops/{shop}"``
(in-process ``httpx.ASGITransport``) against the double; see :func:`shop_base_url`. The GraphQL URL is
then ``f"{base}/admin/api/2026-10/graphql.json"`` and the OAuth endpoints
``f"{base}/admin/oauth/access_token"``, exactly as on Shopify.

Faithful: ``X-Shopify-Access-Token`` checked against tokens issued for that shop (missing / wrong /
another shop's → 401 ``{"errors": "[API] Invalid API key or access token (unrecognized login or wrong
password)"}``); an unknown API version → 404 ``{"errors": "Not Found"}``; an unknown shop → 404;
a body without ``query`` → 400 ``{"errors": {"query": "Required parameter missing or invalid"}}``;
every GraphQL outcome (validation, throttling, userErrors) is HTTP 200.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse

from shopify_double.bulk import router as bulk_router
from shopify_double.graphql_api import AdminGraphQL
from shopify_double.oauth import router as oauth_router
from shopify_double.schema import API_VERSION
from shopify_double.state import DevStore

INVALID_TOKEN = "[API] Invalid API key or access token (unrecognized login or wrong password)"
IN_PROCESS_BASE_URL_TEMPLATE = "http://devstore/shops/{shop}"


def shop_base_url(shop_domain: str, template: str = "https://{shop}") -> str:
    """``https://demo.myshopify.com`` in production; the double's path form with its template."""
    return template.format(shop=shop_domain).rstrip("/")


def graphql_url(shop_domain: str, template: str = "https://{shop}", api_version: str = API_VERSION) -> str:
    return f"{shop_base_url(shop_domain, template)}/admin/api/{api_version}/graphql.json"


def shop_from_request(request: Request) -> str | None:
    """The shop a request is for: ``/shops/{shop}/…`` first, else the ``Host`` header."""
    from_path = request.path_params.get("shop_domain")
    if from_path:
        return str(from_path).lower()
    host = (request.headers.get("host") or "").split(":")[0].lower()
    return host if host.endswith(".myshopify.com") else None


def _json(body: Any, status: int = 200) -> JSONResponse:
    return JSONResponse(body, status_code=status, headers={"X-Request-Id": str(uuid.uuid4())})


def create_devstore_app(store: DevStore) -> FastAPI:
    """An ASGI app serving ``store``; usable with ``httpx.ASGITransport`` or uvicorn."""
    api = AdminGraphQL(store)
    app = FastAPI(title="Shopify devstore", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.store = store
    admin = APIRouter()

    @admin.post("/admin/api/{api_version}/graphql.json")
    async def graphql(request: Request, api_version: str) -> JSONResponse:
        if api_version != API_VERSION:
            return _json({"errors": "Not Found"}, 404)
        shop_domain = shop_from_request(request)
        if shop_domain is None or shop_domain not in store.shops:
            return _json({"errors": "Not Found"}, 404)
        shop = store.shops[shop_domain]
        if shop.failing_requests > 0:  # a test's outage: Shopify's 503 while it is unavailable
            shop.failing_requests -= 1
            return _json({"errors": "Service Unavailable"}, 503)
        scopes = store.token_scopes(shop_domain, request.headers.get("x-shopify-access-token"))
        if scopes is None:
            return _json({"errors": INVALID_TOKEN}, 401)
        raw = await request.body()
        content_type = request.headers.get("content-type", "")
        payload: Any
        if content_type.startswith("application/graphql"):
            payload = {"query": raw.decode()}
        else:
            try:
                payload = json.loads(raw or b"{}")
            except ValueError:
                payload = None
        if not isinstance(payload, dict) or not isinstance(payload.get("query"), str):
            return _json({"errors": {"query": "Required parameter missing or invalid"}}, 400)
        variables = payload.get("variables") or {}
        if not isinstance(variables, dict):
            return _json({"errors": {"variables": "Invalid variables"}}, 400)
        store.bulk.base_url = str(request.base_url).rstrip("/")  # bulk result URLs point back here
        body = api.run(shop_domain, scopes, payload["query"], variables, payload.get("operationName"))
        return _json(body)

    app.include_router(admin)
    app.include_router(admin, prefix="/shops/{shop_domain}")
    # OAuth endpoints (/admin/oauth/authorize, /admin/oauth/access_token) live in shopify_double/oauth.py;
    # they are mounted for both routing forms, like the Admin API.
    app.include_router(oauth_router)
    app.include_router(oauth_router, prefix="/shops/{shop_domain}")
    app.include_router(bulk_router)  # GET /bulk/{shop}/{id}.jsonl: bulk operation results
    return app
