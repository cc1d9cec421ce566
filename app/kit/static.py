"""Static files under content-hashed names, cached for a year.

`url("admin.css")` is `/admin/static/admin.<hash>.css`, the hash the first 12 hex digits of the
file's SHA-256: a changed file gets a new URL, so a browser may keep every URL for good
(`Cache-Control: public, max-age=31536000, immutable`). A hashed name that is not the file's
current hash (a page rendered before a deploy) still gets the current file, but `no-cache`, so no
cache keeps the new content under the old name. Plain names keep working with `no-cache` (the
ETag revalidates them).
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Final

from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

IMMUTABLE: Final = "public, max-age=31536000, immutable"
REVALIDATE: Final = "no-cache"
_HASHED = re.compile(r"^(?P<stem>.+)\.(?P<digest>[0-9a-f]{12})(?P<suffix>\.[A-Za-z0-9]+)$")


class FingerprintedStatic(StaticFiles):
    """A `StaticFiles` app that serves `name.<hash>.ext` as `name.ext`; `url()` names a file."""

    def __init__(self, directory: Path, prefix: str) -> None:
        super().__init__(directory=directory)
        self.root = Path(directory)
        self.prefix = prefix.rstrip("/")
        self._digests: dict[str, tuple[float, int, str]] = {}

    def digest(self, name: str) -> str:
        """The file's content hash (re-read when its modification time or size changes)."""
        path = self.root / name
        stat = path.stat()
        known = self._digests.get(name)
        if known is not None and known[:2] == (stat.st_mtime, stat.st_size):
            return known[2]
        digest = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
        self._digests[name] = (stat.st_mtime, stat.st_size, digest)
        return digest

    def url(self, name: str) -> str:
        stem, dot, suffix = name.rpartition(".")
        if not dot:
            raise ValueError(f"static file without an extension: {name}")
        return f"{self.prefix}/{stem}.{self.digest(name)}.{suffix}"

    async def get_response(self, path: str, scope: Scope) -> Response:
        match = _HASHED.match(path)
        plain = f"{match['stem']}{match['suffix']}" if match else path
        response = await super().get_response(plain, scope)
        if response.status_code in (200, 304):
            current = match is not None and self._is_current(plain, match["digest"])
            response.headers["Cache-Control"] = IMMUTABLE if current else REVALIDATE
        return response

    def _is_current(self, name: str, digest: str) -> bool:
        try:
            return self.digest(name) == digest
        except OSError:
            return False
