"""The schema can be distributed by shop with Citus (docs/deployment.md, "Citus"), read from the
models: every table but the reference tables is keyed by ``(shop_id, …)``, every unique constraint
or index includes ``shop_id``, and every foreign key between distributed tables carries it. The
guide's distribution script names every table once, as the models class it."""

from __future__ import annotations

import re
from pathlib import Path

from sqlalchemy import Index, Table, UniqueConstraint

from app.models import Base

REFERENCE_TABLES = {
    # Looked up by domain (webhooks, installs, session tokens) before any shop_id is known, and
    # joined by the schedules that walk every shop: a copy on every node serves both.
    "shops": "one row per installed shop, unique by domain",
}
GUIDE = Path(__file__).resolve().parents[1] / "docs" / "deployment.md"


def distributed_tables() -> list[Table]:
    return [t for t in Base.metadata.sorted_tables if t.name not in REFERENCE_TABLES]


def test_the_reference_tables_exist() -> None:
    assert set(REFERENCE_TABLES) <= set(Base.metadata.tables)


def test_every_distributed_table_is_keyed_by_shop_first() -> None:
    wrong = {
        t.name: [c.name for c in t.primary_key.columns]
        for t in distributed_tables()
        if [c.name for c in t.primary_key.columns][:1] != ["shop_id"]
    }
    assert wrong == {}


def test_every_unique_constraint_and_index_includes_shop_id() -> None:
    missing = []
    for table in distributed_tables():
        uniques: list[UniqueConstraint | Index] = [
            c for c in table.constraints if isinstance(c, UniqueConstraint)
        ]
        uniques += [i for i in table.indexes if i.unique]
        missing += [(table.name, str(u.name)) for u in uniques if "shop_id" not in u.columns]
        missing += [(table.name, c.name) for c in table.columns if c.unique and c.name != "shop_id"]
    assert missing == []


def test_foreign_keys_between_distributed_tables_carry_shop_id() -> None:
    wrong = []
    for table in distributed_tables():
        for fk in table.foreign_key_constraints:
            target = fk.referred_table.name
            if target in REFERENCE_TABLES:
                continue
            pairs = {(e.parent.name, e.column.name) for e in fk.elements}
            if ("shop_id", "shop_id") not in pairs:
                wrong.append((table.name, target))
    assert wrong == []


def test_reference_tables_refer_to_no_distributed_table() -> None:
    # Citus refuses a foreign key from a reference table to a distributed table.
    wrong = [
        (name, fk.referred_table.name)
        for name in REFERENCE_TABLES
        for fk in Base.metadata.tables[name].foreign_key_constraints
        if fk.referred_table.name not in REFERENCE_TABLES
    ]
    assert wrong == []


def test_the_guide_distributes_every_table_as_the_models_class_it() -> None:
    script = GUIDE.read_text()
    distributed = re.findall(
        r"create_distributed_table\('(\w+)', 'shop_id'(?:, colocate_with => '(\w+)')?\)", script
    )
    reference = re.findall(r"create_reference_table\('(\w+)'\)", script)
    assert sorted(reference) == sorted(REFERENCE_TABLES)
    assert sorted(name for name, _ in distributed) == sorted(t.name for t in distributed_tables())
    # one colocation group: every table after the first is colocated with the first
    first = distributed[0][0]
    assert all(colocated == first for _, colocated in distributed[1:]), distributed
