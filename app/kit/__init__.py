"""Infrastructure that knows no domain: database engines and transactions, SQL helpers, binary
COPY, errors and their HTTP status, request bodies, money limits, logging and metrics. Nothing here
imports from another package of `app` except `app.config` (docs/architecture.md)."""
