"""Slurm as the project's jobs use it: options, a check, submission, a submission's folder, waiting.

- The sbatch options come from slurm.yaml, checked before anything is submitted, as is a
  scheduler that answers.
- Waiting for a job's tasks reports those that did not succeed.
- Slurm's own commands do the work (`sbatch`, `squeue`, `scontrol`, `scancel`), called as a user
  would: no Python binding of Slurm's C library, and no accounting database.
- A task's end is read off `squeue`, which keeps finished jobs for Slurm's MinJobAge (300 s by default).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import shutil
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from ewmtcnn import InputError
from ewmtcnn.study.commands import output

CONFIG = Path("slurm.yaml")
#: The submissions' folders (git-ignored), on the shared file system.
RUNS = Path(".slurm")
POLL_S = 5
#: The options slurm.yaml may set: their sbatch flag and what a value must look like.
OPTIONS: dict[str, tuple[str, str]] = {
    "partition": ("--partition", r"[\w.-]*"),
    "account": ("--account", r"[\w.-]*"),
    "time": ("--time", r"(\d+-)?\d+(:\d{1,2}){0,2}|"),  # minutes, [D-]HH:MM[:SS]; empty: the partition's
    "cpus_per_task": ("--cpus-per-task", r"[1-9]\d*"),
    "mem": ("--mem", r"(\d+[KMGT]?)?"),  # per node; empty: the partition's default
    "gpus": ("--gpus", r"\d+"),  # 0: none asked for
}


def options(path: Path = CONFIG) -> list[str]:
    """The sbatch flags that `path` (slurm.yaml) sets.

    - An unknown key or a malformed value is refused, naming the file and the key, before anything is submitted.
    """
    try:
        config = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except OSError as e:
        raise InputError(f"{path}: {e.strerror}") from None
    except yaml.YAMLError as e:
        raise InputError(f"{path}: not YAML ({e})") from None
    if not isinstance(config, Mapping):
        raise InputError(f"{path}: expected a mapping of sbatch options, found {type(config).__name__}")
    flags = []
    for key, value in config.items():
        if key not in OPTIONS:
            raise InputError(f"{path}: unknown option {key!r}; the options are {', '.join(OPTIONS)}")
        flag, pattern = OPTIONS[key]
        text = "" if value is None else str(value)
        if isinstance(value, bool) or not re.fullmatch(pattern, text):
            raise InputError(f"{path}: {key}: {value!r} is not a valid {flag} value")
        if text and not (key == "gpus" and text == "0"):
            flags.append(f"{flag}={text}")
    return flags


def _command(args: Sequence[str], what: str) -> str:
    """The stdout of a Slurm command; its absence or failure is one InputError."""
    if shutil.which(args[0]) is None:
        raise InputError(f"{what}: `{args[0]}` not found on PATH; is Slurm installed here (slurm/cluster.sh)?")
    return output(args, f"{what}: `{shlex.join(args)}`")


def check() -> None:
    """Refuse before anything is submitted when there is no Slurm here or its controller does not answer."""
    for command in ("sbatch", "squeue", "scancel"):
        if shutil.which(command) is None:
            raise InputError(f"no Slurm here: `{command}` not found on PATH (slurm/cluster.sh installs a local one)")
    result = subprocess.run(["scontrol", "ping"], check=False, capture_output=True, text=True)
    if result.returncode != 0 or " is UP" not in result.stdout:
        said = (result.stdout + result.stderr).strip().splitlines()
        raise InputError(f"Slurm's controller does not answer (`scontrol ping`: {said[0] if said else 'no reply'})")


def submit(
    command: Sequence[str],
    *,
    name: str,
    log: Path,
    flags: Sequence[str],
    array: Sequence[int] | None = None,
    after: str | None = None,
    env: Mapping[str, str] | None = None,
) -> str:
    """Submit `command` as a batch job and return its id.

    - It runs in this directory, with this environment plus `env`.
    - `array`: an array of the tasks so numbered; `after`: once job `after` has succeeded.
    """
    args = ["sbatch", "--parsable", f"--job-name={name}", f"--output={log}", f"--chdir={Path.cwd()}", *flags]
    if array is not None:
        args.append(f"--array={','.join(map(str, array))}")
    if after is not None:
        args += [f"--dependency=afterok:{after}", "--kill-on-invalid-dep=yes"]
    if env:
        args.append("--export=" + ",".join(["ALL", *(f"{key}={value}" for key, value in env.items())]))
    args += ["--wrap", shlex.join(command)]
    return _command(args, f"submitting {name}").strip().split(";")[0]


def states(job: str) -> dict[int | None, str]:
    """The state of each task of `job` that Slurm still knows: by task index for an array, else under None.

    - Slurm knows pending and running tasks, and ended ones for MinJobAge.
    """
    out = _command(["squeue", "--noheader", "--array", "--states=all", "--jobs", job, "--format=%K %T"], "squeue")
    found: dict[int | None, str] = {}
    for line in out.splitlines():
        task, _, state = line.strip().partition(" ")
        found[int(task) if task.isdigit() else None] = state
    return found


def active(job: str) -> bool:
    """Whether some task of `job` is still pending or running."""
    return any(state in ("PENDING", "RUNNING", "CONFIGURING", "COMPLETING") for state in states(job).values())


def cancel(job: str) -> None:
    """Cancel `job` (all of its tasks)."""
    _command(["scancel", job], f"cancelling job {job}")


def folder(kind: str, key: str | None = None) -> Path:
    """A submission's folder: .slurm/<kind>-<key>, or a new .slurm/<kind>-<time> without a key."""
    path = RUNS / f"{kind}-{key or time.strftime('%Y%m%d-%H%M%S') + f'-{os.getpid()}'}"
    for sub in ("logs", "done"):
        (path / sub).mkdir(parents=True, exist_ok=True)
    (RUNS / ".gitignore").write_text("*\n")  # git ignores the whole folder, in any clone
    return path.resolve()


def read_tasks(run: Path) -> dict[str, Any]:
    """A submission's tasks.json: what each array task runs."""
    return json.loads((run / "tasks.json").read_text(encoding="utf-8"))


def wait_tasks(job: str, run: Path, labels: Sequence[str], indices: Sequence[int], dependent: str) -> None:
    """Wait until no task of array `job` is pending or running; refuse a task that did not succeed.

    - A task without its done/ file is reported with its label, Slurm job id and state, and its log.
    - The job `dependent` on the array is then cancelled, since its dependency can no longer be met.
    """
    said = -1
    while active(job):
        done = sum((run / "done" / str(i)).exists() for i in indices)
        if done != said:
            print(f"{done} of {len(indices)} tasks done", flush=True)
            said = done
        time.sleep(POLL_S)
    ended = states(job)
    failed = [
        f"{labels[i]}: job {job}_{i} {ended.get(i, 'ended')} (log {run / 'logs' / f'{job}_{i}.out'})"
        for i in indices
        if not (run / "done" / str(i)).exists()
    ]
    if failed:
        with contextlib.suppress(InputError):
            cancel(dependent)
        raise InputError(
            f"{len(failed)} of {len(indices)} tasks failed; rerun the same command to resubmit only those:\n"
            + "\n".join(failed)
        )


def wait_final(job: str, run: Path, what: str) -> None:
    """Wait for the single job `job` and check that it succeeded (its done/final file)."""
    while active(job):
        time.sleep(POLL_S)
    if not (run / "done" / "final").exists():
        raise InputError(f"{what} failed: job {job} (log {run / 'logs' / f'{job}.out'})")
    print(f"{what}: done (log {run / 'logs' / f'{job}.out'})")
