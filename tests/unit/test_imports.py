"""The package's import structure, read from its source: no cycle, and one module that changes ultralytics."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import ultralytics_triplet

pytestmark = pytest.mark.newest_only  # reads this package's source: nothing of ultralytics

PACKAGE = Path(ultralytics_triplet.__file__).parent
NAME = ultralytics_triplet.__name__


def module_name(path: Path) -> str:
    """``ultralytics_triplet.study.plan`` for ``.../ultralytics_triplet/study/plan.py``."""
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports(name: str) -> set[str]:
    """The package modules ``name`` imports anywhere in its source (function-level imports included)."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([node.module] if node.module else []))
            # `from pkg import sub` imports the submodule when there is one, else names of pkg itself
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names]
        else:
            continue
        for target in targets:
            while target and target not in MODULES:  # `import a.b.c` of a package module: the longest known prefix
                target = target.rpartition(".")[0]
            if target.startswith(NAME) and target != name:
                found.add(target)
    return found


GRAPH = {name: imports(name) for name in MODULES}


def find_cycle() -> list[str] | None:
    """One import cycle among the package's modules, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        path.append(m)
        for n in sorted(GRAPH[m]):
            if state.get(n) == 1:
                return path[path.index(n):] + [n]
            if n not in state:
                cycle = visit(n)
                if cycle:
                    return cycle
        path.pop()
        state[m] = 2
        return None

    for m in sorted(GRAPH):
        if m not in state:
            cycle = visit(m)
            if cycle:
                return cycle
    return None


def test_the_reader_sees_every_module_and_its_imports():
    assert f"{NAME}.integration" in MODULES and f"{NAME}.study.plan" in MODULES
    assert f"{NAME}._compat" in GRAPH[f"{NAME}.integration"]  # a top-level relative import
    assert f"{NAME}.weights" in GRAPH[f"{NAME}.integration"]  # an import inside a function
    assert f"{NAME}.placements" in GRAPH[f"{NAME}.study.variants"]  # two dots up


def test_no_import_cycle_among_the_package_modules_lazy_imports_included():
    assert find_cycle() is None, " -> ".join(find_cycle())


def test_only_the_start_up_hook_enters_the_module_that_patches_ultralytics():
    """Library modules never patch: they ask _compat.require_patched(); register() is the public way in."""
    importers = sorted(m for m, targets in GRAPH.items() if f"{NAME}.integration" in targets)
    assert importers == [f"{NAME}._startup"]
    assert ultralytics_triplet._LAZY["register"] == "integration"  # the public register(), imported on first use
