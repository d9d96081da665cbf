"""Queue the public reimplementation's variants as DVC experiments, run them, wait for them.

`python -m ewmtcnn.grid [--source PATH] [--jobs N]` is the first half of `make table`;
`python -m ewmtcnn.table` then builds the README table from `dvc exp show`.
"""
from __future__ import annotations

import argparse
import re
import subprocess
import time
from collections.abc import Sequence

from ewmtcnn import InputError, params
from ewmtcnn.comparison import VARIANTS, Variant

POLL_S = 10


def settings(variant: Variant) -> list[str]:
    """`-S` overrides for one variant (`none` has no prior to freeze and keeps the default head)."""
    overrides = [f"prior.init={variant.init}"]
    if variant.head is not None:
        overrides.append(f"model.head={variant.head}")
    if variant.freeze is not None:
        overrides.append(f"prior.freeze={str(variant.freeze).lower()}")
    return overrides


def dvc(*args: str) -> str:
    """Run a dvc command; its failure is one clear error."""
    result = subprocess.run(["dvc", *args], capture_output=True, text=True)
    if result.returncode != 0:
        raise InputError(f"`dvc {' '.join(args)}` failed: {(result.stderr or result.stdout).strip()}")
    return result.stdout


def queue(source: str | None) -> None:
    """One queued experiment per variant."""
    for variant in VARIANTS:
        overrides = settings(variant) + ([f"data.source={source}"] if source else [])
        dvc("exp", "run", "--queue", *(a for o in overrides for a in ("-S", o)))
        print("queued", " ".join(overrides))


def wait(jobs: int) -> None:
    """Start `jobs` workers and return when no task is queued or running; failures are an error."""
    start = time.monotonic()
    dvc("queue", "start", "-j", str(jobs))  # may itself wait while its worker runs the queue
    time.sleep(POLL_S)  # let the workers pick up their first tasks
    while True:
        status = dvc("queue", "status")
        states = re.findall(r"\b(Queued|Running|Success|Failed)\b", status)
        if not {"Queued", "Running"} & set(states):
            break
        print(f"{time.monotonic() - start:6.0f} s: {states.count('Success')} done, {states.count('Running')} running, "
              f"{states.count('Queued')} queued", flush=True)
        time.sleep(POLL_S)
    dvc("queue", "stop")
    if "Failed" in states:
        raise InputError(f"some experiments failed; see `dvc queue status` and `dvc queue logs <task>`:\n{status}")
    print(f"all experiments done in {time.monotonic() - start:.0f} s")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", help="data.source for every experiment (an absolute path to Emotion6.zip)")
    parser.add_argument("--jobs", type=int, default=1, help="experiments run in parallel (dvc queue start -j)")
    args = parser.parse_args(argv)
    dvc("queue", "remove", "--success", "--failed")  # only this run's tasks count below
    queue(args.source)
    wait(args.jobs)


if __name__ == "__main__":
    params.run_cli(main)
