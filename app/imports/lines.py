"""The bulk file's bytes → batches of ledger rows, and the process that makes them beside the import.

A batch holds the newest state of each of up to `batch_rows` distinct orders, with the position in
the file after its last line (line number and byte offset): `app.imports.pull` commits the batch's
rows together with that position, so a restart resumes there.

On PostgreSQL the batches are made in a child process, ``python -m app.imports.lines``: the parse is
Python CPU work that holds the GIL (about 7 µs a line, docs/benchmarks.md "History import"), the
database's write of a batch about as much again, so in one process the two took turns. The import
writes the file's bytes to the child's stdin as they are downloaded and reads finished batches from
its stdout; the child parses batch n+1 while the database writes batch n. A batch travels as one
frame (its length, then a pickle of a :class:`Parsed` whose rows are already the ledger's COPY text,
`LedgerText`), so the import does no work per line. The pipes bound the memory: the child waits to
write a batch until the import reads it, the download waits until the child reads. An error while
parsing is sent back as the exception itself and raised by the import as it was in the child; the
import ends the child (SIGKILL, then waits for it) however it stops: done, out of its time budget,
failed or cancelled. This module imports only the parsing rules (`app.imports.schemas`, the
standard library beneath), so the child starts in tens of milliseconds; pyproject.toml's import
contract "imports-lines-light" keeps it so.

SQLite (one process, local use) makes the same batches in the import's own process, as ledger rows.
"""

from __future__ import annotations

import asyncio
import json
import os
import pickle
import signal
import struct
import sys
import traceback
from collections.abc import AsyncGenerator, AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from app.imports.schemas import (
    LedgerLine,
    LedgerRow,
    LedgerText,
    copy_text,
    fast_ledger_line,
    ledger_row,
    order_facts_from_node,
)
from app.orders.schemas import PayloadError

READ_SIZE = 1 << 20  # bytes the child reads from its stdin at once (a pipe hands over up to 64 KiB)
_FRAME = struct.Struct("<Q")  # a frame's length, then its pickle


@dataclass(frozen=True)
class Parsed:
    """A batch ready to commit. ``ledger``: COPY text (PostgreSQL) or ledger rows (SQLite), one per
    order id; ``orders``: the order lines it was made of (an order met twice counts twice, as in the
    file); ``newest``: the largest ``updated_key`` seen; ``lines`` and ``pos``: the file position
    after its last line; ``done``: the file ended with it; ``skipped``: (order id, reason) of the
    orders the ledger cannot read."""

    ledger: LedgerText | list[LedgerRow]
    orders: int
    newest: tuple[str, int] | None
    lines: int
    pos: int
    done: bool
    skipped: tuple[tuple[str, str], ...] = ()

    @property
    def max_updated(self) -> datetime | None:
        if self.newest is None:
            return None
        return datetime.fromisoformat(self.newest[0]).replace(tzinfo=UTC, microsecond=self.newest[1])


@dataclass
class _Open:
    """The batch being filled: ledger rows (SQLite) or, on PostgreSQL, COPY text lines."""

    rows: dict[int, LedgerRow] = field(default_factory=dict)
    lines: dict[int, LedgerLine] = field(default_factory=dict)
    orders: int = 0
    newest: tuple[str, int] | None = None
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.rows) + len(self.lines)


def _updated_key(moment: datetime) -> tuple[str, int]:
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S"), utc.microsecond


