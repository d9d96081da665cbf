"""dvc.yaml declares, for every stage, exactly the code it runs: its script and every module of the
package that the script imports, directly or through other modules.

A missing module means an edit to it would not rerun the stage (stale results); an extra one
means needless reruns. The closure is derived from the source with `ast`, not listed by hand.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
PACKAGE = "ewmtcnn"


def module_file(name: str) -> Path | None:
    """The file of package module `name` (`ewmtcnn`, `ewmtcnn.x`), or None if it is not one."""
    parts = name.split(".")
    if parts[0] != PACKAGE:
        return None
    path = REPO.joinpath(*parts)
    if path.is_dir():
        return path / "__init__.py"
    return path.with_suffix(".py") if path.with_suffix(".py").is_file() else None


def imports(path: Path) -> set[Path]:
    """The package files that executing `path` imports by itself (the package's __init__ included)."""
    found: set[Path] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # `from ewmtcnn import x` imports module ewmtcnn.x when there is one; `from ewmtcnn.x import y`
            # imports ewmtcnn.x (and ewmtcnn.x.y if that is a module).
            names = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
        else:
            continue
        for name in names:
            parts = name.split(".")
            # importing a.b.c runs a/__init__.py and a/b/__init__.py first
            for end in range(1, len(parts) + 1):
                file = module_file(".".join(parts[:end]))
                if file is not None:
                    found.add(file)
    return found


def closure(script: Path) -> set[Path]:
    """`script` and every package file it imports, transitively."""
    seen: set[Path] = set()
    todo = [script]
    while todo:
        path = todo.pop()
        if path not in seen:
            seen.add(path)
            todo.extend(imports(path) - seen)
    return seen


STAGES = yaml.safe_load((REPO / "dvc.yaml").read_text(encoding="utf-8"))["stages"]


def declared_code(stage: dict) -> set[str]:
    return {d for d in stage.get("deps", []) if d.endswith(".py")}


@pytest.mark.parametrize("name", sorted(STAGES))
def test_stage_declares_exactly_the_code_it_imports(name: str) -> None:
    stage = STAGES[name]
    assert stage["cmd"].startswith(f"python -m stages.{name}"), "the command runs the stage's own script"
    expected = {p.relative_to(REPO).as_posix() for p in closure(REPO / "stages" / f"{name}.py")}
    declared = declared_code(stage)
    assert not expected - declared, f"{name}: dvc.yaml misses code the stage runs: {sorted(expected - declared)}"
    assert not declared - expected, (
        f"{name}: dvc.yaml lists code the stage never imports: {sorted(declared - expected)}"
    )


def test_the_closure_follows_imports_through_modules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The derivation itself, on a made-up package: a -> b (from-import) -> c (plain import); d unused."""
    root = tmp_path
    package = root / PACKAGE
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text(f"from {PACKAGE} import b\n")
    (package / "b.py").write_text(f"def f():\n    import {PACKAGE}.c\n")
    (package / "c.py").write_text("import os\n")
    (package / "d.py").write_text("")
    script = root / "stage.py"
    script.write_text(f"from {PACKAGE}.a import thing\n")
    monkeypatch.setattr(sys.modules[__name__], "REPO", root)
    found = {p.relative_to(root).as_posix() for p in closure(script)}
    assert found == {"stage.py", f"{PACKAGE}/__init__.py", f"{PACKAGE}/a.py", f"{PACKAGE}/b.py", f"{PACKAGE}/c.py"}
