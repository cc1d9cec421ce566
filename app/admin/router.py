"""The embedded app's entry point (`GET /`, `GET /app`) and a small JSON read (`GET /api/shop`).

The App URL load is `/?embedded=1&host=…&id_token=…&shop=…&timestamp=…&hmac=…` (PLATFORM §2, §6):
1. not embedded and no `id_token`: a browser opened the URL directly → send it into the admin
   (valid `shop`), or show a plain landing page (`frame-ancestors 'none'`);
2. `shop` or `host` invalid → the App Bridge page only (App Bridge fixes the URL);
3. `id_token` missing/invalid → bounce page (`app/deps.py`);
4. the token's shop must be the `shop` parameter; token exchange when the app has no usable
   token (Shopify-managed install), then the page, framed only by that shop's admin.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from app.admin import repository
from app.admin.rendering import templates
from app.auth.security import set_frame_ancestors
from app.auth.service import embedded_app_url
from app.config import Settings
from app.db import SessionDep
from app.deps import CurrentShop, install_for, session_claims
from app.errors import BadRequest
from app.models import Shop
from app.shopify.shop_domain import decode_host, sanitize_shop_domain

router = APIRouter()


def _counts(request: Request, shop: Shop) -> tuple[int, int]:
    with request.app.state.sessionmaker() as session:
        return (
            repository.customer_count(session, shop.shop_id),
            repository.qualifying_order_count(session, shop.shop_id),
        )


def _page(request: Request, name: str, shop: str | None, **context: Any) -> HTMLResponse:
    settings: Settings = request.app.state.settings
    response = templates.TemplateResponse(request, name, {"api_key": settings.shopify_api_key, **context})
    set_frame_ancestors(response, shop)
    return response


@router.get("/", response_class=HTMLResponse)
@router.get("/app", response_class=HTMLResponse)
async def embedded_entry(request: Request) -> Response:
    settings: Settings = request.app.state.settings
    query = request.query_params
    shop_param = sanitize_shop_domain(query.get("shop"))
    if query.get("embedded") != "1" and "id_token" not in query:
        if shop_param is None:
            return _page(request, "landing.html", None)
        return RedirectResponse(embedded_app_url(settings, shop_param, query.get("host")), status_code=302)
    if shop_param is None or decode_host(query.get("host")) is None:
        return _page(request, "session_token_bounce.html", shop_param)
    token, claims = session_claims(request)
    if claims.shop != shop_param:
        raise BadRequest("the shop parameter does not match the session token")
    shop = await install_for(request, token, claims)
    customers, orders = await run_in_threadpool(_counts, request, shop)
    return _page(
        request, "home.html", shop.domain, shop_domain=shop.domain, customers=customers, orders=orders
    )


@router.get("/api/shop")
def shop_summary(shop: CurrentShop, session: SessionDep) -> dict[str, object]:
    """The authenticated shop's domain and counts (a fetch from the page, session token in the header)."""
    return {
        "shop": shop.domain,
        "customers": repository.customer_count(session, shop.shop_id),
        "orders": repository.qualifying_order_count(session, shop.shop_id),
    }