class Batcher:
    """Cuts the file's bytes into lines and the lines into batches. ``latest`` (PostgreSQL only):
    the latest accepted timestamp (`app.imports.schemas.latest_accepted_time`); with it the batches
    are COPY text for `shop_id`, without it ledger rows."""

    def __init__(
        self, *, shop_id: int, start_line: int, start_byte: int, batch_rows: int, latest: str | None
    ) -> None:
        self.shop_id = shop_id
        self.lines, self.pos = start_line, start_byte
        self.batch_rows = batch_rows
        self.latest = latest
        self._tail = b""
        self._open = _Open()

    def feed(self, chunk: bytes) -> Iterator[Parsed]:
        """Take the next bytes of the file; yields each batch they complete as soon as it is
        complete (a line that fails to parse after it does not take it down too)."""
        parts = (self._tail + chunk).split(b"\n")
        self._tail = parts.pop()
        batch, latest, limit = self._open, self.latest, self.batch_rows
        lines, pos = self.lines, self.pos
        for line in parts:
            lines += 1
            pos += len(line) + 1
            _parse_line(line, batch, latest)
            if len(batch) >= limit:
                self.lines, self.pos, self._open = lines, pos, _Open()
                yield self._close(batch, lines, pos, False)
                batch = self._open
        self.lines, self.pos = lines, pos

    def finish(self) -> Parsed:
        """The file ended: the last batch (maybe empty), marked done."""
        if self._tail.strip():
            self.lines += 1
            self.pos += len(self._tail)
            _parse_line(self._tail, self._open, self.latest)
        self._tail = b""
        return self._close(self._open, self.lines, self.pos, True)

    def _close(self, batch: _Open, lines: int, pos: int, done: bool) -> Parsed:
        ledger: LedgerText | list[LedgerRow]
        if self.latest is not None:
            ledger = LedgerText.of(self.shop_id, [(o, batch.lines[o].text) for o in sorted(batch.lines)])
        else:
            ledger = list(batch.rows.values())
        return Parsed(ledger, batch.orders, batch.newest, lines, pos, done, tuple(batch.skipped))


def _parse_line(line: bytes, batch: _Open, latest: str | None) -> None:
    """Add one line of the bulk file to the batch."""
    if latest is not None:
        fast = fast_ledger_line(line, latest)
        if fast is not None:
            _add_line(batch, fast)
            return
    if not line.strip():
        return
    obj = json.loads(line)
    if "__parentId" in obj:  # a nested connection's child line; the ledger keeps only orders
        return
    try:
        facts = order_facts_from_node(obj)
    except PayloadError as exc:
        batch.skipped.append((str(obj.get("id")), str(exc)))
        return
    row = ledger_row(facts)
    if latest is not None:
        _add_line(batch, LedgerLine(facts.order_id, _updated_key(facts.updated_at), copy_text(row)))
        return
    batch.orders += 1
    seen = batch.rows.get(facts.order_id)
    if seen is None or seen[3] < facts.updated_at:
        batch.rows[facts.order_id] = row
    key = _updated_key(facts.updated_at)
    if batch.newest is None or key > batch.newest:
        batch.newest = key


def _add_line(batch: _Open, line: LedgerLine) -> None:
    batch.orders += 1
    seen = batch.lines.get(line.order_id)
    if seen is None or seen.updated_key < line.updated_key:
        batch.lines[line.order_id] = line
    if batch.newest is None or line.updated_key > batch.newest:
        batch.newest = line.updated_key


async def parse_in_process(
    chunks: AsyncIterator[bytes], *, shop_id: int, start_line: int, start_byte: int, batch_rows: int
) -> AsyncGenerator[Parsed, None]:
    """The batches of the file, made in this process as ledger rows (SQLite)."""
    batcher = Batcher(
        shop_id=shop_id, start_line=start_line, start_byte=start_byte, batch_rows=batch_rows, latest=None
    )
    async for chunk in chunks:
        for batch in batcher.feed(chunk):
            yield batch
    yield batcher.finish()


# -- the child process --------------------------------------------------------------------------


class ParserExited(RuntimeError):
    """The parser process ended without its batch or its error (killed, out of memory...)."""


@dataclass(frozen=True)
class _Failure:
    error: BaseException
    trace: str


@asynccontextmanager
async def parser_process(
    chunks: AsyncIterator[bytes],
    *,
    shop_id: int,
    start_line: int,
    start_byte: int,
    batch_rows: int,
    latest: str,
) -> AsyncIterator[AsyncIterator[Parsed]]:
    """Start the parser process, feed it `chunks` and give its batches as COPY text (PostgreSQL),
    the last one ``done``. On leaving, the process is ended and waited for."""
    root = str(Path(__file__).resolve().parents[2])  # where `app` is, for `-m`
    path = os.environ.get("PYTHONPATH")
    args = (str(shop_id), str(start_line), str(start_byte), str(batch_rows), latest)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        __name__,
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": root + (os.pathsep + path if path else "")},
        limit=READ_SIZE,
    )
    feeder = asyncio.create_task(_feed(chunks, proc))
    try:
        yield _batches(proc, feeder)
    finally:
        feeder.cancel()
        if proc.returncode is None:
            proc.kill()
        await asyncio.gather(feeder, return_exceptions=True)
        await proc.wait()


