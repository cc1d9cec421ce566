"""What to send for one customer: the difference between what Shopify should hold
(``desired.desired_state``) and what the app last wrote there (its sync state, the record of the
tags it wrote: the only tags it ever removes). Pure."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from app.sync.desired import METAFIELD_TYPES, TagPrefixes, desired_state, removable, tag_changes
from app.sync.repository import Due, Written


def customer_gid(customer_id: int) -> str:
    return f"gid://shopify/Customer/{customer_id}"


@dataclass
class Plan:
    customer_id: int
    score_hash: int | None
    """None: the customer's scores are gone, so are the app's metafields and tags."""
    generation: int
    written: Written
    assign: dict[str, str]
    delete: list[str]
    add: list[str]
    remove: list[str]
    metafields: dict[str, str]
    """The app's metafields once the plan is done."""
    tags: frozenset[str]
    """The app's tags once the plan is done."""
    # outcome, filled while the plan is carried out
    set_done: set[str] = field(default_factory=set)
    digests: dict[str, str] = field(default_factory=dict)
    deleted: bool = False
    added: bool = False
    removed: bool = False
    errors: list[str] = field(default_factory=list)

    @property
    def gid(self) -> str:
        return customer_gid(self.customer_id)

    @property
    def empty(self) -> bool:
        return not (self.assign or self.delete or self.add or self.remove)

    def metafield_inputs(self) -> list[dict[str, Any]]:
        out = []
        for key, value in sorted(self.assign.items()):
            item: dict[str, Any] = {
                "ownerId": self.gid,
                "key": key,
                "value": value,
                "type": METAFIELD_TYPES[key],
            }
            digest = self.written.digests.get(key)
            if digest is not None and key in self.written.metafields:
                item["compareDigest"] = digest  # compare-and-set against what we wrote last time
            out.append(item)
        return out

    def delete_inputs(self) -> list[dict[str, str]]:
        return [{"ownerId": self.gid, "namespace": "$app", "key": k} for k in sorted(self.delete)]

    @property
    def complete(self) -> bool:
        return (
            not self.errors
            and self.set_done >= set(self.assign)
            and (self.deleted or not self.delete)
            and (self.added or not self.add)
            and (self.removed or not self.remove)
        )

    def outcome(self) -> tuple[dict[str, str], dict[str, str], frozenset[str]]:
        """(metafields, digests, tags) Shopify holds after what succeeded."""
        metafields = dict(self.written.metafields)
        digests = dict(self.written.digests)
        for key in self.set_done:
            metafields[key] = self.assign[key]
            if key in self.digests:
                digests[key] = self.digests[key]
            else:
                digests.pop(key, None)
        if self.deleted:
            for key in self.delete:
                metafields.pop(key, None)
                digests.pop(key, None)
        tags = {t.lower(): t for t in self.written.tags}
        if self.removed:
            for t in self.remove:
                tags.pop(t.lower(), None)
        if self.added:
            tags |= {t.lower(): t for t in self.add}
        return metafields, digests, frozenset(tags.values())

    # -- carried across steps of a bulk mutation --------------------------------------------------
    def to_json(self) -> str:
        return json.dumps(
            {
                "h": self.score_hash,
                "g": self.generation,
                "w": [
                    self.written.synced_hash,
                    self.written.prefix_generation,
                    self.written.metafields,
                    self.written.digests,
                    list(self.written.tags),
                    self.written.error_hash,
                    self.written.error_attempts,
                ],
                "set": self.assign,
                "del": self.delete,
                "add": self.add,
                "rm": self.remove,
                "mf": self.metafields,
                "tags": sorted(self.tags),
                "done": sorted(self.set_done),
                "dig": self.digests,
                "x": [self.deleted, self.added, self.removed],
                "err": self.errors,
            },
            separators=(",", ":"),
        )

    @staticmethod
    def from_json(customer_id: int, text: str) -> Plan:
        d = json.loads(text)
        w = d["w"]
        plan = Plan(
            customer_id,
            d["h"],
            d["g"],
            Written(w[0], w[1], w[2], w[3], tuple(w[4]), w[5], w[6]),
            d["set"],
            d["del"],
            d["add"],
            d["rm"],
            d["mf"],
            frozenset(d["tags"]),
        )
        plan.set_done, plan.digests = set(d["done"]), d["dig"]
        plan.deleted, plan.added, plan.removed = d["x"]
        plan.errors = d["err"]
        return plan


def plan_for(due: Due, prefixes: TagPrefixes, former: tuple[str, ...], generation: int) -> Plan:
    written = due.written
    app_prefixes = (*prefixes.all(), *former)
    if due.values is None:
        return Plan(
            due.customer_id,
            None,
            generation,
            written,
            {},
            sorted(written.metafields),
            [],
            removable(written.tags, written.tags, app_prefixes),
            {},
            frozenset(),
        )
    desired = desired_state(due.values, prefixes)
    to_set = {k: v for k, v in desired.metafields.items() if written.metafields.get(k) != v}
    to_delete = sorted(k for k in written.metafields if k not in desired.metafields)
    add, remove = tag_changes(written.tags, desired.tags, app_prefixes)
    return Plan(
        due.customer_id,
        due.score_hash,
        generation,
        written,
        to_set,
        to_delete,
        add,
        remove,
        dict(desired.metafields),
        desired.tags,
    )
