"""Jinja2 templates of the embedded app (`app/admin/templates/`)."""

from __future__ import annotations

from pathlib import Path

from fastapi.templating import Jinja2Templates

APP_BRIDGE_URL = "https://cdn.shopify.com/shopifycloud/app-bridge.js"
POLARIS_URL = "https://cdn.shopify.com/shopifycloud/polaris.js"

templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
templates.env.globals.update(app_bridge_url=APP_BRIDGE_URL, polaris_url=POLARIS_URL)
