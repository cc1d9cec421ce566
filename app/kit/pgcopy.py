"""Column arrays in and out of PostgreSQL in bulk, parsed and built with NumPy.

A rescore moves a few columns of every customer (and of every order) between the database and
NumPy. Row-by-row fetching costs about a microsecond per value in Python. Out: one bytea per column
(:func:`fetch_columns`; fixed-width types, no NULLs: queries COALESCE to a sentinel). In: binary
COPY rows that NumPy writes as a structured array (:func:`copy_in`), straight into the stored
table: fixed-width values, exact NUMERICs from floats (:func:`numeric`), text from a few labels
(:class:`Labels`) and NULLs (``float8?``: NaN, ``timestamptz?``: ``NULL_TIME``).
"""

from __future__ import annotations

import math
import queue
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Context, Decimal
from typing import Any, Final

import numpy as np
import numpy.typing as npt
from psycopg.copy import LibpqWriter
from sqlalchemy import Connection
from sqlalchemy.orm import Session

from app.kit.money import SUM_LIMIT

Column = tuple[str, str]
"""(name, PostgreSQL type): int2, int4, int8, float8, bool, timestamptz (µs since 2000-01-01);
for :func:`copy_in` also numeric(N) (floats stored as :func:`numeric` rounds them to N places),
text (:class:`Labels`) and
the nullable float8? (NaN is NULL) and timestamptz? (``NULL_TIME`` is NULL)."""

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


NUMERIC_DIGITS: Final = 7
"""Base-10,000 digits of every NUMERIC sent, the first worth 10,000^5 and the last 10^-4: all of
numeric(28, 4), the widest money column (app/kit/money.py). PostgreSQL strips the leading and trailing
zero digits on receipt."""
NUMERIC_WIRE: Final = np.dtype(
    [
        ("ndigits", ">i2"),
        ("weight", ">i2"),
        ("sign", ">u2"),
        ("dscale", ">i2"),
        ("digits", ">i2", (NUMERIC_DIGITS,)),
    ]
)
NUMERIC_LIMIT: Final = int(SUM_LIMIT)
"""numeric(28, 4) holds less than this."""
_WIDE: Final = Context(prec=40)
NOT_EXACT: Final = np.iinfo(np.int64).min


def money_units(values: npt.ArrayLike, places: int) -> npt.NDArray[np.int64]:
    """Each value in whole units of 10^-places where that is exactly what PostgreSQL's
    ``round(value::numeric, places)`` stores, else ``NOT_EXACT``: a value already rounded to
    ``places`` (the float nearest k·10^-places) below 10^(15 − places) prints with 15 significant
    digits as exactly k·10^-places."""
    floats = np.asarray(values, dtype=np.float64)
    scale = 10.0**places
    with np.errstate(invalid="ignore"):
        units = np.rint(floats * scale)
        exact = np.isfinite(floats) & (np.abs(floats) < 10.0 ** (15 - places)) & (units / scale == floats)
    result = np.where(exact, units, 0).astype(np.int64)
    result[~exact] = NOT_EXACT
    return result


def _rounded_units(value: float, places: int) -> int:
    """PostgreSQL's ``round(value::numeric, places)`` in units of 10^-4: the float printed with 15
    significant digits (its float8-to-numeric conversion), rounded half away from zero."""
    if not math.isfinite(value):
        raise ValueError(f"{value!r} is not an amount of money")
    printed = Decimal(format(value, ".15g"))
    if abs(printed) >= NUMERIC_LIMIT:
        raise ValueError(f"{value!r} does not fit numeric(28, 4)")
    rounded = printed.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP, context=_WIDE)
    if abs(rounded) >= NUMERIC_LIMIT:
        raise ValueError(f"{value!r} does not fit numeric(28, 4)")
    return int(rounded.scaleb(4, context=_WIDE))


