"""A throwaway DVC project holding the 13 arms of the variants table as experiments, built once per
test session for the tests of ewmtcnn.experiments and ewmtcnn.table: its one stage stands in for
the pipeline (fast: no training) and writes metrics and out-of-fold predictions that depend on
the arm."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import runpy
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from dvcrepo import Repo
from ewmtcnn import InputError, grid
from ewmtcnn.grid import ARMS, BASELINE, Arm
from ewmtcnn.table import END, START
from support import REPO

FAKE_STAGE = '''
"""Stands in for the pipeline: metrics and out-of-fold predictions that depend on the arm."""
import json, pathlib, zlib
import numpy as np, yaml
p = yaml.safe_load(open("params.yaml"))
if p["train"]["epochs"] == 0:
    raise SystemExit("no epochs to train")
arm = f"{p['prior']['init']} {p['prior']['freeze']} {p['model']['head']}"
rng = np.random.default_rng(zlib.crc32(arm.encode()))
emotions = ["anger", "disgust", "fear", "joy", "sadness", "surprise"]
true = np.random.default_rng(0).dirichlet(np.ones(6), 60)
mix = 0.9 if arm == "corr True direct" else 0.5  # one arm clearly closer to the truth
pred = mix * true + (1 - mix) * rng.dirichlet(np.ones(6), 60)
header = ["image", "fold", "label", *(f"true_{e}" for e in emotions), *(f"pred_{e}" for e in emotions)]
rows = [[f"x/{i}.jpg", str(i % 3), emotions[int(t.argmax())], *map(repr, t.tolist()), *map(repr, q.tolist())]
        for i, (t, q) in enumerate(zip(true, pred))]
pathlib.Path("metrics").mkdir(exist_ok=True)
pathlib.Path("metrics/predictions.csv").write_text("\\n".join(",".join(r) for r in [header, *rows]) + "\\n")
scores = ["acc", "kl", "chebyshev", "clark", "canberra", "cosine", "intersection"]
summary = {part: {s: {"mean": float(rng.uniform(0.1, 0.9)), "std": float(rng.uniform(0, 0.05))} for s in scores}
           for part in ("test", "train")}
summary["test_per_class_acc"] = {e: 0.5 for e in emotions}
pathlib.Path("metrics/metrics.json").write_text(json.dumps(summary, indent=2))
'''

DVC_YAML = """stages:
  evaluate:
    cmd: python evaluate.py
    deps: [evaluate.py]
    params: [data, preprocess, split, prior, model, train]
    outs:
      - metrics/predictions.csv:
          cache: false
    metrics:
      - metrics/metrics.json:
          cache: false
"""

README = f"# Project\n\nIntro.\n\n{START}\nold table\n{END}\n\n## After\n\nkept\n"

#: The arm of the experiment queued to fail (`broken`), and two arms the tests single out.
CORR_SEED, EYE_SEED, RAND_DIRECT = Arm("corr", False, "seed"), Arm("eye", False, "seed"), Arm("rand", False, "direct")


def queue_args(arm: Arm) -> list[str]:
    """`dvc exp run -S` arguments that queue `arm`."""
    return [arg for override in arm.overrides() for arg in ("-S", override)]


def exp_name(arm: Arm) -> str:
    return arm.label.replace(" ", "-")


def _record_experiment(repo: Repo, baseline: str, arm: Arm) -> None:
    """Record `arm` as an experiment the way DVC stores one (a commit on the baseline under
    refs/exps/<baseline[:2]>/<baseline[2:]>/<name>), with the stage run directly: much faster
    than DVC running it, for the 12 arms whose only role is to fill the table."""
    repo.set_params(**{param.replace(".", "__"): value for param, value in arm.params().items()})
    with contextlib.chdir(repo.root):
        runpy.run_path("evaluate.py")  # in process: no interpreter start-up
    repo.run("git", "add", "params.yaml", "metrics")
    tree = repo.run("git", "write-tree").stdout.strip()
    commit = repo.run("git", "commit-tree", tree, "-p", baseline, "-m", exp_name(arm)).stdout.strip()
    repo.run("git", "update-ref", f"refs/exps/{baseline[:2]}/{baseline[2:]}/{exp_name(arm)}", commit)


def _run_queue(repo: Repo) -> None:
    """Run the queue as `python -m ewmtcnn.grid` does (`grid.wait`), in the repository's DVC
    environment but without this venv on PATH: DVC's workers must come from `experiments.dvc`."""
    with pytest.MonkeyPatch.context() as patch, contextlib.chdir(repo.root):
        for name in set(os.environ) - set(repo.env):
            patch.delenv(name)
        for name, value in {**repo.env, "PATH": os.defpath}.items():
            patch.setenv(name, value)
        with pytest.raises(InputError, match=r"some experiments failed(.|\n)*\bbroken .* Failed"):
            grid.wait(2)


@functools.cache
def build(base: Path) -> Repo:
    """The project under `base` (pytest's session folder), with `show.json`, its `dvc exp show --json`.

    `none` is run through DVC's queue by `grid.wait`, with a failing experiment (`broken`, the
    arm CORR_SEED with no epochs) beside it and one left queued (`pending`); the other 12 arms
    are recorded directly (`_record_experiment`).
    """
    tmp = base / "variants"
    root = tmp / "repo"
    root.mkdir(parents=True)
    repo = Repo(root, tmp / "home")
    shutil.copy2(REPO / "params.yaml", root)
    (root / "evaluate.py").write_text(FAKE_STAGE)
    (root / "dvc.yaml").write_text(DVC_YAML)
    (root / "README.md").write_text(README)
    (root / ".gitignore").write_text("__pycache__/\n")
    repo.run("git", "init", "-q", "-b", "main")
    repo.run("git", "config", "user.name", "Variants Test")
    repo.run("git", "config", "user.email", "variants-test@example.invalid")
    repo.dvc("init", "-q")
    repo.dvc("repro", "-q")
    repo.run("git", "add", "-A")
    repo.run("git", "commit", "-q", "-m", "baseline")
    baseline = repo.run("git", "rev-parse", "HEAD").stdout.strip()
    for arm in ARMS[1:]:
        _record_experiment(repo, baseline, arm)
    repo.run("git", "reset", "-q", "--hard")  # a queued experiment takes the workspace's changes along
    repo.dvc("exp", "run", "--queue", "-q", "-n", "none", *queue_args(BASELINE))
    repo.dvc("exp", "run", "--queue", "-q", "-n", "broken", *queue_args(CORR_SEED), "-S", "train.epochs=0")
    _run_queue(repo)
    repo.dvc("exp", "run", "--queue", "-q", "-n", "pending", "-S", "prior.init=eye")
    (root / "show.json").write_text(repo.dvc("exp", "show", "--json").stdout)
    return repo


def read_show(repo: Repo) -> list[dict[str, Any]]:
    """The project's saved `dvc exp show --json`."""
    return json.loads((repo.root / "show.json").read_text())


def table_command(repo: Repo, *args: str) -> subprocess.CompletedProcess[str]:
    """`python -m ewmtcnn.table` in the project, importing this checkout's package."""
    env = {**repo.env, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-m", "ewmtcnn.table", *args],
        check=False,
        cwd=repo.root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
