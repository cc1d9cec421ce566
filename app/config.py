"""Settings from the environment: one class, read once."""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

API_VERSION = "2026-10"
DEV_API_SECRET = "dev-secret-not-for-production-use-only"
DEV_API_KEY = "dev-api-key"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    app_env: Literal["development", "test", "production"] = "development"
    database_url: str = "sqlite:///./rfm_clv.db"
    shopify_api_key: str = DEV_API_KEY
    shopify_api_secret: str = DEV_API_SECRET
    # During a client-secret rotation Shopify may still sign with the old secret for up to an hour.
    shopify_api_secret_old: str | None = None
    app_url: str = "http://localhost:8000"
    scopes: str = "read_orders,read_all_orders,write_customers,read_customer_merge"  # as shopify.app.toml
    # Fernet keys, newest first (`rfm-clv` docs/operations.md: rotating the key). Outside
    # production a key derived from the API secret is used when none is set.
    token_encryption_keys: list[str] = Field(default_factory=list)
    # Where a shop's Admin API lives. Production: https://{shop}. Against the local Shopify
    # double: http://127.0.0.1:PORT/shops/{shop} (or http://devstore/shops/{shop} in-process).
    shopify_admin_base_url_template: str = "https://{shop}"
    log_level: str = "INFO"
    json_logs: bool = True
    # Development-only way into the pages outside the Shopify admin (app/auth/dev.py).
    dev_login: bool = False
    worker_metrics_port: int | None = None  # the worker serves /metrics on this port when set
    # The worker's metrics have no token: they listen on loopback unless the operator names the
    # address of the monitoring network (docs/security.md).
    worker_metrics_addr: str = "127.0.0.1"
    # A running job's worker renews its heartbeat this often; a job not renewed for the expiry is
    # taken over by another worker (its worker died). Every worker of a deployment uses the same
    # pair; the expiry must leave room for several missed beats (app/jobs/repository.py).
    worker_heartbeat_seconds: float = Field(default=20.0, gt=0)
    worker_heartbeat_expiry_seconds: float = Field(default=90.0, gt=0)
    # How much the worker lowers its own CPU priority (os.nice) when it starts: on a machine it
    # shares with the web processes, the web tier's requests then get the CPU first while a daily
    # cycle runs (docs/deployment.md, "Capacity of one machine"). 0 keeps the default priority.
    worker_nice: int = Field(default=10, ge=0, le=19)
    # The share of time the worker may spend running jobs: after a job that took t seconds it
    # rests t × (1 − duty) / duty, as PostgreSQL's autovacuum rests between rounds of work
    # (https://www.postgresql.org/docs/15/runtime-config-autovacuum.html). The kernel's priority
    # reaches the worker's own process, not the database backend serving it; resting leaves the
    # web tier's webhooks both. 1 never rests (docs/deployment.md, "Capacity of one machine").
    worker_duty: float = Field(default=1.0, gt=0, le=1)
    # Prometheus scrapes the web process's /metrics with `Authorization: Bearer <token>`; without
    # a token /metrics answers only in development (docs/operations.md).
    metrics_token: SecretStr | None = None
    # PostgreSQL connections per app process for order webhooks (besides SQLAlchemy's pool).
    webhook_pool_size: int = Field(default=10, ge=1)
    # Of those, how many are kept open while no order arrives (0: the first delivery opens one).
    webhook_pool_min_size: int = Field(default=1, ge=0)
    # POST /webhooks transport limits (app/webhooks/endpoint.py, docs/deployment.md). Shopify staff
    # report order bodies "upwards of a megabyte" and document no upper bound for HTTPS delivery;
    # the 1,000,000-byte cap of its EventBridge delivery
    # (https://shopify.dev/changelog/amazon-eventbridge-webhook-payload-size-limit-increased-to-1-mb)
    # is the nearest published figure. 4 MiB leaves room for the largest orders while at most
    # `webhook_max_concurrency` bodies are held at once.
    webhook_max_body_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)
    # Shopify abandons a delivery after 5 s in all (https://shopify.dev/docs/apps/webhooks/best-practices):
    # a body still arriving after that is no delivery it will count.
    webhook_body_timeout_seconds: float = Field(default=5.0, gt=0)
    # Deliveries handled at once per process; None = twice the webhook connection pool.
    webhook_max_concurrency: int | None = Field(default=None, ge=1)
    # How long a delivery may wait for its turn before a 503 (Shopify retries it later).
    webhook_slot_wait_seconds: float = Field(default=1.0, ge=0)
    # How long an order delivery may wait for a PostgreSQL connection (the pool is busy, or the
    # database is down and the pool is reconnecting) before a 503: the turn, the body and the work
    # must all fit in Shopify's 5 s (https://shopify.dev/docs/apps/webhooks/best-practices), and a
    # 503 sent after Shopify gave up tells it nothing.
    webhook_connection_wait_seconds: float = Field(default=2.0, gt=0)
    # How often the worker asks Shopify whether a bulk operation (the history import, a large
    # sync) has finished; each check is one query against the shop's API budget
    # (https://shopify.dev/docs/api/usage/bulk-operations/queries). The demo's local store
    # answers at once, so it checks more often.
    bulk_poll_seconds: float = Field(default=5.0, gt=0)
    # CLV fits: replace the built-in prior (published retail fits, app/clv/prior.py) by one estimated
    # from the parameters of this deployment's larger shops' fits (never their customers' data;
    # docs/privacy.md, docs/predictions.md). Off by default.
    clv_prior_from_shops: bool = False

    @model_validator(mode="after")
    def _webhook_pool_min_within_size(self) -> Settings:
        if self.webhook_pool_min_size > self.webhook_pool_size:
            raise ValueError("WEBHOOK_POOL_MIN_SIZE must not exceed WEBHOOK_POOL_SIZE")
        return self

    @model_validator(mode="after")
    def _heartbeat_expiry_after_several_beats(self) -> Settings:
        if self.worker_heartbeat_expiry_seconds < 3 * self.worker_heartbeat_seconds:
            raise ValueError("WORKER_HEARTBEAT_EXPIRY_SECONDS must be at least 3 x WORKER_HEARTBEAT_SECONDS")
        return self

    @model_validator(mode="after")
    def _refuse_placeholders_in_production(self) -> Settings:
        if self.dev_login and self.app_env != "development":
            raise ValueError("DEV_LOGIN is for APP_ENV=development only")
        if self.app_env == "production":
            if self.shopify_api_secret == DEV_API_SECRET or self.shopify_api_key == DEV_API_KEY:
                raise ValueError("SHOPIFY_API_KEY and SHOPIFY_API_SECRET must be set in production")
            if not self.token_encryption_keys:
                raise ValueError("TOKEN_ENCRYPTION_KEYS must be set in production")
            if self.database_url.startswith("sqlite"):
                raise ValueError("production needs DATABASE_URL pointing at PostgreSQL")
        return self

    def admin_base_url(self, shop: str) -> str:
        return self.shopify_admin_base_url_template.format(shop=shop)

    @property
    def webhook_concurrency(self) -> int:
        return self.webhook_max_concurrency or 2 * self.webhook_pool_size

    @property
    def webhook_secrets(self) -> tuple[str, ...]:
        if self.shopify_api_secret_old:
            return (self.shopify_api_secret, self.shopify_api_secret_old)
        return (self.shopify_api_secret,)


@lru_cache
def get_settings() -> Settings:
    return Settings()
