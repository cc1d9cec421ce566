"""Protected customer data: what Shopify answers an app that is not approved for it
(https://shopify.dev/docs/apps/launch/protected-customer-data, "Using protected customer data").

Level 1 is customer data without name, address, phone and email; level 2 adds those fields, each
approved on its own. A GraphQL request for an unapproved field gets HTTP 200, the field ``null`` and
an error in ``errors``: "This app is not approved to access the Customer object. See
https://partners.shopify.com/…/customer_data for more details." with the field's ``path`` (the page's
example answer). A non-null field (``Customer.displayName: String!``) is nulled the GraphQL way: its
parent becomes ``null`` (the customer in a ``nodes`` list). An app without level 1 gets the same
error for the customer fields of the query root.

The double approves everything by default (a development store, where Shopify needs no review);
tests take approval away with ``DevStore.protected_customer_data`` (level 1) and
``DevStore.protected_customer_fields`` (``name``, ``email``, ``phone``, ``address``).
"""

from __future__ import annotations

from typing import Any

from graphql import GraphQLError, GraphQLResolveInfo

from shopify_double.graphql_api import RESOLVERS, JsonDict, RequestContext

PROTECTED_FIELDS: dict[str, str] = {
    "displayName": "name",
    "firstName": "name",
    "lastName": "name",
    "email": "email",
    "defaultEmailAddress": "email",
    "validEmailAddress": "email",
    "verifiedEmail": "email",
    "phone": "phone",
    "defaultPhoneNumber": "phone",
    "defaultAddress": "address",
    "addresses": "address",
    "addressesV2": "address",
}


def not_approved(ctx: RequestContext) -> GraphQLError:
    return GraphQLError(
        "This app is not approved to access the Customer object. See "
        f"https://partners.shopify.com/1/apps/{ctx.store.app_id}/customer_data for more details."
    )


def require_customer_data(info: GraphQLResolveInfo) -> None:
    """Level 1: any customer at all."""
    ctx: RequestContext = info.context
    if not ctx.store.protected_customer_data:
        raise not_approved(ctx)


def _protected(field_name: str, kind: str) -> Any:
    def resolve(src: JsonDict, info: GraphQLResolveInfo, **_: Any) -> Any:
        ctx: RequestContext = info.context
        if not ctx.store.protected_customer_data or kind not in ctx.store.protected_customer_fields:
            raise not_approved(ctx)
        return src.get(field_name)

    return resolve


for _name, _kind in PROTECTED_FIELDS.items():
    RESOLVERS[("Customer", _name)] = _protected(_name, _kind)