async def _feed(chunks: AsyncIterator[bytes], proc: asyncio.subprocess.Process) -> None:
    stdin = proc.stdin
    assert stdin is not None
    try:
        async for chunk in chunks:
            stdin.write(chunk)
            await stdin.drain()
        stdin.close()
        await stdin.wait_closed()
    except (BrokenPipeError, ConnectionResetError):
        pass  # the child stopped reading: its error, or its exit, is what the batches report


async def _batches(proc: asyncio.subprocess.Process, feeder: asyncio.Task[None]) -> AsyncIterator[Parsed]:
    while True:
        read = asyncio.ensure_future(_read_frame(proc))
        try:
            while not read.done():
                waiting: set[asyncio.Future[Any]] = {read} if feeder.done() else {read, feeder}
                await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
                failed = feeder.exception() if feeder.done() and not feeder.cancelled() else None
                if failed is not None:  # the download failed: the import fails as it did in-process
                    raise failed
        finally:
            if not read.done():
                read.cancel()
        batch = read.result()
        yield batch
        if batch.done:
            return


async def _read_frame(proc: asyncio.subprocess.Process) -> Parsed:
    stdout = proc.stdout
    assert stdout is not None
    try:
        (size,) = _FRAME.unpack(await stdout.readexactly(_FRAME.size))
        message = pickle.loads(await stdout.readexactly(size))
    except asyncio.IncompleteReadError:
        code = await proc.wait()
        raise ParserExited(f"the import's parser process exited with code {code}") from None
    if isinstance(message, _Failure):
        message.error.add_note(f"raised in the import's parser process:\n{message.trace}")
        raise message.error
    assert isinstance(message, Parsed)
    return message


def _send(out: BinaryIO, message: Parsed | _Failure) -> None:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    out.write(_FRAME.pack(len(data)))
    out.write(data)
    out.flush()


def _failure(error: Exception) -> _Failure:
    trace = traceback.format_exc()
    try:
        pickle.dumps(error)
    except Exception:
        return _Failure(RuntimeError(f"{type(error).__name__}: {error}"), trace)
    return _Failure(error, trace)


def main(argv: list[str]) -> int:
    """The child: arguments shop id, start line, start byte, batch rows, latest accepted time; the
    file's bytes on stdin, frames on stdout."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the import decides when its parser stops
    shop_id, start_line, start_byte, batch_rows = (int(a) for a in argv[:4])
    batcher = Batcher(
        shop_id=shop_id, start_line=start_line, start_byte=start_byte, batch_rows=batch_rows, latest=argv[4]
    )
    stdout = sys.stdout.buffer
    try:
        last = _parse_all(batcher, sys.stdin.fileno(), stdout)
        _send(stdout, last)
    except BrokenPipeError:  # the import went away: nothing is left to say, not even at exit
        os.dup2(os.open(os.devnull, os.O_WRONLY), stdout.fileno())
        return 1
    return 1 if isinstance(last, _Failure) else 0


def _parse_all(batcher: Batcher, stdin: int, stdout: BinaryIO) -> Parsed | _Failure:
    """Send every full batch; return the last one, or the error that stopped the parse."""
    try:
        while chunk := os.read(stdin, READ_SIZE):
            for batch in batcher.feed(chunk):
                _send(stdout, batch)
        return batcher.finish()
    except BrokenPipeError:
        raise
    except Exception as exc:
        return _failure(exc)


if __name__ == "__main__":
    # run under the module's own name: what it pickles is `app.imports.lines.Parsed`, not `__main__.Parsed`
    from app.imports.lines import main as run

    sys.exit(run(sys.argv[1:]))
