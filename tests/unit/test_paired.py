"""Paired comparisons of each arm with the baseline (ewmtcnn.study.paired, ewmtcnn.study.protocol), by hand.

- Fold differences, medians and shares on small repeated-cross-validation tables (`support.anger_predictions`).
- Intervals at 1 - ALPHA/m, Bonferroni-adjusted p-values and labels against Student's t from SciPy.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from ewmtcnn import InputError
from ewmtcnn.evaluation import metrics
from ewmtcnn.study.paired import (
    EQUIVALENT,
    EQUIVALENT_DIFFERS,
    HELPS,
    HURTS,
    INCONCLUSIVE,
    Paired,
    assess,
    compare,
    label,
    paired,
)
from ewmtcnn.study.protocol import ALPHA, MARGINS, level, required_repeats
from support import SIX_IMAGES, anger_predictions

#: The baseline predicts anger with 0.6 everywhere; the variant with these probabilities.
VARIANT_Q = {
    **{(0, 0): 0.8, (0, 1): 0.3, (0, 2): 0.9, (0, 3): 0.6, (0, 4): 0.7, (0, 5): 0.65},
    **{(1, 0): 0.7, (1, 1): 0.4, (1, 2): 0.55, (1, 3): 0.9, (1, 4): 0.75, (1, 5): 0.62},
}


BASELINE = anger_predictions(dict.fromkeys(SIX_IMAGES, 0.6))
VARIANT = anger_predictions(VARIANT_Q)


def corrected_by_hand(fold_values: list[float], ratio: float, comparisons: int) -> tuple[float, float, float, float]:
    """Mean, interval at 1 - ALPHA/m and two-sided p of the corrected resampled t, written out."""
    j = len(fold_values)
    mean = sum(fold_values) / j
    variance = sum((v - mean) ** 2 for v in fold_values) / (j - 1)
    se = math.sqrt((1 / j + ratio) * variance)
    half = stats.t.ppf(1 - ALPHA / (2 * comparisons), j - 1) * se
    return mean, mean - half, mean + half, 2 * stats.t.sf(abs(mean) / se, j - 1)


def tost_by_hand(fold_values: list[float], ratio: float, margin: float) -> float:
    """The larger of the two one-sided p-values against ±margin, written out."""
    j = len(fold_values)
    mean = sum(fold_values) / j
    se = math.sqrt((1 / j + ratio) * sum((v - mean) ** 2 for v in fold_values) / (j - 1))
    return max(stats.t.sf((mean + margin) / se, j - 1), stats.t.sf((margin - mean) / se, j - 1))


def test_paired_by_hand() -> None:
    d = {key: math.log(0.6 / q) for key, q in VARIANT_Q.items()}  # KL difference: -ln q - (-ln 0.6)
    kl_folds = [  # (repeat, fold) in order: the mean of the fold's two images
        (d[0, 0] + d[0, 1]) / 2,
        (d[0, 2] + d[0, 3]) / 2,
        (d[0, 4] + d[0, 5]) / 2,
        (d[1, 0] + d[1, 3]) / 2,
        (d[1, 1] + d[1, 4]) / 2,
        (d[1, 2] + d[1, 5]) / 2,
    ]
    # The baseline is right everywhere; the variant is wrong on image 1 (q < 1/2), in fold 0 of
    # repeat 0 and fold 1 of repeat 1, each of two images. Every image is anger, the one class present:
    # balanced accuracy is its recall, the accuracy; macro-F1 its F1, 1 for the baseline and, with
    # precision 1 and recall 1/2, 2/3 for the variant in those two folds.
    acc_folds = [-0.5, 0.0, 0.0, 0.0, -0.5, 0.0]
    f1_folds = [-1 / 3, 0.0, 0.0, 0.0, -1 / 3, 0.0]
    ratio = 2 / 4  # test folds of 2 images, training sets of 4
    result = paired(BASELINE, VARIANT.sample(frac=1, random_state=0))  # aligned by (repeat, image), not row
    assert (result.images, result.repeats, result.folds, result.test_train_ratio) == (6, 2, 3, ratio)
    assert list(result.differences) == list(metrics.SCORES)  # every score; those of MARGINS are tested
    expected = {"kl": kl_folds, "acc": acc_folds, "balanced_acc": acc_folds, "macro_f1": f1_folds}
    for score, folds in expected.items():
        assert result.differences[score] == pytest.approx(folds, rel=1e-12, abs=1e-15), score
        for comparisons in (1, 3):
            mean, low, high, p = corrected_by_hand(folds, ratio, comparisons)
            got = assess(result, score, comparisons)
            assert (got.mean, got.low, got.high) == pytest.approx((mean, low, high), rel=1e-12)
            assert (got.level, got.margin) == (1 - ALPHA / comparisons, MARGINS[score])
            assert got.p_differs == pytest.approx(min(1, comparisons * p), rel=1e-12)
            tost = tost_by_hand(folds, ratio, MARGINS[score])
            assert got.p_equivalent == pytest.approx(min(1, 2 * comparisons * tost), rel=1e-9)
    # Per image, averaged over the two repeats: all but image 1 improve; in order, images 0 (-0.221),
    # 3 (-0.203), 4 (-0.189), 2 (-0.159), 5 (-0.056) and 1 (+0.549): the middle two are 4 and 2.
    per_image = [(d[0, image] + d[1, image]) / 2 for image in range(6)]
    assert sorted(per_image) == [per_image[i] for i in (0, 3, 4, 2, 5, 1)]
    assert result.kl_median == pytest.approx((per_image[4] + per_image[2]) / 2, rel=1e-12)
    assert result.kl_improved == pytest.approx(5 / 6, rel=1e-12)


def test_mean_and_median_can_disagree() -> None:
    """Most images a little better, one much worse: the mean difference is positive, the median negative.

    - The share that improves says so; the test is of the mean that is shown.
    """
    q = dict.fromkeys(SIX_IMAGES, 0.65)
    q[0, 1] = q[1, 1] = 0.1
    result = paired(BASELINE, anger_predictions(q))
    mean = assess(result, "kl", 1).mean
    assert mean == pytest.approx((5 * math.log(0.6 / 0.65) + math.log(6)) / 6, rel=1e-12)
    assert mean > 0 > result.kl_median
    assert result.kl_median == pytest.approx(math.log(0.6 / 0.65), rel=1e-12)
    assert result.kl_improved == pytest.approx(5 / 6, rel=1e-12)


def test_identical_predictions_differ_by_nothing() -> None:
    result = paired(VARIANT, VARIANT.copy())
    assert result.differences == dict.fromkeys(metrics.SCORES, (0.0,) * 6)
    assert (result.kl_median, result.kl_improved) == (0.0, 0.0)
    for score in MARGINS:  # no spread: the interval is the point 0, inside every margin
        got = assess(result, score, 4)
        assert (got.low, got.high, got.p_differs, got.p_equivalent, got.label) == (0.0, 0.0, 1.0, 0.0, EQUIVALENT)


def test_paired_refuses_tables_of_other_images_repeats_folds_or_labels() -> None:
    with pytest.raises(InputError, match=r"cover different images or repeats \(2 .* e\.g\. repeat 0 x/0\.jpg\)"):
        paired(BASELINE, VARIANT.assign(image=VARIANT["image"].where(VARIANT.index != 0, "y/0.jpg")))
    with pytest.raises(InputError, match="cover different images or repeats"):
        paired(BASELINE, VARIANT[VARIANT["repeat"] == 0])
    with pytest.raises(InputError, match="differ in fold"):
        paired(BASELINE, VARIANT.assign(fold=1 - VARIANT["fold"]))
    with pytest.raises(InputError, match="differ in label"):
        paired(BASELINE, VARIANT.assign(label="disgust"))
    with pytest.raises(InputError, match="differ in true_anger"):
        paired(BASELINE, VARIANT.assign(true_anger=0.5, true_disgust=0.5))
    with pytest.raises(InputError, match="baseline predictions list some images more than once in a repeat"):
        paired(BASELINE.assign(repeat=0), VARIANT)
    with pytest.raises(InputError, match="variant predictions have no repeat column: .* run it again"):
        paired(BASELINE, VARIANT.drop(columns="repeat"))
    with pytest.raises(InputError, match="KL is infinite"):
        paired(BASELINE, VARIANT.assign(pred_anger=0.0, pred_disgust=1.0))
    one = ((BASELINE["repeat"] == 0) & (BASELINE["fold"] == 0)).to_numpy()
    with pytest.raises(InputError, match=r"one \(repeat, fold\) only"):
        paired(BASELINE[one], VARIANT[one])


def made(**differences: list[float]) -> Paired:
    """A `Paired` of 3 repeats of 5 folds with the given per-fold differences (n_test / n_train 1/4)."""
    return Paired(100, 3, 5, 0.25, {score: tuple(values) for score, values in differences.items()}, 0.0, 0.0)


def test_compare_tests_each_score_at_one_minus_alpha_over_the_other_arms() -> None:
    rng = np.random.default_rng(1)
    tables = {
        arm: anger_predictions(dict(zip(SIX_IMAGES, rng.uniform(low, high, len(SIX_IMAGES)), strict=True)))
        for arm, low, high in (("b", 0.8, 0.95), ("none", 0.55, 0.8), ("c", 0.4, 0.8), ("d", 0.05, 0.45))
    }
    results = compare(tables, "none")
    assert list(results) == ["b", "c", "d"]
    for arm, comparison in results.items():  # each arm against the baseline, in that direction, m = 3
        assert comparison.paired == paired(tables["none"], tables[arm])
        assert comparison.tests == {score: assess(comparison.paired, score, 3) for score in MARGINS}
        assert all(test.level == 1 - ALPHA / 3 for test in comparison.tests.values())
    assert results["b"].tests["kl"].mean < 0 < results["d"].tests["kl"].mean  # closer to the truth, and further
    # `none` and `b` are right on every image, `d` wrong on every one: no spread, so a point interval.
    b, d = results["b"].tests["acc"], results["d"].tests["acc"]
    assert (b.mean, b.low, b.high, b.p_differs, b.p_equivalent, b.label) == (0.0, 0.0, 0.0, 1.0, 0.0, EQUIVALENT)
    assert (d.mean, d.low, d.high, d.p_differs, d.p_equivalent, d.label) == (-1.0, -1.0, -1.0, 0.0, 1.0, HURTS)


# Fifteen fold differences around 0 with spread 0.002, to shift and scale.
NOISE = list(np.random.default_rng(7).standard_normal(15) * 0.002)


@pytest.mark.parametrize(
    "score,values,expected",
    [
        ("kl", [v - 0.05 for v in NOISE], HELPS),  # lower KL, far beyond the margin
        ("kl", [v + 0.05 for v in NOISE], HURTS),
        ("acc", [v - 0.05 for v in NOISE], HURTS),  # lower accuracy
        ("macro_f1", [v + 0.05 for v in NOISE], HELPS),
        ("kl", [v - float(np.mean(NOISE)) for v in NOISE], EQUIVALENT),  # centred on 0, narrow
        ("kl", [v + 0.005 for v in NOISE], EQUIVALENT_DIFFERS),  # inside (0, 0.01)
        ("acc", [10 * v + 0.01 for v in NOISE], INCONCLUSIVE),  # wide: across 0 and the margin
    ],
)
def test_each_label(score: str, values: list[float], expected: str) -> None:
    got = assess(made(**{score: values}), score, 4)
    assert got.label == expected
    margin = MARGINS[score]
    assert (got.p_differs < ALPHA) == (expected in (HELPS, HURTS, EQUIVALENT_DIFFERS))
    assert (got.p_equivalent < ALPHA) == (expected in (EQUIVALENT, EQUIVALENT_DIFFERS))
    assert (-margin < got.low and got.high < margin) == (expected in (EQUIVALENT, EQUIVALENT_DIFFERS))
    assert (got.low > 0 or got.high < 0) == (expected in (HELPS, HURTS, EQUIVALENT_DIFFERS))


def test_label_by_hand() -> None:
    assert label(-0.05, -0.02, 0.01, lower_is_better=True) == HELPS
    assert label(-0.05, -0.02, 0.01, lower_is_better=False) == HURTS
    assert label(0.02, 0.05, 0.01, lower_is_better=False) == HELPS
    assert label(-0.005, 0.009, 0.01, lower_is_better=True) == EQUIVALENT
    assert label(0.001, 0.009, 0.01, lower_is_better=True) == EQUIVALENT_DIFFERS
    assert label(-0.005, 0.01, 0.01, lower_is_better=True) == INCONCLUSIVE  # reaches the margin: not inside
    assert label(0.0, 0.02, 0.01, lower_is_better=True) == INCONCLUSIVE  # reaches 0: does not exclude it


def test_every_label_agrees_with_its_interval_and_p_values() -> None:
    """Over many random cases: the adjusted p-values are below ALPHA exactly when the interval says so."""
    seen = set()
    for seed in range(300):
        rng = np.random.default_rng(seed)
        score = str(rng.choice(list(MARGINS)))
        values = rng.normal(rng.uniform(-0.04, 0.04), rng.uniform(0.001, 0.04), 15)
        comparisons = int(rng.integers(1, 10))
        got = assess(made(**{score: list(values)}), score, comparisons)
        interval = stats.t.ppf(1 - ALPHA / (2 * comparisons), 14) * math.sqrt((1 / 15 + 0.25) * values.var(ddof=1))
        assert (got.low, got.high) == pytest.approx((values.mean() - interval, values.mean() + interval), rel=1e-9)
        inside, excludes = -MARGINS[score] < got.low and got.high < MARGINS[score], got.low > 0 or got.high < 0
        assert (got.p_equivalent < ALPHA, got.p_differs < ALPHA) == (inside, excludes), seed
        better = got.high < 0 if score == "kl" else got.low > 0
        expected = {
            (True, True): EQUIVALENT_DIFFERS,
            (True, False): EQUIVALENT,
            (False, True): HELPS if better else HURTS,
            (False, False): INCONCLUSIVE,
        }
        assert got.label == expected[inside, excludes], seed
        seen.add(got.label)
    assert seen == {HELPS, HURTS, EQUIVALENT, EQUIVALENT_DIFFERS, INCONCLUSIVE}


def test_bonferroni_caps_at_one() -> None:
    centred = [v - float(np.mean(NOISE)) for v in NOISE]  # two-sided p 1 (mean 0): m p capped at 1
    wide = [20 * v + 0.012 for v in centred]  # mean beyond the margin: TOST p over 1/2, 2m p capped at 1
    for comparisons in (1, 2, 8):
        assert assess(made(kl=centred), "kl", comparisons).p_differs == 1.0
        assert assess(made(kl=wide), "kl", comparisons).p_equivalent == 1.0
    # Below the cap, exactly m times and 2m times the p-values, from SciPy's t.
    shifted = [v + 0.004 for v in NOISE]
    mean, se = float(np.mean(shifted)), math.sqrt((1 / 15 + 0.25) * float(np.var(shifted, ddof=1)))
    two_sided = 2 * stats.t.sf(mean / se, 14)
    tost = max(stats.t.sf((mean + 0.01) / se, 14), stats.t.sf((0.01 - mean) / se, 14))
    got = assess(made(kl=shifted), "kl", 3)
    assert (got.p_differs, got.p_equivalent) == pytest.approx((3 * two_sided, 6 * tost), rel=1e-9)
    assert 3 * two_sided < 1 and 6 * tost < 1


def test_level() -> None:
    assert (level(1), level(4)) == (pytest.approx(0.95), pytest.approx(1 - 0.0125))
    with pytest.raises(ValueError, match="at least one comparison"):
        level(0)


def half_width_by_hand(std: float, repeats: int, folds: int, comparisons: int) -> float:
    """The expected half-width at 1 - ALPHA/m over R x k folds, with n_test / n_train = 1/(k - 1)."""
    j = repeats * folds
    return stats.t.ppf(1 - ALPHA / (2 * comparisons), j - 1) * math.sqrt((1 / j + 1 / (folds - 1)) * std**2)


@pytest.mark.parametrize(
    "std,margin,comparisons,folds", [(0.01, 0.02, 6, 5), (0.012, 0.01, 1, 10), (0.015, 0.02, 3, 5)]
)
def test_required_repeats_is_the_fewest_that_fit(std: float, margin: float, comparisons: int, folds: int) -> None:
    repeats = required_repeats(std, margin, comparisons, folds)
    assert repeats is not None
    assert half_width_by_hand(std, repeats, folds, comparisons) < margin
    assert repeats == 1 or half_width_by_hand(std, repeats - 1, folds, comparisons) >= margin


def test_required_repeats_none_when_no_repeats_will_do() -> None:
    # The half-width never falls below z sqrt(1/(k - 1)) std: 2.64 x 0.5 x 0.05 = 0.066 for m = 6, k = 5.
    assert stats.norm.ppf(1 - ALPHA / 12) * math.sqrt(1 / 4) * 0.05 > 0.01
    assert required_repeats(0.05, 0.01, 6, 5) is None
    assert required_repeats(0.0, 0.01, 6, 5) == 1  # no spread: one repeat fits
    with pytest.raises(ValueError, match="folds >= 2"):
        required_repeats(0.01, 0.01, 6, 1)
