"""A throwaway git + DVC repository holding a copy of the project's pipeline, for tests."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from support import REPO

BIN = Path(sys.executable).parent
DVC = BIN / "dvc"
STAGES = ("download", "preprocess", "split", "features", "train", "evaluate")
DATA_STAGES = STAGES[:3]

#: A small pipeline for the end-to-end tests: 224 px, random init, 2 repeats of 3 folds.
PARAMS = dict(
    data__sha256="",
    data__label="dominant",
    data__neutral="drop",
    preprocess__size=224,
    split__folds=3,
    split__seed=0,
    split__repeats=2,
    model__pretrained=False,
    train__epochs=3,
    train__batch_size=8,
    select__share=0.25,  # 6 inner-validation images of the 24 in a training set: one per class
    select__epochs=4,
    select__patience=2,
    select__folds=2,  # the converged recipe's inner folds: 12 images each of a 24-image training set
    classic__folds=2,  # likewise, the classic methods'
)


class Repo:
    """A temporary copy of the project's pipeline, with helpers to run git and dvc in it."""

    def __init__(self, root: Path, home: Path) -> None:
        self.root = root
        self.env = {
            **os.environ,
            # Stage commands call `python -m stages.<name>`: this venv's python, which then
            # imports the copied package from the repository root, not the installed one.
            "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            # Keep DVC and git off the network and out of this machine's own config and caches.
            "DVC_NO_ANALYTICS": "1",
            "DVC_GLOBAL_CONFIG_DIR": str(home / "dvc-global"),
            "DVC_SYSTEM_CONFIG_DIR": str(home / "dvc-system"),
            "DVC_SITE_CACHE_DIR": str(home / "dvc-site-cache"),
            "GIT_CONFIG_GLOBAL": os.devnull,
            "GIT_CONFIG_NOSYSTEM": "1",
        }
        self.env.pop("DVC_ROOT", None)
        self.env.pop("DVC_STAGE", None)
        self.env.pop("EMOTION6", None)  # CI's real archive: a test names its own local copy

    def run(self, *args: str | Path, check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        """Run a command in the repository; `timeout` bounds a stuck one (real-data runs need more)."""
        result = subprocess.run(
            [str(a) for a in args], cwd=self.root, env=self.env, capture_output=True, text=True, timeout=timeout
        )
        # Shown by pytest when a test fails.
        print(f"$ {' '.join(map(str, args))}  (exit {result.returncode})\n{result.stdout}\n{result.stderr}")
        if check:
            assert result.returncode == 0, f"{args} failed:\n{result.stdout}\n{result.stderr}"
        return result

    def dvc(self, *args: str, check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        return self.run(DVC, *args, check=check, timeout=timeout)

    def set_params(self, **dotted: object) -> None:
        path = self.root / "params.yaml"
        params = yaml.safe_load(path.read_text(encoding="utf-8"))
        for key, value in dotted.items():
            section, name = key.split("__")
            params[section][name] = value
        path.write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")

    def stamp(self, path: Path) -> tuple[int, int, bytes]:
        """Inode, modification time and content: unchanged only if nobody rewrote the file."""
        st = (self.root / path).stat()
        return st.st_ino, st.st_mtime_ns, (self.root / path).read_bytes()


def make_repo(tmp_path: Path, **params: object) -> Repo:
    """A git + DVC repository holding a copy of the project's pipeline, with `params`
    (`section__key=value`) set in its params.yaml and committed."""
    root = tmp_path / "repo"
    root.mkdir()
    shutil.copy2(REPO / "dvc.yaml", root)
    shutil.copy2(REPO / "params.yaml", root)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(REPO / "stages", root / "stages", ignore=ignore)
    shutil.copytree(REPO / "ewmtcnn", root / "ewmtcnn", ignore=ignore)
    (root / ".gitignore").write_text("__pycache__/\n")
    repo = Repo(root, tmp_path / "home")
    repo.run("git", "init", "-q", "-b", "main")
    repo.run("git", "config", "user.name", "Pipeline Test")
    repo.run("git", "config", "user.email", "pipeline-test@example.invalid")
    repo.dvc("init", "-q")
    shutil.copy2(REPO / ".dvc" / "config", root / ".dvc" / "config")  # the project's cache type, analytics off
    repo.set_params(**params)
    repo.run("git", "add", "-A")
    repo.run("git", "commit", "-q", "-m", "pipeline under test")
    return repo


def ran(output: str) -> set[str]:
    """The stages that DVC says it ran."""
    return {s for s in STAGES if f"Running stage '{s}'" in output}


def skipped(output: str) -> set[str]:
    return {s for s in STAGES if f"Stage '{s}' didn't change, skipping" in output}
