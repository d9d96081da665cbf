"""`--help` on every stage and command prints its usage and description, exits 0, and runs nothing.

- Each runs as users run it, in a folder holding only params.yaml: a stage that ignored `--help`
  would read it and write its outputs there (or download the archive), and the test would see them.
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from support import REPO, files_under

STAGES = sorted(path.stem for path in (REPO / "stages").glob("*.py") if path.stem != "__init__")
#: The console scripts of pyproject.toml, run as their entry points are.
SCRIPTS = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]["scripts"]
MODULES = (
    "ewmtcnn.predict",
    "ewmtcnn.study.queue",
    "ewmtcnn.study.table",
    "ewmtcnn.study.compare",
    "ewmtcnn.study.classic",
    "ewmtcnn.study.show",
    "ewmtcnn.cluster",
)


def _script(name: str, *args: str) -> list[str]:
    """Console script `name` of pyproject.toml, called as its installed wrapper calls it."""
    module, function = SCRIPTS[name].split(":")
    code = f"import sys; sys.argv[0] = {name!r}; from {module} import {function}; {function}()"
    return [sys.executable, "-c", code, *args]


COMMANDS = {
    **{f"stage {name}": [sys.executable, "-m", f"stages.{name}", "--help"] for name in STAGES},
    **{f"script {name}": _script(name, "--help") for name in SCRIPTS},
    "script ewmtcnn compare": _script("ewmtcnn", "compare", "--help"),
    "script ewmtcnn classic": _script("ewmtcnn", "classic", "--help"),
    **{f"module {name}": [sys.executable, "-m", name, "--help"] for name in MODULES},
    "module ewmtcnn.cluster grid": [sys.executable, "-m", "ewmtcnn.cluster", "grid", "--help"],
    "audit": [sys.executable, str(REPO / "audit" / "recompute.py"), "--help"],
}


def test_every_stage_and_script_is_covered() -> None:
    assert STAGES == ["check", "classic", "download", "evaluate", "features", "final", "preprocess", "split", "train"]
    assert set(SCRIPTS) == {"ewmtcnn", "ewmtcnn-predict"}


@pytest.mark.parametrize("name", COMMANDS)
def test_help_prints_usage_and_runs_nothing(name: str, tmp_path: Path) -> None:
    shutil.copy2(REPO / "params.yaml", tmp_path)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("EMOTION6", None)
    result = subprocess.run(
        COMMANDS[name], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: "), result.stdout
    assert result.stderr == ""
    assert files_under(tmp_path) == {"params.yaml"}
    if name.startswith("stage "):
        # The stage's docstring, whole: its last line too, not only its first.
        path = REPO / "stages" / f"{name.split()[1]}.py"
        doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")), clean=True)
        assert doc is not None
        assert f"python -m stages.{name.split()[1]}" in result.stdout
        assert doc.splitlines()[-1].strip() in result.stdout
