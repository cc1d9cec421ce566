"""tagsAdd / tagsRemove and segments."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from shopify_double import DevStore, FakeClock
from shopify_double.state import normalize_tags

from .conftest import SHOP, Gql

ADD = """mutation($id: ID!, $tags: [String!]!) { tagsAdd(id: $id, tags: $tags) {
  node { ... on Customer { tags } } userErrors { field message } } }"""
REMOVE = """mutation($id: ID!, $tags: [String!]!) { tagsRemove(id: $id, tags: $tags) {
  node { ... on Customer { tags } } userErrors { field message } } }"""
CREATE = """mutation($name: String!, $query: String!) { segmentCreate(name: $name, query: $query) {
  segment { id name query creationDate lastEditDate } userErrors { field message } } }"""


def test_tags_add_keeps_other_tags_and_dedupes_case_insensitively(store: DevStore, gql: Gql) -> None:
    c = store.create_customer(SHOP, tags=["wholesale", "rfm:Loyal"])
    body = gql(ADD, {"id": c.gid, "tags": ["RFM:loyal", "rfm:champions", "a, b"]})
    assert body["data"]["tagsAdd"]["node"]["tags"] == ["wholesale", "rfm:Loyal", "rfm:champions", "a", "b"]


def test_tags_remove_keeps_other_tags(store: DevStore, gql: Gql) -> None:
    c = store.create_customer(SHOP, tags=["wholesale", "rfm:Loyal", "vip"])
    body = gql(REMOVE, {"id": c.gid, "tags": ["RFM:LOYAL", "not-there"]})
    assert body["data"]["tagsRemove"]["node"]["tags"] == ["wholesale", "vip"]
    assert store.shop(SHOP).customers[c.id].tags == ["wholesale", "vip"]


def test_tags_on_a_missing_customer_is_a_user_error(gql: Gql) -> None:
    body = gql(ADD, {"id": "gid://shopify/Customer/1", "tags": ["x"]})
    assert body["data"]["tagsAdd"]["node"] is None
    assert body["data"]["tagsAdd"]["userErrors"][0]["field"] == ["id"]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.text(alphabet="abAB:-", min_size=1, max_size=4), max_size=6),
    st.lists(st.text(alphabet="abAB:-", min_size=1, max_size=4), max_size=6),
)
def test_tags_add_never_loses_tags_nor_duplicates(existing: list[str], added: list[str]) -> None:
    store = DevStore(clock=FakeClock())
    store.create_shop(SHOP)
    c = store.create_customer(SHOP, tags=existing)
    before = list(c.tags)
    after = normalize_tags(before, added)
    assert after[: len(before)] == before
    assert len({t.lower() for t in after}) == len(after)
    assert {t.lower() for t in added} <= {t.lower() for t in after}


def test_segment_create_returns_the_segment(gql: Gql) -> None:
    body = gql(CREATE, {"name": "RFM: Champions", "query": "customer_tags CONTAINS 'rfm:champions'"})
    segment = body["data"]["segmentCreate"]["segment"]
    assert segment["id"].startswith("gid://shopify/Segment/")
    assert segment["query"] == "customer_tags CONTAINS 'rfm:champions'"


def test_segment_names_are_unique_per_shop(gql: Gql) -> None:
    gql(CREATE, {"name": "VIP", "query": "number_of_orders >= 5"})
    body = gql(CREATE, {"name": "vip", "query": "number_of_orders >= 2"})
    assert body["data"]["segmentCreate"] == {
        "segment": None,
        "userErrors": [{"field": ["name"], "message": "Name has already been taken"}],
    }


def test_invalid_segment_query_is_rejected(gql: Gql) -> None:
    body = gql(CREATE, {"name": "Bad", "query": "customer_tagz CONTAINS 'x'"})
    [error] = body["data"]["segmentCreate"]["userErrors"]
    assert error == {
        "field": ["query"],
        "message": "Line 1 Column 1: 'customer_tagz' filter cannot be found.",
    }


def test_unquoted_tag_value_is_rejected(gql: Gql) -> None:
    body = gql(CREATE, {"name": "Bad", "query": "customer_tags CONTAINS vip"})
    assert body["data"]["segmentCreate"]["userErrors"][0]["field"] == ["query"]


def test_more_than_ten_conditions_are_rejected(gql: Gql) -> None:
    query = " OR ".join(f"customer_tags CONTAINS 't{i}'" for i in range(11))
    body = gql(CREATE, {"name": "Too many", "query": query})
    assert "maximum of 10" in body["data"]["segmentCreate"]["userErrors"][0]["message"]
    ten = " OR ".join(f"customer_tags CONTAINS 't{i}'" for i in range(10))
    assert gql(CREATE, {"name": "Ten", "query": ten})["data"]["segmentCreate"]["userErrors"] == []


def test_metafield_condition_needs_a_filterable_definition(store: DevStore, gql: Gql) -> None:
    query = f"metafields.app--{store.app_id}.predicted_clv >= 100"
    assert gql(CREATE, {"name": "High CLV", "query": query})["data"]["segmentCreate"]["userErrors"]
    store.define_metafield(SHOP, "predicted_clv", "number_decimal")
    assert gql(CREATE, {"name": "High CLV", "query": query})["data"]["segmentCreate"]["userErrors"] == []


def test_segment_members_follow_tags_and_metafields(store: DevStore, gql: Gql) -> None:
    store.define_metafield(SHOP, "predicted_clv", "number_decimal")
    champion = store.create_customer(SHOP, tags=["rfm:champions"])
    rich = store.create_customer(SHOP)
    store.create_customer(SHOP, tags=["rfm:new"])
    store.shop(SHOP)  # members are evaluated from state, not from the API
    gql(
        "mutation($m: [MetafieldsSetInput!]!) { metafieldsSet(metafields: $m) { userErrors { message } } }",
        {"m": [{"ownerId": rich.gid, "key": "predicted_clv", "value": "250.00"}]},
    )
    body = gql(
        CREATE,
        {
            "name": "Best",
            "query": "customer_tags CONTAINS 'rfm:champions'"
            f" OR metafields.app--{store.app_id}.predicted_clv > 200",
        },
    )
    segment_id = body["data"]["segmentCreate"]["segment"]["id"]
    assert store.segment_member_ids(SHOP, segment_id) == {champion.gid, rich.gid}


def test_segment_update_and_delete(gql: Gql, store: DevStore) -> None:
    seg = gql(CREATE, {"name": "A", "query": "number_of_orders >= 1"})["data"]["segmentCreate"]["segment"]
    gql(CREATE, {"name": "B", "query": "number_of_orders >= 2"})
    clash = gql(
        'mutation($id: ID!) { segmentUpdate(id: $id, name: "B") { segment { id } userErrors { message } } }',
        {"id": seg["id"]},
    )
    assert clash["data"]["segmentUpdate"]["userErrors"] == [{"message": "Name has already been taken"}]
    renamed = gql(
        'mutation($id: ID!) { segmentUpdate(id: $id, name: "C", query: "amount_spent >= 100") {'
        " segment { name query } userErrors { message } } }",
        {"id": seg["id"]},
    )
    assert renamed["data"]["segmentUpdate"]["segment"] == {"name": "C", "query": "amount_spent >= 100"}
    deleted = gql(
        "mutation($id: ID!) { segmentDelete(id: $id) { deletedSegmentId userErrors { message } } }",
        {"id": seg["id"]},
    )
    assert deleted["data"]["segmentDelete"]["deletedSegmentId"] == seg["id"]
    listed = gql("{ segments(first: 10) { nodes { name } } }")["data"]["segments"]["nodes"]
    assert listed == [{"name": "B"}]
