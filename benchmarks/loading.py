"""Benchmark: a training batch from the preprocessed store vs decoding the original JPEGs.

Both sides produce the same thing, a (32, 3, 224, 224) float batch of RandomResizedCrop(224)
+ horizontal-flip views normalised with ImageNet statistics, from the same random images:
  - store: slice the memory-mapped uint8 array, then `ewmtcnn.data.augment.views` on the batch;
  - jpeg:  what the public reimplementation does every epoch: PIL-open each original JPEG,
           convert to RGB and apply torchvision's RandomResizedCrop, RandomHorizontalFlip,
           ToTensor and Normalize;
  - store + torchvision: the store's images through that same per-image torchvision
           pipeline, to show how much comes from not decoding and how much from `views`.
Both run in this one process on one thread (torch and OpenCV, as in a DataLoader worker),
interleaved batch by batch so that any load on the machine hits both alike, after one
warm-up batch each; the files are in the page cache, so disk speed is not measured.
Run after `dvc repro preprocess`:  python benchmarks/loading.py [--batches N]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import cv2
import numpy as np
import torch
from PIL import Image
from torchvision import transforms

from ewmtcnn import cli, paths
from ewmtcnn.data import augment, dataset
from ewmtcnn.data.images import open_store


def throughputs(ways: dict[str, Callable[[np.ndarray], torch.Tensor]], batches: list[np.ndarray]) -> dict[str, float]:
    """Images per second of each way of making a batch, timed alternately on the same batches."""
    seconds = dict.fromkeys(ways, 0.0)
    for make_batch in ways.values():
        make_batch(batches[0])  # warm-up
    for indices in batches:
        for name, make_batch in ways.items():
            start = time.perf_counter()
            make_batch(indices)
            seconds[name] += time.perf_counter() - start
    images = sum(len(b) for b in batches)
    return {name: images / s for name, s in seconds.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    torch.manual_seed(0)
    store = open_store(paths.IMAGES)
    jpegs = [paths.RAW / dataset.IMAGE_DIR / name for name in dataset.read_labels(paths.LABELS)["image"]]
    rng = np.random.default_rng(0)
    batches = [np.sort(rng.choice(len(store), args.batch_size, replace=False)) for _ in range(args.batches)]
    reimplementation = transforms.Compose(
        [
            transforms.RandomResizedCrop(224),
            transforms.RandomHorizontalFlip(),
            transforms.ToTensor(),
            transforms.Normalize(augment.IMAGENET_MEAN, augment.IMAGENET_STD),
        ]
    )

    def from_store(indices: np.ndarray) -> torch.Tensor:
        return augment.views(store[indices])

    def from_jpeg(indices: np.ndarray) -> torch.Tensor:
        return torch.stack([reimplementation(Image.open(jpegs[i]).convert("RGB")) for i in indices])

    def from_store_per_image(indices: np.ndarray) -> torch.Tensor:
        return torch.stack([reimplementation(Image.fromarray(image.transpose(1, 2, 0))) for image in store[indices]])

    assert from_store(batches[0]).shape == from_jpeg(batches[0]).shape == from_store_per_image(batches[0]).shape
    speed = throughputs({"jpeg": from_jpeg, "store": from_store, "store+tv": from_store_per_image}, batches)
    jpeg, ours = speed["jpeg"], speed["store"]
    print(f"{args.batches} batches of {args.batch_size}, one thread, {store.shape[-1]} px store")
    print(f"JPEG decode + augmentation each time : {jpeg:8.1f} images/s")
    print(f"store + the same torchvision pipeline : {speed['store+tv']:8.1f} images/s")
    print(f"preprocessed store + augmentation     : {ours:8.1f} images/s")
    print(f"ratio (store / JPEG)                  : {ours / jpeg:8.1f}x")


if __name__ == "__main__":
    cli.run(main)
