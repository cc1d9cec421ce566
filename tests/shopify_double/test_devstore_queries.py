"""Reads resolve from state: pagination, search filters, counts, nodes, scopes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from shopify_double import AdminGraphQL, DevStore

from .conftest import SHOP, Gql

PAGE = """query($after: String) { customers(first: 2, after: $after) {
  edges { cursor node { id } } pageInfo { hasNextPage endCursor } } }"""


def test_customer_pages_visit_every_customer_once(store: DevStore, gql: Gql) -> None:
    created = [c.gid for c in store.create_customers(SHOP, 5)]
    seen, after = [], None
    while True:
        conn = gql(PAGE, {"after": after})["data"]["customers"]
        seen += [e["node"]["id"] for e in conn["edges"]]
        if not conn["pageInfo"]["hasNextPage"]:
            break
        after = conn["pageInfo"]["endCursor"]
    assert seen == created


def test_customers_query_filters_by_tag(store: DevStore, gql: Gql) -> None:
    vip = store.create_customer(SHOP, tags=["VIP"])
    store.create_customer(SHOP, tags=["other"])
    body = gql('{ customers(first: 10, query: "tag:vip") { nodes { id tags } } }')
    assert body["data"]["customers"]["nodes"] == [{"id": vip.gid, "tags": ["VIP"]}]


def test_customers_query_filters_by_updated_at(store: DevStore, gql: Gql) -> None:
    old = store.create_customer(SHOP, created_at=datetime(2025, 1, 1, tzinfo=UTC))
    new = store.create_customer(SHOP, created_at=datetime(2026, 6, 1, tzinfo=UTC))
    body = gql("""{ customers(first: 10, query: "updated_at:>'2026-01-01T00:00:00Z'") { nodes { id } } }""")
    assert [n["id"] for n in body["data"]["customers"]["nodes"]] == [new.gid]
    assert old.gid not in str(body)


def test_customer_reads_tags_counts_and_amount_spent(store: DevStore, gql: Gql) -> None:
    c = store.create_customer(SHOP, tags=["a"])
    store.create_order(SHOP, customer_id=c.id, total_price="10.50")
    store.create_order(SHOP, customer_id=c.id, total_price="4.50")
    body = gql(
        "query($id: ID!) { customer(id: $id) {"
        " legacyResourceId tags numberOfOrders amountSpent { amount } } }",
        {"id": c.gid},
    )
    assert body["data"]["customer"] == {
        "legacyResourceId": str(c.id),
        "tags": ["a"],
        "numberOfOrders": "2",
        "amountSpent": {"amount": "15.0"},
    }


def test_orders_updated_since_sorted_by_updated_at(store: DevStore, clock, gql: Gql) -> None:
    base = datetime(2026, 3, 1, tzinfo=UTC)
    times = iter([base, base + timedelta(days=2), base + timedelta(days=1)])
    store.now = lambda: next(times)
    a = store.create_order(SHOP, customer_id=None, total_price=1)
    b = store.create_order(SHOP, customer_id=None, total_price=2)
    c = store.create_order(SHOP, customer_id=None, total_price=3)
    body = gql(
        """{ orders(first: 10, query: "updated_at:>'2026-03-01T12:00:00Z'", sortKey: UPDATED_AT) {
             nodes { id legacyResourceId displayFinancialStatus
                     currentTotalPriceSet { shopMoney { amount } } } } }"""
    )
    nodes = body["data"]["orders"]["nodes"]
    assert [n["id"] for n in nodes] == [c.gid, b.gid]
    assert a.gid not in str(body)
    assert nodes[0]["currentTotalPriceSet"]["shopMoney"]["amount"] == "3.0"


def test_orders_count_caps_at_limit_with_at_least(store: DevStore, gql: Gql) -> None:
    for _ in range(5):
        store.create_order(SHOP, customer_id=None, total_price=1)
    body = gql("{ all: ordersCount { count precision } capped: ordersCount(limit: 3) { count precision } }")
    assert body["data"]["all"] == {"count": 5, "precision": "EXACT"}
    assert body["data"]["capped"] == {"count": 3, "precision": "AT_LEAST"}


def test_nodes_resolves_customers_and_nulls_unknown_ids(store: DevStore, gql: Gql) -> None:
    c = store.create_customer(SHOP, tags=["x"])
    body = gql(
        "query($ids: [ID!]!) { nodes(ids: $ids) { id ... on Customer { tags } } }",
        {"ids": [c.gid, "gid://shopify/Customer/1"]},
    )
    assert body["data"]["nodes"] == [{"id": c.gid, "tags": ["x"]}, None]


def test_orders_need_read_orders_scope(store: DevStore) -> None:
    token = store.issue_access_token(SHOP, "read_customers")
    scopes = store.token_scopes(SHOP, token)
    assert scopes is not None
    body = AdminGraphQL(store).run(SHOP, scopes, "{ orders(first: 1) { nodes { id } } }")
    [error] = body["errors"]
    assert error["extensions"]["code"] == "ACCESS_DENIED"
    assert error["message"] == "Access denied for orders field. Required access: `read_orders` access scope."


def test_metafield_definitions_list_app_owned_definitions(store: DevStore, gql: Gql) -> None:
    store.define_metafield(SHOP, "predicted_clv", "number_decimal")
    body = gql(
        "{ metafieldDefinitions(ownerType: CUSTOMER, first: 10) { nodes { namespace key type { name } } } }"
    )
    assert body["data"]["metafieldDefinitions"]["nodes"] == [
        {"namespace": f"app--{store.app_id}", "key": "predicted_clv", "type": {"name": "number_decimal"}}
    ]


def test_bulk_helpers_create_tens_of_thousands_quickly(store: DevStore) -> None:
    import time

    started = time.perf_counter()
    customers = store.create_customers(SHOP, 20_000)
    store.create_orders(SHOP, ({"customer_id": c.id, "total_price": "9.99"} for c in customers[:5000]))
    assert time.perf_counter() - started < 5
    assert len(store.shop(SHOP).customers) == 20_000
