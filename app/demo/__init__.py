"""The demo shop: a seeded store history, sent to the app as signed webhooks."""
