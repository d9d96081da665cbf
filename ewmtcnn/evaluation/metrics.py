"""The LDL measures of Geng (2016) and the classification scores, per image, per fold and over folds.

- The LDL measures are written in numpy, one vectorised pass over (N, c) arrays each, so that the
  tests can use scipy as an independent reference.
- Clark and Canberra in both conventions: `clark` and `canberra` are Geng's sums over the c emotions,
  sqrt(sum_j (p_j - q_j)^2 / (p_j + q_j)^2) and sum_j |p_j - q_j| / (p_j + q_j); `clark_normalised`
  (Clark / sqrt(c)) and `canberra_normalised` (Canberra / c) are the per-label forms that published
  Emotion6 results report (StyleEDL's code divides by the number of emotions), the only ones that
  compare across six and seven emotions.
- Both barely move on Emotion6, in either form: a target entry p_j = 0 with a positive prediction
  q_j (a softmax's always is) contributes exactly q_j / q_j = 1 to Canberra and 1 to Clark's sum of
  squares, whatever q_j is. About a third of Emotion6's target entries are 0, so about a third of
  Canberra and of Clark's sum of squares is fixed before any prediction is made: Canberra / c stays
  above about 1/3 and Clark / sqrt(c) above about sqrt(1/3) = 0.58 however good the model.
- Balanced accuracy and macro-F1 come from scikit-learn.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

#: Geng's (2016) six LDL measures in his order, then Clark and Canberra normalised per label.
MEASURES: tuple[str, ...] = (
    *("kl", "chebyshev", "clark", "canberra", "cosine", "intersection"),
    *("clark_normalised", "canberra_normalised"),
)
#: The scores of a predicted class label alone (the argmax of a predicted distribution).
CLASS_SCORES: tuple[str, ...] = ("acc", "balanced_acc", "macro_f1")
#: Every score of a fold, in the order metrics.json and the tables report them.
SCORES: tuple[str, ...] = (*CLASS_SCORES, *MEASURES)
#: The scores for which higher is better; for the rest (KL and the distances) lower is better.
HIGHER_IS_BETTER: tuple[str, ...] = (*CLASS_SCORES, "cosine", "intersection")


def _pair(p: np.ndarray, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    p, q = np.asarray(p, dtype=np.float64), np.asarray(q, dtype=np.float64)
    if p.ndim != 2 or p.shape != q.shape:
        raise ValueError(
            f"true and predicted distributions must both be (images, emotions); found {p.shape} and {q.shape}"
        )
    return p, q


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator, with 0 where the denominator is 0 (terms with p_j + q_j = 0 count 0)."""
    return np.divide(numerator, denominator, out=np.zeros_like(numerator), where=denominator != 0)


def distances(p: np.ndarray, q: np.ndarray) -> dict[str, np.ndarray]:
    """Each measure per image (shape (N,)), for true distributions `p` and predictions `q`, in MEASURES order."""
    p, q = _pair(p, q)
    diff = np.abs(p - q)
    total = p + q
    clark = np.sqrt((_ratio(diff, total) ** 2).sum(axis=1))
    canberra = _ratio(diff, total).sum(axis=1)
    emotions = p.shape[1]
    # 0 ln 0 = 0 (the ratio is taken as 1 there); p_j > 0 with q_j = 0 is a genuinely
    # infinite divergence, so it is left to come out as inf.
    with np.errstate(divide="ignore"):
        log_ratio = np.log(np.divide(p, q, out=np.ones_like(p), where=p > 0))
    return {
        "kl": (p * log_ratio).sum(axis=1),
        "chebyshev": diff.max(axis=1),
        "clark": clark,
        "canberra": canberra,
        "cosine": (p * q).sum(axis=1) / (np.linalg.norm(p, axis=1) * np.linalg.norm(q, axis=1)),
        "intersection": np.minimum(p, q).sum(axis=1),
        "clark_normalised": clark / math.sqrt(emotions),
        "canberra_normalised": canberra / emotions,
    }


def _predicted(labels: np.ndarray, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    labels, q = np.asarray(labels), np.asarray(q)
    if q.ndim != 2 or labels.shape != (len(q),) or len(q) == 0:
        raise ValueError(
            f"need one integer label per row of predictions; found labels {labels.shape} for predictions {q.shape}"
        )
    return labels, q.argmax(axis=1)


def accuracy(labels: np.ndarray, q: np.ndarray) -> float:
    """Share of images whose most probable predicted emotion is their class label."""
    labels, predicted = _predicted(labels, q)
    return float((predicted == labels).mean())


def per_class_accuracy(labels: np.ndarray, q: np.ndarray, names: Sequence[str]) -> dict[str, float]:
    """Recall of each class (label k is `names[k]`); classes with no image are left out, not NaN."""
    labels, predicted = _predicted(labels, q)
    if np.shape(q)[1] != len(names):
        raise ValueError(f"{len(names)} class names for {np.shape(q)[1]} predicted emotions")
    return {name: float((predicted[labels == k] == k).mean()) for k, name in enumerate(names) if (labels == k).any()}


def per_class_scores(labels: np.ndarray, q: np.ndarray, names: Sequence[str]) -> dict[str, dict[str, float]]:
    """Each class's recall, precision and F1 (label k is `names[k]`), from scikit-learn.

    - Undefined figures are NaN, never 0: the precision of a class never predicted, the recall of a
      class with no image. F1 is 2 TP / (2 TP + FP + FN), 0 for a class with images that is never predicted.
    """
    from sklearn.metrics import precision_recall_fscore_support  # imported here: see class_scores

    labels, predicted = _predicted(labels, q)
    precision, recall, f1, _ = precision_recall_fscore_support(
        labels, predicted, labels=range(len(names)), zero_division=np.nan
    )
    return {
        name: {"recall": float(recall[k]), "precision": float(precision[k]), "f1": float(f1[k])}
        for k, name in enumerate(names)
    }


def class_scores(labels: np.ndarray, q: np.ndarray) -> dict[str, float]:
    """Accuracy, balanced accuracy and macro-F1 of the argmax of `q` against the class `labels`.

    Balanced accuracy and macro-F1 average over the classes that occur among `labels` only: a
    class that is predicted but absent from the fold has no recall, and counting its F1 of 0
    would penalise a fold for the classes it happens to lack rather than for its errors.
    Balanced accuracy is the mean recall over those classes, which is scikit-learn's
    balanced_accuracy_score; recall_score computes it here because, like f1_score and unlike
    balanced_accuracy_score, it takes the classes to average over instead of warning about the rest.
    """
    # Imported here: scikit-learn's metrics take a second and a half to import, which the
    # training stages, that only need accuracy and KL, should not pay.
    from sklearn.metrics import f1_score, recall_score

    labels, predicted = _predicted(labels, q)
    present = np.unique(labels)
    return {
        "acc": accuracy(labels, q),
        "balanced_acc": float(recall_score(labels, predicted, labels=present, average="macro")),
        "macro_f1": float(f1_score(labels, predicted, labels=present, average="macro")),
    }


def fold_scores(p: np.ndarray, q: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """One fold's scores in SCORES order: the class scores, then each measure averaged over its images."""
    scores = class_scores(labels, q)
    scores.update({name: float(values.mean()) for name, values in distances(p, q).items()})
    return scores
