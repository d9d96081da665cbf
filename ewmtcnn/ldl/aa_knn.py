"""Geng's AA-kNN: the mean target distribution of the k nearest training images.

- Geng, "Label Distribution Learning", IEEE TKDE 28(7):1734-1748, 2016, section 4.2.
- Euclidean distance; every neighbour weighs the same.
- Ties: neighbours are ranked by distance, equal distances by training row (the earlier row first), so a
  tie at the k-th place always keeps the same images. scikit-learn's NearestNeighbors leaves that order
  unspecified, so the distances come from its `pairwise_distances` and a stable sort.
- A predicted probability is 0 only where all k neighbours have 0; it is raised to `common.FLOOR`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.metrics import pairwise_distances

from ewmtcnn import InputError
from ewmtcnn.ldl.common import Method, Value, check_features, check_training, positive

NAME = "aa_knn"
#: The neighbourhood sizes, smoothest first, about evenly spaced in log k. On Emotion6 (1270 training images)
#: 5-fold inner CV picks 15 for the 1280 standardised Lite0 features. On 256 whitened PCA components every k
#: does worse than the training mean and the curve falls toward it as k grows: the choice is the edge, 200.
K_GRID: tuple[float, ...] = (200, 140, 100, 70, 50, 35, 25, 15, 10, 7, 5)


@dataclass(frozen=True)
class Neighbours:
    """The training images, their target distributions, and how many neighbours each prediction averages."""

    features: np.ndarray
    targets: np.ndarray
    k: int

    def predict(self, x: np.ndarray) -> np.ndarray:
        """The mean target of each row's k nearest training images, floored at `common.FLOOR`."""
        x = check_features(NAME, x, self.features.shape[1])
        nearest = np.argsort(pairwise_distances(x, self.features), axis=1, kind="stable")[:, : self.k]
        return positive(self.targets[nearest].mean(axis=1))


def fit(x: np.ndarray, d: np.ndarray, value: Value) -> Neighbours:
    """AA-kNN with `value` = (k,): k a whole number from 1 to the number of training images."""
    x, d = check_training(NAME, x, d)
    (k,) = value
    if k != int(k) or not 1 <= k <= len(x):
        raise InputError(f"ldl {NAME}: k must be a whole number from 1 to the {len(x)} training images; found {k}")
    return Neighbours(x, d, int(k))


METHOD = Method(NAME, {"k": K_GRID}, fit)
