"""The experiments and the folds as Slurm jobs (`python -m ewmtcnn.cluster`), on a real single-node cluster.

- slurm/cluster.sh starts the cluster (`make test` and `.ci/run` start it).
- The table of a grid run through Slurm equals the local queue's; a task killed mid-run (scancel)
  is reported and is all that a rerun submits.
- The folds as an array give the metrics of `dvc repro`.
- The ways of failing before anything is submitted: slurm.yaml, no Slurm, a controller down.
- The projects are synthetic (tests/dvcrepo.py): the real pipeline on a small archive, one repeat
  of 3 folds, a random-init backbone.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dvcrepo import PARAMS, Repo, make_repo
from ewmtcnn import InputError, paths
from ewmtcnn.cluster import jobs, slurm
from ewmtcnn.study.table import markers
from support import REPO, write_emotion6, zip_folder

SMALL = {**PARAMS, "split__repeats": 1}
TIMEOUT_S = 600


@pytest.fixture(scope="module")
def controller() -> None:
    """A Slurm controller that answers.

    - Without one, CI (CI=true, where .ci/run starts the cluster) fails these tests; elsewhere they are
      skipped with the reason and the commands that start a local cluster (as root).
    """
    try:
        slurm.check()
    except InputError as e:
        why = f"{e}: start a local cluster with `slurm/cluster.sh install` and `slurm/cluster.sh start` (as root)"
        if os.environ.get("CI"):
            pytest.fail(why)
        pytest.skip(f"no Slurm cluster: {why}")


def project(tmp: Path) -> Repo:
    """The pipeline on a small synthetic archive, run and committed, with the results document's markers of table D."""
    archive = zip_folder(write_emotion6(tmp / "src" / "Emotion6", per_emotion=6, seed=5), tmp / "Emotion6.zip")
    repo = make_repo(tmp, **SMALL, data__source=str(archive))
    start, end = markers("D")
    (repo.root / "docs").mkdir()
    (repo.root / "docs" / "results.md").write_text(f"# Project\n\n{start}\nold\n{end}\n")
    shutil.copy2(REPO / "slurm.yaml", repo.root)
    repo.dvc("repro")
    repo.run("git", "add", "-A")
    repo.run("git", "commit", "-q", "-m", "baseline")
    return repo


def command(repo: Repo, module: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", module, *args], cwd=repo.root, env=repo.env, capture_output=True, text=True, check=False
    )


def table_d(repo: Repo) -> str:
    text = (repo.root / "docs" / "results.md").read_text()
    start, end = markers("D")
    return text[text.index(start) : text.index(end)]


def runs(repo: Repo) -> list[Path]:
    return sorted((repo.root / slurm.RUNS).glob("grid-*"))


