"""A throwaway DVC project holding the experiments of the variants tables (ewmtcnn.study.design.GRIDS).

- Built once per test session for the tests of ewmtcnn.study.experiments and ewmtcnn.study.table.
- Its one stage stands in for the pipeline (fast: no training) and writes metrics, chosen
  hyperparameters and repeated out-of-fold predictions that depend on the experiment, in the
  formats of the real evaluate stage.
"""

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
from ewmtcnn import InputError
from ewmtcnn.study import queue
from ewmtcnn.study.design import ALL, GRIDS, Arm, Experiment, experiments_of
from ewmtcnn.study.table import markers
from support import REPO

FAKE_STAGE = '''
"""Stands in for the pipeline: metrics, chosen settings and repeated out-of-fold predictions that
depend on the experiment; the split depends on the repeat only, as the real one does."""
import json, pathlib, zlib
import numpy as np, yaml
p = yaml.safe_load(open("params.yaml"))
if p["train"]["epochs"] == 0:
    raise SystemExit("no epochs to train")
prior, model, train = p["prior"], p["model"], p["train"]
data = p["data"]
setting = f"{prior['init']} {prior['freeze']} {model['head']} {data['label']} {data['neutral']} {train['recipe']}"
setting += f" {train['lr_head']}" if train["recipe"] == "fixed" else ""
rng = np.random.default_rng(zlib.crc32(setting.encode()))
emotions = ["anger", "disgust", "fear", "joy", "sadness", "surprise"]
scores = ["acc", "balanced_acc", "macro_f1", "kl", "chebyshev", "clark", "canberra", "cosine", "intersection",
          "clark_normalised", "canberra_normalised"]
repeats, folds = p["split"]["repeats"], p["split"]["folds"]
true = np.random.default_rng(0).dirichlet(np.ones(6), 60)
better = (prior["init"], prior["freeze"], model["head"]) == ("corr", True, "direct")
mix = 0.9 if better else 0.5  # one arm clearly closer to the truth
header = ["image", "repeat", "fold", "label", *(f"true_{e}" for e in emotions), *(f"pred_{e}" for e in emotions)]
rows = [header]
for repeat in range(repeats):
    fold = np.random.default_rng(repeat).permutation(60) % folds
    pred = mix * true + (1 - mix) * rng.dirichlet(np.ones(6), 60)
    rows += [[f"x/{i}.jpg", str(repeat), str(fold[i]), emotions[int(t.argmax())], *map(repr, t.tolist()),
              *map(repr, q.tolist())] for i, (t, q) in enumerate(zip(true, pred))]
pathlib.Path("metrics").mkdir(exist_ok=True)
pathlib.Path("metrics/predictions.csv").write_text("\\n".join(",".join(r) for r in rows) + "\\n")

def figures(names):
    out = {}
    for s in names:
        mean, std = float(rng.uniform(0.1, 0.9)), float(rng.uniform(0.001, 0.05))
        out[s] = {"mean": mean, "std": std, "ci_low": mean - 2 * std, "ci_high": mean + 2 * std}
    return out

summary = {part: figures(scores) for part in ("test", "train")}
summary["test_per_class_acc"] = {e: 0.5 for e in emotions}
summary["baselines"] = {"mean": figures(scores), "majority": figures(scores[:3])}
pathlib.Path("metrics/metrics.json").write_text(json.dumps(summary, indent=2))
headline = ["acc", "balanced_acc", "macro_f1", "kl", "chebyshev", "cosine", "intersection"]
pathlib.Path("metrics/headline.json").write_text(json.dumps({s: summary["test"][s]["mean"] for s in headline}))

def pick():
    if train["recipe"] == "fixed":
        return {name: train[name] for name in ("epochs", "lr_head", "weight_decay")}
    select = p["select"]
    return {"epochs": int(rng.integers(1, select["epochs"] + 1)), "lr_head": float(rng.choice(select["lr_head"])),
            "weight_decay": float(rng.choice(select["weight_decay"]))}

chosen = [{"repeat": r, "fold": k, **pick()} for r in range(repeats) for k in range(folds)]
selection = {"recipe": train["recipe"], "folds": chosen}
for name in ("epochs", "lr_head", "weight_decay"):
    values = [fold[name] for fold in chosen]
    selection[name] = {"median": float(np.median(values)), "min": min(values), "max": max(values)}
pathlib.Path("metrics/selection.json").write_text(json.dumps(selection, indent=2))
'''

DVC_YAML = """stages:
  evaluate:
    cmd: python evaluate.py
    deps: [evaluate.py]
    params: [data, preprocess, split, prior, model, train, select]
    outs:
      - metrics/predictions.csv:
          cache: false
    metrics:
      - metrics/headline.json:
          cache: false
      - metrics/metrics.json:
          cache: false
      - metrics/selection.json:
          cache: false
"""


def _old_block(name: str) -> str:
    start, end = markers(name)
    return f"{start}\nold table {name}\n{end}"


RESULTS = "# Project\n\nIntro.\n\n" + "\n\n".join(_old_block(g.name) for g in GRIDS) + "\n\n## After\n\nkept\n"

