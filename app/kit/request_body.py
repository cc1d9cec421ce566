"""Reading a request body with limits: its declared length checked before a byte is read, the bytes
actually read capped (a body may run past its Content-Length, or be chunked with none), and the
whole read given a deadline (a client that sends a byte now and then holds nothing for long).
Used by POST /webhooks and the settings form (docs/deployment.md: limits to set in front of the app).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from starlette.types import Receive

from app.kit.errors import BadRequest, PayloadTooLarge, RequestTimeout

CONTENT_LENGTH = b"content-length"
TRANSFER_ENCODING = b"transfer-encoding"


def declared_length(headers: Iterable[tuple[bytes, bytes]], limit: int) -> int | None:
    """The body's Content-Length, or None when it has none (chunked, or no body at all).

    400 when the header is malformed or given twice, 413 when it is over `limit`."""
    values = [value for name, value in headers if name == CONTENT_LENGTH]
    if not values:
        return None
    if len(values) > 1:
        raise BadRequest("header content-length appears more than once")
    if not values[0].isdigit():
        raise BadRequest("header content-length is not a number of bytes")
    length = int(values[0])
    if length > limit:
        raise PayloadTooLarge(f"content-length {length} is over the limit of {limit} bytes")
    return length


def is_chunked(headers: Iterable[tuple[bytes, bytes]]) -> bool:
    return any(name == TRANSFER_ENCODING for name, _ in headers)


async def read_body(receive: Receive, *, limit: int, declared: int | None, timeout: float) -> bytes:
    """The whole body, reading no more than `declared` (or `limit`) bytes plus one chunk, within
    `timeout` seconds in all."""
    most = declared if declared is not None else limit
    body = bytearray()
    try:
        async with asyncio.timeout(timeout):
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    raise BadRequest("the request body was cut off")
                body += message.get("body", b"")
                if len(body) > most:
                    if declared is not None:
                        raise BadRequest(f"the body is longer than its content-length ({declared} bytes)")
                    raise PayloadTooLarge(f"the body is over the limit of {limit} bytes")
                if not message.get("more_body", False):
                    return bytes(body)
    except TimeoutError:
        raise RequestTimeout(f"the request body did not arrive within {timeout:g} s") from None
