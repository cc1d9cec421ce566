"""Responses are gzipped for browsers that accept it; static files have content-hashed names,
cached for a year, and the pages name them through `static_url`."""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.testclient import TestClient

from app.admin.rendering import STATIC_DIR, static_files
from app.kit.static import IMMUTABLE, REVALIDATE, FingerprintedStatic
from tests.admin.conftest import launch
from tests.admin.seed import SeededShop

ASSET = re.compile(r'(?:href|src)="(/admin/static/[^"]+)"')


def test_pages_and_the_csv_are_gzipped_when_the_browser_accepts_it(
    page: TestClient, seeded: SeededShop
) -> None:
    response = page.get(f"/app/cohorts?{launch()}", headers={"Accept-Encoding": "gzip"})
    assert response.status_code == 200
    assert response.headers["content-encoding"] == "gzip"
    assert int(response.headers["content-length"]) < len(response.content) / 4  # decoded by the client
    assert "</html>" in response.text

    plain = page.get(f"/app/cohorts?{launch()}", headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers and "</html>" in plain.text

    gzipped = {"Accept-Encoding": "gzip"}
    with page.stream("GET", f"/app/customers.csv?{launch()}", headers=gzipped) as response:
        assert response.headers["content-encoding"] == "gzip"
        raw = b"".join(response.iter_raw())
    assert gzip.decompress(raw).decode().startswith("customer_id,")


def test_every_asset_of_a_page_is_fingerprinted_and_cached_for_a_year(
    page: TestClient, seeded: SeededShop
) -> None:
    html = page.get(f"/app/status?{launch()}").text
    assets = ASSET.findall(html)
    names = {Path(a).name.split(".")[0] for a in assets}
    assert {"admin", "navigation", "status"} <= names
    for asset in assets:
        response = page.get(asset)
        assert response.status_code == 200, asset
        assert response.headers["cache-control"] == IMMUTABLE == "public, max-age=31536000, immutable"
        stem, digest, suffix = Path(asset).name.split(".")
        assert response.content == (STATIC_DIR / f"{stem}.{suffix}").read_bytes()
        assert digest == static_files.digest(f"{stem}.{suffix}")


def test_an_outdated_or_plain_name_is_served_but_not_cached_for_good(page: TestClient) -> None:
    old = page.get("/admin/static/admin.000000000000.css")
    plain = page.get("/admin/static/admin.css")
    assert old.status_code == plain.status_code == 200
    assert old.headers["cache-control"] == plain.headers["cache-control"] == REVALIDATE
    assert page.get("/admin/static/nothing.000000000000.css").status_code == 404


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "app.js").write_text("let a = 1;\n")
    return tmp_path


def test_a_changed_file_gets_a_new_url(folder: Path) -> None:
    static = FingerprintedStatic(folder, "/s")
    first = static.url("app.js")
    (folder / "app.js").write_text("let a = 2; // changed\n")
    second = static.url("app.js")
    assert first != second and re.fullmatch(r"/s/app\.[0-9a-f]{12}\.js", second)
    with TestClient(Starlette(routes=[Mount("/s", static)])) as client:
        assert client.get(second).headers["cache-control"] == IMMUTABLE
        assert client.get(first).headers["cache-control"] == REVALIDATE
        assert client.get(first).text == "let a = 2; // changed\n"
