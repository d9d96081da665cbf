"""Benchmark: the features stage's throughput (images/s) for each configuration of table F, on this
machine, measured side by side in one run.

Each configuration (`ewmtcnn.study.design.FEATURE_CONFIGS`: backbone, layers, views, store side) extracts
features of the same images from a store of its side, made here from the pipeline's raw images
(so that Lite2's larger store is measured too), after one warm-up batch; the configurations are
timed in turn, round after round, so that the machine's load weighs on all of them alike. Its
figures are printed as images/s and as the time the stage would take for all of Emotion6.
Run after `dvc repro download`:  python benchmarks/features.py [--images N] [--rounds N]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from ewmtcnn import cli, paths
from ewmtcnn.config.sections import Extraction
from ewmtcnn.data import dataset, images
from ewmtcnn.features import extract
from ewmtcnn.model import backbones
from ewmtcnn.study.design import FEATURE_CONFIGS

EMOTION6_IMAGES = 1980


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=48, help="images extracted per configuration and round")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    names = list(dataset.labels_table(dataset.read_ground_truth(paths.RAW))["image"])[: args.images]
    stores = {
        size: np.stack([images.square(paths.RAW / "images" / name, size) for name in names])
        for size in sorted({size for *_, size in FEATURE_CONFIGS})
    }
    runs = []
    for backbone_name, layers, views, size in FEATURE_CONFIGS:
        how = Extraction(layers, views, 0)
        backbone = backbones.get(backbone_name).at(how.size)
        module = extract.feature_backbone(backbone, pretrained=True)
        extract.extract(module, stores[size][: extract.BATCH_SIZE], backbone, how)  # warm-up
        runs.append((f"{backbone_name} {layers} {'+'.join(views)} ({size} px store)", module, backbone, how, size))
    seconds = [0.0] * len(runs)
    for _ in range(args.rounds):
        for i, (_, module, backbone, how, size) in enumerate(runs):
            start = time.perf_counter()
            extract.extract(module, stores[size], backbone, how)
            seconds[i] += time.perf_counter() - start
    print(f"{args.images} images x {args.rounds} rounds per configuration; the stage for {EMOTION6_IMAGES} images:")
    for (label, *_), spent in zip(runs, seconds, strict=True):
        rate = args.images * args.rounds / spent
        print(f"  {label:60s} {rate:6.1f} images/s  {EMOTION6_IMAGES / rate / 60:5.1f} min")


if __name__ == "__main__":
    cli.run(main)
