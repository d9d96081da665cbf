"""The LDL measures and accuracy (ewmtcnn.evaluation.metrics), against SciPy and against arithmetic by hand."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import stats
from scipy.spatial import distance
from scipy.special import rel_entr
from scipy.stats import entropy
from sklearn.metrics import balanced_accuracy_score, confusion_matrix

from ewmtcnn.evaluation.metrics import (
    MEASURES,
    SCORES,
    accuracy,
    class_scores,
    distances,
    fold_scores,
    per_class_accuracy,
    per_class_scores,
)
from ewmtcnn.evaluation.resampling import summarise

# One image of c = 4 emotions worked out by hand: p has zeros, and p_3 = q_3 = 0 (a 0/0 term, counted as 0).
P = np.array([[0.5, 0.5, 0.0, 0.0]])
Q = np.array([[0.25, 0.5, 0.25, 0.0]])
BY_HAND = {
    # |p - q| = .25, 0, .25, 0;  p + q = .75, 1, .25, 0
    "chebyshev": 0.25,
    "clark": math.sqrt((0.25 / 0.75) ** 2 + 0 + (0.25 / 0.25) ** 2 + 0),  # sqrt(1/9 + 1) = sqrt(10)/3
    "canberra": 0.25 / 0.75 + 0 + 0.25 / 0.25 + 0,  # 1/3 + 1 = 4/3
    "kl": 0.5 * math.log(0.5 / 0.25) + 0.5 * math.log(0.5 / 0.5) + 0 + 0,  # ln(2) / 2
    # p.q = .125 + .25 = .375;  |p| = sqrt(.5);  |q| = sqrt(.0625 + .25 + .0625) = sqrt(.375)
    "cosine": 0.375 / (math.sqrt(0.5) * math.sqrt(0.375)),  # sqrt(3)/2
    "intersection": 0.25 + 0.5 + 0.0 + 0.0,  # 3/4
    "clark_normalised": math.sqrt(10) / 3 / 2,  # Clark / sqrt(4)
    "canberra_normalised": (4 / 3) / 4,  # Canberra / 4 = 1/3
}


def random_pairs(seed: int, zeros: bool, n: int = 40, c: int = 7) -> tuple[np.ndarray, np.ndarray]:
    """Random distributions p (true) and q (predicted). With `zeros`, p has zero entries and,
    for about half the images, p_j = q_j = 0 in the last column (a 0/0 term)."""
    rng = np.random.default_rng(seed)
    p, q = rng.dirichlet(np.ones(c), n), rng.dirichlet(np.ones(c), n)
    if zeros:
        p[rng.random((n, c)) < 0.4] = 0.0
        p[:, 0] += 0.05  # every row keeps some mass; column 0 is never a 0/0 term
        both = rng.random(n) < 0.5
        p[both, -1] = q[both, -1] = 0.0
        p /= p.sum(axis=1, keepdims=True)
        q /= q.sum(axis=1, keepdims=True)
    return p, q


def per_row(function, p: np.ndarray, q: np.ndarray) -> np.ndarray:
    return np.array([function(a, b) for a, b in zip(p, q, strict=True)])


def clark_loop(p: np.ndarray, q: np.ndarray) -> float:
    """Clark, term by term, straight from Geng's definition."""
    return math.sqrt(sum(((a - b) / (a + b)) ** 2 for a, b in zip(p, q, strict=True) if a + b != 0))


def test_by_hand() -> None:
    got = distances(P, Q)
    assert set(got) == set(MEASURES)
    for name, expected in BY_HAND.items():
        assert got[name].shape == (1,)
        assert got[name][0] == pytest.approx(expected, rel=1e-12), name
    # The same values in closed form.
    assert got["clark"][0] == pytest.approx(math.sqrt(10) / 3, rel=1e-12)
    assert got["cosine"][0] == pytest.approx(math.sqrt(3) / 2, rel=1e-12)


