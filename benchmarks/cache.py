"""Benchmark: what copies instead of hardlinks from the DVC cache cost, measured side by side in one run.

- `dvc checkout` of every output into a scratch clone sharing this repository's cache, once with
  `cache.type hardlink,copy` and once with `reflink,copy` (copies where, as on ext4, the file
  system has no reflinks);
- the same K `fixed`-recipe experiments through DVC's queue (as `make table` runs them, each in a
  temporary workspace that checks out the data), K with each cache type, one worker.
The cache type is set in `.dvc/config.local` for the measurement and restored after. Run after
`dvc repro`, with no queue running:  python benchmarks/cache.py [--experiments K]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import tempfile
import time
from pathlib import Path

from experiments import _settings, queued

from ewmtcnn import InputError, cli
from ewmtcnn.study import commands

TYPES = ("hardlink,copy", "reflink,copy")
LOCAL = Path(".dvc/config.local")


@contextlib.contextmanager
def cache_type(kind: str):
    """`.dvc/config.local` sets cache.type to `kind` (queued experiments inherit it); restored after."""
    before = LOCAL.read_bytes() if LOCAL.exists() else None
    commands.dvc("config", "--local", "cache.type", kind)
    try:
        yield
    finally:
        if before is None:
            LOCAL.unlink()
        else:
            LOCAL.write_bytes(before)


def checkout(kind: str) -> float:
    """Seconds for `dvc checkout` of every output into a scratch clone sharing the cache."""
    root = Path.cwd()
    with tempfile.TemporaryDirectory(dir=root.parent) as scratch:
        subprocess.run(["git", "clone", "--quiet", str(root), scratch], check=True)
        run = {"cwd": scratch, "check": True, "capture_output": True}
        subprocess.run(["dvc", "cache", "dir", "--local", str(root / ".dvc" / "cache")], **run)
        subprocess.run(["dvc", "config", "--local", "cache.type", kind], **run)
        start = time.perf_counter()
        subprocess.run(["dvc", "checkout", "--quiet"], **run)
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiments", type=int, default=3, help="experiments run with each cache type")
    args = parser.parse_args()
    k = args.experiments
    settings = _settings(2 * k)
    names = [f"cache-benchmark-{os.getpid()}-{i}" for i in range(2 * k)]
    checkouts = {kind: checkout(kind) for kind in TYPES}
    runs = {}
    commands.dvc("queue", "remove", "--success", "--failed")
    try:
        for i, kind in enumerate(TYPES):
            with cache_type(kind):
                runs[kind] = queued(settings[i * k : (i + 1) * k], names[i * k : (i + 1) * k]) / k
    finally:
        with contextlib.suppress(InputError):  # those that exist: none of them is a row of any table
            commands.dvc("exp", "remove", *names)
    link, copy = TYPES
    print("cache.type           dvc checkout (all outputs)   queued experiment (train + evaluate)")
    for kind in TYPES:
        print(f"{kind:<20} {checkouts[kind]:8.1f} s                   {runs[kind]:8.1f} s")
    ratios = checkouts[copy] / checkouts[link], runs[copy] / runs[link]
    print(f"copies / hardlinks:  {ratios[0]:8.2f}x                  {ratios[1]:8.2f}x")


if __name__ == "__main__":
    cli.run(main)
