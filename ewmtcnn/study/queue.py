"""`python -m ewmtcnn.study.queue`: the experiments of the tables, queued and run by DVC's own queue.

- The first half of `make table`: `python -m ewmtcnn.study.table` then builds the tables.
- `--tables` names the grids by letter; `--source` sets `data.source` for every experiment.
"""

from __future__ import annotations

import argparse
import re
import time
from collections.abc import Sequence

from ewmtcnn import InputError, cli
from ewmtcnn.study.commands import dvc
from ewmtcnn.study.design import ALL, GRIDS, TARGET, Experiment, experiments_of, grids_named

POLL_S = 10
#: How `dvc queue status` ends when no worker is alive, and how many polls in a row of that (with
#: tasks queued, none running) mean that none will come: a worker starts within seconds.
NO_WORKER = "Worker status: 0 active, 0 idle"
STALLED_POLLS = 3


def queue(source: str | None, queued: Sequence[Experiment]) -> None:
    """One queued DVC experiment per experiment of `queued`, run up to TARGET."""
    for experiment in queued:
        overrides = experiment.overrides() + ([f"data.source={source}"] if source else [])
        dvc("exp", "run", "--queue", *(a for o in overrides for a in ("-S", o)), TARGET)
        print("queued", " ".join(overrides))


def wait(jobs: int) -> None:
    """Start `jobs` workers and return when no task is queued or running.

    - A failed task is an error, and so is a queue that no worker takes tasks from for
      STALLED_POLLS polls in a row.
    """
    start = time.monotonic()
    dvc("queue", "start", "-j", str(jobs))  # may itself wait while its worker runs the queue
    time.sleep(POLL_S)  # let the workers pick up their first tasks
    stalled = 0
    while True:
        status = dvc("queue", "status")
        states = re.findall(r"\b(Queued|Running|Success|Failed)\b", status)
        if not {"Queued", "Running"} & set(states):
            break
        stalled = stalled + 1 if "Running" not in states and NO_WORKER in status else 0
        if stalled == STALLED_POLLS:
            break
        print(
            f"{time.monotonic() - start:6.0f} s: {states.count('Success')} done, {states.count('Running')} running, "
            f"{states.count('Queued')} queued",
            flush=True,
        )
        time.sleep(POLL_S)
    # No `dvc queue stop`: DVC's workers stop by themselves once the queue is empty, while a
    # stop request outlives them in the queue's files and stops the next run's workers early.
    if stalled == STALLED_POLLS:
        raise InputError(
            "experiments are queued but no DVC worker runs them; see the worker logs, "
            ".dvc/tmp/exps/celery/dvc-exp-worker-*.out"
        )
    if "Failed" in states:
        raise InputError(f"some experiments failed; see `dvc queue status` and `dvc queue logs <task>`:\n{status}")
    print(f"all experiments done in {time.monotonic() - start:.0f} s")


def main(argv: Sequence[str] | None = None) -> None:
    """Queue the experiments of the chosen tables, then run the queue and wait for it."""
    parser = argparse.ArgumentParser(
        prog="python -m ewmtcnn.study.queue",
        description="Queue the prior-layer variants of the tables as DVC experiments and run them.",
    )
    parser.add_argument("--source", help="data.source for every experiment (an absolute path to Emotion6.zip)")
    parser.add_argument("--jobs", type=int, default=1, help="experiments run in parallel (dvc queue start -j)")
    parser.add_argument(
        "--tables", default="".join(grid.name for grid in GRIDS), help=f"the tables to run, of {''.join(ALL)}"
    )
    args = parser.parse_args(argv)
    queued = experiments_of(grids_named(args.tables))  # unknown letters refused before DVC is touched
    dvc("queue", "remove", "--success", "--failed")  # only this run's tasks count below
    queue(args.source, queued)
    wait(args.jobs)


if __name__ == "__main__":
    cli.run(main)
