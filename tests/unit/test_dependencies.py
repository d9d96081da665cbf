"""dvc.yaml declares, for every stage, exactly the code it runs and the params it reads.

- Code: its script and every module of the package that the script imports, directly or through other modules.
- Params: the `params.section.key` chains of its script, or whole sections it hands on (`params.prior`).
- A missing entry means an edit would not rerun the stage (stale results); an extra one means needless reruns.
- Both are derived from the source with `ast`, not listed by hand.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest
import yaml

from ewmtcnn import paths

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
    # exec: the stage replaces DVC's shell, so it is the child of `dvc` and ends when `dvc` dies
    assert stage["cmd"].startswith(f"exec python -m stages.{name}"), "the command execs the stage's own script"
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


#: Params a stage reads only to check another value before writing, never to make its outputs, so that
#: dvc.yaml rightly leaves them out: preprocess refuses a store smaller than the backbone's input side.
CHECK_ONLY = {"preprocess": {"model.backbone", "features.size"}}
#: What a stage that uses `params` other than through attributes reads: everything, never declared.
EVERYTHING = "*"
PARAMS = yaml.safe_load((REPO / "params.yaml").read_text(encoding="utf-8"))


def params_read(source: str) -> set[str]:
    """The params that a stage's source reads from its `params` argument: `params.section.key` as
    `section.key`, a section handed on whole (`params.prior`) as `section`, `params` itself as EVERYTHING."""
    tree = ast.parse(source)
    parent = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    found = set()
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Name) and node.id == "params"):
            continue
        section = parent.get(node)
        if not isinstance(section, ast.Attribute):
            found.add(EVERYTHING)
            continue
        key = parent.get(section)
        found.add(f"{section.attr}.{key.attr}" if isinstance(key, ast.Attribute) else section.attr)
    return found


def undeclared(read: set[str], declared: set[str]) -> set[str]:
    """The params read but not declared (a whole declared section covers its keys)."""
    return {r for r in read if r == EVERYTHING or not {r, r.split(".")[0]} & declared}


def unread(read: set[str], declared: set[str], sections: dict[str, dict]) -> set[str]:
    """The params declared but not read (a declared whole section is read whole, or key by key)."""

    def is_read(d: str) -> bool:
        if d.split(".")[0] in read:
            return True
        if "." in d:
            return d in read
        keys = sections.get(d, {})
        return bool(keys) and all(f"{d}.{key}" in read for key in keys)

    return {d for d in declared if not is_read(d)}


#: The stage that declares the whole params.yaml (`params.yaml:` in dvc.yaml): it checks every value.
CHECK = "check"


def test_the_check_stage_takes_the_whole_file_and_every_other_stage_waits_for_it() -> None:
    """A refused value stops `dvc repro` at `check`, before DVC removes any other stage's outputs."""
    assert STAGES[CHECK]["params"] == [{"params.yaml": None}]
    [checked] = STAGES[CHECK]["outs"]
    assert checked == paths.CHECKED.as_posix()
    assert all(checked in stage["deps"] for name, stage in STAGES.items() if name != CHECK)


@pytest.mark.parametrize("name", sorted(set(STAGES) - {CHECK}))
def test_stage_declares_exactly_the_params_it_reads(name: str) -> None:
    read = params_read((REPO / "stages" / f"{name}.py").read_text(encoding="utf-8")) - CHECK_ONLY.get(name, set())
    declared = set(STAGES[name].get("params", []))
    assert not undeclared(read, declared), (
        f"{name}: dvc.yaml misses params it reads: {sorted(undeclared(read, declared))}"
    )
    assert not unread(read, declared, PARAMS), (
        f"{name}: dvc.yaml lists params it never reads: {sorted(unread(read, declared, PARAMS))}"
    )


def test_the_params_read_are_found_in_the_source() -> None:
    """The derivation itself, on a made-up stage: keys, a section handed on, and `params` handed on whole."""
    source = "def main(params):\n    k, seed = params.split.folds, params.train.seed\n    use(params.prior)\n"
    read = params_read(source)
    assert read == {"split.folds", "train.seed", "prior"}
    assert undeclared(read, {"split.folds", "train", "prior"}) == set()
    assert undeclared(read, {"split.folds", "prior"}) == {"train.seed"}  # an undeclared key fails the stage
    assert undeclared(read, {"split", "train", "prior.init"}) == {"prior"}  # a whole section needs it whole
    assert undeclared(params_read(source + "    use(params)\n"), {"split", "train", "prior"}) == {EVERYTHING}
    sections = {"split": {"folds": 5, "seed": 0}, "prior": {"init": "original"}}
    assert unread(read, {"split.folds", "split.seed", "prior", "train.seed"}, sections) == {"split.seed"}
    assert unread(read, {"split", "prior"}, sections) == {"split"}  # split.seed is never read
    assert unread({"split.folds", "split.seed"}, {"split"}, sections) == set()
