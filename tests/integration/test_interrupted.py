"""A data stage killed with SIGKILL at its worst moment leaves nothing that outlives it: its pool
workers exit, git and DVC ignore its temporaries, and the next `dvc repro` sweeps them and writes
the same bytes as an uninterrupted run. In throwaway git + DVC repositories, on synthetic data.
A stage whose parent (`dvc`) dies ends too."""

from __future__ import annotations

import multiprocessing
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from dvcrepo import Repo, make_repo
from ewmtcnn import lifetime
from ewmtcnn.io.atomic import written
from support import REPO, write_emotion6, write_params, zip_folder

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="reads /proc; the parent-death signal is Linux's")

SIZE = 224  # the smallest the default backbone accepts
PER_EMOTION = 10
PARAMS = {"data__sha256": "", "data__label": "dominant", "preprocess__size": SIZE, "split__folds": 5, "split__seed": 0}
# Any temporary of ewmtcnn.io.atomic.written, or the old folder it moves aside.
TEMPORARY = re.compile(r"^\..+\.\d+-[a-z0-9_]+\.tmp")
WAIT_S = 60  # generous: only a worker that never exits reaches it

# Runs a stage as `python -m stages.<stage>` would, but SIGKILLs its own process at the worst
# moment, after writing the PIDs (and start times) of its child processes to argv[2]:
# preprocess half-way through decoding (pool workers busy, half a store on disk); download and
# split just before the rename that would publish their output (the temporary complete).
HARNESS = """
import os, runpy, signal, sys
from pathlib import Path

stage, report = sys.argv[1], Path(sys.argv[2])

def die():
    children = [pid for task in Path("/proc/self/task").iterdir() for pid in (task / "children").read_text().split()]
    starts = [Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19] for pid in children]
    report.write_text("".join(f"{pid} {start}\\n" for pid, start in zip(children, starts)))
    os.kill(os.getpid(), signal.SIGKILL)

if stage == "preprocess":
    from ewmtcnn.data import images
    decode_all = images.parallel_map

    def halfway(fn, items, desc):
        for i, result in enumerate(decode_all(fn, items, desc)):
            if i == len(items) // 2:
                die()
            yield result

    images.parallel_map = halfway
else:
    publish = os.replace

    def replace(src, dst):
        if Path(dst).name in ("Emotion6", "folds.csv"):
            die()
        publish(src, dst)

    os.replace = replace
sys.argv = [stage]
runpy.run_module(f"stages.{stage}", run_name="__main__", alter_sys=True)
"""
BEFORE = {"download": None, "preprocess": "download", "split": "preprocess"}
LEFTOVER_DIR = {"download": "data/raw", "preprocess": "data/prepared", "split": "data"}


def with_project_ignores(repo: Repo) -> Repo:
    """Give the throwaway repository the project's .gitignore patterns and .dvcignore."""
    project = (REPO / ".gitignore").read_text(encoding="utf-8")
    with (repo.root / ".gitignore").open("a", encoding="utf-8") as f:
        f.write(project)
    shutil.copy2(REPO / ".dvcignore", repo.root / ".dvcignore")
    repo.run("git", "add", "-A")
    repo.run("git", "commit", "-q", "-m", "the project's ignore files")
    return repo


def leftovers(root: Path) -> list[str]:
    """Every temporary under `root`, outside git's and DVC's own folders."""
    return sorted(
        p.relative_to(root).as_posix()
        for p in root.rglob(".*")
        if TEMPORARY.match(p.name) and not {".git", ".dvc"} & set(p.relative_to(root).parts[:1])
    )


def untracked_under_data(repo: Repo) -> list[str]:
    """What `git status` reports under data/, untracked files listed one by one."""
    status = repo.run("git", "status", "--porcelain", "--untracked-files=all").stdout.splitlines()
    return sorted(line[3:] for line in status if line[3:].startswith("data/"))


def outputs(root: Path) -> dict[str, bytes]:
    """Every file the pipeline wrote under data/, and dvc.lock."""
    files = {p.relative_to(root).as_posix(): p.read_bytes() for p in (root / "data").rglob("*") if p.is_file()}
    return {**files, "dvc.lock": (root / "dvc.lock").read_bytes()}


def gone(pid: int, start: str) -> bool:
    """Whether process `pid` (started at `start` clock ticks) has exited; a zombie has."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    fields = stat.rsplit(")", 1)[1].split()
    return fields[0] == "Z" or fields[19] != start


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One synthetic Emotion6.zip for every repository here, so that their dvc.lock files can agree."""
    tmp = tmp_path_factory.mktemp("archive")
    return zip_folder(write_emotion6(tmp / "src" / "Emotion6", per_emotion=PER_EMOTION, seed=5), tmp / "Emotion6.zip")


@pytest.fixture(scope="module")
def uninterrupted(archive: Path, tmp_path_factory: pytest.TempPathFactory) -> Repo:
    repo = with_project_ignores(
        make_repo(tmp_path_factory.mktemp("uninterrupted"), **PARAMS, data__source=str(archive))
    )
    repo.dvc("repro", "split")
    return repo