@pytest.mark.parametrize("zeros", [False, True], ids=["positive", "with-zeros"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_against_scipy(seed: int, zeros: bool) -> None:
    p, q = random_pairs(seed, zeros)
    got = distances(p, q)
    assert all(v.shape == (len(p),) and v.dtype == np.float64 for v in got.values())
    np.testing.assert_allclose(got["kl"], rel_entr(p, q).sum(axis=1), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(got["kl"], entropy(p, q, axis=1), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(got["chebyshev"], per_row(distance.chebyshev, p, q), rtol=1e-12)
    np.testing.assert_allclose(got["canberra"], per_row(distance.canberra, p, q), rtol=1e-12)
    np.testing.assert_allclose(got["canberra_normalised"], per_row(distance.canberra, p, q) / 7, rtol=1e-12)
    np.testing.assert_allclose(got["cosine"], 1 - per_row(distance.cosine, p, q), rtol=1e-12)
    np.testing.assert_allclose(got["clark"], per_row(clark_loop, p, q), rtol=1e-12)
    np.testing.assert_allclose(got["clark_normalised"], per_row(clark_loop, p, q) / math.sqrt(7), rtol=1e-12)
    # For two distributions, sum min(p, q) = 1 - L1(p, q) / 2.
    np.testing.assert_allclose(got["intersection"], 1 - per_row(distance.cityblock, p, q) / 2, rtol=1e-12)
    assert np.isfinite(np.stack(list(got.values()))).all()


def test_measures_keep_gengs_order_and_append_the_normalised_forms() -> None:
    assert MEASURES[:6] == ("kl", "chebyshev", "clark", "canberra", "cosine", "intersection")
    assert MEASURES[6:] == ("clark_normalised", "canberra_normalised")


def test_three_emotions_by_hand() -> None:
    # p = (1, 0, 0), q = (1/2, 1/4, 1/4): |p - q| / (p + q) = (1/2) / (3/2) = 1/3, then 1 and 1.
    got = distances(np.array([[1.0, 0.0, 0.0]]), np.array([[0.5, 0.25, 0.25]]))
    assert got["canberra"][0] == pytest.approx(1 / 3 + 1 + 1, rel=1e-12)  # 7/3
    assert got["clark"][0] == pytest.approx(math.sqrt(1 / 9 + 1 + 1), rel=1e-12)  # sqrt(19)/3
    assert got["canberra_normalised"][0] == pytest.approx(7 / 9, rel=1e-12)  # 7/3 / 3
    assert got["clark_normalised"][0] == pytest.approx(math.sqrt(19 / 27), rel=1e-12)  # sqrt(19)/3 / sqrt(3)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_zero_target_entry_counts_one_whatever_the_prediction(seed: int) -> None:
    """A target entry of 0 adds exactly 1 to Canberra and to Clark's sum of squares, for any positive prediction.

    - Predictions that differ only where the target is 0 (both positive there) have the same Clark and Canberra.
    """
    rng = np.random.default_rng(seed)
    p = rng.dirichlet(np.ones(7), 30)
    zero = rng.random((30, 7)) < 1 / 3
    zero[:, 0] = False  # every target keeps some mass
    p[zero] = 0.0
    p /= p.sum(axis=1, keepdims=True)
    q = rng.dirichlet(np.ones(7), 30)  # positive everywhere
    terms = np.abs(p - q) / (p + q)
    np.testing.assert_array_equal(terms[zero], 1.0)
    got = distances(p, q)
    zeros = zero.sum(axis=1)
    np.testing.assert_allclose(got["canberra"], zeros + np.where(zero, 0.0, terms).sum(axis=1), rtol=1e-12)
    np.testing.assert_allclose(got["clark"] ** 2, zeros + np.where(zero, 0.0, terms**2).sum(axis=1), rtol=1e-12)
    # Move mass between the zero-target entries only, keeping them positive and their total: nothing changes.
    weights = np.where(zero, rng.uniform(0.1, 10, zero.shape), 0.0)
    share = np.divide(weights, weights.sum(axis=1, keepdims=True), out=np.zeros_like(weights), where=zero)
    other = np.where(zero, share * np.where(zero, q, 0.0).sum(axis=1, keepdims=True), q)
    assert (other > 0).all() and not np.allclose(other, q)
    np.testing.assert_allclose(other.sum(axis=1), 1.0, rtol=1e-12)
    moved = distances(p, other)
    for name in ("clark", "canberra", "clark_normalised", "canberra_normalised"):
        np.testing.assert_array_equal(moved[name], got[name], err_msg=name)


def test_kl_is_infinite_where_q_misses_mass() -> None:
    p, q = np.array([[0.5, 0.5]]), np.array([[1.0, 0.0]])
    assert distances(p, q)["kl"][0] == math.inf == rel_entr(p, q).sum()


def test_identical_distributions() -> None:
    p, _ = random_pairs(3, zeros=True)
    got = distances(p, p.copy())
    for name in ("kl", "chebyshev", "clark", "canberra", "clark_normalised", "canberra_normalised"):
        np.testing.assert_array_equal(got[name], 0.0, err_msg=name)
    np.testing.assert_allclose(got["cosine"], 1.0, rtol=1e-12)
    np.testing.assert_allclose(got["intersection"], 1.0, rtol=1e-12)


def test_float32_input_is_computed_in_float64() -> None:
    p, q = random_pairs(4, zeros=False)
    got = distances(p.astype(np.float32), q.astype(np.float32))
    reference = rel_entr(p.astype(np.float32).astype(np.float64), q.astype(np.float32).astype(np.float64)).sum(axis=1)
    assert got["kl"].dtype == np.float64
    np.testing.assert_allclose(got["kl"], reference, rtol=1e-12)


@pytest.mark.parametrize("p_shape,q_shape", [((3, 6), (3, 7)), ((3, 6), (4, 6)), ((6,), (6,))])
def test_shapes_must_match(p_shape: tuple[int, ...], q_shape: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match="must both be"):
        distances(np.full(p_shape, 1 / 6), np.full(q_shape, 1 / 6))


# Four images, four classes (anger, disgust, fear, joy); nobody is labelled joy.
LABELS = np.array([0, 1, 2, 1])
PREDICTIONS = np.array(
    [
        [0.7, 0.1, 0.1, 0.1],  # argmax 0, label 0: right
        [0.1, 0.2, 0.6, 0.1],  # argmax 2, label 1: wrong
        [0.1, 0.1, 0.5, 0.3],  # argmax 2, label 2: right
        [0.2, 0.4, 0.1, 0.3],  # argmax 1, label 1: right
    ]
)
NAMES = ("anger", "disgust", "fear", "joy")


def test_accuracy_by_hand() -> None:
    assert accuracy(LABELS, PREDICTIONS) == 0.75  # 3 of 4


def test_per_class_accuracy_by_hand() -> None:
    # anger 1/1, disgust 1/2 (rows 1 and 3), fear 1/1; joy has no image, so it is left out.
    assert per_class_accuracy(LABELS, PREDICTIONS, NAMES) == {"anger": 1.0, "disgust": 0.5, "fear": 1.0}


def test_accuracy_input_checks() -> None:
    with pytest.raises(ValueError, match="one integer label per row"):
        accuracy(LABELS[:3], PREDICTIONS)
    with pytest.raises(ValueError, match="3 class names for 4 predicted emotions"):
        per_class_accuracy(LABELS, PREDICTIONS, NAMES[:3])


def test_balanced_accuracy_and_macro_f1_by_hand() -> None:
    # Predicted 0, 2, 2, 1 for labels 0, 1, 2, 1; joy (3) is neither a label nor predicted.
    # Recall: anger 1/1, disgust 1/2, fear 1/1 -> balanced accuracy (1 + 1/2 + 1) / 3 = 5/6.
    # F1 = 2PR / (P + R): anger P 1/1, R 1 -> 1; disgust P 1/1, R 1/2 -> 2/3; fear P 1/2, R 1 -> 2/3.
    scores = class_scores(LABELS, PREDICTIONS)
    assert scores == pytest.approx({"acc": 0.75, "balanced_acc": 5 / 6, "macro_f1": (1 + 2 / 3 + 2 / 3) / 3}, rel=1e-12)


def test_per_class_scores_by_hand() -> None:
    # Predicted 0, 2, 2, 1 for labels 0, 1, 2, 1 (as above); joy (3) is neither a label nor predicted.
    scores = per_class_scores(LABELS, PREDICTIONS, NAMES)
    assert scores["anger"] == {"recall": 1.0, "precision": 1.0, "f1": 1.0}
    assert scores["disgust"] == pytest.approx({"recall": 0.5, "precision": 1.0, "f1": 2 / 3}, rel=1e-12)
    assert scores["fear"] == pytest.approx({"recall": 1.0, "precision": 0.5, "f1": 2 / 3}, rel=1e-12)
    assert all(math.isnan(v) for v in scores["joy"].values())  # no image and never predicted: all undefined


@pytest.mark.filterwarnings("error")  # undefined figures are NaN, not warned about
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_per_class_scores_follow_the_confusion_matrix(seed: int) -> None:
    """Recall is the diagonal over its row, precision over its column (scikit-learn's confusion matrix)."""
    rng = np.random.default_rng(seed)
    labels, q = rng.integers(0, 5, 40), rng.dirichlet(np.ones(6), 40)  # class 5 has no image
    q[:, 4] = 0  # class 4 is never predicted
    counts = confusion_matrix(labels, q.argmax(axis=1), labels=range(6)).astype(float)
    scores = per_class_scores(labels, q, [f"e{k}" for k in range(6)])
    with np.errstate(invalid="ignore"):  # 0 / 0: undefined
        recall, precision = np.diag(counts) / counts.sum(axis=1), np.diag(counts) / counts.sum(axis=0)
        f1 = 2 * np.diag(counts) / (counts.sum(axis=1) + counts.sum(axis=0))
    for k in range(6):
        got = scores[f"e{k}"]
        assert [got["recall"], got["precision"], got["f1"]] == pytest.approx(
            [recall[k], precision[k], f1[k]], rel=1e-12, nan_ok=True
        ), k
    assert math.isnan(scores["e4"]["precision"]) and scores["e4"]["f1"] == 0.0 and math.isnan(scores["e5"]["recall"])


@pytest.mark.filterwarnings("error")  # a class predicted but absent from the labels is expected, not warned about
def test_a_predicted_class_absent_from_the_labels_adds_no_zero() -> None:
    # Labels anger, anger, disgust; predicted anger, joy, disgust: joy is predicted but nobody is labelled joy.
    labels = np.array([0, 0, 1])
    q = np.array([[0.7, 0.1, 0.1, 0.1], [0.1, 0.1, 0.1, 0.7], [0.1, 0.7, 0.1, 0.1]])
    scores = class_scores(labels, q)
    # Recall: anger 1/2, disgust 1/1 -> 3/4. F1: anger P 1, R 1/2 -> 2/3; disgust 1. Joy's F1 of 0 not counted:
    # (2/3 + 1) / 2 = 5/6, not (2/3 + 1 + 0) / 3 = 5/9.
    assert scores["balanced_acc"] == pytest.approx(3 / 4, rel=1e-12)
    assert scores["macro_f1"] == pytest.approx(5 / 6, rel=1e-12)


@pytest.mark.filterwarnings("ignore:y_pred contains classes not in y_true")
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_balanced_accuracy_is_scikit_learns(seed: int) -> None:
    rng = np.random.default_rng(seed)
    labels, q = rng.integers(0, 5, 30), rng.dirichlet(np.ones(6), 30)  # class 5 can only be predicted
    expected = balanced_accuracy_score(labels, q.argmax(axis=1))
    assert class_scores(labels, q)["balanced_acc"] == pytest.approx(expected, rel=1e-12)


@pytest.mark.filterwarnings("error")
def test_a_fold_of_one_class() -> None:
    assert class_scores(np.array([1, 1]), np.array([[0.2, 0.8], [0.6, 0.4]])) == {
        "acc": 0.5,
        "balanced_acc": 0.5,
        "macro_f1": pytest.approx(2 / 3, rel=1e-12),  # P 1/1, R 1/2
    }


def test_fold_scores() -> None:
    p = np.array([[0.6, 0.2, 0.1, 0.1], [0.0, 0.5, 0.5, 0.0], [0.1, 0.1, 0.8, 0.0], [0.3, 0.3, 0.2, 0.2]])
    scores = fold_scores(p, PREDICTIONS, LABELS)
    assert list(scores) == list(SCORES) == ["acc", "balanced_acc", "macro_f1", *MEASURES]
    assert scores["acc"] == 0.75
    assert scores["balanced_acc"] == pytest.approx(5 / 6, rel=1e-12)
    assert scores["kl"] == pytest.approx(rel_entr(p, PREDICTIONS).sum(axis=1).mean(), rel=1e-12)
    for name, values in distances(p, PREDICTIONS).items():
        assert scores[name] == pytest.approx(values.mean(), rel=1e-12)
    assert all(type(v) is float for v in scores.values())


def test_summarise_matches_numpy_sample_std_and_the_corrected_interval() -> None:
    folds = [{"acc": 0.5, "kl": 0.40}, {"acc": 0.6, "kl": 0.35}, {"acc": 0.55, "kl": 0.45}]
    summary = summarise(folds, test_train_ratio=0.25)
    for key in ("acc", "kl"):
        values = np.array([f[key] for f in folds])
        assert summary[key]["mean"] == pytest.approx(values.mean(), rel=1e-12)
        assert summary[key]["std"] == pytest.approx(values.std(ddof=1), rel=1e-12)
    # By hand for acc: mean 0.55; deviations -.05, .05, 0; sum of squares .005 / (3 - 1) -> std 0.05.
    # Half width t_{0.975, 2} * sqrt((1/3 + 1/4) * 0.05^2).
    assert summary["acc"]["std"] == pytest.approx(0.05, rel=1e-12)
    half = stats.t.ppf(0.975, 2) * math.sqrt((1 / 3 + 1 / 4) * 0.05**2)
    assert summary["acc"]["ci_low"] == pytest.approx(0.55 - half, rel=1e-12)
    assert summary["acc"]["ci_high"] == pytest.approx(0.55 + half, rel=1e-12)
    assert list(summary["acc"]) == ["mean", "std", "ci_low", "ci_high"]
    assert json.loads(json.dumps(summary)) == summary
    assert all(type(v) is float for s in summary.values() for v in s.values())


def test_summarise_one_fold() -> None:
    assert summarise([{"acc": 0.7, "kl": 0.3}], 0.25) == {
        "acc": {"mean": 0.7, "std": 0.0, "ci_low": 0.7, "ci_high": 0.7},
        "kl": {"mean": 0.3, "std": 0.0, "ci_low": 0.3, "ci_high": 0.3},
    }


def test_summarise_bad_input() -> None:
    with pytest.raises(ValueError, match="no folds"):
        summarise([], 0.25)
    with pytest.raises(ValueError, match="folds report different scores"):
        summarise([{"acc": 0.5}, {"kl": 0.3}], 0.25)
    with pytest.raises(ValueError, match="^kl: need one finite value per fold"):
        summarise([{"acc": 0.5, "kl": 0.3}, {"acc": 0.6, "kl": math.inf}], 0.25)