@pytest.fixture(scope="module")
def local_table(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Table D as the local queue makes it (`python -m ewmtcnn.study.queue`, then `python -m ewmtcnn.study.table`)."""
    repo = project(tmp_path_factory.mktemp("local"))
    for module, args in (
        ("ewmtcnn.study.queue", ("--tables", "D", "--jobs", "2")),
        ("ewmtcnn.study.table", ("--tables", "D")),
    ):
        result = command(repo, module, *args)
        assert result.returncode == 0, result.stderr
    return table_d(repo)


def test_a_task_killed_mid_run_is_reported_and_alone_resubmitted_and_the_table_equals_the_local_queues(
    controller: None, local_table: str, tmp_path: Path
) -> None:
    repo = project(tmp_path)
    grid = subprocess.Popen(
        [sys.executable, "-m", "ewmtcnn.cluster", "grid", "--tables", "D"],
        cwd=repo.root,
        env=repo.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + TIMEOUT_S
    while not (runs(repo) and list((runs(repo)[0] / "logs").glob("*_1.out"))):
        assert grid.poll() is None and time.monotonic() < deadline, "task 1 never started"
        time.sleep(0.5)
    log = next((runs(repo)[0] / "logs").glob("*_1.out"))
    while "dvc exp run" not in log.read_text():  # it is running its experiment
        assert grid.poll() is None and time.monotonic() < deadline, f"task 1 never ran: {log.read_text()}"
        time.sleep(0.5)
    array = log.name.split("_")[0]
    subprocess.run(["scancel", f"{array}_1"], check=True)
    out, err = grid.communicate(timeout=TIMEOUT_S)
    assert grid.returncode != 0
    # Table D's second arm (its first is the frozen wheel): `none` at the paper's learning rate.
    assert "1 of 5 tasks failed" in err and f"D none lr_head=0.01: job {array}_1 CANCELLED (log {log})" in err, err
    assert "Table D" not in table_d(repo), "no table without all its experiments"

    rerun = command(repo, "ewmtcnn.cluster", "grid", "--tables", "D")
    assert rerun.returncode == 0, rerun.stderr
    assert "submitted 1 of 5 experiments" in rerun.stdout
    second = runs(repo)[-1]
    assert [task["label"] for task in slurm.read_tasks(second)["tasks"]] == ["D none lr_head=0.01"]
    task_log = next((second / "logs").glob("*_0.out")).read_text()
    assert "Running stage 'features'" not in task_log  # what finished before comes from the shared cache
    assert table_d(repo) == local_table
    assert not list((second / "work").iterdir()), "a task's clone goes once its experiment is back"


def test_the_folds_as_an_array_give_the_metrics_of_dvc_repro(controller: None, tmp_path: Path) -> None:
    repo = project(tmp_path)
    committed = (repo.root / paths.METRICS).read_bytes()
    shutil.rmtree(repo.root / paths.TRAINED)
    (repo.root / paths.METRICS).unlink()
    result = command(repo, "ewmtcnn.cluster", "folds")
    assert result.returncode == 0, result.stderr
    assert "submitted 3 of 3 folds" in result.stdout
    assert (repo.root / paths.METRICS).read_bytes() == committed
    assert "Data and pipelines are up to date." in repo.dvc("status").stdout
    again = command(repo, "ewmtcnn.cluster", "folds")  # nothing left to train: recorded again only
    assert again.returncode == 0 and "submitted 0 of 3 folds" in again.stdout, again.stderr


def test_sbatch_options_come_from_slurm_yaml(tmp_path: Path) -> None:
    config = tmp_path / "slurm.yaml"
    config.write_text("partition: gpu\naccount: lab-1\ntime: '1-02:00:00'\ncpus_per_task: 4\nmem: 16G\ngpus: 1\n")
    expected = ["--partition=gpu", "--account=lab-1", "--time=1-02:00:00", "--cpus-per-task=4", "--mem=16G", "--gpus=1"]
    assert slurm.options(config) == expected
    config.write_text("partition: ''\ntime: 90\ngpus: 0\nmem:\n")  # empty and 0: the cluster's default
    assert slurm.options(config) == ["--time=90"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("queue: gpu\n", "unknown option 'queue'"),
        ("time: 2 hours\n", "time: '2 hours' is not a valid --time value"),
        ("cpus_per_task: 0\n", "cpus_per_task: 0 is not a valid --cpus-per-task value"),
        ("gpus: true\n", "gpus: True is not a valid --gpus value"),
        ("partition: 'a;rm -rf'\n", "partition: 'a;rm -rf' is not a valid --partition value"),
        ("- gpu\n", "expected a mapping of sbatch options, found list"),
    ],
)
def test_a_malformed_slurm_yaml_is_refused_naming_it(tmp_path: Path, text: str, message: str) -> None:
    config = tmp_path / "slurm.yaml"
    config.write_text(text)
    with pytest.raises(InputError, match=f"^{config}: ") as info:
        slurm.options(config)
    assert message in str(info.value)


def test_without_slurm_nothing_is_submitted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    shutil.copy2(REPO / "slurm.yaml", tmp_path)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(InputError, match="no Slurm here: `sbatch` not found on PATH"):
        jobs.submit_grid("D", Path("slurm.yaml"), wait=True)
    assert not (tmp_path / slurm.RUNS).exists()


def test_a_controller_that_does_not_answer_is_one_error(
    controller: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    conf = Path(os.environ.get("SLURM_CONF", "/etc/slurm/slurm.conf")).read_text()
    lines = [line for line in conf.splitlines() if not line.startswith("SlurmctldPort")]
    (tmp_path / "down.conf").write_text("\n".join([*lines, "SlurmctldPort=6999"]) + "\n")  # nothing listens there
    monkeypatch.setenv("SLURM_CONF", str(tmp_path / "down.conf"))
    monkeypatch.chdir(tmp_path)
    shutil.copy2(REPO / "slurm.yaml", tmp_path)
    with pytest.raises(InputError, match="Slurm's controller does not answer"):
        jobs.submit_folds(Path("slurm.yaml"), wait=True)
    assert not (tmp_path / slurm.RUNS).exists()
