"""Benchmark: what DVC's experiment queue costs per experiment beyond the stages themselves, as
`make table` runs its experiments, measured side by side in one run.

The same K `fixed`-recipe experiments (head learning rates never run before, so that no
run-cache answers) are run twice:
- queued: `dvc exp run --queue -S ...` each, then one worker (`dvc queue start -j 1`) runs them
  all, each in DVC's own temporary workspace (checkout, stage status, hashing, commit);
- bare: the `train` and `evaluate` stage commands alone, in a scratch clone of this repository
  whose data come from the same DVC cache, with params.yaml set to the same values.
The difference per experiment is DVC's overhead. Run after `dvc repro` (the data and features in
the cache) with no other queue running:  python benchmarks/experiments.py [--experiments K]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from ewmtcnn import InputError, cli
from ewmtcnn.paths import PARAMS
from ewmtcnn.study import commands, design, queue

STAGES = ("stages.train", "stages.evaluate")


def _settings(k: int) -> list[dict[str, object]]:
    """K settings of the fixed recipe whose head learning rates no earlier run has used."""
    stamp = time.time_ns() % 10**6 * 1e-12  # below the printed precision of any table
    return [{"train.recipe": "fixed", "train.lr_head": round(0.004 + i * 1e-4 + stamp, 15)} for i in range(k)]


def queued(settings: list[dict[str, object]], names: list[str]) -> float:
    """Seconds for the queue to run `settings` as experiments `names`, one worker, from the first queued."""
    queue.POLL_S = 1  # a finer clock than `make table` needs
    start = time.perf_counter()
    for setting, name in zip(settings, names, strict=True):
        overrides = [a for key, value in setting.items() for a in ("-S", f"{key}={value}")]
        commands.dvc("exp", "run", "--queue", "--name", name, *overrides, design.TARGET)
    queue.wait(1)
    return time.perf_counter() - start


def bare(settings: list[dict[str, object]]) -> float:
    """Seconds for the stage commands alone on `settings`, in a scratch clone sharing the DVC cache."""
    root = Path.cwd()
    with tempfile.TemporaryDirectory() as scratch:
        subprocess.run(["git", "clone", "--quiet", str(root), scratch], check=True)
        os.chdir(scratch)
        try:
            commands.dvc("cache", "dir", "--local", str(root / ".dvc" / "cache"))
            commands.dvc("checkout", "--quiet")
            spent = 0.0
            for setting in settings:
                p = yaml.safe_load(PARAMS.read_text())
                for key, value in setting.items():
                    section, name = key.split(".")
                    p[section][name] = value
                PARAMS.write_text(yaml.safe_dump(p))
                start = time.perf_counter()
                for stage in STAGES:
                    subprocess.run([sys.executable, "-m", stage], check=True, capture_output=True)
                spent += time.perf_counter() - start
            return spent
        finally:
            os.chdir(root)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiments", type=int, default=4, help="experiments run each way")
    args = parser.parse_args()
    settings = _settings(args.experiments)
    names = [f"overhead-benchmark-{os.getpid()}-{i}" for i in range(args.experiments)]
    commands.dvc("queue", "remove", "--success", "--failed")
    try:
        in_queue = queued(settings, names)
    finally:
        with contextlib.suppress(InputError):  # those that exist: none of them is a row of any table
            commands.dvc("exp", "remove", *names)
    alone = bare(settings)
    k = args.experiments
    print(f"{k} fixed-recipe experiments (train + evaluate), one at a time:")
    print(f"  queued (dvc exp run --queue, dvc queue start -j 1): {in_queue / k:5.1f} s per experiment")
    print(f"  the stage commands alone:                           {alone / k:5.1f} s per experiment")
    print(f"  DVC's overhead: {(in_queue - alone) / k:.1f} s per experiment ({in_queue / alone:.2f}x the stages' time)")


if __name__ == "__main__":
    cli.run(main)
