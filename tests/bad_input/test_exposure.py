"""What the app shows to whoever asks: no API schema, no metrics without the token, no redirect
to a host taken from an unsigned parameter, and the same response headers everywhere."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import pytest
from pydantic import SecretStr
from sqlalchemy.orm import Session
from starlette.testclient import TestClient

from app.config import Settings
from app.main import create_app
from app.shopify.token_crypto import generate_key
from app.worker.__main__ import serve_metrics
from tests.fixtures.factories import create_shop, order_payload
from tests.fixtures.webhooks import post_webhook

SHOP = "exposed.myshopify.com"
METRICS_TOKEN = "scrape-token-0123456789abcdef"


@pytest.fixture
def production(settings: Settings) -> Settings:
    return Settings(
        app_env="production",
        database_url=settings.database_url,
        shopify_api_key=settings.shopify_api_key,
        shopify_api_secret=settings.shopify_api_secret,
        token_encryption_keys=[generate_key()],
    )


def serve(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings), base_url="https://app.example.com") as client:
        yield client


@pytest.fixture
def prod_client(production: Settings) -> Iterator[TestClient]:
    yield from serve(production)


@pytest.fixture
def token_client(production: Settings) -> Iterator[TestClient]:
    yield from serve(production.model_copy(update={"metrics_token": SecretStr(METRICS_TOKEN)}))


@pytest.mark.parametrize("env", ["production", "settings"])
def test_the_openapi_schema_is_not_served_outside_development(
    request: pytest.FixtureRequest, backend: str, env: str
) -> None:
    with TestClient(create_app(request.getfixturevalue(env))) as client:
        assert client.get("/openapi.json").status_code == 404


def test_metrics_are_off_in_production_without_a_token(prod_client: TestClient) -> None:
    response = prod_client.get("/metrics")
    assert response.status_code == 404
    assert "rfm_" not in response.text


def test_metrics_without_the_token_are_refused(token_client: TestClient) -> None:
    response = token_client.get("/metrics")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert "METRICS_TOKEN" in response.json()["detail"] and "rfm_" not in response.text


@pytest.mark.parametrize(
    "authorization",
    [
        f"Bearer {METRICS_TOKEN}x",
        f"Bearer {METRICS_TOKEN[:-1]}",
        "Bearer ",
        f"Basic {METRICS_TOKEN}",
        METRICS_TOKEN,
    ],
)
def test_metrics_with_a_wrong_token_are_refused(token_client: TestClient, authorization: str) -> None:
    response = token_client.get("/metrics", headers={"Authorization": authorization})
    assert response.status_code == 401 and "rfm_" not in response.text


def test_metrics_with_the_token_are_served(token_client: TestClient) -> None:
    response = token_client.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert response.status_code == 200 and "# TYPE rfm_jobs gauge" in response.text


# -- response headers --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/healthz"),
        ("GET", "/"),
        ("GET", "/admin/static/admin.css"),
        ("GET", "/no-such-page"),
        ("POST", "/webhooks"),  # no HMAC: refused by the webhook layer, which is not a route
        ("GET", "/webhooks"),
        ("GET", "/api/shop"),  # no session token: 401
    ],
)
def test_every_response_carries_nosniff_and_the_referrer_policy(
    prod_client: TestClient, method: str, path: str
) -> None:
    response = prod_client.request(method, path)
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "strict-origin-when-cross-origin"
    assert response.headers["strict-transport-security"] == "max-age=31536000"


def test_an_accepted_webhook_carries_the_headers(client: TestClient, session: Session) -> None:
    create_shop(session, SHOP)
    response = post_webhook(client, "orders/create", order_payload(1, 2), SHOP)
    assert response.status_code == 200
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "strict-origin-when-cross-origin"


def test_hsts_is_sent_only_over_https(settings: Settings) -> None:
    app = create_app(settings)
    with TestClient(app, base_url="http://app.example.com") as plain:
        assert "strict-transport-security" not in plain.get("/healthz").headers
    with TestClient(app, base_url="https://app.example.com") as tls:
        assert tls.get("/healthz").headers["strict-transport-security"] == "max-age=31536000"


def test_forwarded_proto_from_the_client_does_not_turn_hsts_on(settings: Settings) -> None:
    # Only uvicorn's proxy-headers layer, for a proxy it trusts, may turn the scheme into https.
    with TestClient(create_app(settings), base_url="http://app.example.com") as client:
        response = client.get("/healthz", headers={"X-Forwarded-Proto": "https"})
    assert "strict-transport-security" not in response.headers


def test_an_unhandled_error_still_carries_the_headers(settings: Settings) -> None:
    app = create_app(settings)

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("a bug")

    with TestClient(app, base_url="https://app.example.com", raise_server_exceptions=False) as client:
        response = client.get("/boom")
    assert response.status_code == 500
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["strict-transport-security"] == "max-age=31536000"


# -- the `host` parameter ----------------------------------------------------------------------


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "forged",
    [
        "evil.example",
        "attacker.myshopify.com",  # another store: its /apps/ path is a storefront app proxy
        "admin.shopify.com/store/attacker",
        "evil.shop.dev",
        "evil.spin.dev/admin",
    ],
)
def test_a_forged_host_does_not_choose_the_redirect(client: TestClient, forged: str) -> None:
    response = client.get(
        "/", params={"shop": "demo.myshopify.com", "host": b64(forged)}, follow_redirects=False
    )
    assert response.status_code == 302
    assert response.headers["location"] == "https://admin.shopify.com/store/demo/apps/test-key"


def test_the_workers_metrics_listen_on_loopback_unless_told_otherwise(production: Settings) -> None:
    server = serve_metrics(production.model_copy(update={"worker_metrics_port": 0}))
    assert server is not None
    try:
        assert server.server_address[0] == "127.0.0.1"
    finally:
        server.shutdown()
        server.server_close()
