"""The package's import graph, read from the source with `ast`: no circle, and subpackages that import one way.

- Every import counts, also those under `if TYPE_CHECKING:`: a circle hidden there is still one.
- The top-level modules (`paths`, `params`, `cli`, the package's own `__init__`) sit below every
  subpackage; the `predict` subpackage sits on top of them all, and no module outside it imports it
  (the package's `__init__` offers its API lazily, through importlib: ewmtcnn.LAZY).
"""

from __future__ import annotations

import ast
from collections.abc import Mapping, Set

import ewmtcnn
from support import REPO

PACKAGE = REPO / "ewmtcnn"
#: The subpackages each subpackage may import; any other import between subpackages is refused.
MAY_IMPORT: dict[str, set[str]] = {
    "config": set(),
    "io": {"config"},
    "data": {"config", "io"},
    "model": {"config", "io", "data"},
    "features": {"config", "io", "data", "model"},
    "evaluation": {"config", "io"},
    "ldl": set(),  # classic LDL methods on features: NumPy, SciPy and scikit-learn only
    "training": {"config", "io", "data", "model", "features", "evaluation", "ldl"},
    "study": {"config", "io", "data", "evaluation"},
    "cluster": {"config", "io", "data", "evaluation", "study"},
    "predict": {"config", "io", "data", "model", "features", "evaluation", "training"},
}
#: The subpackage on top of every other, which no module outside it imports.
TOP = "predict"


def modules() -> dict[str, ast.Module]:
    """Every module of the package by its dotted name, parsed; a package is its `__init__`."""
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        name = ".".join(path.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")
        found[name] = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    return found


def imports(parsed: Mapping[str, ast.Module]) -> dict[str, set[str]]:
    """The modules of the package that each module imports (`from a import b` counts `a.b` where it is a module)."""
    graph: dict[str, set[str]] = {}
    for name, tree in parsed.items():
        targets: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets.update(
                    f"{node.module}.{alias.name}" if f"{node.module}.{alias.name}" in parsed else node.module
                    for alias in node.names
                )
        graph[name] = {target for target in targets if target in parsed and target != name}
    return graph


def circle(graph: Mapping[str, Set[str]]) -> list[str] | None:
    """One circle of `graph` (a path that comes back to its first node), or None."""
    done: set[str] = set()
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        if node in path:
            return [*path[path.index(node) :], node]
        if node in done:
            return None
        path.append(node)
        for target in sorted(graph.get(node, ())):
            if found := visit(target):
                return found
        path.pop()
        done.add(node)
        return None

    for node in sorted(graph):
        if found := visit(node):
            return found
    return None


def subpackage(module: str) -> str | None:
    """The subpackage that `module` belongs to, or None for the package's top-level modules."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and (PACKAGE / parts[1]).is_dir() else None


def test_the_circle_finder_finds_circles() -> None:
    assert circle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert circle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_the_graph_is_read_from_the_source() -> None:
    graph = imports(modules())
    assert "ewmtcnn.study.design" in graph["ewmtcnn.study.table"]  # `from ewmtcnn.study.design import ...`
    assert "ewmtcnn.study.experiments" in graph["ewmtcnn.study.table"]  # `from ewmtcnn.study import experiments`
    assert "ewmtcnn.cluster.jobs" in graph["ewmtcnn.cluster.__main__"]


def test_no_module_imports_itself_through_others() -> None:
    assert circle(imports(modules())) is None


def test_subpackages_import_one_way() -> None:
    assert circle(MAY_IMPORT) is None
    graph = imports(modules())
    assert {subpackage(module) for module in graph} - {None} == set(MAY_IMPORT), "place a new subpackage here"
    wrong = [
        f"{module} imports {target}"
        for module, targets in graph.items()
        for target in targets
        if (source := subpackage(module)) is not None
        and (layer := subpackage(target)) not in (None, source)
        and layer not in MAY_IMPORT[source]
    ]
    assert not wrong


def test_top_level_modules_sit_below_the_subpackages_and_predict_on_top() -> None:
    graph = imports(modules())
    below = [
        f"{module} imports {target}"
        for module, targets in graph.items()
        if subpackage(module) is None
        for target in targets
        if subpackage(target) not in (None, "config")
    ]
    assert not below
    assert not [
        f"{module} imports {target}"
        for module, targets in graph.items()
        if subpackage(module) != TOP
        for target in targets
        if subpackage(target) == TOP
    ]


def test_the_lazy_api_comes_from_the_top() -> None:
    """`ewmtcnn.LAZY`, which importlib resolves (an import this graph cannot see), names modules of `predict` only."""
    parsed = modules()
    assert ewmtcnn.LAZY and all(module in parsed and subpackage(module) == TOP for module in ewmtcnn.LAZY.values())
