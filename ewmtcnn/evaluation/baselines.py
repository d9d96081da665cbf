"""The two trivial baselines a model must beat, per (repeat, fold), learned from the training folds only.

- `mean` predicts the training folds' mean target distribution for every test image: what a label
  distribution learner scores knowing nothing of the image.
- `majority` predicts the training folds' most common class label; its distribution is one-hot, so
  its LDL measures would be infinite and only the class scores are reported for it.
- They are scikit-learn's DummyRegressor(strategy="mean") and DummyClassifier(strategy="most_frequent"),
  written as a column mean and a bincount (the tests check that the two agree).
"""

from __future__ import annotations

import numpy as np

from ewmtcnn.evaluation import metrics

#: The baselines, in the order metrics.json reports them.
BASELINES: tuple[str, ...] = ("mean", "majority")


def mean_prediction(train_targets: np.ndarray, images: int) -> np.ndarray:
    """The training images' mean target distribution, once for each of `images` test images."""
    return np.tile(np.asarray(train_targets, dtype=np.float64).mean(axis=0), (images, 1))


def majority_prediction(train_labels: np.ndarray, classes: int, images: int) -> np.ndarray:
    """The training images' most common class label, one-hot over `classes`, once per test image.

    - A tie goes to the class listed first, as in scikit-learn.
    """
    majority = np.bincount(np.asarray(train_labels), minlength=classes).argmax()
    return np.tile(np.eye(classes)[majority], (images, 1))


def fold_scores(targets: np.ndarray, labels: np.ndarray, test: np.ndarray) -> dict[str, dict[str, float]]:
    """Each baseline's scores on one fold, learned outside the boolean mask `test` and scored inside it.

    - `targets` are the (N, c) target distributions and `labels` the N class labels of one repeat.
    - The images outside `test` are the repeat's training folds.
    """
    targets, labels, test = np.asarray(targets, dtype=np.float64), np.asarray(labels), np.asarray(test, dtype=bool)
    if targets.ndim != 2 or not labels.shape == test.shape == (len(targets),) or test.all() or not test.any():
        raise ValueError(
            f"need one target row, label and test flag per image, with images both in and out of the test fold; "
            f"found targets {targets.shape}, labels {labels.shape}, {int(test.sum())} of {test.size} flagged test"
        )
    images, classes = int(test.sum()), targets.shape[1]
    return {
        "mean": metrics.fold_scores(targets[test], mean_prediction(targets[~test], images), labels[test]),
        "majority": metrics.class_scores(labels[test], majority_prediction(labels[~test], classes, images)),
    }
