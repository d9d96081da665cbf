"""What training reads for every image: its target distribution, its class, and the network's input.

- The input is the features stage's output: pooled backbone features computed once (the backbone
  frozen), or, when fine-tuning, the uint8 image store, from which random views are drawn every epoch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import pandas as pd
import torch

from ewmtcnn import InputError, paths
from ewmtcnn.data import augment, dataset, images
from ewmtcnn.data.dataset import EMOTIONS
from ewmtcnn.features import extract
from ewmtcnn.io import safe_load
from ewmtcnn.model.backbones import Backbone
from ewmtcnn.training.variant import Variant, outputs


def distributions(labels: pd.DataFrame, neutral: str) -> np.ndarray:
    """Target distributions (N, c): the six emotions renormalised, or all seven."""
    probs = labels[list(outputs(neutral))].to_numpy(dtype=np.float64)
    total = probs.sum(axis=1, keepdims=True)
    if (total <= 0).any():
        empty = labels.loc[total[:, 0] <= 0, "image"].tolist()
        raise InputError(
            f"{len(empty)} image(s) have no emotion votes, only neutral, so data.neutral: drop "
            f"leaves no distribution: {', '.join(empty[:5])}; use data.neutral: keep"
        )
    return probs / total


class Inputs(Protocol):
    """What the network reads for a set of images: cached features or image views."""

    def for_training(self, indices: np.ndarray, generator: torch.Generator) -> torch.Tensor: ...

    def for_evaluation(self, indices: np.ndarray) -> torch.Tensor: ...


@dataclass
class CachedFeatures:
    """Pooled backbone features computed once: the same input in training and evaluation."""

    features: np.ndarray

    def for_training(self, indices: np.ndarray, generator: torch.Generator) -> torch.Tensor:
        return self.for_evaluation(indices)

    def for_evaluation(self, indices: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.asarray(self.features[indices], dtype=np.float32))


@dataclass
class ImageViews:
    """Random crop-and-flip views of the uint8 store for training, the centre crop for evaluation.

    - At the backbone's input size, normalised as its weights expect.
    """

    store: np.ndarray
    backbone: Backbone

    def for_training(self, indices: np.ndarray, generator: torch.Generator) -> torch.Tensor:
        b = self.backbone
        return augment.views(self.store[indices], b.size, generator=generator, mean=b.mean, std=b.std)

    def for_evaluation(self, indices: np.ndarray) -> torch.Tensor:
        b = self.backbone
        return augment.centre(self.store[indices], b.size, mean=b.mean, std=b.std)


@dataclass
class Data:
    """What training reads, one row per image of the labels table, in its order."""

    labels: pd.DataFrame
    emotions: tuple[str, ...]  # the outputs, in order
    targets: np.ndarray  # (N, outputs) distributions
    classes: np.ndarray  # (N,) index of each image's class label in EMOTIONS
    inputs: Inputs  # cached features, or views of the image store when fine-tuning


def feature_width(v: Variant) -> int:
    """The width of the features that `features.*` makes with `v`'s backbone (the views do not change it).

    - Pooled: the backbone's feature width; stats: measured as `extract.width` does, on a random init
      (the width depends on the architecture only), torch's generator left as it was.
    """
    if v.extraction.layers == "pooled":
        return v.backbone.features
    return extract.width(extract.feature_backbone(v.backbone, pretrained=False), v.backbone, v.extraction)


def _check_features(features: np.ndarray, v: Variant, images: pd.Series, rerun: str) -> None:
    """Refuse cached features of another width than `v` makes, or holding a NaN or infinity, naming the file."""
    expected = feature_width(v)
    if features.shape[1] != expected:
        raise InputError(
            f"{paths.FEATURES} has {features.shape[1]} columns, but {v.backbone.name}'s {v.extraction.layers} "
            f"features are {expected} wide (made with other params?); {rerun}"
        )
    finite = np.isfinite(features).all(axis=1)
    if not finite.all():
        raise InputError(
            f"{paths.FEATURES} holds NaN or infinite values ({np.count_nonzero(~finite)} row(s), the first "
            f"{images.iloc[int(finite.argmin())]}); {rerun}"
        )


def load(v: Variant) -> Data:
    """The labels, targets and inputs of every image, from the preprocess and features stages' outputs."""
    labels = dataset.read_labels(paths.LABELS)
    rerun = "rerun `dvc repro features`"
    inputs: Inputs
    if v.run.finetune:
        store = images.open_store(paths.FEATURES)
        rows = len(store)
        inputs = ImageViews(store, v.backbone)
    else:
        features = safe_load.read_array(paths.FEATURES, "backbone features", rerun, dtype=np.float32, ndim=2)
        rows = len(features)
        inputs = CachedFeatures(features)
    if rows != len(labels):
        raise InputError(f"{paths.FEATURES} has {rows} rows for the {len(labels)} images of {paths.LABELS}; {rerun}")
    if isinstance(inputs, CachedFeatures):
        _check_features(inputs.features, v, labels["image"], rerun)
    classes = labels[v.label].map(EMOTIONS.index).to_numpy()
    return Data(labels, v.emotions, distributions(labels, v.neutral), classes, inputs)
