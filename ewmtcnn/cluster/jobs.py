"""The experiments of the tables, and the folds of one variant, as Slurm jobs that share this repository's DVC cache.

- `python -m ewmtcnn.cluster grid [--tables ABCDE] [--no-wait]` (what `make table SCHEDULER=slurm` runs):
  an array job with a task per experiment that has no usable run yet in `dvc exp show` (a rerun
  resubmits only what is missing or failed), then a job that builds the tables of docs/results.md once every
  task has succeeded (`--dependency=afterok`).
- A task of `grid` clones this repository at HEAD with the workspace's changes (as DVC's own queue
  takes them along), points the clone at this repository's DVC cache, runs its experiment there
  (`dvc exp run -S ...`) and pushes it back here (`dvc exp push --no-cache origin`).
- Outputs stay in the shared cache, whose run-cache also gives back whatever a killed task had finished.
- `python -m ewmtcnn.cluster folds [--no-wait]`: the train stage's folds of this workspace's variant
  as an array (`python -m stages.train --repeat R --fold K`), then a job that runs `evaluate`, which
  refuses folds not all of these params and inputs, and only then records both stages (`dvc commit`).
- Each submission has a folder under .slurm/ (git-ignored): tasks.json, logs/<job>_<task>.out,
  done/<task> (written by a task that succeeded), work/<task> (a task's clone, removed on success).
- The commands wait and report failed tasks with their variant, job id and log; `--no-wait`
  returns once submitted. sbatch options come from slurm.yaml (docs/machines.md).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ewmtcnn import InputError, paths
from ewmtcnn.cluster import slurm
from ewmtcnn.config import sections
from ewmtcnn.io.atomic import write_json, write_text
from ewmtcnn.study import experiments, table
from ewmtcnn.study.commands import dvc, output
from ewmtcnn.study.design import GRIDS, TARGET, experiments_of, grids_named


def _git(*args: str, cwd: Path | None = None) -> str:
    """The stdout of a git command."""
    return output(["git", *args], f"`git {' '.join(args)}`", cwd=cwd)


def _job(*args: str) -> list[str]:
    """A command that a job runs: this package's CLI, with this interpreter (on the shared file system)."""
    return [sys.executable, "-m", "ewmtcnn.cluster", *args]


# --- the grid --------------------------------------------------------------------------------


def submit_grid(tables: str, config: Path, wait: bool) -> None:
    """Submit the experiments of `tables` that have no usable run yet, then the tables' job."""
    grids = grids_named(tables)
    flags = slurm.options(config)
    slurm.check()
    frame = experiments.experiments(experiments.exp_show(None))
    missing = [e for e in experiments_of(grids) if not experiments.present(frame, e)]
    if not missing:
        print(f"every experiment of tables {tables} has run; building the tables")
        table.main(["--tables", tables])
        return
    run = slurm.folder("grid")
    (run / "workspace.patch").write_bytes(_git("diff", "--binary", "HEAD").encode())
    tasks = [{"label": f"{e.grid.name} {e.arm.label}", "overrides": e.overrides()} for e in missing]
    write_json({"baseline": _git("rev-parse", "HEAD").strip(), "tasks": tasks}, run / "tasks.json")
    indices = list(range(len(tasks)))
    array = slurm.submit(
        _job("task", str(run)), name="ewmtcnn-grid", log=run / "logs" / "%A_%a.out", flags=flags, array=indices
    )
    final = slurm.submit(
        _job("tables", str(run), "--tables", tables),
        name="ewmtcnn-tables",
        log=run / "logs" / "%j.out",
        flags=flags,
        after=array,
    )
    print(
        f"submitted {len(tasks)} of {len(experiments_of(grids))} experiments as job {array}, the tables as job {final}"
    )
    if wait:
        slurm.wait_tasks(array, run, [task["label"] for task in tasks], indices, dependent=final)
        slurm.wait_final(final, run, "the tables")


def run_task(run: Path) -> None:
    """One array task of `grid`: its experiment in a clone of its own, pushed back to this repository."""
    index, job = int(os.environ["SLURM_ARRAY_TASK_ID"]), os.environ["SLURM_ARRAY_JOB_ID"]
    spec = slurm.read_tasks(run)
    task = spec["tasks"][index]
    repo, work = Path.cwd(), run / "work" / str(index)
    cache = dvc("cache", "dir").strip()
    shutil.rmtree(work, ignore_errors=True)
    _git("clone", "--quiet", "--no-checkout", str(repo), str(work))
    _git("checkout", "--quiet", "--detach", spec["baseline"], cwd=work)
    for key in ("user.name", "user.email"):  # the experiment's commit is the submitter's, whatever the node says
        value = subprocess.run(["git", "config", "--get", key], check=False, capture_output=True, text=True).stdout
        if value.strip():
            _git("config", key, value.strip(), cwd=work)
    if (run / "workspace.patch").stat().st_size:
        _git("apply", "--binary", str(run / "workspace.patch"), cwd=work)
    name = f"slurm-{job}-{index}"
    with contextlib.chdir(work):
        dvc("cache", "dir", "--local", cache)
        dvc("config", "--local", "cache.shared", "group")
        dvc("checkout", "--allow-missing", "--quiet")
        print(f"{task['label']}: dvc exp run {' '.join(task['overrides'])}", flush=True)
        print(dvc("exp", "run", "--name", name, *(a for o in task["overrides"] for a in ("-S", o)), TARGET))
        dvc("exp", "push", "--no-cache", "origin", name)
    write_text(name + "\n", run / "done" / str(index))
    shutil.rmtree(work)


