# The embedded app wired to the Shopify double, for the settings form's body limits.
from tests.admin.conftest import admin_app, admin_settings, shopify_http, store  # noqa: F401
