"""Beyond one machine: variants (and folds) run as separate jobs on machines that share a git
remote, a DVC remote and the run-cache, as docs/machines.md describes.

On synthetic data with a random-init backbone: a bare git repository is the shared git remote,
a local directory the DVC remote, and separate clones, each with its own DVC cache and its own
DVC config and site-cache directories, stand in for the machines. Machine A runs the baseline
and the `eye` variant and shares them; the other clones pull them, restore a variant from the
run-cache, run variants on the parallel queue, and train the folds of one variant apart.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from dvcrepo import PARAMS, STAGES, Repo, make_repo, ran
from ewmtcnn import paths
from support import write_emotion6, zip_folder

UPSTREAM = {"download", "preprocess", "split", "features"}  # what a change of prior.* never reruns
QUEUED = ("rand", "corr")  # the variants machine B runs on its parallel queue
QUEUE_TIMEOUT_S = 400


@dataclass
class Shared:
    origin: Path  # the bare git repository every machine clones and pushes to
    storage: Path  # the DVC remote (a local directory)
    a: Repo  # machine A, which ran the baseline and the `eye` variant
    eye_metrics: bytes  # metrics/metrics.json of `eye` as A computed it


def clone(origin: Path, name: str, *, branch: str | None = None) -> Repo:
    """A new machine beside the bare git remote `origin`: a clone of it, with its own home (DVC
    global/system config and site-cache dirs) and, as every clone, its own DVC cache in .dvc/cache."""
    tmp = origin.parent
    Repo(tmp, tmp / f"home-{name}").run("git", "clone", "-q", *(["-b", branch] if branch else []), origin, tmp / name)
    machine = Repo(tmp / name, tmp / f"home-{name}")
    machine.run("git", "config", "user.name", f"machine {name}")
    machine.run("git", "config", "user.email", f"{name}@example.invalid")
    return machine


def experiments(repo: Repo) -> dict[str, dict[str, Any]]:
    """`dvc exp show --json` as {experiment name: {"params": params.yaml, "metrics": metrics.json}}."""
    shown = json.loads(repo.dvc("exp", "show", "--json").stdout)
    found = {}
    for baseline in shown:
        for exp in baseline.get("experiments") or []:
            for rev in exp["revs"]:
                data = rev["data"]
                found[rev["name"]] = {
                    "params": data["params"]["params.yaml"]["data"],
                    "metrics": data["metrics"][str(paths.METRICS)]["data"],
                }
    return found


def flat(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"test": {"kl": {"mean": x}}} as {"test.kl.mean": x}, for pytest.approx."""
    out: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out.update(flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def reran_only_training(output: str) -> bool:
    """A prior variant: train and evaluate ran, nothing upstream of them did."""
    return {"train", "evaluate"} <= ran(output) and not ran(output) & UPSTREAM


def wait_for_queue(repo: Repo, timeout: float) -> str:
    """Poll `dvc queue status` until no task is queued or running; return the last status."""
    deadline = time.monotonic() + timeout
    while True:
        status = repo.dvc("queue", "status").stdout
        if not any(state in status for state in ("Queued", "Running")):
            return status
        assert time.monotonic() < deadline, f"queue still busy after {timeout} s:\n{status}"
        time.sleep(3)


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Shared:
    tmp = tmp_path_factory.mktemp("machines")
    archive = zip_folder(write_emotion6(tmp / "src" / "Emotion6", per_emotion=6, seed=5), tmp / "Emotion6.zip")
    # The project, with a DVC remote in its committed .dvc/config, pushed to a bare git repository;
    # data.source stays the official URL, as committed.
    project = make_repo(tmp, **PARAMS)
    storage, origin = tmp / "dvc-remote", tmp / "origin.git"
    project.dvc("remote", "add", "-d", "storage", str(storage))
    project.run("git", "commit", "-q", "-am", "shared DVC remote")
    project.run("git", "init", "-q", "--bare", "-b", "main", origin)
    project.run("git", "push", "-q", origin, "main")

    # Machine A: the baseline from its local copy of the archive (EMOTION6), its outputs and
    # run-cache to the DVC remote, its lock to git.
    a = clone(origin, "a")
    a.env["EMOTION6"] = str(archive)
    assert ran(a.dvc("repro").stdout) == set(STAGES)
    del a.env["EMOTION6"]
    a.dvc("push", "--run-cache")
    assert any((storage / "runs").rglob("*")), "no run-cache in the DVC remote"
    a.run("git", "add", "-A")
    a.run("git", "commit", "-q", "-m", "baseline")
    a.run("git", "push", "-q", "origin", "main")
    # One variant as an experiment, shared: its git ref to the git remote, its outputs (and,
    # with --run-cache, the record of its runs) to the DVC remote.
    assert reran_only_training(a.dvc("exp", "run", "-S", "prior.init=eye", "-n", "eye").stdout)
    eye_metrics = (a.root / paths.METRICS).read_bytes()
    pushed = a.dvc("exp", "push", "--run-cache", "origin", "eye")
    assert "Pushed experiment eye" in pushed.stdout

    # The other machines never see the archive: everything they need comes from the remotes.
    shutil.rmtree(tmp / "src")
    archive.unlink()
    return Shared(origin, storage, a, eye_metrics)


@pytest.fixture(scope="module")
def queued(shared: Shared) -> Repo:
    """Machine B: two variants on its parallel queue (`dvc queue start -j 2`), then pushed."""
    b = clone(shared.origin, "b-queue")
    b.dvc("pull")
    for variant in QUEUED:
        b.dvc("exp", "run", "--queue", "-S", f"prior.init={variant}", "-n", variant)
    assert all(variant in b.dvc("queue", "status").stdout for variant in QUEUED)
    try:
        b.dvc("queue", "start", "-j", "2")
        status = wait_for_queue(b, QUEUE_TIMEOUT_S)
    finally:
        b.dvc("queue", "stop", check=False)  # idle workers also exit by themselves after 10 s
    for variant in QUEUED:
        assert any(line.split()[1:2] == [variant] and "Success" in line for line in status.splitlines()), (
            f"{variant} did not succeed:\n{status}\n{b.dvc('queue', 'logs', variant, check=False).stdout}"
        )
    pushed = b.dvc("exp", "push", "--run-cache", "origin", *QUEUED)
    assert "Pushed experiment" in pushed.stdout
    return b


def test_a_second_machine_pulls_the_baseline_and_reruns_nothing(shared: Shared) -> None:
    b = clone(shared.origin, "b-pull")
    assert not (b.root / ".dvc" / "cache").exists()  # its own cache, empty: nothing shared with A
    assert Path(b.dvc("cache", "dir").stdout.strip()) == b.root / ".dvc" / "cache"
    b.dvc("pull")
    assert "Data and pipelines are up to date." in b.dvc("status").stdout
    assert "Running stage" not in b.dvc("repro").stdout  # and the archive is gone: download could not run
    for path in (paths.FEATURES, paths.FOLDS, paths.IMAGES):
        assert (b.root / path).read_bytes() == (shared.a.root / path).read_bytes()


def test_an_experiment_travels_through_the_git_and_dvc_remotes(shared: Shared) -> None:
    b = clone(shared.origin, "b-exp")
    b.dvc("pull")
    assert "Pulled experiment" in b.dvc("exp", "pull", "origin", "eye").stdout
    eye = experiments(b)["eye"]
    assert eye["params"]["prior"]["init"] == "eye"
    assert eye["metrics"] == json.loads(shared.eye_metrics)
    b.dvc("exp", "apply", "eye")
    assert (b.root / paths.METRICS).read_bytes() == shared.eye_metrics
    assert "Data and pipelines are up to date." in b.dvc("status").stdout  # eye's data/train checked out
    for repeat in range(2):
        for fold in range(3):
            name = paths.fold_dir(repeat, fold) / "test.csv"
            assert (b.root / name).read_bytes() == (shared.a.root / name).read_bytes()


def test_the_run_cache_restores_a_variant_another_machine_trained(shared: Shared) -> None:
    c = clone(shared.origin, "c")
    # --pull: the missing data, the remote's run-cache, and the outputs a run-cache entry names.
    result = c.dvc("exp", "run", "--pull", "-S", "prior.init=eye")
    assert "Stage 'train' is cached - skipping run, checking out outputs" in result.stdout
    # evaluate has `cache: false` outputs, which DVC never records in the run-cache: it reruns (seconds).
    assert "train" not in ran(result.stdout) and "evaluate" in ran(result.stdout)
    assert not ran(result.stdout) & UPSTREAM
    assert (c.root / paths.METRICS).read_bytes() == shared.eye_metrics


def test_the_queue_runs_two_variants_in_parallel_on_one_machine(queued: Repo) -> None:
    found = experiments(queued)
    for variant in QUEUED:
        assert found[variant]["params"]["prior"]["init"] == variant
        assert set(found[variant]["metrics"]["test"]) >= {"acc", "kl"}
        # In DVC's temporary copy, only the stages the variant changes ran.
        assert reran_only_training(queued.dvc("queue", "logs", variant).stdout)
    assert found["rand"]["metrics"] != found["corr"]["metrics"]


def test_variants_split_over_machines_come_together_on_any_clone(shared: Shared, queued: Repo) -> None:
    """A ran `eye`, B ran `rand` and `corr`: A pulls B's, a new clone pulls all three."""
    on_b = experiments(queued)
    shared.a.dvc("exp", "pull", "origin")
    late = clone(shared.origin, "d")
    late.dvc("exp", "pull", "origin")
    for machine in (shared.a, late):
        found = experiments(machine)
        assert set(found) >= {"eye", *QUEUED}
        assert found["eye"]["metrics"] == json.loads(shared.eye_metrics)
        for variant in QUEUED:
            assert found[variant]["metrics"] == on_b[variant]["metrics"]


def test_folds_split_over_machines_give_the_whole_variant(shared: Shared, queued: Repo) -> None:
    """`rand` once more, fold by fold: E trains repeat 0 and fold 0 of repeat 1, F folds 1 and 2 of
    repeat 1; E gathers and evaluates."""
    e = clone(shared.origin, "e")
    e.run("git", "checkout", "-q", "-b", "folds-rand")
    e.set_params(prior__init="rand")
    e.run("git", "commit", "-q", "-am", "rand, trained fold by fold")
    e.run("git", "push", "-q", "origin", "folds-rand")
    f = clone(shared.origin, "f", branch="folds-rand")
    shares = {
        e: (["--repeat", "0"], ["--repeat", "1", "--fold", "0"]),
        f: (["--repeat", "1", "--fold", "1"], ["--repeat", "1", "--fold", "2"]),
    }
    for machine, jobs in shares.items():
        machine.dvc("pull")  # the baseline's data, features and (to be replaced) data/train
        for job in jobs:
            machine.run(sys.executable, "-m", "stages.train", *job)
    # Gather: F's fold directories to E (rsync or scp between real machines).
    for fold in (1, 2):
        shutil.rmtree(e.root / paths.fold_dir(1, fold))
        shutil.copytree(f.root / paths.fold_dir(1, fold), e.root / paths.fold_dir(1, fold))
    refused = e.dvc("commit", "train", check=False)  # train's params changed: DVC wants --force
    assert refused.returncode != 0 and "-f|--force" in refused.stderr
    e.dvc("commit", "--force", "train")
    assert ran(e.dvc("repro", "evaluate").stdout) == {"evaluate"}
    gathered = json.loads((e.root / paths.METRICS).read_text())
    assert flat(gathered) == flat(experiments(queued)["rand"]["metrics"])  # to the last digit