def build_tables(run: Path, tables: str) -> None:
    """The job after every task of `grid`: the tables of docs/results.md, as `python -m ewmtcnn.study.table` does."""
    table.main(["--tables", tables])
    write_text("tables\n", run / "done" / "final")


# --- the folds of one variant ------------------------------------------------------------------


#: What the code of the stages is: a change here (or to HEAD, or to params.yaml) makes other folds.
CODE = ("ewmtcnn", "stages", "dvc.yaml")


def _fingerprint() -> str:
    """What the folds depend on, as one key: HEAD, the workspace's changes to the code, and params.yaml.

    - The data follow from them; outputs such as the metrics are left out.
    """
    code = _git("diff", "--binary", "HEAD", "--", *CODE)
    parts = (_git("rev-parse", "HEAD"), code, paths.PARAMS.read_text(encoding="utf-8"))
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:12]


def submit_folds(config: Path, wait: bool) -> None:
    """Submit the folds of this workspace's variant not yet trained for these params and code, then record and evaluate.

    - The last job records the train stage and runs `evaluate`.
    """
    flags = slurm.options(config)
    slurm.check()
    split = sections.load().split
    repeats, count = split.repeats, split.folds
    key = _fingerprint()
    fresh = not (slurm.RUNS / f"folds-{key}").exists()
    run = slurm.folder("folds", key)
    if fresh:  # folds of other params or code must not be recorded beside these
        shutil.rmtree(paths.TRAINED, ignore_errors=True)
    pairs = [(r, k) for r in range(repeats) for k in range(count)]
    todo = [i for i in range(len(pairs)) if not (run / "done" / str(i)).exists()]
    if not todo:
        print("every fold has trained; recording the stage")
    (run / "done" / "final").unlink(missing_ok=True)
    write_json({"pairs": pairs}, run / "tasks.json")
    prepare = slurm.submit(
        [sys.executable, "-m", "dvc", "repro", "split", "features"],
        name="ewmtcnn-upstream",
        log=run / "logs" / "%j.out",
        flags=flags,
    )
    array = None
    if todo:
        array = slurm.submit(
            _job("fold", str(run)),
            name="ewmtcnn-folds",
            log=run / "logs" / "%A_%a.out",
            flags=flags,
            array=todo,
            after=prepare,
        )
    final = slurm.submit(
        _job("record", str(run)),
        name="ewmtcnn-record",
        log=run / "logs" / "%j.out",
        flags=flags,
        after=array or prepare,
    )
    print(f"submitted {len(todo)} of {len(pairs)} folds as job {array}, recording and evaluate as job {final}")
    if wait:
        if array is not None:
            labels = [f"repeat {r} fold {k}" for r, k in pairs]
            slurm.wait_tasks(array, run, labels, todo, dependent=final)
        slurm.wait_final(final, run, "recording the train stage and evaluate")


def run_fold(run: Path) -> None:
    """One array task of `folds`: the train stage's fold, into this workspace."""
    index = int(os.environ["SLURM_ARRAY_TASK_ID"])
    repeat, fold = slurm.read_tasks(run)["pairs"][index]
    args = ["--repeat", str(repeat), "--fold", str(fold)]
    if subprocess.run([sys.executable, "-m", "stages.train", *args], check=False).returncode != 0:
        raise InputError(f"python -m stages.train {' '.join(args)} failed (its error is above)")
    write_text(f"repeat {repeat} fold {fold}\n", run / "done" / str(index))


def record(run: Path) -> None:
    """The job after every fold: `evaluate`, which checks the folds' fingerprints, then both stages recorded as run.

    - Folds of other params or inputs are refused before `dvc commit` records them as train's output.
    """
    if subprocess.run([sys.executable, "-m", "stages.evaluate"], check=False).returncode != 0:
        raise InputError("python -m stages.evaluate failed (its error is above); train and evaluate are not recorded")
    dvc("commit", "--force", "train", "evaluate")
    write_text("recorded\n", run / "done" / "final")


def main(argv: Sequence[str] | None = None) -> None:
    """Submit the grid or the folds, or run one of the jobs they submit."""
    parser = argparse.ArgumentParser(prog="python -m ewmtcnn.cluster", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    grid = commands.add_parser("grid", help="the variants of the tables as an array job, then the tables")
    grid.add_argument("--tables", default="".join(g.name for g in GRIDS))
    folds_ = commands.add_parser("folds", help="this workspace's variant, a job per fold, then evaluate")
    for command in (grid, folds_):
        command.add_argument("--config", type=Path, default=slurm.CONFIG, help="sbatch options (slurm.yaml)")
        command.add_argument("--no-wait", action="store_true", help="return once submitted")
    for name in ("task", "tables", "fold", "record"):  # what the jobs run
        job = commands.add_parser(name, help=argparse.SUPPRESS)
        job.add_argument("run", type=Path)
        if name == "tables":
            job.add_argument("--tables", required=True)
    args = parser.parse_args(argv)
    actions: dict[str, Any] = {
        "grid": lambda: submit_grid(args.tables, args.config, not args.no_wait),
        "folds": lambda: submit_folds(args.config, not args.no_wait),
        "task": lambda: run_task(args.run),
        "tables": lambda: build_tables(args.run, args.tables),
        "fold": lambda: run_fold(args.run),
        "record": lambda: record(args.run),
    }
    actions[args.command]()
