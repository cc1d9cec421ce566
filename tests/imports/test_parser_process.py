"""The history import's parser (``app.imports.lines``): the batches do not depend on how the file
arrives, the child process makes the batches the import's own process would, and however the
import stops (an unreadable line, a failed download, a dead parser, its time budget, a
cancellation) it fails as it did in one process and leaves no parser process behind."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from app.imports import lines, pull
from app.imports.schemas import latest_accepted_time
from app.kit.db import make_sessionmaker
from app.models import Order, OrderImport
from tests.fixtures.factories import create_shop

T = TypeVar("T")
T0 = datetime(2024, 5, 1, tzinfo=UTC)


def _node(n: int, *, customer: int | None = 1, updated: datetime = T0) -> dict[str, Any]:
    return {
        "id": f"gid://shopify/Order/{n}",
        "createdAt": "2024-05-01T00:00:00Z",
        "processedAt": "2024-05-01T00:00:00Z",
        "updatedAt": updated.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "cancelledAt": None,
        "test": False,
        "displayFinancialStatus": "PAID",
        "currentTotalPriceSet": {"shopMoney": {"amount": "12.50"}, "presentmentMoney": {"amount": "12.50"}},
        "currentTotalDiscountsSet": {"shopMoney": {"amount": "0.0"}},
        "discountCodes": [],
        "sourceName": "web",
        "customer": {"id": f"gid://shopify/Customer/{customer}"} if customer else None,
    }


def _line(node: dict[str, Any]) -> bytes:
    return json.dumps(node, separators=(",", ":")).encode() + b"\n"


def _file(orders: int) -> bytes:
    return b"".join(_line(_node(n, customer=n % 3 or None)) for n in range(1, orders + 1))


# A file with every kind of line: the fast shape, another field order (the slow path), an order met
# twice (the newer state wins), an empty line, a nested connection's child line, an order the ledger
# cannot read, and a last line without its newline.
MIXED = b"".join(
    [
        _line(_node(1)),
        json.dumps(dict(reversed(list(_node(2).items())))).encode() + b"\n",
        _line(_node(3)),
        _line(_node(1, updated=T0 + timedelta(hours=1))),
        b"\n",
        b'{"id":"gid://shopify/LineItem/9","__parentId":"gid://shopify/Order/3"}\n',
        _line(_node(4) | {"id": "gid://shopify/Order/0"}),
        _line(_node(5)),
        _line(_node(6)),
        _line(_node(7)).rstrip(b"\n"),
    ]
)


def _cut(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def _batches(chunks: Iterable[bytes], latest: str | None) -> list[lines.Parsed]:
    batcher = lines.Batcher(shop_id=7, start_line=10, start_byte=1000, batch_rows=2, latest=latest)
    out = [batch for chunk in chunks for batch in batcher.feed(chunk)]
    return [*out, batcher.finish()]


@pytest.mark.parametrize("latest", [None, latest_accepted_time()], ids=["rows", "copy-text"])
def test_the_batches_do_not_depend_on_how_the_file_is_cut(latest: str | None) -> None:
    whole = _batches([MIXED], latest)

    assert _batches(_cut(MIXED, 1), latest) == whole
    assert _batches(_cut(MIXED, 7), latest) == whole
    assert [b.done for b in whole] == [False, False, False, True]
    assert whole[-1].lines == 10 + 10 and whole[-1].pos == 1000 + len(MIXED)
    assert sum(b.orders for b in whole) == 7  # order 1 twice; not the empty, child or unreadable line
    assert [b.skipped for b in whole].count(()) == 3  # order 0 is reported, once


async def _aiter(chunks: Iterable[bytes]) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk


async def _all_from_process(chunks: Iterable[bytes], latest: str) -> list[lines.Parsed]:
    async with lines.parser_process(
        _aiter(chunks), shop_id=7, start_line=10, start_byte=1000, batch_rows=2, latest=latest
    ) as batches:
        return [batch async for batch in batches]


def test_the_parser_process_makes_the_batches_the_import_would_make_itself() -> None:
    latest = latest_accepted_time()
    before = _children()

    made = asyncio.run(_all_from_process(_cut(MIXED, 5), latest))

    assert made == _batches([MIXED], latest)
    assert made[1].ledger.rows == 2 and made[1].skipped == ()  # type: ignore[union-attr]
    assert _children() <= before


# -- through the import, on PostgreSQL --------------------------------------------------------------


def _children() -> set[int]:
    """This process's child processes now."""
    pids: set[int] = set()
    for task in Path(f"/proc/{os.getpid()}/task").iterdir():
        try:
            pids |= {int(p) for p in (task / "children").read_text().split()}
        except OSError:
            continue
    return pids


