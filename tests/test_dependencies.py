"""Dependency floors, the lock file and the image that installs from it (docs/security.md).

Whether uv.lock is current with pyproject.toml is checked by `.ci/run`, which installs the tests'
environment from it (`uv sync --locked` refuses a lock that no longer matches)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]

# The first release past each published advisory that the app's code paths can reach.
FIXED_IN: dict[str, tuple[str, str]] = {
    "python-multipart": ("0.0.27", "CVE-2024-53981 (0.0.18), CVE-2026-24486 (0.0.22), CVE-2026-42561"),
    "jinja2": ("3.1.6", "CVE-2025-27516"),
    "cryptography": ("49.0.0", "CVE-2024-12797 (44.0.1), GHSA-537c-gmf6-5ccf"),
    "starlette": ("1.3.1", "CVE-2025-62727 (0.49.1), CVE-2026-48710 (1.0.1), CVE-2026-54283"),
    "pyjwt": ("2.13.0", "CVE-2024-53861 (2.10.0 only), CVE-2026-32597 (2.12.0), CVE-2026-48526"),
}


@pytest.fixture(scope="module")
def requirements() -> dict[str, Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return {canonicalize_name(r.name): r for r in map(Requirement, project["dependencies"])}


@pytest.fixture(scope="module")
def locked() -> dict[str, list[Version]]:
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    versions: dict[str, list[Version]] = {}
    for package in lock["package"]:
        if "version" in package and package.get("source", {}).get("registry"):
            versions.setdefault(canonicalize_name(package["name"]), []).append(Version(package["version"]))
    return versions


def _floor(requirement: Requirement) -> Version | None:
    floors = [Version(s.version) for s in requirement.specifier if s.operator in (">=", ">", "==")]
    return max(floors, default=None)


@pytest.mark.parametrize("package", sorted(FIXED_IN))
def test_floor_excludes_releases_with_advisories(package: str, requirements: dict[str, Requirement]) -> None:
    fixed, advisories = FIXED_IN[package]
    assert package in requirements, f"{package} needs a direct floor ({advisories})"
    floor = _floor(requirements[package])
    assert floor is not None and floor >= Version(fixed), f"{package} {requirements[package]}: {advisories}"


def test_lock_pins_every_production_dependency_within_its_floor(
    requirements: dict[str, Requirement], locked: dict[str, list[Version]]
) -> None:
    for name, requirement in requirements.items():
        assert name in locked, f"{name} is not in uv.lock: run `uv lock`"
        for version in locked[name]:
            assert requirement.specifier.contains(version, prereleases=True), (name, version)


@pytest.mark.parametrize("package", sorted(FIXED_IN))
def test_lock_pins_no_release_with_an_advisory(package: str, locked: dict[str, list[Version]]) -> None:
    assert all(v >= Version(FIXED_IN[package][0]) for v in locked[package]), locked[package]


def _uv_pin(text: str) -> str:
    pins = set(re.findall(r"uv==([0-9][0-9.]*)", text))
    assert len(pins) == 1, pins
    return pins.pop()


def test_image_installs_the_locked_hash_checked_dependencies() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    build_stage = dockerfile.split("\nFROM ", 2)[1]
    assert re.search(r"^COPY .*\buv\.lock\b", build_stage, re.M)
    assert "uv export --frozen --no-dev" in build_stage
    assert "pip install --require-hashes -r" in build_stage
    assert "pip install --no-deps ." in build_stage
    assert not re.search(r"pip install \.\s*$", build_stage, re.M), "resolves afresh instead of the lock"


def test_ci_installs_from_the_lock_with_the_uv_the_image_uses() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    assert re.search(r"^\.venv/bin/uv sync .*--locked", ci, re.M)
    assert not re.search(r"pip install .*-e ", ci), "resolves afresh instead of the lock"
    assert _uv_pin(ci) == _uv_pin((ROOT / "Dockerfile").read_text())