@pytest.mark.parametrize("stage", ["download", "preprocess", "split"])
def test_killed_stage_leaves_nothing_behind(stage: str, archive: Path, uninterrupted: Repo, tmp_path: Path) -> None:
    repo = with_project_ignores(make_repo(tmp_path, **PARAMS, data__source=str(archive)))
    if BEFORE[stage]:
        repo.dvc("repro", BEFORE[stage])
    children = tmp_path / "children.txt"
    # Output to a file, not a pipe: a surviving worker would hold a pipe open, and the run with it.
    with (tmp_path / "harness.log").open("w") as log:
        killed = subprocess.run(
            [sys.executable, "-c", HARNESS, stage, str(children)],
            cwd=repo.root,
            env=repo.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            timeout=600,
            check=False,
        )
    assert killed.returncode == -signal.SIGKILL, (tmp_path / "harness.log").read_text()

    # What the kill left: a temporary of the output, that git does not offer to commit.
    left = leftovers(repo.root)
    assert left and all(path.startswith(f"{LEFTOVER_DIR[stage]}/.") for path in left), left
    assert not [path for path in untracked_under_data(repo) if not path.endswith(".gitignore")]

    # Pool workers die with their parent (preprocess was killed with its pool busy).
    workers = [(int(pid), start) for pid, start in (line.split() for line in children.read_text().splitlines())]
    if stage == "preprocess":
        assert workers, "the kill came while the pool was running"
    deadline = time.monotonic() + WAIT_S
    while not all(gone(pid, start) for pid, start in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    survivors = [pid for pid, start in workers if not gone(pid, start)]
    for pid in survivors:  # so that a failure here leaks no process
        os.kill(pid, signal.SIGKILL)
    assert not survivors, f"pool workers outlived their parent: {survivors}"

    repo.dvc("repro", "split")
    assert leftovers(repo.root) == []
    assert untracked_under_data(repo) == untracked_under_data(uninterrupted)
    assert all(path.endswith(".gitignore") for path in untracked_under_data(repo))
    assert outputs(repo.root) == outputs(uninterrupted.root)


def test_temporaries_are_ignored_by_git_and_dvc(tmp_path: Path) -> None:
    """Also a live writer's, which nothing sweeps: inside the output folder data/train/ too."""
    repo = with_project_ignores(make_repo(tmp_path, **PARAMS, data__source="unused"))
    (repo.root / "data" / "train" / "fold-0").mkdir(parents=True)
    (repo.root / "data" / "train" / "fold-0" / "model.pt").write_bytes(b"weights")
    names = []
    for final, directory in [
        ("data/train/fold-1", True),
        ("data/raw/Emotion6", True),
        ("data/prepared/images.npy", False),
    ]:
        with written(repo.root / final, directory=directory) as tmp:
            names += [tmp.relative_to(repo.root).as_posix(), f"{tmp.relative_to(repo.root).as_posix()}.old"]
            for name in names[-2:]:
                assert repo.run("git", "check-ignore", "-q", name, check=False).returncode == 0, name
                assert repo.dvc("check-ignore", "-q", name, check=False).returncode == 0, name
    assert len(names) == 6
    assert repo.dvc("check-ignore", "-q", "data/train/fold-0/model.pt", check=False).returncode == 1


@pytest.mark.parametrize("parent_alive", [True, False], ids=["parent-alive", "parent-dead"])
def test_pool_worker_exits_when_its_parent_already_died(parent_alive: bool) -> None:
    """The race that the death signal alone misses: the parent dies before the worker asks for it.
    A worker re-parented by then sees a parent other than the one that started the pool."""
    starter = os.getpid() if parent_alive else os.getppid()  # the worker's parent is this process
    worker = multiprocessing.get_context("fork").Process(target=lifetime.die_with_parent, args=(starter,))
    worker.start()
    worker.join()
    assert worker.exitcode == (0 if parent_alive else 1)


# A parent that starts a stage's command exactly as `dvc repro` does ($SHELL -c, DVC's own flags), and waits.
PARENT = """
import os, subprocess, sys
from dvc.stage.run import _make_cmd
subprocess.Popen(_make_cmd(os.environ["SHELL"], sys.argv[1])).wait()
"""
SLEEPING_STAGE = """
import os, time
from pathlib import Path
from ewmtcnn import cli

def main(params):
    Path(os.environ["RUNNING"]).write_text(str(os.getpid()))
    time.sleep(600)

cli.run_stage(main)
"""


@pytest.mark.parametrize("shell", ["/bin/bash", "/bin/dash"])
def test_stage_ends_when_its_parent_dies(shell: str, tmp_path: Path) -> None:
    """`dvc` killed (SIGTERM or SIGKILL) drops its lock: the stage it started must not write on.

    - DVC runs a stage's command as `$SHELL -c cmd`. Without `exec`, dash stays between `dvc` and the
      stage, outlives `dvc`, and the stage's death signal never fires.
    """
    if not Path(shell).exists():
        pytest.skip(f"{shell} is not installed")
    write_params(tmp_path)
    (tmp_path / "sleeping.py").write_text(SLEEPING_STAGE)
    running = tmp_path / "running"
    train = yaml.safe_load((REPO / "dvc.yaml").read_text(encoding="utf-8"))["stages"]["train"]["cmd"]
    command = train.replace("python -m stages.train", f"{sys.executable} sleeping.py")  # a stage takes no arguments
    assert command != train, "the train stage's command as dvc.yaml gives it"
    env = {**os.environ, "PYTHONPATH": str(REPO), "SHELL": shell, "RUNNING": str(running)}
    with subprocess.Popen([sys.executable, "-c", PARENT, command], cwd=tmp_path, env=env) as parent:
        deadline = time.monotonic() + WAIT_S
        while not running.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert running.exists(), "the stage did not start"
        stage = int(running.read_text())
        start = Path(f"/proc/{stage}/stat").read_text().rsplit(")", 1)[1].split()[19]
        parent.kill()
    deadline = time.monotonic() + WAIT_S
    while not gone(stage, start) and time.monotonic() < deadline:
        time.sleep(0.1)
    survived = not gone(stage, start)
    if survived:  # so that a failure here leaks no process
        os.kill(stage, signal.SIGKILL)
    assert not survived, "the stage outlived its parent"