TABLE_A, TABLE_C = ALL["A"], ALL["C"]
#: What `make table` queues: every experiment of tables A to E, each set of params once.
EXPERIMENTS = experiments_of(GRIDS)
#: The experiment run through DVC's queue; the one queued to fail (`broken`), with no epochs; and
#: three the tests single out.
QUEUED = Experiment(TABLE_A, TABLE_A.arms[0])
CORR_SEED = Experiment(TABLE_A, Arm("corr", False, "seed"))
EYE_SEED = Experiment(TABLE_A, Arm("eye", False, "seed"))
RAND_DIRECT = Experiment(TABLE_A, Arm("rand", False, "direct"))
ORIGINAL_SEED_C = Experiment(TABLE_C, Arm("original", True, "seed"))


def queue_args(experiment: Experiment) -> list[str]:
    """`dvc exp run -S` arguments that queue `experiment`."""
    return [arg for override in experiment.overrides() for arg in ("-S", override)]


def exp_name(experiment: Experiment) -> str:
    """The name the project gives the experiment: that of the grid where EXPERIMENTS has it, and its arm."""
    recorded = next(e for e in EXPERIMENTS if e.params() == experiment.params())
    return f"{recorded.grid.name}-{recorded.arm.label.replace(' ', '-')}"


def _record_experiment(repo: Repo, baseline: str, experiment: Experiment) -> None:
    """Record `experiment` the way DVC stores one, with the stage run directly.

    - A commit on the baseline under refs/exps/<baseline[:2]>/<baseline[2:]>/<name>.
    - Much faster than DVC running it, for the experiments whose only role is to fill the tables.
    """
    repo.run("git", "checkout", "-q", baseline, "--", "params.yaml")  # the baseline's, not the last one's
    repo.set_params(**{param.replace(".", "__"): value for param, value in experiment.params().items()})
    with contextlib.chdir(repo.root):
        runpy.run_path("evaluate.py")  # in process: no interpreter start-up
    repo.run("git", "add", "params.yaml", "metrics")
    tree = repo.run("git", "write-tree").stdout.strip()
    commit = repo.run("git", "commit-tree", tree, "-p", baseline, "-m", exp_name(experiment)).stdout.strip()
    repo.run("git", "update-ref", f"refs/exps/{baseline[:2]}/{baseline[2:]}/{exp_name(experiment)}", commit)


def _run_queue(repo: Repo) -> None:
    """Run the queue as `python -m ewmtcnn.study.queue` does (`queue.wait`), in the repository's DVC environment.

    - Without this venv on PATH: DVC's workers must come from `commands.dvc`.
    """
    with pytest.MonkeyPatch.context() as patch, contextlib.chdir(repo.root):
        for name in set(os.environ) - set(repo.env):
            patch.delenv(name)
        for name, value in {**repo.env, "PATH": os.defpath}.items():
            patch.setenv(name, value)
        with pytest.raises(InputError, match=r"some experiments failed(.|\n)*\bbroken .* Failed"):
            queue.wait(2)


@functools.cache
def build(base: Path) -> Repo:
    """The project under `base` (pytest's session folder), with `show.json`, its `dvc exp show --json`.

    QUEUED is run through DVC's queue by `queue.wait`, with a failing experiment (`broken`, the
    experiment CORR_SEED with no epochs) beside it and one left queued (`pending`); the other 32
    experiments are recorded directly (`_record_experiment`).
    """
    tmp = base / "variants"
    root = tmp / "repo"
    root.mkdir(parents=True)
    repo = Repo(root, tmp / "home")
    shutil.copy2(REPO / "params.yaml", root)
    (root / "evaluate.py").write_text(FAKE_STAGE)
    (root / "dvc.yaml").write_text(DVC_YAML)
    (root / "docs").mkdir()
    (root / "docs" / "results.md").write_text(RESULTS)
    (root / ".gitignore").write_text("__pycache__/\n")
    repo.run("git", "init", "-q", "-b", "main")
    repo.run("git", "config", "user.name", "Variants Test")
    repo.run("git", "config", "user.email", "variants-test@example.invalid")
    repo.dvc("init", "-q")
    repo.dvc("repro", "-q")
    repo.run("git", "add", "-A")
    repo.run("git", "commit", "-q", "-m", "baseline")
    baseline = repo.run("git", "rev-parse", "HEAD").stdout.strip()
    for experiment in EXPERIMENTS:
        if experiment != QUEUED:
            _record_experiment(repo, baseline, experiment)
    repo.run("git", "reset", "-q", "--hard")  # a queued experiment takes the workspace's changes along
    repo.dvc("exp", "run", "--queue", "-q", "-n", exp_name(QUEUED), *queue_args(QUEUED))
    repo.dvc("exp", "run", "--queue", "-q", "-n", "broken", *queue_args(CORR_SEED), "-S", "train.epochs=0")
    _run_queue(repo)
    repo.dvc("exp", "run", "--queue", "-q", "-n", "pending", *queue_args(EYE_SEED))
    (root / "show.json").write_text(repo.dvc("exp", "show", "--json").stdout)
    return repo


def read_show(repo: Repo) -> list[dict[str, Any]]:
    """The project's saved `dvc exp show --json`."""
    return json.loads((repo.root / "show.json").read_text())


def table_command(repo: Repo, *args: str) -> subprocess.CompletedProcess[str]:
    """`python -m ewmtcnn.study.table` in the project, importing this checkout's package."""
    env = {**repo.env, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-m", "ewmtcnn.study.table", *args],
        check=False,
        cwd=repo.root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
