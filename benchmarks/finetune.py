"""Benchmark: fine-tuning throughput (images/s) of each backbone on this machine.

Times full training steps as `train.finetune: true` runs them (random crop-and-flip views
from the store, forward, the EW-MTCNN loss, backward, SGD with two learning rates) through
`ewmtcnn.training.loop.step`, after one warm-up step, and, side by side in the same steps, the two
parts: making the views (on the CPU, one thread, as the training loop does) and the network's
step (on the GPU when there is one). Weights are random: speed does not depend on them. On
CUDA it uses bf16 autocast and channels_last, as training does.
Run after `dvc repro preprocess`:  python benchmarks/finetune.py [--backbones ...] [--steps N]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from ewmtcnn import cli, paths
from ewmtcnn.config.sections import Train
from ewmtcnn.data.images import open_store
from ewmtcnn.model import backbones, network, wheel
from ewmtcnn.model.backbones import Backbone
from ewmtcnn.training import inputs, loop


def throughput(backbone: Backbone, store: np.ndarray, steps: int, batch_size: int) -> tuple[float, float, float]:
    """Images per second of fine-tuning `backbone` on batches from `store`: the whole step, the
    views alone and the network's step alone."""
    torch.manual_seed(0)
    model = network.EmotionNet(
        backbone.features, 6, "direct", wheel.wheel_prior(), True, backbone.build(pretrained=False)
    )
    dev = loop.device()
    model.to(dev, memory_format=torch.channels_last).train()
    settings = Train(
        finetune=True,
        recipe="fixed",
        epochs=1,
        batch_size=batch_size,
        lr_backbone=1e-3,
        lr_head=1e-2,
        momentum=0.9,
        weight_decay=5e-4,
        lam=0.7,
        seed=0,
    )
    sgd = loop.optimiser(model, settings)
    views = inputs.ImageViews(store, backbone)
    generator = torch.Generator().manual_seed(0)
    rng = np.random.default_rng(0)
    targets = torch.full((batch_size, 6), 1 / 6)
    classes = torch.zeros(batch_size, dtype=torch.long)
    making = stepping = 0.0
    for i in range(steps + 1):
        indices = np.sort(rng.choice(len(store), batch_size, replace=False))
        start = time.perf_counter()
        x = views.for_training(indices, generator)
        made = time.perf_counter()
        loop.step(model, sgd, x, classes, targets, settings.lam, dev)
        if dev.type == "cuda":
            torch.cuda.synchronize()
        if i:  # the first step warms up
            making += made - start
            stepping += time.perf_counter() - made
    images = steps * batch_size
    return images / (making + stepping), images / making, images / stepping


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--backbones", nargs="+", default=[backbones.DEFAULT, "vgg19_bn"], choices=tuple(backbones.REGISTRY)
    )
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()
    store = open_store(paths.IMAGES)
    dev = loop.device()
    machine = torch.cuda.get_device_name() if dev.type == "cuda" else f"{torch.get_num_threads()} CPU threads"
    print(f"device {dev} ({machine}), batch {args.batch_size}, {args.steps} timed steps")
    print(f"{'backbone':18s} {'images/s':>9s} {'views':>9s} {'network':>9s}   one epoch of a fold")
    for name in args.backbones:
        whole, views, trained = throughput(backbones.get(name), store, args.steps, args.batch_size)
        epoch = 1584 / whole  # the training images of one fold of five
        print(f"{name:18s} {whole:9.1f} {views:9.1f} {trained:9.1f}   {epoch / 60:6.1f} min")


if __name__ == "__main__":
    cli.run(main)
