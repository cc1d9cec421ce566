"""Settings sit below the domains that read them: scoring, sync and the admin import settings, so
settings import none of them (nor does the vocabulary both use import anything of the app)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


def test_settings_import_no_domain_that_reads_them() -> None:
    readers = ("app.scoring", "app.sync", "app.admin", "app.worker", "app.jobs")
    imported = {m for path in (ROOT / "app" / "settings").glob("*.py") for m in _imports(path)}
    assert not {m for m in imported if m.startswith(readers)}


def test_the_vocabulary_imports_nothing_of_the_app() -> None:
    assert not {m for m in _imports(ROOT / "app" / "vocabulary.py") if m == "app" or m.startswith("app.")}
