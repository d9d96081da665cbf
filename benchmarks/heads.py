"""Benchmark: the batched head trainer (`ewmtcnn.training.batched`) against a loop of single heads
(`ewmtcnn.training.loop.train_epochs`, one EmotionNet and one torch.optim.SGD per head) on the same work.

The work is what the `selected` recipe's search does: every setting of the `select.*` grid on
every fold of every repeat (the train stage's training sets, from data/folds.csv), on the cached
features, for a few epochs. The batched trainer does all of it; the loop trains a sample of the
same heads one by one (every head is the same amount of work: the same images, epochs and
batches), and its time is scaled to all of them. Both run in this one process, one after the
other, on one thread. Run after `dvc repro features split`:
    python benchmarks/heads.py [--epochs N] [--sample N]
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import time

import numpy as np
import torch

from ewmtcnn import cli
from ewmtcnn.config import sections
from ewmtcnn.model.network import EmotionNet
from ewmtcnn.training import batched, crossval, inputs, loop
from ewmtcnn.training.variant import Variant


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--sample", type=int, default=6, help="single heads timed, of all the batched ones")
    args = parser.parse_args()
    torch.set_num_threads(1)
    params = sections.load()
    v = Variant.of(
        params.data.label, params.data.neutral, params.prior, params.model, params.features, params.train, params.select
    )
    data = inputs.load(v)
    plan = crossval.plan(params.split.repeats, params.split.folds)
    planned = crossval.planned_folds(plan, data.labels["image"].tolist())
    tasks = crossval.tasks(v, data, planned)
    grid = list(itertools.product(v.select.lr_head, v.select.weight_decay))
    features = torch.from_numpy(np.array(data.inputs.features, dtype=np.float32))
    targets = torch.from_numpy(data.targets.astype(np.float32))
    classes = torch.from_numpy(data.classes.astype(np.int64))
    optimisation = batched.Optimisation(v.run.momentum, v.run.batch_size, v.run.lam)
    n_heads = len(tasks) * len(grid)

    start = time.perf_counter()
    bank = batched.Bank(features.shape[1], len(v.emotions), tasks, len(grid), v.head, v.freeze)
    lr = np.array([[g[0] for g in grid]] * len(tasks))
    decay = np.array([[g[1] for g in grid]] * len(tasks))
    with_ones = batched.with_ones(features)
    batched.optimise(
        bank, with_ones, targets, classes, tasks, lr, decay, args.epochs, optimisation, lambda *_: None, False
    )
    batched_s = time.perf_counter() - start

    rng = np.random.default_rng(0)
    sample = [divmod(int(i), len(grid)) for i in rng.choice(n_heads, size=min(args.sample, n_heads), replace=False)]
    start = time.perf_counter()
    for t, g in sample:
        task = tasks[t]
        torch.manual_seed(task.init_seed)
        model = EmotionNet(features.shape[1], len(v.emotions), v.head, task.prior, v.freeze, None)
        settings = dataclasses.replace(
            v.run, epochs=args.epochs, lr_backbone=0.0, lr_head=grid[g][0], weight_decay=grid[g][1], seed=task.seed
        )
        for _ in loop.train_epochs(model, data.inputs, data.targets, data.classes, task.train, settings, desc="single"):
            pass
    per_head = (time.perf_counter() - start) / len(sample)

    print(f"{len(tasks)} training sets x {len(grid)} settings = {n_heads} heads, {args.epochs} epochs, one thread")
    print(f"batched trainer            : {batched_s:8.1f} s ({batched_s / n_heads * 1000:7.1f} ms per head)")
    print(
        f"loop of single heads       : {per_head * n_heads:8.1f} s ({per_head * 1000:7.1f} ms per head, "
        f"{len(sample)} timed)"
    )
    print(f"ratio (loop / batched)     : {per_head * n_heads / batched_s:8.1f}x")


if __name__ == "__main__":
    cli.run(main)
