"""Benchmark: fine-tuning throughput (images/s) of each backbone on this machine.

Times full training steps as `train.finetune: true` runs them (random crop-and-flip views
from the store, forward, the EW-MTCNN loss, backward, SGD with two learning rates) through
`ewmtcnn.training.step`, after one warm-up step. Weights are random: speed does not depend
on them. On CUDA it uses bf16 autocast and channels_last, as training does.
Run after `dvc repro preprocess`:  python benchmarks/finetune.py [--backbones ...] [--steps N]
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from ewmtcnn import layout, models, params, training, wheel
from ewmtcnn.images import open_store


def throughput(name: str, store: np.ndarray, steps: int, batch_size: int) -> float:
    """Images per second of fine-tuning `name` on batches from `store`."""
    torch.manual_seed(0)
    backbone, dim = models.build_backbone(name, pretrained=False)
    model = models.EmotionNet(dim, 6, "direct", wheel.wheel_prior(), True, backbone)
    dev = training.device()
    model.to(dev, memory_format=torch.channels_last).train()
    settings = training.Settings(epochs=1, batch_size=batch_size, lr_backbone=1e-3, lr_head=1e-2,
                                 momentum=0.9, weight_decay=5e-4, lam=0.7, seed=0)
    sgd = training.optimiser(model, settings)
    views = training.ImageViews(store, *models.normalisation(name))
    generator = torch.Generator().manual_seed(0)
    rng = np.random.default_rng(0)
    targets = torch.full((batch_size, 6), 1 / 6)
    classes = torch.zeros(batch_size, dtype=torch.long)
    elapsed = 0.0
    for i in range(steps + 1):
        indices = np.sort(rng.choice(len(store), batch_size, replace=False))
        start = time.perf_counter()
        training.step(model, sgd, views.train(indices, generator), classes, targets, settings.lam, dev)
        if dev.type == "cuda":
            torch.cuda.synchronize()
        if i:  # the first step warms up
            elapsed += time.perf_counter() - start
    return steps * batch_size / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbones", nargs="+", default=["efficientnet_lite0", "vgg19_bn"], choices=models.BACKBONES)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()
    store = open_store(layout.IMAGES)
    dev = training.device()
    print(f"device {dev} ({torch.cuda.get_device_name() if dev.type == 'cuda' else f'{torch.get_num_threads()} CPU threads'}),"
          f" batch {args.batch_size}, {args.steps} timed steps")
    for name in args.backbones:
        speed = throughput(name, store, args.steps, args.batch_size)
        epoch = 1584 / speed  # the training images of one fold of five
        print(f"{name:18s} {speed:8.1f} images/s   one epoch of a fold: {epoch / 60:6.1f} min")


if __name__ == "__main__":
    params.run_cli(main)
