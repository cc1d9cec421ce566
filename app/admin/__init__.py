"""The embedded page inside the Shopify admin (entry point, templates)."""
