"""Query cost and the leaky bucket."""

from __future__ import annotations

from shopify_double import DevStore, FakeClock

from .conftest import SHOP, Gql

# customers: 2 + 10 × per-customer; per-customer = node 1 + amountSpent 1 + metafield 1
#            + orders(first: 5) (2 + 5 × (node 1 + currentTotalPriceSet 1 + shopMoney 1)) = 3 + 17 = 20
# → 2 + 10 × 20 = 202; shop 1 → 203 in all.
KNOWN = """{
  shop { name currencyCode }
  customers(first: 10) {
    pageInfo { hasNextPage endCursor }
    edges { cursor node {
      id tags
      amountSpent { amount }
      metafield(key: "predicted_clv") { value }
      orders(first: 5) { nodes { id currentTotalPriceSet { shopMoney { amount } } } }
    } }
  }
}"""


def test_requested_cost_matches_a_hand_computation(gql: Gql) -> None:
    assert gql(KNOWN)["extensions"]["cost"]["requestedQueryCost"] == 203


def test_actual_cost_counts_what_was_returned(store: DevStore, gql: Gql) -> None:
    c = store.create_customer(SHOP)
    store.create_order(SHOP, customer_id=c.id, total_price=5)
    cost = gql(KNOWN)["extensions"]["cost"]
    # shop 1 + customers 2 + one customer (1 + amountSpent 1 + orders 2 + one order 3) = 10
    assert cost["actualQueryCost"] == 10
    assert cost["throttleStatus"]["currentlyAvailable"] == 1990.0


def test_every_response_carries_cost_and_throttle_status(gql: Gql) -> None:
    cost = gql("{ shop { id } }")["extensions"]["cost"]
    assert cost == {
        "requestedQueryCost": 1,
        "actualQueryCost": 1,
        "throttleStatus": {"maximumAvailable": 2000.0, "currentlyAvailable": 1999.0, "restoreRate": 100.0},
    }


def test_mutations_cost_ten(gql: Gql) -> None:
    body = gql('mutation { segmentCreate(name: "x", query: "number_of_orders >= 1") { segment { id } } }')
    assert body["extensions"]["cost"]["requestedQueryCost"] == 10


def test_query_over_1000_is_rejected_without_executing(gql: Gql, store: DevStore) -> None:
    body = gql("{ customers(first: 250) { nodes { id orders(first: 10) { nodes { id } } } } }")
    assert "data" not in body
    [error] = body["errors"]
    assert error["extensions"]["code"] == "MAX_COST_EXCEEDED"
    assert error["message"].startswith(
        "Query cost is 3252, which exceeds the single query max cost limit (1000)."
    )
    assert body["extensions"]["cost"]["throttleStatus"]["currentlyAvailable"] == 2000.0


def test_bucket_drains_then_throttles_then_refills(store: DevStore, clock: FakeClock, gql: Gql) -> None:
    expensive = "{ customers(first: 249) { nodes { id } } }"  # 2 + 249 = 251 requested, 2 actual
    store.shop(SHOP).bucket.drain()
    body = gql(expensive)
    assert body["errors"] == [
        {
            "message": "Throttled",
            "extensions": {"code": "THROTTLED", "documentation": "https://shopify.dev/api/usage/rate-limits"},
        }
    ]
    assert "data" not in body
    assert body["extensions"]["cost"]["requestedQueryCost"] == 251
    assert store.calls[-1].throttled
    clock.advance(2.5)  # 250 points restored: one short
    assert gql(expensive)["errors"][0]["extensions"]["code"] == "THROTTLED"
    clock.advance(0.05)
    ok = gql(expensive)
    assert "errors" not in ok
    # 255 restored, 251 charged, 249 refunded (actual cost 2)
    assert ok["extensions"]["cost"]["throttleStatus"]["currentlyAvailable"] == 253.0


def test_throttled_mutation_changes_nothing(store: DevStore, gql: Gql) -> None:
    c = store.create_customer(SHOP)
    store.shop(SHOP).bucket.drain()
    body = gql(f'mutation {{ tagsAdd(id: "{c.gid}", tags: ["x"]) {{ node {{ id }} }} }}')
    assert body["errors"][0]["extensions"]["code"] == "THROTTLED"
    assert c.tags == []


def test_bucket_never_exceeds_its_maximum(store: DevStore, clock: FakeClock, gql: Gql) -> None:
    gql("{ shop { id } }")
    clock.advance(3600)
    assert gql("{ shop { id } }")["extensions"]["cost"]["throttleStatus"]["currentlyAvailable"] == 1999.0


def test_call_log_records_documents_and_costs(store: DevStore, gql: Gql) -> None:
    gql("query($n: Int!) { customers(first: $n) { nodes { id } } }", {"n": 3})
    [call] = store.calls_for(SHOP)
    assert call.variables == {"n": 3}
    assert (call.requested_cost, call.actual_cost, call.throttled) == (5, 2, False)
