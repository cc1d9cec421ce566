"""The outbound HTTP client (OAuth, token exchange, Admin API): one TLS context per process.

Building an ``httpx.AsyncClient`` loads the CA bundle into a new ``ssl.SSLContext`` each time
(about 25 ms of CPU); the context is immutable once made and safe to share between clients and
threads, so every client of the process reuses the one made on first use.
"""

from __future__ import annotations

import ssl
from functools import cache

import httpx


@cache
def tls_context() -> ssl.SSLContext:
    return httpx.create_ssl_context()


def outbound_client(timeout_s: float = 30.0, connect_timeout_s: float = 5.0) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        timeout=httpx.Timeout(timeout_s, connect=connect_timeout_s), verify=tls_context()
    )
