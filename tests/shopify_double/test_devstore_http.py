"""The HTTP endpoint: routing by path or Host, token checks, API version."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from shopify_double import DevStore, create_devstore_app, graphql_url

from .conftest import SHOP

PATH_URL = f"/shops/{SHOP}/admin/api/2026-10/graphql.json"
QUERY = {"query": "{ shop { myshopifyDomain } }"}


def post(
    store: DevStore, url: str, *, headers: dict[str, str] | None = None, **kwargs: Any
) -> httpx.Response:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=create_devstore_app(store))
        async with httpx.AsyncClient(transport=transport, base_url="http://devstore") as client:
            return await client.post(url, headers=headers or {}, **kwargs)

    return asyncio.run(go())


def test_path_routing_with_a_valid_token(store: DevStore, token: str) -> None:
    response = post(store, PATH_URL, json=QUERY, headers={"X-Shopify-Access-Token": token})
    assert response.status_code == 200
    assert response.json()["data"] == {"shop": {"myshopifyDomain": SHOP}}


def test_host_header_routing(store: DevStore, token: str) -> None:
    response = post(
        store,
        "/admin/api/2026-10/graphql.json",
        json=QUERY,
        headers={"X-Shopify-Access-Token": token, "Host": SHOP},
    )
    assert response.json()["data"] == {"shop": {"myshopifyDomain": SHOP}}


def test_graphql_url_builds_the_path_form_from_a_template() -> None:
    assert graphql_url(SHOP, "http://devstore/shops/{shop}") == f"http://devstore{PATH_URL}"
    assert graphql_url(SHOP) == f"https://{SHOP}/admin/api/2026-10/graphql.json"


def test_missing_token_is_401(store: DevStore) -> None:
    response = post(store, PATH_URL, json=QUERY)
    assert response.status_code == 401
    assert response.json() == {
        "errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"
    }


def test_wrong_token_is_401(store: DevStore, token: str) -> None:
    response = post(store, PATH_URL, json=QUERY, headers={"X-Shopify-Access-Token": token + "x"})
    assert response.status_code == 401


def test_another_shops_token_is_401(store: DevStore) -> None:
    other = store.issue_access_token("other.myshopify.com", "read_customers")
    response = post(store, PATH_URL, json=QUERY, headers={"X-Shopify-Access-Token": other})
    assert response.status_code == 401


def test_revoked_token_is_401(store: DevStore, token: str) -> None:
    store.revoke(SHOP)
    response = post(store, PATH_URL, json=QUERY, headers={"X-Shopify-Access-Token": token})
    assert response.status_code == 401


def test_wrong_api_version_is_404(store: DevStore, token: str) -> None:
    url = f"/shops/{SHOP}/admin/api/2026-13/graphql.json"
    response = post(store, url, json=QUERY, headers={"X-Shopify-Access-Token": token})
    assert response.status_code == 404


def test_unknown_shop_is_404(store: DevStore, token: str) -> None:
    url = "/shops/nope.myshopify.com/admin/api/2026-10/graphql.json"
    assert post(store, url, json=QUERY, headers={"X-Shopify-Access-Token": token}).status_code == 404


def test_body_without_query_is_400(store: DevStore, token: str) -> None:
    response = post(store, PATH_URL, json={"variables": {}}, headers={"X-Shopify-Access-Token": token})
    assert response.status_code == 400


def test_invalid_document_is_200_with_errors(store: DevStore, token: str) -> None:
    response = post(
        store, PATH_URL, json={"query": "{ shop { nope } }"}, headers={"X-Shopify-Access-Token": token}
    )
    assert response.status_code == 200
    assert response.json()["errors"][0]["extensions"]["code"] == "undefinedField"
