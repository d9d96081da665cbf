"""Paired tests of each arm against the baseline (ewmtcnn.study.paired), worked out by hand.

- Fold means, medians and shares on small repeated-cross-validation tables made here.
- Student's t from SciPy as the reference.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from ewmtcnn import InputError
from ewmtcnn.study.paired import compare, holm, paired, verdict

#: Two repeats of three folds over six images, two in each fold: (repeat, image) -> fold.
FOLDS = {
    **{(0, 0): 0, (0, 1): 0, (0, 2): 1, (0, 3): 1, (0, 4): 2, (0, 5): 2},
    **{(1, 0): 0, (1, 3): 0, (1, 1): 1, (1, 4): 1, (1, 2): 2, (1, 5): 2},
}
#: The baseline predicts anger with 0.6 everywhere; the variant with these probabilities.
VARIANT_Q = {
    **{(0, 0): 0.8, (0, 1): 0.3, (0, 2): 0.9, (0, 3): 0.6, (0, 4): 0.7, (0, 5): 0.65},
    **{(1, 0): 0.7, (1, 1): 0.4, (1, 2): 0.55, (1, 3): 0.9, (1, 4): 0.75, (1, 5): 0.62},
}


def table(q: dict[tuple[int, int], float]) -> pd.DataFrame:
    """A metrics/predictions.csv of FOLDS' images, in repeat order, predicted anger with probability q[(repeat, image)].

    - Each image is truly all anger, so its KL is -ln q, and it is right when q > 1/2.
    """
    keys = sorted(FOLDS)
    return pd.DataFrame(
        {
            "image": [f"x/{image}.jpg" for _, image in keys],
            "repeat": [repeat for repeat, _ in keys],
            "fold": [FOLDS[key] for key in keys],
            "label": "anger",
            "true_anger": 1.0,
            "true_disgust": 0.0,
            "pred_anger": [q[key] for key in keys],
            "pred_disgust": [1 - q[key] for key in keys],
        }
    )


BASELINE = table(dict.fromkeys(FOLDS, 0.6))
VARIANT = table(VARIANT_Q)


def corrected_by_hand(fold_values: list[float], ratio: float) -> tuple[float, float, float, float]:
    """Mean, 95% interval and two-sided p of the corrected resampled t, written out."""
    j = len(fold_values)
    mean = sum(fold_values) / j
    variance = sum((v - mean) ** 2 for v in fold_values) / (j - 1)
    se = math.sqrt((1 / j + ratio) * variance)
    half = stats.t.ppf(0.975, j - 1) * se
    return mean, mean - half, mean + half, 2 * stats.t.sf(abs(mean) / se, j - 1)


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
    # repeat 0 and fold 1 of repeat 1, each of two images.
    acc_folds = [-0.5, 0.0, 0.0, 0.0, -0.5, 0.0]
    ratio = 2 / 4  # test folds of 2 images, training sets of 4
    result = paired(BASELINE, VARIANT.sample(frac=1, random_state=0))  # aligned by (repeat, image), not row
    assert (result.images, result.repeats, result.folds) == (6, 2, 3)
    for corrected, folds in ((result.kl, kl_folds), (result.acc, acc_folds)):
        mean, low, high, p = corrected_by_hand(folds, ratio)
        assert (corrected.mean, corrected.low, corrected.high, corrected.p) == pytest.approx(
            (mean, low, high, p), rel=1e-12
        )
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
    q = dict.fromkeys(FOLDS, 0.65)
    q[0, 1] = q[1, 1] = 0.1
    result = paired(BASELINE, table(q))
    assert result.kl.mean == pytest.approx((5 * math.log(0.6 / 0.65) + math.log(6)) / 6, rel=1e-12)
    assert result.kl.mean > 0 > result.kl_median
    assert result.kl_median == pytest.approx(math.log(0.6 / 0.65), rel=1e-12)
    assert result.kl_improved == pytest.approx(5 / 6, rel=1e-12)


def test_identical_predictions_differ_by_nothing() -> None:
    result = paired(VARIANT, VARIANT.copy())
    assert (result.kl.mean, result.kl.p, result.acc.mean, result.acc.p) == (0.0, 1.0, 0.0, 1.0)
    assert (result.kl_median, result.kl_improved) == (0.0, 0.0)


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


def test_holm_by_hand() -> None:
    # Sorted: .005 x 4 = .02; .01 x 3 = .03; .03 x 2 = .06; .04 x 1 = .04 -> raised to .06 (monotone).
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02], rel=1e-12)
    # .5 x 2 = 1.0 (capped at 1), .6 x 1 = .6 -> raised to 1.0.
    assert holm([0.6, 0.5]) == [1.0, 1.0]
    assert holm([0.2]) == [0.2] and holm([]) == []


def test_compare_holm_adjusts_each_measure_over_the_other_arms() -> None:
    rng = np.random.default_rng(1)
    tables = {
        arm: table(dict(zip(FOLDS, rng.uniform(low, high, len(FOLDS)), strict=True)))
        for arm, low, high in (("b", 0.8, 0.95), ("none", 0.55, 0.8), ("c", 0.4, 0.8), ("d", 0.05, 0.45))
    }
    results = compare(tables, "none")
    assert list(results) == ["b", "c", "d"]
    assert [results[arm].kl_p_holm for arm in results] == holm([results[arm].paired.kl.p for arm in results])
    assert [results[arm].acc_p_holm for arm in results] == holm([results[arm].paired.acc.p for arm in results])
    for arm in results:  # each arm against the baseline, in that direction
        assert results[arm].paired == paired(tables["none"], tables[arm])
    assert results["b"].paired.kl.mean < 0 < results["d"].paired.kl.mean  # closer to the truth, and further
    # `none` and `b` are right on every image, `d` wrong on every one: no spread, so p = 0 for `d`.
    assert (results["b"].paired.acc.mean, results["b"].acc_verdict) == (0.0, "no measurable difference")
    assert (results["d"].paired.acc.mean, results["d"].acc_p_holm, results["d"].acc_verdict) == (-1.0, 0.0, "hurts")


def test_verdict() -> None:
    assert verdict(-0.02, 0.01, lower_is_better=True) == "helps"
    assert verdict(-0.02, 0.01, lower_is_better=False) == "hurts"
    assert verdict(0.02, 0.049, lower_is_better=False) == "helps"
    assert verdict(0.02, 0.05, lower_is_better=False) == "no measurable difference"
    assert verdict(0.02, math.nan, lower_is_better=False) == "no measurable difference"
