"""The house shows its layers: no import circle anywhere (imports inside functions count), the engine never
imports the workflow helpers or the command line, and ui/ and processing_provider/ do not import each other."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("inference", "processing_provider", "ui", "training")
ROOT_MODULES = ("support", "plugin")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    found = {_module_name(p): p for package in PACKAGES for p in (REPO / package).rglob("*.py")}
    found.update({name: REPO / f"{name}.py" for name in ROOT_MODULES})
    return found


def _resolve(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    if not node.level:
        name = node.module or ""
        return name[len("deepstrata."):] if name.startswith("deepstrata.") else name
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[:len(base) - (node.level - 1)] if node.level > 1 else base
    return ".".join(base + ([node.module] if node.module else []))


def import_graph() -> dict[str, set[str]]:
    """Module -> the project modules it imports, at module level or inside functions alike."""
    modules = _modules()
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name[len("deepstrata."):] if a.name.startswith("deepstrata.") else a.name
                           for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = _resolve(name, is_package, node)
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
            graph[name].update(t for t in targets if t in modules and t != name)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_import_circles() -> None:
    assert _cycles(import_graph()) == []


def test_the_circle_check_finds_a_circle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


@pytest.mark.parametrize("layer,forbidden", [
    ("inference.engine", ("inference.workflows", "inference.cli", "processing_provider", "ui", "training")),
    ("inference.workflows", ("inference.cli", "processing_provider", "ui", "training")),
    ("inference", ("processing_provider", "ui", "training", "support", "plugin")),
    ("ui", ("processing_provider",)),
    ("processing_provider", ("ui",)),
])
def test_dependencies_flow_one_way(layer: str, forbidden: tuple[str, ...]) -> None:
    graph = import_graph()
    bad = sorted(f"{module} -> {target}" for module, targets in graph.items()
                 if module == layer or module.startswith(layer + ".")
                 for target in targets if any(target == f or target.startswith(f + ".") for f in forbidden))
    assert bad == []
