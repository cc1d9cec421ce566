"""PLACEHOLDER for the double's OAuth endpoints (owned by the OAuth work, not the Admin API double).

Add ``GET /admin/oauth/authorize`` and ``POST /admin/oauth/access_token`` (code grant, token
exchange, refresh) to ``router`` below. ``create_devstore_app`` already mounts this router at the
root (shop from the ``Host`` header) and under ``/shops/{shop_domain}`` (shop from the path); use
``app.devstore.server.shop_from_request(request)`` to get the shop either way, and
``request.app.state.store`` (a ``DevStore``) to ``issue_access_token(shop, scope)`` / ``revoke(shop)``.
"""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