class Ingest:
    """An import in the `downloading` state of a new shop, and its ingest run on a byte stream."""

    def __init__(self, engine: Engine, session: Session) -> None:
        shop = create_shop(session)
        self.shop_id, self.run_id = shop.shop_id, str(uuid.uuid4())
        session.add(
            OrderImport(
                shop_id=self.shop_id,
                run_id=self.run_id,
                state="downloading",
                requested_at=T0,
                updated_at=T0,
                orders_done=0,
                lines_done=0,
                bytes_done=0,
                attempts=0,
            )
        )
        session.commit()
        self.factory = make_sessionmaker(engine)

    def run(self, chunks: AsyncIterator[bytes], **kwargs: Any) -> Awaitable[bool]:
        return pull.ingest_stream(self.factory, self.shop_id, self.run_id, chunks, batch_rows=2, **kwargs)

    def position(self) -> tuple[int, int, int]:
        """Lines committed, orders counted, rows in the ledger."""
        with self.factory() as s:
            row = s.get(OrderImport, self.shop_id)
            assert row is not None
            stored = s.scalar(select(func.count()).select_from(Order).where(Order.shop_id == self.shop_id))
            return row.lines_done, row.orders_done, stored or 0


@pytest.fixture
def ingest(engine: Engine, session: Session) -> Ingest:
    if engine.dialect.name != "postgresql":
        pytest.skip("the parser process is PostgreSQL's")
    return Ingest(engine, session)


def _fails(run: Callable[[], Awaitable[T]]) -> BaseException:
    async def go() -> BaseException:
        try:
            await run()
        except BaseException as exc:
            return exc
        raise AssertionError("the ingest did not fail")

    return asyncio.run(go())


def test_the_whole_file_goes_into_the_ledger_and_the_parser_is_gone(ingest: Ingest) -> None:
    before = _children()

    assert asyncio.run(ingest.run(_aiter(_cut(_file(9), 100)))) is True

    assert ingest.position() == (9, 9, 9)
    assert _children() <= before


def test_a_line_the_parser_cannot_read_fails_the_import_as_it_did_in_one_process(ingest: Ingest) -> None:
    data = _file(5) + b'{"id":"gid://shopify/Order/99",\n' + _file(2)
    before = _children()

    error = _fails(lambda: ingest.run(_aiter(_cut(data, 64))))

    assert isinstance(error, json.JSONDecodeError)  # what json.loads raises in this process
    assert any("parser process" in note for note in getattr(error, "__notes__", []))
    assert ingest.position() == (4, 4, 4)  # the batches before the line's own are committed
    assert _children() <= before


def test_a_failed_download_fails_the_import_with_its_own_error(ingest: Ingest) -> None:
    async def broken() -> AsyncIterator[bytes]:
        yield _file(3)
        raise httpx.ReadError("connection reset")

    before = _children()

    error = _fails(lambda: ingest.run(broken()))

    assert isinstance(error, httpx.ReadError)
    assert _children() <= before


def test_a_parser_process_that_dies_fails_the_import(ingest: Ingest) -> None:
    before = _children()

    async def killing() -> AsyncIterator[bytes]:
        yield _file(1)
        for pid in _children() - before:
            os.kill(pid, signal.SIGKILL)
        yield _file(6)

    error = _fails(lambda: ingest.run(killing()))

    assert isinstance(error, lines.ParserExited)
    assert _children() <= before


def test_a_cancelled_import_leaves_no_parser_process(ingest: Ingest) -> None:
    before = _children()
    started = asyncio.Event()

    async def stalled() -> AsyncIterator[bytes]:
        yield _file(3)
        started.set()
        await asyncio.Event().wait()  # the download hangs
        yield b""

    async def go() -> None:
        task = asyncio.create_task(ingest.run(stalled()))
        await started.wait()
        async with asyncio.timeout(60):
            while ingest.position()[0] < 2:  # the first batch is committed, the parser waits for more
                await asyncio.sleep(0.01)
        assert _children() - before
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(go())

    assert _children() <= before
    assert ingest.position() == (2, 2, 2)  # the batch it had finished is committed, no more


def test_a_step_out_of_time_stops_at_a_committed_batch_and_ends_the_parser(ingest: Ingest) -> None:
    before = _children()

    assert asyncio.run(ingest.run(_aiter([_file(9)]), deadline=0.0)) is False

    assert ingest.position() == (2, 2, 2)
    assert _children() <= before


def test_orders_the_ledger_cannot_read_are_logged_by_the_import(
    ingest: Ingest, caplog: pytest.LogCaptureFixture
) -> None:
    data = _file(2) + _line(_node(3) | {"currentTotalPriceSet": None})

    with caplog.at_level(logging.WARNING, logger=pull.log.name):
        assert asyncio.run(ingest.run(_aiter([data]))) is True

    assert ingest.position() == (3, 2, 2)
    assert [r.getMessage() for r in caplog.records if r.name == pull.log.name] == [
        "skipping an order the ledger cannot read (gid://shopify/Order/3): currentTotalPriceSet: is missing"
    ]