def numeric(values: npt.ArrayLike, places: int) -> npt.NDArray[Any]:
    """The binary NUMERIC of each float rounded to ``places`` (at most 4) as PostgreSQL would store
    ``round(value::numeric, places)`` in a numeric(28, 4): exact integer arithmetic for the usual
    values (:func:`money_units`), PostgreSQL's own rules one by one for the rest. ValueError for a
    value that is not finite or does not fit (PostgreSQL would refuse it too)."""
    if not 0 <= places <= 4:
        raise ValueError(f"money keeps at most 4 decimal places, not {places}")
    floats = np.asarray(values, dtype=np.float64)
    units = money_units(floats, places)
    rare = np.flatnonzero(units == NOT_EXACT)
    units[rare] = 0
    units *= 10 ** (4 - places)  # below 10^15: no overflow
    wire = np.zeros(floats.size, dtype=NUMERIC_WIRE)
    wire["ndigits"] = NUMERIC_DIGITS
    wire["weight"] = NUMERIC_DIGITS - 2
    wire["dscale"] = 4
    wire["sign"] = np.where(units < 0, 0x4000, 0)
    magnitude = np.abs(units)
    digits = np.empty((floats.size, NUMERIC_DIGITS), dtype=np.int64)
    for i in range(NUMERIC_DIGITS - 1, -1, -1):
        digits[:, i] = magnitude % 10_000
        magnitude //= 10_000
    for position in rare.tolist():
        exact = _rounded_units(float(floats[position]), places)
        wire["sign"][position] = 0x4000 if exact < 0 else 0
        left = abs(exact)
        for i in range(NUMERIC_DIGITS - 1, -1, -1):
            left, digits[position, i] = divmod(left, 10_000)
    wire["digits"] = digits
    return wire


@dataclass(frozen=True, slots=True)
class Labels:
    """A text column given as codes into a few names (None: NULL)."""

    codes: npt.ArrayLike
    names: Sequence[str | None]


_NULLABLE: Final[dict[str, str]] = {"float8?": ">f8", "timestamptz?": ">i8"}
COPY_CHUNK: Final = 32_768


def _is_null(kind: str, values: npt.NDArray[Any]) -> npt.NDArray[np.bool_]:
    return np.isnan(values) if kind == "float8?" else values == NULL_TIME


def _label_codes(labels: Labels, part: slice | npt.NDArray[np.intp]) -> npt.NDArray[np.intp]:
    codes = np.asarray(labels.codes)[part].astype(np.intp)
    if codes.size and (int(codes.min()) < 0 or int(codes.max()) >= len(labels.names)):
        raise ValueError(f"a label code outside 0..{len(labels.names) - 1}")
    return codes


def _label_table(labels: Labels) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.intp]]:
    """Each label's field on the wire (length, UTF-8 bytes; padded to the longest) and its size."""
    encoded = [None if name is None else name.encode() for name in labels.names]
    width = 4 + max((len(e) for e in encoded if e is not None), default=0)
    table = np.zeros((len(encoded), width), dtype=np.uint8)
    sizes = np.empty(len(encoded), dtype=np.intp)
    for i, e in enumerate(encoded):
        table[i, :4] = np.frombuffer(np.array(-1 if e is None else len(e), dtype=">i4").tobytes(), np.uint8)
        if e is not None:
            table[i, 4 : 4 + len(e)] = np.frombuffer(e, np.uint8)
        sizes[i] = 4 + (0 if e is None else len(e))
    return table, sizes


class _SentAside(LibpqWriter):
    """Sends the COPY data from a thread of its own, so that NumPy builds the next chunk while the
    server takes in this one (its socket buffer alone holds a fraction of a chunk). At most
    ``depth`` chunks wait, so memory stays flat when the server is the slower side."""

    def __init__(self, cursor: Any, depth: int = 2) -> None:
        super().__init__(cursor)
        self._waiting: queue.Queue[bytes | None] = queue.Queue(maxsize=depth)
        self._sender: threading.Thread | None = None
        self._error: BaseException | None = None

    def _send(self) -> None:
        try:
            while (data := self._waiting.get()) is not None:
                LibpqWriter.write(self, data)
        except BaseException as error:  # handed to the caller's thread
            self._error = error
            while self._waiting.get() is not None:
                pass

    def write(self, data: Any) -> None:
        if self._error is not None:
            raise self._error
        if self._sender is None:
            self._sender = threading.Thread(target=self._send, name="copy-in", daemon=True)
            self._sender.start()
        self._waiting.put(bytes(data))

    def finish(self, exc: BaseException | None = None) -> None:
        if self._sender is not None:
            self._waiting.put(None)
            self._sender.join()
            self._sender = None
        if self._error is not None:
            raise self._error
        super().finish(exc)


