"""Column arrays in and out of PostgreSQL in bulk, parsed and built with NumPy.

A rescore moves a few columns of every customer (and of every order) between the database and
NumPy. Row-by-row fetching costs about a microsecond per value in Python. Out: one bytea per column
(:func:`fetch_columns`). In: one binary COPY buffer that NumPy writes as a structured array
(:func:`copy_in`). Only fixed-width types and no NULLs: queries COALESCE to a sentinel.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

import numpy as np
import numpy.typing as npt
from sqlalchemy import Connection
from sqlalchemy.orm import Session

Column = tuple[str, str]
"""(name, PostgreSQL type): int2, int4, int8, float8, bool, timestamptz (µs since 2000-01-01)."""

_WIRE: Final[dict[str, str]] = {
    "int2": ">i2",
    "int4": ">i4",
    "int8": ">i8",
    "float8": ">f8",
    "bool": "u1",
    "timestamptz": ">i8",
}
_NATIVE: Final[dict[str, str]] = {
    "int2": "i2",
    "int4": "i4",
    "int8": "i8",
    "float8": "f8",
    "bool": "?",
    "timestamptz": "i8",
}
_SIGNATURE: Final = b"PGCOPY\n\xff\r\n\x00"
_HEADER: Final = _SIGNATURE + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
_TRAILER: Final = b"\xff\xff"

PG_EPOCH_US: Final = 946_684_800_000_000
"""2000-01-01 in µs since 1970-01-01: PostgreSQL's binary timestamps count from there."""
NULL_TIME: Final = np.iinfo(np.int64).min
"""A timestamptz of -infinity on the wire: the NULL stand-in for time columns."""


def _row_dtype(columns: Sequence[Column]) -> np.dtype[Any]:
    fields: list[tuple[str, str]] = [("_count", ">i2")]
    for i, (name, kind) in enumerate(columns):
        fields += [(f"_len{i}", ">i4"), (name, _WIRE[kind])]
    return np.dtype(fields)


def _raw(bind: Session | Connection) -> Any:
    connection = bind.connection() if isinstance(bind, Session) else bind
    return connection.connection.driver_connection


_SEND: Final[dict[str, str]] = {
    "int2": "int2send",
    "int4": "int4send",
    "int8": "int8send",
    "float8": "float8send",
    "bool": "boolsend",
    "timestamptz": "timestamptz_send",
}


def fetch_columns(
    session: Session | Connection, query: str, params: Mapping[str, Any], columns: Sequence[Column]
) -> dict[str, npt.NDArray[Any]]:
    """Run ``query`` (psycopg ``%(name)s`` parameters) and return one native array per column.

    Each column comes back as ONE bytea, ``string_agg`` of the values' binary send form, which
    ``np.frombuffer`` reads in place: a row-wise fetch (or COPY, one message per row) spends
    microseconds per row in Python, this spends them in PostgreSQL's C. Every value must be NOT
    NULL (string_agg would skip it and misalign the columns: COALESCE in the query) and of the
    declared type (cast in the query). All aggregates of one query see the rows in one order."""
    aliases = ", ".join(f"c{i}" for i in range(len(columns)))
    aggregates = ", ".join(
        f"string_agg({_SEND[kind]}(q.c{i}), ''::bytea)" for i, (_, kind) in enumerate(columns)
    )
    sql = f"SELECT count(*), {aggregates} FROM ({query}) AS q({aliases})"
    with _raw(session).cursor(binary=True) as cursor:
        cursor.execute(sql, params)
        fetched = cursor.fetchone()
    assert fetched is not None
    count = int(fetched[0])
    values = list(fetched[1:])
    del fetched
    result: dict[str, npt.NDArray[Any]] = {}
    for i, (name, kind) in enumerate(columns):
        data, values[i] = values[i], None  # each raw column is freed once converted (peak memory)
        array = np.frombuffer(data or b"", dtype=_WIRE[kind])
        if array.size != count:
            raise ValueError(f"column {name} has NULLs: {array.size} values for {count} rows")
        result[name] = array.astype(_NATIVE[kind])
    return result


COPY_CHUNK: Final = 65_536


def copy_in(
    session: Session,
    table: str,
    columns: Sequence[Column],
    arrays: Mapping[str, npt.ArrayLike],
    selection: npt.NDArray[np.intp] | None = None,
) -> int:
    """COPY the arrays (one per column, same length) into ``table`` (a temp table, usually); with
    ``selection``, only those positions. Built and sent in chunks, so memory stays flat."""
    dtype = _row_dtype(columns)
    first = np.asarray(arrays[columns[0][0]])
    positions = np.arange(first.size) if selection is None else np.asarray(selection)
    names = ", ".join(name for name, _ in columns)
    with (
        _raw(session).cursor() as cursor,
        cursor.copy(f"COPY {table} ({names}) FROM STDIN (FORMAT BINARY)") as copy,
    ):
        copy.write(_HEADER)
        for start in range(0, positions.size, COPY_CHUNK):
            stop = min(start + COPY_CHUNK, positions.size)
            # every position, in order (a shop's first scoring): slices, not gathers
            part: slice | npt.NDArray[np.intp] = (
                slice(start, stop) if selection is None else positions[start:stop]
            )
            rows = np.empty(stop - start, dtype=dtype)
            rows["_count"] = len(columns)
            for i, (name, kind) in enumerate(columns):
                rows[f"_len{i}"] = np.dtype(_WIRE[kind]).itemsize
                rows[name] = np.asarray(arrays[name])[part]
            copy.write(rows.tobytes())
        copy.write(_TRAILER)
    return int(positions.size)
