"""The trivial baselines (ewmtcnn.evaluation.baselines): by hand, against scikit-learn's dummy estimators, and
learned from the training folds only."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.dummy import DummyClassifier, DummyRegressor

from ewmtcnn.evaluation import baselines, metrics

# Three training images (labels anger, anger, disgust) and two test images (disgust, fear).
TARGETS = np.array(
    [
        [0.5, 0.4, 0.1],
        [0.45, 0.45, 0.1],
        [0.05, 0.8, 0.15],
        [0.2, 0.6, 0.2],
        [0.0, 0.2, 0.8],
    ]
)
LABELS = np.array([0, 0, 1, 1, 2])
TEST = np.array([False, False, False, True, True])
# The training mean: (0.5 + 0.45 + 0.05) / 3, (0.4 + 0.45 + 0.8) / 3, (0.1 + 0.1 + 0.15) / 3.
MEAN = np.array([1 / 3, 0.55, 7 / 60])


def test_the_mean_baseline_by_hand() -> None:
    scores = baselines.fold_scores(TARGETS, LABELS, TEST)["mean"]
    assert list(scores) == list(metrics.SCORES)
    # It predicts disgust (0.55) for both: right for the disgust image, wrong for the fear one.
    # Recall: disgust 1, fear 0 -> 1/2. F1: disgust P 1/2, R 1 -> 2/3; fear 0 -> 1/3.
    assert scores["acc"] == 0.5
    assert scores["balanced_acc"] == pytest.approx(0.5, rel=1e-12)
    assert scores["macro_f1"] == pytest.approx(1 / 3, rel=1e-12)
    kl_disgust = 0.2 * math.log(0.2 / (1 / 3)) + 0.6 * math.log(0.6 / 0.55) + 0.2 * math.log(0.2 / (7 / 60))
    kl_fear = 0.2 * math.log(0.2 / 0.55) + 0.8 * math.log(0.8 / (7 / 60))
    assert scores["kl"] == pytest.approx((kl_disgust + kl_fear) / 2, rel=1e-12)
    # Chebyshev: max(2/15, 0.05, 1/12) = 2/15 and max(1/3, 0.35, 41/60) = 41/60.
    assert scores["chebyshev"] == pytest.approx((2 / 15 + 41 / 60) / 2, rel=1e-12)
    # Intersection: 0.2 + 0.55 + 7/60 and 0 + 0.2 + 7/60.
    assert scores["intersection"] == pytest.approx((0.2 + 0.55 + 7 / 60 + 0.2 + 7 / 60) / 2, rel=1e-12)


def test_the_majority_baseline_by_hand() -> None:
    scores = baselines.fold_scores(TARGETS, LABELS, TEST)["majority"]
    # Anger is the training folds' most common label (2 of 3), though disgust has the most mass: it
    # predicts anger for both test images, neither of which is anger. Anger, predicted only, adds no zero.
    assert scores == {"acc": 0.0, "balanced_acc": 0.0, "macro_f1": 0.0}
    assert list(scores) == list(metrics.CLASS_SCORES)


def test_a_majority_tie_goes_to_the_class_listed_first() -> None:
    assert baselines.majority_prediction(np.array([2, 1, 1, 2, 0]), 4, 2).tolist() == [[0, 1, 0, 0]] * 2


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_predictions_are_scikit_learns_dummy_estimators(seed: int) -> None:
    rng = np.random.default_rng(seed)
    targets, labels = rng.dirichlet(np.ones(6), 40), rng.integers(0, 6, 40)
    features = np.zeros((40, 1))  # the dummies ignore their features
    regressor = DummyRegressor(strategy="mean").fit(features, targets)
    np.testing.assert_allclose(baselines.mean_prediction(targets, 3), regressor.predict(np.zeros((3, 1))), rtol=1e-12)
    classifier = DummyClassifier(strategy="most_frequent").fit(features, labels)
    majority = baselines.majority_prediction(labels, 6, 3)
    assert majority.argmax(axis=1).tolist() == classifier.predict(np.zeros((3, 1))).tolist()
    assert (majority.sum(axis=1) == 1).all() and (majority.max(axis=1) == 1).all()


def test_the_baselines_learn_from_the_training_folds_only() -> None:
    """Test images that all say fear would, if counted, make fear the majority and raise its mean mass.

    With one-hot test targets the mean baseline's KL is -ln q(label), which reveals the predicted q."""
    train_targets = np.array([[0.7, 0.2, 0.1], [0.6, 0.3, 0.1], [0.2, 0.7, 0.1]])
    test = np.array([False] * 3 + [True] * 6)
    for label in (2, 1):  # the test images relabelled: the predictions must not move
        targets = np.vstack([train_targets, np.tile(np.eye(3)[label], (6, 1))])
        labels = np.array([0, 0, 1] + [label] * 6)
        scores = baselines.fold_scores(targets, labels, test)
        assert scores["mean"]["kl"] == pytest.approx(-math.log(train_targets[:, label].mean()), rel=1e-12)
        assert scores["majority"]["acc"] == 0.0  # still anger, the training majority


@pytest.mark.parametrize(
    "targets,labels,test",
    [
        (TARGETS, LABELS, np.ones(5, dtype=bool)),
        (TARGETS, LABELS, np.zeros(5, dtype=bool)),
        (TARGETS, LABELS[:4], TEST),
        (TARGETS, LABELS, TEST[:4]),
        (TARGETS[0], LABELS, TEST),
    ],
    ids=["no-training-image", "no-test-image", "short-labels", "short-mask", "1d-targets"],
)
def test_bad_input(targets: np.ndarray, labels: np.ndarray, test: np.ndarray) -> None:
    with pytest.raises(ValueError, match="one target row, label and test flag per image"):
        baselines.fold_scores(targets, labels, test)