def copy_in(
    session: Session,
    table: str,
    columns: Sequence[Column],
    arrays: Mapping[str, Any],
    selection: npt.NDArray[np.intp] | None = None,
) -> int:
    """COPY the arrays (one per column, same length) into ``table``; with ``selection``, only those
    positions. Built and sent in chunks, so memory stays flat.

    A chunk is one structured array, a record per row: the fixed-width fields first, then a slot as
    wide as the widest value for each variable one (text, or a value that may be NULL). Rows are
    contiguous on the wire, so the unused end of each slot is dropped with one boolean mask."""
    places = {name: int(kind[8:-1]) for name, kind in columns if kind.startswith("numeric(")}
    fixed = [(name, kind) for name, kind in columns if kind in _WIRE or name in places]
    variable = [(name, kind) for name, kind in columns if (name, kind) not in fixed]
    labels = {name: _label_table(arrays[name]) for name, kind in variable if kind == "text"}
    fields: list[tuple[Any, ...]] = [("_count", ">i2")]
    for i, (name, kind) in enumerate(fixed):
        fields += [(f"_len{i}", ">i4"), (name, NUMERIC_WIRE if name in places else _WIRE[kind])]
    for name, kind in variable:
        width = labels[name][0].shape[1] if kind == "text" else 4 + np.dtype(_NULLABLE[kind]).itemsize
        fields.append((name, np.uint8, (width,)))
    dtype = np.dtype(fields)
    prefix = dtype.fields[variable[0][0]][1] if variable else dtype.itemsize  # type: ignore[index]

    def values(name: str, part: slice | npt.NDArray[np.intp]) -> npt.NDArray[Any]:
        return np.asarray(arrays[name])[part]

    first = arrays[columns[0][0]]
    size = np.asarray(first.codes if isinstance(first, Labels) else first).shape[0]
    positions = np.arange(size) if selection is None else np.asarray(selection)
    names = ", ".join(name for name, _ in fixed + variable)
    with (
        _raw(session).cursor() as cursor,
        cursor.copy(f"COPY {table} ({names}) FROM STDIN (FORMAT BINARY)", writer=_SentAside(cursor)) as copy,
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
            for i, (name, kind) in enumerate(fixed):
                if name in places:  # built chunk by chunk: while the previous one is sent
                    rows[f"_len{i}"] = NUMERIC_WIRE.itemsize
                    rows[name] = numeric(values(name, part), places[name])
                else:
                    rows[f"_len{i}"] = np.dtype(_WIRE[kind]).itemsize
                    rows[name] = values(name, part)
            if not variable:
                copy.write(rows.tobytes())
                continue
            keep = np.ones((rows.size, dtype.itemsize), dtype=np.bool_)
            offset = prefix
            for name, kind in variable:
                if kind == "text":
                    wire, sizes = labels[name]
                    codes = _label_codes(arrays[name], part)
                    rows[name] = wire[codes]
                    used = sizes[codes]
                else:
                    raw = values(name, part)
                    null = _is_null(kind, raw)
                    slot = np.empty(rows.size, dtype=[("len", ">i4"), ("value", _NULLABLE[kind])])
                    slot["len"] = np.where(null, -1, np.dtype(_NULLABLE[kind]).itemsize)
                    slot["value"] = raw
                    rows[name] = slot.view(np.uint8).reshape(rows.size, -1)
                    used = np.where(null, 4, slot.itemsize)
                width = rows.dtype.fields[name][0].shape[0]  # type: ignore[index]
                keep[:, offset : offset + width] = np.arange(width) < used[:, None]
                offset += width
            copy.write(rows.view(np.uint8).reshape(rows.size, -1)[keep].tobytes())
        copy.write(_TRAILER)
    return int(positions.size)
