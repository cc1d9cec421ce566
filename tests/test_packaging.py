"""Production installs without the `dev` extra: no module of the app outside the demo needs the
Shopify double or graphql-core (docs/deployment.md; the Docker image has neither)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

PROBE = textwrap.dedent(
    """
    import importlib, pkgutil, sys
    sys.modules["shopify_double"] = None  # importing either now raises ModuleNotFoundError
    sys.modules["graphql"] = None
    import app
    for info in pkgutil.walk_packages(app.__path__, "app."):
        if info.name == "app.demo" or info.name.startswith("app.demo."):
            continue
        importlib.import_module(info.name)
    from app.config import Settings
    from app.main import create_app
    create_app(Settings(app_env="test", database_url="sqlite://"))
    from app.cli import main
    sys.exit(main(["demo"]))
    """
)


def test_the_app_imports_and_starts_without_the_double() -> None:
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=120)
    # every module imported and the app was built; only the demo asks for the extra, plainly
    assert done.returncode == 2, done.stderr
    assert "pip install '.[dev]'" in done.stderr
    assert "Traceback" not in done.stderr
