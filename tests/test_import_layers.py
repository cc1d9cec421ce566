"""No import cycle between the packages of `app` (docs/architecture.md, "Layers"); the layers
themselves are the `[tool.importlinter]` contracts in pyproject.toml, checked by `lint-imports`."""

from __future__ import annotations

import grimp


def package_cycles(root: str) -> list[tuple[str, ...]]:
    """Cycles among the direct subpackages/modules of `root` (import-linter's graph library)."""
    graph = grimp.build_graph(root)
    top = sorted(m for m in graph.find_children(root))
    edges: dict[str, set[str]] = {package: set() for package in top}
    for package in top:
        for other in top:
            if package != other and graph.direct_import_exists(
                importer=package, imported=other, as_packages=True
            ):
                edges[package].add(other)
    cycles: list[tuple[str, ...]] = []
    for start in top:
        stack: list[tuple[str, tuple[str, ...]]] = [(start, (start,))]
        while stack:
            node, path = stack.pop()
            for nxt in edges[node]:
                if nxt == start and min(path) == start:
                    cycles.append(path)
                elif nxt not in path and nxt > start:
                    stack.append((nxt, (*path, nxt)))
    return cycles


def test_no_import_cycle_between_the_packages_of_app() -> None:
    assert package_cycles("app") == []
