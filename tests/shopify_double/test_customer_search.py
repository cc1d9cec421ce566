"""``customers(query:)`` for the text fields the app searches (the default search, first_name,
last_name, email), protected customer data refused as shopify.dev shows it, and a passing outage."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from shopify_double import DevStore, create_devstore_app
from shopify_double.customer_search import parse

from .conftest import SCOPES, SHOP, Gql

SEARCH = "query($q: String!) { customers(first: 50, query: $q) { nodes { id } } }"
NAMES = """query($ids: [ID!]!) { nodes(ids: $ids) { ... on Customer {
  id displayName defaultEmailAddress { emailAddress } } } }"""
NOT_APPROVED = "This app is not approved to access the Customer object."


@pytest.fixture
def people(store: DevStore) -> dict[str, str]:
    rows = [
        ("Ada", "Lovelace", "ada.lovelace@example.com"),
        ("Adam", "Smith", "adam@gmail.com"),
        ("Grace", "Hopper", "grace@navy.mil"),
        ("Seán", "O'Brien", "sean@example.ie"),
        (None, None, None),
    ]
    out = {}
    for first, last, email in rows:
        c = store.create_customer(SHOP, first_name=first, last_name=last, email=email)
        out[first or "nobody"] = c.gid
    return out


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("ada", {"Ada"}),  # a word of the name, any case
        ("ADA*", {"Ada", "Adam"}),  # a prefix query
        ("ada lovelace", {"Ada"}),  # AND between terms
        ("lovelace OR hopper", {"Ada", "Grace"}),
        ("-ada ad*", {"Adam"}),  # NOT
        ("gmail", {"Adam"}),  # the default search reads the email too
        ("email:gmail.com", {"Adam"}),  # email is tokenized
        ('email:"grace@navy.mil"', {"Grace"}),  # quoted: that address exactly
        ("email:*", {"Ada", "Adam", "Grace", "Seán"}),  # has an email
        ("first_name:grace", {"Grace"}),
        ("last_name:smi*", {"Adam"}),
        ("O\\'Brien*", {"Seán"}),  # an escaped quote
        ("seán", {"Seán"}),
        ("\\(x\\)\\:*", set()),  # escaped special characters are text
        ("zed", set()),
    ],
)
def test_the_customer_search_reads_names_and_emails_as_shopify_does(
    gql: Gql, people: dict[str, str], query: str, expected: set[str]
) -> None:
    body = gql(SEARCH, {"q": query})
    assert "errors" not in body
    found = {n["id"] for n in body["data"]["customers"]["nodes"]}
    assert found == {people[name] for name in expected}


def test_a_search_is_counted_like_it_is_listed(gql: Gql, people: dict[str, str]) -> None:
    body = gql('{ customersCount(query: "ad*") { count precision } }')
    assert body["data"]["customersCount"] == {"count": 2, "precision": "EXACT"}


def test_the_search_parser_keeps_connectives_quotes_and_escapes_apart() -> None:
    groups = parse("""a -b:"x y" OR c\\:d*""")
    assert [[(t.field, t.value, t.negated, t.prefix, t.quoted) for t in g] for g in groups] == [
        [(None, "a", False, False, False), ("b", "x y", True, False, True)],
        [(None, "c:d", False, True, False)],
    ]


def test_unapproved_name_and_email_fields_are_null_with_shopifys_error(
    store: DevStore, gql: Gql, people: dict[str, str]
) -> None:
    store.protected_customer_fields = {"email"}  # level 2 for email only
    body = gql(NAMES, {"ids": [people["Ada"]]})
    # displayName is String!: its null nulls the customer, as GraphQL does
    assert body["data"] == {"nodes": [None]}
    assert body["errors"][0]["message"].startswith(NOT_APPROVED)
    assert body["errors"][0]["path"] == ["nodes", 0, "displayName"]
    email_only = gql("query($id: ID!) { customer(id: $id) { id email phone } }", {"id": people["Ada"]})
    assert email_only["data"]["customer"] == {
        "id": people["Ada"],
        "email": "ada.lovelace@example.com",
        "phone": None,
    }
    assert [e["path"] for e in email_only["errors"]] == [["customer", "phone"]]


def test_without_level_1_the_customer_object_is_refused(
    store: DevStore, gql: Gql, people: dict[str, str]
) -> None:
    store.protected_customer_data = False
    for document, variables in ((SEARCH, {"q": "ada"}), (NAMES, {"ids": [people["Ada"]]})):
        body = gql(document, variables)
        assert body["data"] is None and body["errors"][0]["message"].startswith(NOT_APPROVED)


def test_a_passing_outage_answers_5xx_then_recovers(store: DevStore, people: dict[str, str]) -> None:
    token = store.issue_access_token(SHOP, SCOPES)
    store.fail_next(SHOP, 2, status=503)
    url = f"/shops/{SHOP}/admin/api/2026-10/graphql.json"
    with TestClient(create_devstore_app(store)) as http:
        statuses = [
            http.post(
                url,
                json={"query": SEARCH, "variables": {"q": "ada"}},
                headers={"X-Shopify-Access-Token": token},
            )
            for _ in range(3)
        ]
    assert [r.status_code for r in statuses] == [503, 503, 200]
    assert statuses[2].json()["data"]["customers"]["nodes"] == [{"id": people["Ada"]}]
