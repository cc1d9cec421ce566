"""A timestamp the app reads is ISO 8601 with a UTC offset, converts to UTC, and lies between 1970
and a day from now; one that does not (year 1 with a positive offset, 9999 with a negative one
overflow; 9999 would freeze the order, year 1 would stretch the shop's model fit) is a 422 naming
the field."""

from __future__ import annotations

from typing import Any

import pytest

from tests.bad_input.bodies import body, spoil
from tests.bad_input.conftest import Refuse, refuse_each

# (topic, where the timestamp is, the field the answer names, a field to null first so it is read)
TIMESTAMP_FIELDS: list[tuple[str, tuple[str, ...], str, tuple[str, ...] | None]] = [
    ("orders/create", ("processed_at",), "processed_at", None),
    ("orders/create", ("created_at",), "created_at", ("processed_at",)),
    ("orders/updated", ("updated_at",), "updated_at", None),
    ("orders/cancelled", ("cancelled_at",), "cancelled_at", None),
    ("refunds/create", ("created_at",), "created_at", None),
    ("orders/edited", ("order_edit", "committed_at"), "order_edit.committed_at", None),
    ("orders/edited", ("order_edit", "created_at"), "order_edit.created_at", ("order_edit", "committed_at")),
]
OVERFLOWING = ["0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-05:00", "0001-01-01T00:00:00+00:01"]
BAD_TIMESTAMPS: list[Any] = [
    *OVERFLOWING,
    "9999-12-31T23:59:59+00:00",  # would make every later delivery of the order look stale
    "2200-01-01T00:00:00Z",
    "1969-12-31T23:59:59Z",  # would stretch the shop's model fit
    "0001-01-01T00:00:00Z",
    "2026-01-10T12:00:00",
    "yesterday",
    "2026-02-30T00:00:00Z",
    "",
    1767225600,
    True,
    ["2026-01-10T12:00:00Z"],
]


def _with_timestamp(topic: str, path: tuple[str, ...], null_first: tuple[str, ...] | None, value: Any) -> Any:
    payload = body(topic)
    if null_first is not None:
        payload = spoil(payload, null_first, None)
    return spoil(payload, path, value)


def _field_ids(v: Any) -> str:
    return v if isinstance(v, str) else ""


@pytest.mark.parametrize("topic, path, field, null_first", TIMESTAMP_FIELDS, ids=_field_ids)
def test_bad_timestamp_is_a_422_naming_the_field(
    refused: Refuse, topic: str, path: tuple[str, ...], field: str, null_first: Any
) -> None:
    payloads = {repr(v): _with_timestamp(topic, path, null_first, v) for v in BAD_TIMESTAMPS}
    refuse_each(refused, topic, payloads, field=field)


@pytest.mark.both_dbs
@pytest.mark.parametrize(
    "topic, path, field, null_first", [TIMESTAMP_FIELDS[0], TIMESTAMP_FIELDS[4]], ids=_field_ids
)
def test_timestamp_overflowing_utc_is_refused_on_both_databases(
    refused: Refuse, topic: str, path: tuple[str, ...], field: str, null_first: Any
) -> None:
    payloads = {v: _with_timestamp(topic, path, null_first, v) for v in OVERFLOWING}
    refuse_each(refused, topic, payloads, field=field)
